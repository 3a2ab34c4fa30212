"""JSON API: public expert profiles with their charter and packs; the expert's own charter
draft, publication and packs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from portal.accounts.tables import Expert
from portal.charter.rules import Rules, rule_path
from portal.charter.services import (
    Published,
    charter_publish,
    draft_get,
    draft_save,
    expert_by_slug,
    pack_create,
    pack_set_active,
    packs_for,
    version_current,
)
from portal.charter.tables import CreditPack
from portal.errors import NotFound, ValidationFailed
from portal.params import PathId
from portal.web.auth import current_expert, expert_required

# The same rules with every field required: the body of a draft replacement.
RulesIn = msgspec.defstruct(
    "RulesIn",
    [(f.name, f.type) for f in msgspec.structs.fields(Rules)],
    kw_only=True,
    forbid_unknown_fields=True,
)


class ErrorOut(msgspec.Struct):
    code: str
    detail: str
    errors: dict[str, str] | None = None  # validation_failed: a message per field
    missing: int | None = None  # insufficient_credits: credits still needed


class CharterOut(msgspec.Struct):
    version: int
    published_at: datetime
    rules: Rules

    @classmethod
    def of(cls, published: Published) -> CharterOut:
        return cls(published.number, published.published_at, published.rules)


class PackOut(msgspec.Struct):
    id: int
    name: str
    credits: int
    price: int  # minor units
    currency: str
    active: bool

    @classmethod
    def of(cls, pack: CreditPack) -> PackOut:
        return cls(pack.id, pack.name, pack.credits, pack.price_minor, pack.currency, pack.active)


class ExpertOut(msgspec.Struct):
    slug: str
    name: str
    headline: str
    bio: str
    charter: CharterOut
    packs: list[PackOut]


class DraftOut(msgspec.Struct):
    draft: Rules
    published: CharterOut | None


class PackIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=200)]
    credits: int
    price: int  # minor units (cents)
    currency: str = "EUR"


ERRORS = {
    404: ResponseSpec(ErrorOut, description="Unknown"),
    422: ResponseSpec(ErrorOut, description="Invalid rules, one message per field"),
}


@get("/experts/{slug:str}", name="api_expert", responses=ERRORS, tags=["charter"])
async def expert_profile(slug: FromPath[str]) -> ExpertOut:
    """An expert's public profile, published charter (with its version) and packs on sale."""
    expert = await expert_by_slug(slug)
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound()
    packs = await packs_for(expert=expert)
    return ExpertOut(
        slug=expert.slug,
        name=expert.display_name,
        headline=expert.headline,
        bio=expert.bio,
        charter=CharterOut.of(current),
        packs=[PackOut.of(p) for p in packs],
    )


async def _draft_out(expert: Expert) -> DraftOut:
    current = await version_current(expert=expert)
    return DraftOut(
        draft=await draft_get(expert=expert),
        published=CharterOut.of(current) if current else None,
    )


@get("/expert/charter", name="api_charter_get", guards=[expert_required], tags=["expert"])
async def charter_get(request: Request[Any, Any, Any]) -> DraftOut:
    """The draft being edited, and the version clients see."""
    return await _draft_out(await current_expert(request))


@put(
    "/expert/charter",
    name="api_charter_put",
    guards=[expert_required],
    responses=ERRORS,
    tags=["expert"],
)
async def charter_put(request: Request[Any, Any, Any], data: JSONBody[RulesIn]) -> DraftOut:  # type: ignore[valid-type]
    """Replace the draft with a whole set of rules (every field is required, so a forgotten
    one is refused rather than reset); 422 with a message per rule."""
    expert = await current_expert(request)
    try:
        await draft_save(expert=expert, rules=Rules(**msgspec.structs.asdict(data)))
    except ValidationFailed as exc:
        paths = {rule_path(name): message for name, message in exc.errors.items()}
        raise ValidationFailed(paths) from exc
    return await _draft_out(expert)


@post(
    "/expert/charter/publish",
    name="api_charter_publish",
    guards=[expert_required],
    status_code=HTTP_201_CREATED,
    tags=["expert"],
    responses={**ERRORS, 409: ResponseSpec(ErrorOut, description="Nothing to publish")},
)
async def charter_publish_api(request: Request[Any, Any, Any]) -> CharterOut:
    """Publish the draft as the next immutable version."""
    return CharterOut.of(await charter_publish(expert=await current_expert(request)))


@get("/expert/packs", name="api_packs", guards=[expert_required], tags=["expert"])
async def packs_list(request: Request[Any, Any, Any]) -> list[PackOut]:
    """All the expert's packs, archived ones included."""
    packs = await packs_for(expert=await current_expert(request), active_only=False)
    return [PackOut.of(p) for p in packs]


@post(
    "/expert/packs",
    name="api_pack_create",
    guards=[expert_required],
    status_code=HTTP_201_CREATED,
    responses=ERRORS,
    tags=["expert"],
)
async def pack_create_api(request: Request[Any, Any, Any], data: JSONBody[PackIn]) -> PackOut:
    pack = await pack_create(
        expert=await current_expert(request),
        name=data.name,
        credits=data.credits,
        price_minor=data.price,
        currency=data.currency,
    )
    return PackOut.of(pack)


@post(
    "/expert/packs/{pack_id:int}/archive",
    name="api_pack_archive",
    guards=[expert_required],
    status_code=200,
    responses=ERRORS,
    tags=["expert"],
)
async def pack_archive_api(request: Request[Any, Any, Any], pack_id: PathId) -> PackOut:
    """Stop selling a pack; credits already bought are untouched."""
    return PackOut.of(
        await pack_set_active(expert=await current_expert(request), pack_id=pack_id, active=False)
    )


@post(
    "/expert/packs/{pack_id:int}/restore",
    name="api_pack_restore",
    guards=[expert_required],
    status_code=200,
    responses=ERRORS,
    tags=["expert"],
)
async def pack_restore_api(request: Request[Any, Any, Any], pack_id: PathId) -> PackOut:
    """Sell an archived pack again."""
    return PackOut.of(
        await pack_set_active(expert=await current_expert(request), pack_id=pack_id, active=True)
    )


PUBLIC_HANDLERS = [expert_profile]  # no token needed
HANDLERS = [
    charter_get,
    charter_put,
    charter_publish_api,
    packs_list,
    pack_create_api,
    pack_archive_api,
    pack_restore_api,
]
