"""The write path: how writers queue (SQLite: one writer connection per process and a lock
shared with other processes; PostgreSQL: bookings queue per expert and date), and event
rounds that render before their transaction."""

from __future__ import annotations

import asyncio
import fcntl
import os
from datetime import timedelta

import pytest

from portal.accounts.tables import User
from portal.booking.availability import availability_of, lock_days
from portal.booking.tables import Booking
from portal.db import (
    PortalSQLiteEngine,
    close_pool,
    get_engine,
    is_postgres,
    start_pool,
    write_transaction,
)
from portal.events.consume import Consumer, Recorded, consume_round
from portal.events.log import record_many
from portal.events.tables import Cursor, Event, Failure
from tests.support import book_call, give_credits, make_published_expert, make_user, next_monday_at

sqlite_only = pytest.mark.skipif(
    is_postgres(),
    reason="SQLite only: its writer connection and lock file (PostgreSQL has neither)",
)


def _sqlite() -> PortalSQLiteEngine:
    engine = get_engine()
    assert isinstance(engine, PortalSQLiteEngine)
    return engine


@sqlite_only
async def test_a_writer_waits_for_the_lock_another_process_holds() -> None:
    """Another process holding the lock file (a descriptor of its own: the same conflict
    as between processes) keeps writers waiting, and lets them go as soon as it lets go."""
    fd = os.open(_sqlite().writer_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        writing = asyncio.create_task(make_user("waits@example.org"))
        await asyncio.sleep(0.5)
        assert not writing.done()
        assert await User.count().where(User.email == "waits@example.org") == 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        user = await asyncio.wait_for(writing, timeout=5)
        assert user.email == "waits@example.org"
    finally:
        os.close(fd)


@sqlite_only
async def test_a_writer_cancelled_while_waiting_for_the_lock_never_keeps_it() -> None:
    """Its waiting thread takes the lock when the other process lets go: it is let go at
    once, not kept until this process writes again."""
    fd = os.open(_sqlite().writer_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        writing = asyncio.create_task(make_user("never@example.org"))
        await asyncio.sleep(0.3)
        writing.cancel()
        await asyncio.sleep(0.1)
        fcntl.flock(fd, fcntl.LOCK_UN)
        with pytest.raises(asyncio.CancelledError):
            await writing
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again: BlockingIOError if kept
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    assert await User.count().where(User.email == "never@example.org") == 0
    assert (await make_user("after@example.org")).email == "after@example.org"


@sqlite_only
async def test_the_writer_connection_survives_failed_and_cancelled_transactions() -> None:
    await make_user("first@example.org")
    writer = await _sqlite().writer()
    with pytest.raises(RuntimeError, match="on purpose"):
        async with write_transaction():
            await User.insert(User(email="undone@example.org", name="Undone"))
            raise RuntimeError("on purpose")

    entered = asyncio.Event()

    async def stalled() -> None:
        async with write_transaction():
            await User.insert(User(email="cancelled@example.org", name="Cancelled"))
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(stalled())
    await asyncio.wait_for(entered.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    kept = await make_user("kept@example.org")
    assert await _sqlite().writer() is writer  # rolled back each time, kept, still usable
    emails = {row["email"] for row in await User.select(User.email)}
    assert kept.email in emails
    assert not emails & {"undone@example.org", "cancelled@example.org"}


@pytest.mark.skipif(
    not is_postgres(),
    reason="PostgreSQL only: locks per date (SQLite's immediate transaction queues every writer)",
)
async def test_bookings_on_other_dates_do_not_wait_for_a_date_in_use() -> None:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await give_credits(client, expert, 20)
    availability = await availability_of(expert)
    monday = next_monday_at(10)
    held, release = asyncio.Event(), asyncio.Event()

    async def holding_monday() -> None:
        async with write_transaction():
            await lock_days(availability, monday, monday + timedelta(minutes=40))
            held.set()
            await release.wait()

    holder = asyncio.create_task(holding_monday())
    try:
        await asyncio.wait_for(held.wait(), timeout=5)
        wednesday = await asyncio.wait_for(
            book_call(expert, client, monday + timedelta(days=2), key="wed"), timeout=5
        )
        assert wednesday.status == "booked"
        same_day = asyncio.create_task(
            book_call(expert, client, monday + timedelta(hours=4), key="mon")
        )
        await asyncio.sleep(0.5)
        assert not same_day.done()  # queued behind Monday's lock
    finally:
        release.set()
        await holder
    assert (await asyncio.wait_for(same_day, timeout=5)).status == "booked"
    assert await Booking.count() == 2


async def _recorded(count: int) -> None:
    async with write_transaction():
        await record_many([("test.happened", f"e{n}", {"n": n}) for n in range(count)])


async def test_a_round_prepares_outside_its_transaction_and_stores_inside() -> None:
    await _recorded(3)
    seen: list[tuple[int, object, bool]] = []

    async def prepare(events: list[Recorded]) -> dict[int, object]:
        assert get_engine().current_transaction.get() is None  # no lock held while rendering
        return {event.id: f"rendered {event.data['n']}" for event in events}

    async def handle(event: Recorded, prepared: object) -> None:
        seen.append((event.data["n"], prepared, get_engine().current_transaction.get() is None))

    consumer = Consumer(
        name="test", kinds=frozenset({"test.happened"}), handle=handle, prepare=prepare
    )
    assert await consume_round(consumer) == 3
    assert seen == [(n, f"rendered {n}", False) for n in range(3)]
    assert await consume_round(consumer) == 0


async def test_a_round_that_finds_the_cursor_moved_drops_what_it_prepared() -> None:
    """Another worker took the events while this one prepared them: they are not acted on
    again, and the events recorded after are handled in the transaction, unprepared."""
    await _recorded(2)
    last = await Event.select(Event.id, Event.txid).order_by(Event.id, ascending=False).first()
    assert last is not None
    handled: list[tuple[int, object]] = []

    async def prepare(events: list[Recorded]) -> dict[int, object]:
        async with write_transaction():  # meanwhile, another worker reads both events, and more
            await Cursor.insert(Cursor(consumer="test", txid=last["txid"], event=last["id"]))
            await record_many([("test.happened", "e2", {"n": 2})])
        return {event.id: "stale" for event in events}

    async def handle(event: Recorded, prepared: object) -> None:
        handled.append((event.data["n"], prepared))

    consumer = Consumer(
        name="test", kinds=frozenset({"test.happened"}), handle=handle, prepare=prepare
    )
    assert await consume_round(consumer) == 1
    assert handled == [(2, None)]


@pytest.mark.skipif(
    not is_postgres(), reason="PostgreSQL only: its connection pool (SQLite has none)"
)
async def test_connections_go_back_to_the_pool_without_a_reset_round_trip() -> None:
    """No session state is ever set, so none is reset: asyncpg's default reset query would
    cost a round trip after every statement outside a transaction."""
    await start_pool()
    try:
        async with get_engine().pool.acquire() as connection:  # type: ignore[attr-defined]
            assert connection.get_reset_query() == ""
            assert await connection.fetchval("SELECT 1") == 1
    finally:
        await close_pool()


async def test_a_round_whose_preparing_fails_handles_its_events_one_by_one() -> None:
    await _recorded(3)
    handled: list[tuple[int, object]] = []

    async def prepare(events: list[Recorded]) -> dict[int, object]:
        raise ValueError("cannot render")

    async def handle(event: Recorded, prepared: object) -> None:
        if event.data["n"] == 1:
            raise ValueError("this one is broken")
        handled.append((event.data["n"], prepared))

    consumer = Consumer(
        name="test", kinds=frozenset({"test.happened"}), handle=handle, prepare=prepare
    )
    assert await consume_round(consumer) == 3
    assert handled == [(0, None), (2, None)]
    [failure] = await Failure.select(Failure.event, Failure.error)
    assert "this one is broken" in failure["error"]


async def test_a_round_that_cannot_store_all_it_prepared_handles_each_event_afresh() -> None:
    """What was prepared assumed the round went whole (the digest written at a client's
    last debit, say): when one event fails in it, each event is handled unprepared."""
    await _recorded(3)
    handled: list[tuple[int, object]] = []

    async def prepare(events: list[Recorded]) -> dict[int, object]:
        return {event.id: "prepared" for event in events}

    async def handle(event: Recorded, prepared: object) -> None:
        if event.data["n"] == 1 and prepared is not None:
            raise ValueError("fails with what was prepared")
        handled.append((event.data["n"], prepared))

    consumer = Consumer(
        name="test", kinds=frozenset({"test.happened"}), handle=handle, prepare=prepare
    )
    assert await consume_round(consumer) == 3
    # The whole round tried first (its writes undone at event 1), then each event afresh.
    assert handled == [(0, "prepared"), (0, None), (1, None), (2, None)]
    assert await Failure.count() == 0
