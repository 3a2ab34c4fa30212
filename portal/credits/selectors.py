"""Reads of credits that several pages need."""

from __future__ import annotations

from portal.credits import ledger
from portal.credits.tables import Hold, HoldStatus


async def credits_available(*, client_id: int, expert_id: int) -> int:
    """The client's available credits with this expert (their wallet is created, empty,
    the first time)."""
    wallet = await ledger.wallet_for(client_id=client_id, expert_id=expert_id)
    return (await ledger.balance(wallet_id=wallet.id)).available


async def hold_captured(*, hold_id: int | None) -> int | None:
    """The credits an ended hold kept (None while it is active, or without a hold)."""
    if hold_id is None:
        return None
    row = await Hold.select(Hold.captured, Hold.status).where(Hold.id == hold_id).first()
    if row is None or row["status"] == HoldStatus.active.value:
        return None
    return int(row["captured"])
