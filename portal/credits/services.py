"""Credits operations built on the ledger: manual adjustments, checking every wallet."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from portal.credits import ledger
from portal.credits.tables import Entry, EntryKind, Lot, Purchase, PurchaseStatus, Wallet
from portal.db import write_transaction
from portal.errors import N_, NotFound, ValidationFailed
from portal.events.log import record

REASON_MAX = 300


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day when it is shorter)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


async def wallet_adjust(
    *, client_id: int, expert_id: int, credits: int, reason: str, validity_months: int, key: str
) -> Entry:
    """Give (credits > 0) or take back (credits < 0) credits, with a reason the client sees.

    Given credits form a lot valid `validity_months`; taken ones come from the lots that
    expire first, and never more than is available.
    """
    reason = reason.strip()
    errors = {}
    if credits == 0:
        errors["credits"] = N_("A number of credits other than zero.")
    if not reason:
        errors["reason"] = N_("Give a reason: the client reads it in their statement.")
    elif len(reason) > REASON_MAX:
        errors["reason"] = N_("At most 300 characters.")
    if errors:
        raise ValidationFailed(errors)
    # Made (or found) first: its creation, raced, recovers outside a transaction only.
    wallet = await ledger.wallet_for(client_id=client_id, expert_id=expert_id)
    async with write_transaction():
        entry = await _adjusted(wallet.id, credits, reason, validity_months, key)
        await record(
            "wallet.adjusted",
            f"wallet:{entry.wallet}:adjusted:{key}",
            wallet=entry.wallet,
            client=client_id,
            expert=expert_id,
            credits=credits,
            entry=entry.id,
        )
    return entry


async def _adjusted(
    wallet_id: int, credits: int, reason: str, validity_months: int, key: str
) -> Entry:
    reference = f"adjust:{key}"
    if credits > 0:
        return await ledger.grant(
            wallet_id=wallet_id,
            credits=credits,
            reference=reference,
            key=reference,
            expires_at=add_months(datetime.now(UTC), validity_months),
            kind=EntryKind.adjust,
            memo=reason,
        )
    return await ledger.debit(
        wallet_id=wallet_id, credits=-credits, reference=reference, key=reference, memo=reason
    )


async def verify_all() -> dict[int, list[str]]:
    """Wallet id -> its broken rules, for every wallet that has any."""
    problems = {}
    for row in await Wallet.select(Wallet.id).order_by(Wallet.id):
        found = await ledger.wallet_check(wallet_id=row["id"])
        if found:
            problems[row["id"]] = found
    return problems


async def lots_expire(*, now: datetime | None = None) -> int:
    """Expire what is left of every lot past its date, wallet by wallet; the credits."""
    now = now or datetime.now(UTC)
    due = (
        await Lot.select(Lot.wallet)
        .where((Lot.remaining > 0) & (Lot.expires_at <= now))
        .distinct()
        .order_by(Lot.wallet)
    )
    total = 0
    for row in due:
        total += await ledger.expire_due(wallet_id=row["wallet"], now=now)
    return total


EXPIRING_WITHIN = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class WalletView:
    wallet_id: int
    expert_slug: str
    expert_name: str
    available: int
    held: int
    expiring_soon: int  # available credits whose lot expires within 30 days
    next_expiry: datetime | None


async def wallets_of(*, client_id: int, now: datetime | None = None) -> list[WalletView]:
    """The client's balances, one per expert, for the client's space and the API."""
    now = now or datetime.now(UTC)
    wallets = (
        await Wallet.select(
            Wallet.id, Wallet.available, Wallet.held, Wallet.expert.slug, Wallet.expert.display_name
        )
        .where(Wallet.client == client_id)
        .order_by(Wallet.expert.display_name)
    )
    views = []
    for w in wallets:
        lots = (
            await Lot.select(Lot.remaining, Lot.expires_at)
            .where((Lot.wallet == w["id"]) & (Lot.remaining > 0) & (Lot.expires_at > now))
            .order_by(Lot.expires_at)
        )
        soon = sum(lot["remaining"] for lot in lots if lot["expires_at"] <= now + EXPIRING_WITHIN)
        views.append(
            WalletView(
                wallet_id=w["id"],
                expert_slug=w["expert.slug"],
                expert_name=w["expert.display_name"],
                available=w["available"],
                held=w["held"],
                expiring_soon=soon,
                next_expiry=lots[0]["expires_at"] if lots else None,
            )
        )
    return views


async def wallet_of(*, client_id: int, expert_slug: str) -> WalletView:
    for view in await wallets_of(client_id=client_id):
        if view.expert_slug == expert_slug:
            return view
    raise NotFound(N_("You have no credits with this expert."))


# What the history, the CSV, the statement and the API show of an entry.
ENTRY_COLUMNS = (
    Entry.id,
    Entry.kind,
    Entry.amount,
    Entry.held_change,
    Entry.reference,
    Entry.memo,
    Entry.created_at,
)


async def entries_of(*, wallet_id: int) -> list[dict[str, Any]]:
    """The wallet's ledger, oldest first, each entry with the balances after it."""
    rows = await Entry.select(*ENTRY_COLUMNS).where(Entry.wallet == wallet_id).order_by(Entry.id)
    available = held = 0
    for row in rows:
        available += row["amount"]
        held += row["held_change"]
        row["available_after"], row["held_after"] = available, held
    return rows


