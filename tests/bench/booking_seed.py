"""The booking benchmark's data, run as `python -m tests.bench.booking_seed OUT` in the
environment of a migrated database: an expert (Europe/Paris, Monday to Friday 09:00-12:30
and 14:00-18:00, a 10-minute buffer, a horizon of a year), 500 bookings and 200 busy events
of an external calendar over 60 days around the next change of clocks, and funded clients
with API tokens for the contention run. Writes what the benchmark needs as JSON to OUT."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from portal.accounts.services import expert_create, token_create, user_create
from portal.booking.availability import availability_of, working_time
from portal.booking.slots import GRID, Span
from portal.booking.tables import Booking, CalendarStatus, ExternalCalendar
from portal.charter.rules import Rules
from portal.charter.services import charter_publish, draft_save
from portal.credits import ledger
from portal.db import close_pool, start_pool

SLUG = "bench-expert"
TZ = "Europe/Paris"
DAYS = 60
BOOKINGS = 500
BUSY = 200
CLIENTS = 32
SEED = 20270328
PLACE = 0.9  # the chance a free quarter hour starts a booking: ~500 fit in 60 days
RACE_DAYS = 90  # after the 60 days: an empty calendar for the contention run
PASSWORD = "bench-only-password"
RULES = Rules(horizon_days=365, daily_cap=14, min_notice_hours=12, buffer_minutes=10)


def window(today: date) -> tuple[date, date]:
    """60 days with the next change of clocks in Paris in the middle (at least a week out)."""
    zone = ZoneInfo(TZ)
    day = today + timedelta(days=8)
    offset = datetime.combine(day, datetime.min.time(), zone).utcoffset()
    while datetime.combine(day, datetime.min.time(), zone).utcoffset() == offset:
        day += timedelta(days=1)
    first = max(today + timedelta(days=2), day - timedelta(days=DAYS // 2))
    return first, first + timedelta(days=DAYS - 1)


def spread(rng: random.Random, working: list[Span]) -> tuple[list[Span], list[Span]]:
    """Bookings in working hours, mostly short, none within the buffer of another (as the
    database requires), and busy events anywhere in working hours."""
    bookings: list[Span] = []
    for span_start, span_end in working:
        cell = span_start
        while cell < span_end and len(bookings) < BOOKINGS:
            length = timedelta(minutes=rng.choices((15, 30, 45), weights=(16, 3, 1))[0])
            if rng.random() < PLACE and cell + length <= span_end:
                bookings.append((cell, cell + length))
                cell += length + GRID  # the 10-minute buffer keeps the next quarter free
            else:
                cell += GRID
    busy: list[Span] = []
    for _ in range(BUSY):
        span_start, span_end = rng.choice(working)
        fives = (span_end - span_start) // timedelta(minutes=5)
        start = span_start + timedelta(minutes=5 * rng.randrange(fives))
        busy.append((start, start + timedelta(minutes=rng.randrange(15, 121, 5))))
    return bookings, busy


async def seed() -> dict[str, object]:
    await start_pool()
    try:
        expert = await expert_create(
            email="bench-expert@example.org", password=PASSWORD, slug=SLUG, name="Bench Expert"
        )
        await draft_save(expert=expert, rules=RULES)
        await charter_publish(expert=expert)
        availability = await availability_of(expert)
        first, last = window(datetime.now(UTC).date())
        working = await working_time(expert, availability, first, last)
        bookings, busy = spread(random.Random(SEED), working)
        someone = await user_create(email="booked@example.org", password=PASSWORD)
        for n, (start, end) in enumerate(bookings):
            await Booking(
                expert=expert.id,
                client=someone.id,
                channel="call",
                duration=(end - start) // timedelta(minutes=1),
                starts_at=start,
                ends_at=end,
                blocked_until=end + timedelta(minutes=RULES.buffer_minutes),
                credits=1,
                charter_version=1,
                cancel_free_hours=24,
                cancel_late_forfeit_percent=100,
                no_show_client_percent=100,
                timezone=TZ,
                key=f"seed:{n}",
                uid=secrets.token_hex(16),
            ).save()
        await ExternalCalendar(
            expert=expert.id,
            url="https://calendar.example.org/bench.ics",
            name="Bench",
            status=CalendarStatus.ok.value,
            synced_at=datetime.now(UTC),
            busy=json.dumps([[s.isoformat(), e.isoformat()] for s, e in busy]),
        ).save()
        tokens = []
        for n in range(CLIENTS):
            client = await user_create(email=f"racer{n}@example.org", password=PASSWORD)
            wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
            await ledger.grant(
                wallet_id=wallet.id,
                credits=1_000_000,
                expires_at=datetime.now(UTC) + timedelta(days=400),
                reference="adjust:bench",
                key=f"bench:{n}",
            )
            tokens.append(await token_create(user=client))
        return {
            "slug": SLUG,
            "first": first.isoformat(),
            "last": last.isoformat(),
            "race_first": (last + timedelta(days=1)).isoformat(),
            "race_last": (last + timedelta(days=RACE_DAYS)).isoformat(),
            "bookings": len(bookings),
            "busy": len(busy),
            "tokens": tokens,
        }
    finally:
        await close_pool()


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(asyncio.run(seed())))
