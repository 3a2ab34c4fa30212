"""The worker benchmark's load, run as `python -m tests.bench.workers_seed N` in the
environment of a migrated database: N bookings that ended long ago, their credits held
(each through the real ledger), all due for confirmation at once."""

from __future__ import annotations

import asyncio
import secrets
import sys
from datetime import UTC, datetime, timedelta

from portal.accounts.services import expert_create, user_create
from portal.booking.tables import Booking
from portal.charter.rules import Rules
from portal.charter.services import charter_publish, draft_save
from portal.credits import ledger
from portal.db import close_pool, start_pool

PASSWORD = "bench-only-password"


async def seed(count: int) -> None:
    await start_pool()
    try:
        expert = await expert_create(
            email="w-expert@example.org", password=PASSWORD, slug="w-expert", name="W Expert"
        )
        await draft_save(expert=expert, rules=Rules())
        await charter_publish(expert=expert)
        client = await user_create(email="w-client@example.org", password=PASSWORD)
        wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
        await ledger.grant(
            wallet_id=wallet.id,
            credits=count,
            expires_at=datetime.now(UTC) + timedelta(days=365),
            reference="adjust:bench",
            key="bench",
        )
        start = datetime.now(UTC) - timedelta(minutes=15 * count + 120)
        for n in range(count):
            at = start + timedelta(minutes=15 * n)
            booking = Booking(
                expert=expert.id,
                client=client.id,
                channel="call",
                duration=15,
                starts_at=at,
                ends_at=at + timedelta(minutes=15),
                blocked_until=at + timedelta(minutes=15),
                credits=1,
                charter_version=1,
                cancel_free_hours=24,
                cancel_late_forfeit_percent=100,
                no_show_client_percent=100,
                timezone="Europe/Paris",
                key=f"w:{n}",
                uid=secrets.token_hex(16),
            )
            await booking.save()
            held = await ledger.hold(
                wallet_id=wallet.id, amount=1, reference=f"booking:{booking.id}"
            )
            await Booking.update({Booking.hold: held.id}).where(Booking.id == booking.id)
    finally:
        await close_pool()


if __name__ == "__main__":
    asyncio.run(seed(int(sys.argv[1])))
