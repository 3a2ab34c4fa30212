"""Charter drafts, publication of immutable versions, and credit packs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from portal.accounts.tables import Expert
from portal.charter import rules as charter_rules
from portal.charter.rules import Rules
from portal.charter.tables import CharterDraft, CharterVersion, CreditPack
from portal.db import is_postgres, write_transaction
from portal.errors import N_, Conflict, NotFound, ValidationFailed
from portal.validation import check_text

CURRENCIES = ("EUR",)
PACK_MAX_CREDITS = 10_000
PACK_MAX_PRICE_MINOR = 10_000_00


@dataclass(frozen=True, slots=True)
class Published:
    """A published version with its rules decoded."""

    number: int
    published_at: datetime
    rules: Rules


@dataclass(frozen=True, slots=True)
class PublicExpert:
    """What the public page shows of an expert, and what names its cached content."""

    id: int
    slug: str
    display_name: str
    headline: str
    bio: str
    created_at: object
    charter_version: int
    packs_rev: int


async def public_expert(slug: str) -> PublicExpert:
    """One plain query (the public page's hot path); raises NotFound."""
    rows = await Expert.raw(
        "SELECT id, slug, display_name, headline, bio, created_at, charter_version, packs_rev "
        "FROM accounts_expert WHERE slug = {}",
        slug.lower(),
    )
    if not rows:
        raise NotFound(N_("This expert does not exist."))
    return PublicExpert(**rows[0])


async def expert_by_slug(slug: str) -> Expert:
    expert = await Expert.objects().where(Expert.slug == slug.lower()).first()
    if expert is None:
        raise NotFound(N_("This expert does not exist."))
    return expert


async def draft_get(*, expert: Expert) -> Rules:
    row = (
        await CharterDraft.select(CharterDraft.rules)
        .where(CharterDraft.expert == expert.id)
        .first()
    )
    if row is not None:
        return charter_rules.decode(row["rules"])
    current = await version_current(expert=expert)
    return current.rules if current else Rules()


async def draft_save(*, expert: Expert, rules: Rules) -> Rules:
    """Keep the expert's draft. Only rules that could be published are kept."""
    if errors := charter_rules.validate(rules):
        raise ValidationFailed(errors)
    encoded = charter_rules.encode(rules)
    async with write_transaction():
        await _lock_expert(expert)  # a first save inserts: two at once must queue
        updated = (
            await CharterDraft.update(
                {CharterDraft.rules: encoded, CharterDraft.updated_at: datetime.now(UTC)}
            )
            .where(CharterDraft.expert == expert.id)
            .returning(CharterDraft.id)
        )
        if not updated:
            await CharterDraft(expert=expert.id, rules=encoded).save()
    return rules


def _published(row: dict[str, object]) -> Published:
    return Published(
        number=row["number"],  # type: ignore[arg-type]
        published_at=row["published_at"],  # type: ignore[arg-type]
        rules=charter_rules.decode(row["rules"]),  # type: ignore[arg-type]
    )


async def version_current(*, expert: Expert) -> Published | None:
    row = (
        await CharterVersion.select(
            CharterVersion.number, CharterVersion.published_at, CharterVersion.rules
        )
        .where(CharterVersion.expert == expert.id)
        .order_by(CharterVersion.number, ascending=False)
        .first()
    )
    return _published(row) if row else None


async def version_get(*, expert: Expert | PublicExpert, number: int) -> Published:
    row = (
        await CharterVersion.select(
            CharterVersion.number, CharterVersion.published_at, CharterVersion.rules
        )
        .where((CharterVersion.expert == expert.id) & (CharterVersion.number == number))
        .first()
    )
    if row is None:
        raise NotFound(N_("This version of the charter does not exist."))
    return _published(row)


async def versions_list(*, expert: Expert) -> list[dict[str, object]]:
    return (
        await CharterVersion.select(CharterVersion.number, CharterVersion.published_at)
        .where(CharterVersion.expert == expert.id)
        .order_by(CharterVersion.number, ascending=False)
    )


async def _lock_expert(expert: Expert) -> None:
    """Inside a write transaction: the expert's charter changes queue here (SQLite's
    immediate transaction already serializes every writer)."""
    if is_postgres():
        await Expert.select(Expert.id).where(Expert.id == expert.id).lock_rows()


def fingerprint(rules: Rules) -> str:
    """Names one set of rules: the review page sends it back to publish what was shown."""
    return hashlib.sha256(charter_rules.encode(rules).encode()).hexdigest()[:20]


async def charter_publish(*, expert: Expert, reviewed: str | None = None) -> Published:
    """Freeze the draft as the next version. Refused when invalid, unchanged, or (given the
    fingerprint of what was reviewed) changed since the review."""
    async with write_transaction():
        await _lock_expert(expert)
        rules = await draft_get(expert=expert)
        if reviewed is not None and fingerprint(rules) != reviewed:
            raise Conflict(
                N_("The draft changed since you reviewed it: review it again."),
                code="draft_changed",
            )
        if errors := charter_rules.validate(rules):
            raise ValidationFailed(errors)
        current = await version_current(expert=expert)
        if current is not None and current.rules == rules:
            raise Conflict(
                N_("Nothing to publish: the draft is the current version."),
                code="nothing_to_publish",
            )
        number = 1 if current is None else current.number + 1
        version = CharterVersion(expert=expert.id, number=number, rules=charter_rules.encode(rules))
        await version.save()
        await Expert.update({Expert.charter_version: number}).where(Expert.id == expert.id)
    expert.charter_version = number
    return Published(number=number, published_at=version.published_at, rules=rules)


async def published_experts() -> list[dict[str, object]]:
    """Experts whose charter is published, for the directory."""
    return (
        await Expert.select(Expert.slug, Expert.display_name, Expert.headline)
        .where(Expert.charter_version > 0)
        .order_by(Expert.display_name)
    )


# --- credit packs -----------------------------------------------------------------------


async def packs_for(*, expert: Expert | PublicExpert, active_only: bool = True) -> list[CreditPack]:
    query = CreditPack.objects().where(CreditPack.expert == expert.id)
    if active_only:
        query = query.where(CreditPack.active.eq(True))
    return await query.order_by(CreditPack.credits)


async def pack_create(
    *, expert: Expert, name: str, credits: int, price_minor: int, currency: str = "EUR"
) -> CreditPack:
    name = name.strip()
    errors: dict[str, str] = {}
    if not 1 <= len(name) <= 80:
        errors["name"] = N_("Give the pack a name (at most 80 characters).")
    check_text(errors, "name", name)
    if not 1 <= credits <= PACK_MAX_CREDITS:
        errors["credits"] = N_("Between 1 and 10,000 credits.")
    if not 1 <= price_minor <= PACK_MAX_PRICE_MINOR:
        errors["price"] = N_("A price from 0.01 to 10,000.00.")
    if currency not in CURRENCIES:
        errors["currency"] = N_("Prices are in euros.")
    if errors:
        raise ValidationFailed(errors)
    pack = CreditPack(
        expert=expert.id, name=name, credits=credits, price_minor=price_minor, currency=currency
    )
    async with write_transaction():
        await pack.save()
        await _bump_packs_rev(expert)
    return pack


async def _bump_packs_rev(expert: Expert) -> None:
    """Inside the transaction that changes a pack: the public page's packs are new."""
    await Expert.update({Expert.packs_rev: Expert.packs_rev + 1}).where(Expert.id == expert.id)


async def pack_of(*, expert: Expert | PublicExpert, pack_id: int) -> CreditPack:
    """One of the expert's packs (archived or not); another expert's is not found."""
    pack = (
        await CreditPack.objects()
        .where((CreditPack.id == pack_id) & (CreditPack.expert == expert.id))
        .first()
    )
    if pack is None:
        raise NotFound(N_("This credit pack does not exist."))
    return pack


async def pack_set_active(*, expert: Expert, pack_id: int, active: bool) -> CreditPack:
    """Archive (or sell again) one of the expert's packs; another expert's is not found."""
    pack = await pack_of(expert=expert, pack_id=pack_id)
    if pack.active != active:
        pack.active = active
        async with write_transaction():
            await pack.save([CreditPack.active])
            await _bump_packs_rev(expert)
    return pack
