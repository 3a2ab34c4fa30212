"""Reads of credits that several pages need."""

from __future__ import annotations

from portal.credits import ledger


async def credits_available(*, client_id: int, expert_id: int) -> int:
    """The client's available credits with this expert (their wallet is created, empty,
    the first time)."""
    wallet = await ledger.wallet_for(client_id=client_id, expert_id=expert_id)
    return (await ledger.balance(wallet_id=wallet.id)).available
