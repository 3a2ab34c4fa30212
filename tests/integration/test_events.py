"""The domain event log: each operation records its event once, in its transaction;
each consumer reads every event once, in commit order, and a bad event stops nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
from httpx import AsyncClient

from portal.booking.services import booking_cancel, booking_move, bookings_confirm_due
from portal.booking.tables import Booking
from portal.credits.services import lots_expire, wallet_adjust
from portal.credits.tables import Lot
from portal.db import get_engine, is_postgres, write_transaction
from portal.events.consume import (
    Consumer,
    Recorded,
    consume,
    consume_round,
    consumers_state,
    lag,
    retry_failed,
)
from portal.events.log import record, record_many
from portal.events.tables import Cursor, Event, Failure
from portal.notify.tables import Notification
from portal.questions.services import answer, ask, settle
from portal.redis import connect
from portal.settings import get_settings
from tests.support import (
    book_call,
    emails_written,
    give_credits,
    login,
    make_published_expert,
    make_user,
    next_monday_at,
    post_form,
)


async def _kinds() -> list[str]:
    return [row["kind"] for row in await Event.select(Event.kind).order_by(Event.id)]


async def test_each_operation_records_its_event_once_however_often_it_runs() -> None:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await give_credits(client, expert, 20)
    booking = await book_call(expert, client, next_monday_at(9))
    assert (await book_call(expert, client, next_monday_at(9))).id == booking.id  # resent
    moved = await booking_move(booking=booking, start=next_monday_at(11))
    await booking_cancel(booking=moved, by_expert=False)
    await booking_cancel(booking=moved, by_expert=False)  # clicked twice
    question = await ask(client=client, expert=expert, body="Q?", urgent=False, key="q")
    await ask(client=client, expert=expert, body="Q?", urgent=False, key="q")
    await answer(expert=expert, question_id=question.id, body="A.", billable=True)
    await settle(question_id=question.id)
    await settle(question_id=question.id)
    for _ in range(2):
        await wallet_adjust(
            client_id=client.id,
            expert_id=expert.id,
            credits=2,
            reason="Geste",
            validity_months=1,
            key="gift",
        )
    assert await _kinds() == [
        "booking.created",
        "booking.moved",
        "booking.cancelled",
        "question.asked",
        "question.answered",
        "question.settled",
        "wallet.adjusted",
    ]
    created = await Event.objects().get(Event.kind == "booking.created")
    assert created is not None
    data = json.loads(created.data)
    assert (data["booking"], data["sequence"]) == (booking.id, 0)
    assert datetime.fromisoformat(data["starts_at"]) == next_monday_at(9)


async def test_bookings_confirmed_and_lots_expired_record_theirs_once() -> None:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await give_credits(client, expert, 10)
    booking = await book_call(expert, client, next_monday_at(9))
    later = booking.ends_at + timedelta(days=1)
    assert await bookings_confirm_due(now=later) == 1
    assert await bookings_confirm_due(now=later) == 0
    assert await lots_expire(now=later + timedelta(days=400)) == 8
    assert await lots_expire(now=later + timedelta(days=400)) == 0
    assert await _kinds() == ["booking.created", "booking.confirmed", "lot.expired"]
    [lot] = await Lot.objects()
    expired = await Event.objects().get(Event.kind == "lot.expired")
    assert expired is not None and json.loads(expired.data)["lot"] == lot.id


async def test_an_event_is_recorded_in_the_transaction_of_its_change_or_not_at_all() -> None:
    with pytest.raises(RuntimeError, match="transaction"):
        await record("test.happened", "outside")
    with pytest.raises(ZeroDivisionError):
        async with write_transaction():
            await record("test.happened", "rolled-back")
            1 / 0  # noqa: B018 (the change fails after its event was written)
    assert await Event.count() == 0


async def _written(count: int, prefix: str = "e") -> None:
    async with write_transaction():
        await record_many([("test.happened", f"{prefix}{n}", {"n": n}) for n in range(count)])


async def test_two_consumers_at_once_read_each_event_once_in_order() -> None:
    await _written(250)
    seen: list[int] = []

    async def handle(event: Recorded, _prepared: object) -> None:
        seen.append(event.data["n"])
        await asyncio.sleep(0)  # let the other round try meanwhile

    consumer = Consumer(name="test", kinds=frozenset({"test.happened"}), handle=handle)
    read = await asyncio.gather(*(consume(consumer, limit=40) for _ in range(3)))
    assert sum(read) == 250
    assert seen == list(range(250))
    cursor = await Cursor.objects().get(Cursor.consumer == "test")
    assert cursor is not None and cursor.events == 250
    assert await lag("test") == 0


def _email(user_id: int, key: str) -> Notification:
    return Notification(
        user=user_id,
        kind="test",
        key=key,
        to_address="c@example.org",
        subject="s",
        text="t",
        html="h",
    )


async def _keys() -> list[str]:
    rows = await Notification.select(Notification.key).order_by(Notification.key)
    return [row["key"] for row in rows]


async def test_an_event_its_consumer_cannot_act_on_is_passed_then_tried_again() -> None:
    """A database error (a key taken) and a bug (an exception): each failing event's own
    writes are undone, it is written down, and the events after it are acted on in the same
    round; once the cause is gone, trying again acts on each once."""
    user = await make_user("c@example.org")
    await _written(5)
    broken = True

    async def handle(event: Recorded, _prepared: object) -> None:
        await _email(user.id, f"test:{event.key}").save()
        if broken and event.data["n"] == 2:
            await _email(user.id, "test:e0").save()  # taken: the database refuses
        if broken and event.data["n"] == 3:
            raise ValueError("this one cannot be told")

    consumer = Consumer(name="test", kinds=frozenset({"test.happened"}), handle=handle)
    assert await consume_round(consumer) == 5
    assert await _keys() == ["test:e0", "test:e1", "test:e4"]
    failed = await Failure.select(Failure.event, Failure.error).order_by(Failure.event)
    assert [row["error"].split(":")[0] for row in failed] in (
        ["UniqueViolationError", "ValueError"],
        ["IntegrityError", "ValueError"],
    )
    assert await consume_round(consumer) == 0  # the cursor went past them
    state = await consumers_state(["test"])
    assert (state["test"]["waiting"], state["test"]["failed"]) == (0, 2)
    assert await retry_failed(consumer) == (0, 2)  # still broken: still written down
    broken = False  # fixed
    assert await retry_failed(consumer) == (2, 0)
    assert await retry_failed(consumer) == (0, 0)
    assert await _keys() == [f"test:e{n}" for n in range(5)]
    assert await Failure.count() == 0


async def test_a_passing_failure_leaves_the_round_to_be_read_again() -> None:
    """The database gone for a moment (a connection reset): nothing of the round is kept,
    the cursor stays, and the next round reads the same events."""
    user = await make_user("c@example.org")
    await _written(3)
    down = True

    async def handle(event: Recorded, _prepared: object) -> None:
        await _email(user.id, f"test:{event.key}").save()
        if down and event.data["n"] == 1:
            raise ConnectionResetError("the server went away")

    consumer = Consumer(name="test", kinds=frozenset({"test.happened"}), handle=handle)
    with pytest.raises(ConnectionResetError):
        await consume_round(consumer)
    assert await _keys() == [] and await Failure.count() == 0
    assert await lag("test") == 3
    down = False
    assert await consume(consumer) == 3
    assert await _keys() == ["test:e0", "test:e1", "test:e2"]


async def test_healthz_tells_what_the_consumers_have_left(client: AsyncClient) -> None:
    await _written(4)
    report = (await client.get("/healthz")).json()
    notify = report["events"]["notify"]
    assert (notify["waiting"], notify["failed"]) == (4, 0)
    assert notify["oldest_waiting_s"] >= 0


@pytest.mark.skipif(not is_postgres(), reason="SQLite commits one writer at a time")
async def test_an_event_committed_after_a_later_one_is_read_not_skipped() -> None:
    """Transaction A records first (smaller id) but commits after B: a consumer reading in
    between must not move past A's event. It waits for A, then reads A's, then B's."""
    a_recorded, a_may_commit = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        async with get_engine().transaction():
            await record("test.happened", "a", n=0)
            a_recorded.set()
            await a_may_commit.wait()

    a = asyncio.create_task(slow())
    await a_recorded.wait()
    async with get_engine().transaction():
        await record("test.happened", "b", n=1)
    seen: list[str] = []

    async def handle(event: Recorded, _prepared: object) -> None:
        seen.append(event.key)

    consumer = Consumer(name="test", kinds=frozenset({"test.happened"}), handle=handle)
    assert await consume(consumer) == 0  # B is there, but A might still commit before it
    a_may_commit.set()
    await a
    assert await consume(consumer) == 2
    assert seen == ["a", "b"]


