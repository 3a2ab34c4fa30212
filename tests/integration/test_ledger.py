"""The credits ledger on a real database: every scenario ends with the wallet's rules checked."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from portal.credits import ledger
from portal.credits.ledger import InsufficientCredits
from portal.credits.tables import Entry, EntryKind, Hold, HoldStatus, Lot, Wallet
from portal.errors import Conflict, ValidationFailed
from tests.conftest import TMP
from tests.support import make_expert, make_user

LATER = datetime.now(UTC) + timedelta(days=3650)


@pytest.fixture
async def wallet() -> AsyncIterator[Wallet]:
    client = await make_user()
    expert = await make_expert()
    wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
    yield wallet
    assert await ledger.wallet_check(wallet_id=wallet.id) == []


async def _grant(wallet: Wallet, credits: int, key: str, expires_at: datetime = LATER) -> Lot:
    entry = await ledger.grant(
        wallet_id=wallet.id, credits=credits, expires_at=expires_at, reference=key, key=key
    )
    return await Lot.objects().get(Lot.id == entry.lot)


async def test_one_wallet_per_client_and_expert(wallet: Wallet) -> None:
    again = await ledger.wallet_for(client_id=wallet.client, expert_id=wallet.expert)
    assert again.id == wallet.id
    assert await Wallet.count() == 1


async def test_a_grant_applies_once(wallet: Wallet) -> None:
    for _ in range(3):
        await _grant(wallet, 10, "purchase:1")
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=10, held=0)
    assert await Entry.count() == 1


async def test_holds_take_the_lots_that_expire_first(wallet: Wallet) -> None:
    late = await _grant(wallet, 5, "purchase:late", LATER)
    soon = await _grant(wallet, 3, "purchase:soon", datetime.now(UTC) + timedelta(days=10))
    await ledger.hold(wallet_id=wallet.id, amount=4, reference="booking:1")
    assert (await Lot.objects().get(Lot.id == soon.id)).remaining == 0
    assert (await Lot.objects().get(Lot.id == late.id)).remaining == 4
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=4, held=4)


async def test_not_enough_credits_says_how_many_are_missing(wallet: Wallet) -> None:
    await _grant(wallet, 2, "purchase:1")
    with pytest.raises(InsufficientCredits) as caught:
        await ledger.hold(wallet_id=wallet.id, amount=5, reference="booking:1")
    assert caught.value.missing == 3 and caught.value.code == "insufficient_credits"
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=2, held=0)
    assert await Hold.count() == 0


async def test_a_hold_is_idempotent_by_reference(wallet: Wallet) -> None:
    await _grant(wallet, 5, "purchase:1")
    first = await ledger.hold(wallet_id=wallet.id, amount=2, reference="booking:1")
    second = await ledger.hold(wallet_id=wallet.id, amount=2, reference="booking:1")
    assert first.id == second.id
    assert (await ledger.balance(wallet_id=wallet.id)).held == 2


async def test_capture_whole_partial_and_only_once(wallet: Wallet) -> None:
    await _grant(wallet, 10, "purchase:1")
    whole = await ledger.hold(wallet_id=wallet.id, amount=3, reference="booking:1")
    partial = await ledger.hold(wallet_id=wallet.id, amount=4, reference="booking:2")
    captured = await ledger.capture(wallet_id=wallet.id, hold_id=whole.id)
    assert (captured.status, captured.captured) == (HoldStatus.captured.value, 3)
    again = await ledger.capture(wallet_id=wallet.id, hold_id=whole.id)  # a job run twice
    assert again.captured == 3
    half = await ledger.capture(wallet_id=wallet.id, hold_id=partial.id, amount=1)
    assert half.captured == 1
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=6, held=0)
    with pytest.raises(Conflict):
        await ledger.release(wallet_id=wallet.id, hold_id=whole.id)
    with pytest.raises(ValidationFailed):
        other = await ledger.hold(wallet_id=wallet.id, amount=1, reference="booking:3")
        await ledger.capture(wallet_id=wallet.id, hold_id=other.id, amount=2)
    kinds = [e["kind"] for e in await Entry.select(Entry.kind).where(Entry.hold == partial.id)]
    assert kinds == ["hold", "capture", "release"]


async def test_release_gives_the_credits_back(wallet: Wallet) -> None:
    await _grant(wallet, 3, "purchase:1")
    held = await ledger.hold(wallet_id=wallet.id, amount=3, reference="question:1")
    released = await ledger.release(wallet_id=wallet.id, hold_id=held.id)
    assert released.status == HoldStatus.released.value
    await ledger.release(wallet_id=wallet.id, hold_id=held.id)  # twice: no effect
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=3, held=0)
    with pytest.raises(Conflict):
        await ledger.capture(wallet_id=wallet.id, hold_id=held.id)


async def test_expiry_takes_what_is_left_of_old_lots_only(wallet: Wallet) -> None:
    now = datetime.now(UTC)
    old = await _grant(wallet, 5, "purchase:old", now + timedelta(seconds=1.5))
    await _grant(wallet, 4, "purchase:new", LATER)
    held = await ledger.hold(wallet_id=wallet.id, amount=2, reference="booking:1")
    expired = await ledger.expire_due(wallet_id=wallet.id, now=now + timedelta(seconds=2))
    assert expired == 3  # 5 minus the 2 held
    assert (await Lot.objects().get(Lot.id == old.id)).remaining == 0
    assert await ledger.expire_due(wallet_id=wallet.id, now=now + timedelta(seconds=2)) == 0
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=4, held=2)
    await asyncio.sleep(
        max(0.0, (now + timedelta(seconds=1.6) - datetime.now(UTC)).total_seconds())
    )
    await ledger.release(wallet_id=wallet.id, hold_id=held.id)
    # Released credits of an expired lot expire at once.
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=4, held=0)
    kinds = [e["kind"] for e in await Entry.select(Entry.kind).order_by(Entry.id)]
    assert kinds[-2:] == [EntryKind.release.value, EntryKind.expire.value]


async def test_refund_takes_back_only_unused_credits(wallet: Wallet) -> None:
    lot = await _grant(wallet, 10, "purchase:1")
    await ledger.debit(wallet_id=wallet.id, credits=7, reference="adjust:1", key="adjust:1")
    entry, shortfall = await ledger.refund(
        wallet_id=wallet.id, lot_id=lot.id, credits=5, key="refund:1:5", reference="purchase:1"
    )
    assert entry is not None and entry.amount == -3 and shortfall == 2
    again, shortfall = await ledger.refund(
        wallet_id=wallet.id, lot_id=lot.id, credits=5, key="refund:1:5", reference="purchase:1"
    )
    assert again is not None and again.id == entry.id and shortfall == 2
    nothing, shortfall = await ledger.refund(
        wallet_id=wallet.id, lot_id=lot.id, credits=1, key="refund:1:6", reference="purchase:1"
    )
    assert nothing is None and shortfall == 1
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=0, held=0)


async def test_restore_gives_taken_credits_back_to_their_lot_once(wallet: Wallet) -> None:
    lot = await _grant(wallet, 10, "purchase:1")
    await ledger.refund(
        wallet_id=wallet.id, lot_id=lot.id, credits=10, key="dispute:dp_1", reference="purchase:1"
    )
    for _ in range(2):
        entry = await ledger.restore(
            wallet_id=wallet.id, lot_id=lot.id, credits=10, key="won:dp_1", reference="purchase:1"
        )
        assert entry is not None and entry.lot == lot.id and entry.amount == 10
    assert (await Lot.objects().get(Lot.id == lot.id)).remaining == 10  # the same lot
    # Never more than the lot lacks.
    assert (
        await ledger.restore(
            wallet_id=wallet.id, lot_id=lot.id, credits=1, key="won:dp_2", reference="purchase:1"
        )
        is None
    )
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=10, held=0)


async def test_credits_restored_to_an_expired_lot_expire_at_once(wallet: Wallet) -> None:
    lot = await _grant(wallet, 4, "purchase:1", datetime.now(UTC) + timedelta(seconds=1))
    await ledger.refund(
        wallet_id=wallet.id, lot_id=lot.id, credits=4, key="dispute:dp_1", reference="purchase:1"
    )
    await Lot.update({Lot.expires_at: datetime.now(UTC) - timedelta(days=1)}).where(
        Lot.id == lot.id
    )
    await ledger.restore(
        wallet_id=wallet.id, lot_id=lot.id, credits=4, key="won:dp_1", reference="purchase:1"
    )
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=0, held=0)
    kinds = [e["kind"] for e in await Entry.select(Entry.kind).order_by(Entry.id)]
    assert kinds == ["grant", "refund", "grant", "expire"]


async def test_amounts_must_be_positive(wallet: Wallet) -> None:
    for call in (
        ledger.grant(wallet_id=wallet.id, credits=0, expires_at=LATER, reference="x", key="x"),
        ledger.hold(wallet_id=wallet.id, amount=-1, reference="booking:1"),
        ledger.debit(wallet_id=wallet.id, credits=0, reference="x", key="y"),
    ):
        with pytest.raises(ValidationFailed):
            await call
    with pytest.raises(InsufficientCredits):
        await ledger.debit(wallet_id=wallet.id, credits=1, reference="x", key="z")


async def test_the_database_refuses_a_negative_balance(wallet: Wallet) -> None:
    with pytest.raises(Exception):  # noqa: B017 (the database's own check)
        await Wallet.update({Wallet.available: -1}).where(Wallet.id == wallet.id)


async def test_fifty_concurrent_holds_on_ten_credits(wallet: Wallet) -> None:
    await _grant(wallet, 10, "purchase:1")
    results = await asyncio.gather(
        *(ledger.hold(wallet_id=wallet.id, amount=1, reference=f"booking:{n}") for n in range(50)),
        return_exceptions=True,
    )
    held = [r for r in results if isinstance(r, Hold)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert len(held) == 10 and len(refused) == 40, results
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=0, held=10)


HOLDER = """
import asyncio, sys
from portal.credits import ledger
from portal.credits.ledger import InsufficientCredits
from portal.db import close_pool

async def main(wallet_id, first):
    ok = 0
    async def one(n):
        nonlocal ok
        try:
            await ledger.hold(wallet_id=wallet_id, amount=1, reference=f"booking:{n}")
            ok += 1
        except InsufficientCredits:
            pass
    try:
        await asyncio.gather(*(one(first + n) for n in range(12)))
    finally:
        await close_pool()
    print(ok)

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


async def test_holds_from_four_processes_never_overspend(wallet: Wallet) -> None:
    await _grant(wallet, 10, "purchase:1")
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            HOLDER,
            str(wallet.id),
            str(100 * n),
            cwd=TMP,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(4)
    ]
    outputs = [await p.communicate() for p in processes]
    assert all(p.returncode == 0 for p in processes), [err.decode()[-800:] for _, err in outputs]
    assert sum(int(out) for out, _ in outputs) == 10
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=0, held=10)


async def test_concurrent_first_uses_make_one_wallet() -> None:
    client = await make_user()
    expert = await make_expert()
    wallets = await asyncio.gather(
        *(ledger.wallet_for(client_id=client.id, expert_id=expert.id) for _ in range(8))
    )
    assert len({w.id for w in wallets}) == 1
    assert await Wallet.count() == 1