@dataclass(frozen=True, slots=True)
class ClientBalance:
    client_id: int
    email: str
    name: str
    available: int
    held: int


async def clients_of(*, expert_id: int) -> list[ClientBalance]:
    """The expert's clients (those with a wallet), with their balances."""
    rows = (
        await Wallet.select(
            Wallet.client.id, Wallet.client.email, Wallet.client.name, Wallet.available, Wallet.held
        )
        .where(Wallet.expert == expert_id)
        .order_by(Wallet.client.email)
    )
    return [
        ClientBalance(
            r["client.id"], r["client.email"], r["client.name"], r["available"], r["held"]
        )
        for r in rows
    ]


SOLD_SHOWN = 100


async def purchases_sold(*, expert_id: int, limit: int = SOLD_SHOWN) -> list[dict[str, Any]]:
    """The expert's latest purchases (any status), newest first, with the client and what
    refunds or disputes took back; `shortfall` is what a refund could not take back;
    `mismatch` why a payment naming it did not match it."""
    return (
        await Purchase.select(
            Purchase.id,
            Purchase.client.email,
            Purchase.client.name,
            Purchase.pack_name,
            Purchase.credits,
            Purchase.price_minor,
            Purchase.currency,
            Purchase.charter_version,
            Purchase.status,
            Purchase.refunded_minor,
            Purchase.refund_currency,
            Purchase.refund_credits,
            Purchase.refund_shortfall,
            Purchase.disputed_credits,
            Purchase.mismatch,
            Purchase.created_at,
            Purchase.paid_at,
        )
        .where(Purchase.expert == expert_id)
        .order_by(Purchase.id, ascending=False)
        .limit(limit)
    )


async def sales_total(*, expert_id: int) -> dict[str, int]:
    """Currency -> minor units paid and not refunded, over every paid purchase. A refund
    takes back its share of the charge (it may be in the customer's currency) from the
    price, rounded in the expert's favour by less than a cent."""
    rows = await Purchase.select(
        Purchase.currency, Purchase.price_minor, Purchase.refunded_minor, Purchase.charged_minor
    ).where((Purchase.expert == expert_id) & (Purchase.status == PurchaseStatus.paid.value))
    totals: dict[str, int] = {}
    for row in rows:
        price = row["price_minor"]
        refunded = price * row["refunded_minor"] // (row["charged_minor"] or price)
        totals[row["currency"]] = totals.get(row["currency"], 0) + price - refunded
    return totals
