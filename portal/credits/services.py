"""Credits operations built on the ledger: manual adjustments, checking every wallet."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from portal.credits import ledger
from portal.credits.tables import Entry, EntryKind, Wallet
from portal.errors import N_, ValidationFailed

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
    wallet = await ledger.wallet_for(client_id=client_id, expert_id=expert_id)
    reference = f"adjust:{key}"
    if credits > 0:
        return await ledger.grant(
            wallet_id=wallet.id,
            credits=credits,
            reference=reference,
            key=reference,
            expires_at=add_months(datetime.now(UTC), validity_months),
            kind=EntryKind.adjust,
            memo=reason,
        )
    return await ledger.debit(
        wallet_id=wallet.id, credits=-credits, reference=reference, key=reference, memo=reason
    )


async def verify_all() -> dict[int, list[str]]:
    """Wallet id -> its broken rules, for every wallet that has any."""
    problems = {}
    for row in await Wallet.select(Wallet.id).order_by(Wallet.id):
        found = await ledger.wallet_check(wallet_id=row["id"])
        if found:
            problems[row["id"]] = found
    return problems