@pytest.mark.skipif(not is_postgres(), reason="transaction ids are PostgreSQL's")
async def test_a_long_transaction_in_another_database_holds_nothing_back() -> None:
    """Transaction ids are server-wide: a transaction left open in another database of the
    same server (another application, a console) must not stop the emails here."""
    import asyncpg

    url = urlsplit(get_settings().database_url)
    elsewhere = await asyncpg.connect(urlunsplit(url._replace(path="/postgres")))
    try:
        open_there = elsewhere.transaction()
        await open_there.start()
        await elsewhere.fetchval("SELECT pg_current_xact_id()")  # it holds an id, and waits
        await _written(3)
        seen: list[int] = []

        async def handle(event: Recorded, _prepared: object) -> None:
            seen.append(event.data["n"])

        consumer = Consumer(name="test", kinds=frozenset({"test.happened"}), handle=handle)
        assert await consume(consumer) == 3
        assert seen == [0, 1, 2]
        await open_there.rollback()
    finally:
        await elsewhere.close()


async def test_a_request_that_recorded_events_wakes_the_worker(client: AsyncClient) -> None:
    """The booking page's answer queues `process_events` (no worker here: it waits in the
    queue); a page that changed nothing queues nothing."""
    redis = connect(get_settings().redis_url or "")
    try:
        expert = await make_published_expert()
        customer = await make_user("c@example.org")
        await give_credits(customer, expert, 10)
        await login(client, "c@example.org")
        assert (await client.get("/me")).status_code == 200
        assert await redis.keys("arq:job:events:*") == []
        booked = await book_call(expert, customer, next_monday_at(9))  # no request: no wake
        assert await redis.keys("arq:job:events:*") == []
        response = await post_form(
            client, f"/me/bookings/{booked.id}/cancel", {"cost": "0"}, from_page="/me"
        )
        assert response.status_code == 303, response.text
        cancelled = await Booking.objects().get(Booking.id == booked.id)
        assert cancelled is not None and cancelled.status == "cancelled"
        assert len(await redis.keys("arq:job:events:*")) == 1
    finally:
        await redis.aclose()
    assert await emails_written() == 2  # created, cancelled
    told = {n.kind for n in await Notification.objects()}
    assert told == {
        "booking_booked",
        "expert_booking_booked",
        "booking_cancelled",
        "expert_booking_cancelled",
    }
