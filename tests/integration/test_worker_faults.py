"""The worker under faults, as real processes on the test database and Redis: killed with
SIGKILL in the middle of confirming a batch then restarted, two workers at once, Redis
emptied while jobs were queued. Every exchange ends up captured exactly once."""

from __future__ import annotations

import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from portal.booking.availability import AvailabilityForm, availability_save
from portal.booking.services import SlotChoice, booking_create
from portal.booking.tables import Booking, BookingStatus
from portal.charter.rules import WEEKDAYS, Rules
from portal.credits.services import verify_all
from portal.credits.tables import Entry, EntryKind
from portal.events.consume import lag
from portal.events.tables import Cursor, Event
from portal.notify.consumer import NOTIFY
from portal.notify.tables import Notification
from portal.questions.services import answer, ask
from portal.questions.tables import Question, QuestionStatus
from portal.redis import connect
from portal.settings import get_settings
from tests.processes import wait_until, worker
from tests.support import give_credits, make_published_expert, make_user

pytestmark = pytest.mark.slow


async def _due_bookings(count: int) -> None:
    """`count` bookings that ended days ago, their credits held (booked ahead, then moved
    into the past: the booking service refuses past times)."""
    expert = await make_published_expert(
        rules=Rules(daily_cap=0, buffer_minutes=0, min_notice_hours=0)
    )
    await availability_save(
        expert,
        AvailabilityForm(
            timezone="Europe/Paris",
            hours={day: "00:00-24:00" for day in WEEKDAYS},
            call_mode="client_calls",
            phone="+33 1 23 45 67 89",
            meeting_url="",
        ),
    )
    client = await make_user("c@example.org")
    await give_credits(client, expert, count)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    for n in range(count):
        await booking_create(
            client=client,
            expert=expert,
            asked=SlotChoice(
                channel="call",
                duration=15,
                start=start + timedelta(minutes=15 * n),
                charter_version=1,
                key=f"k{n}",
                timezone="Europe/Paris",
            ),
        )
    past = datetime.now(UTC) - timedelta(minutes=15 * count + 120)  # all ended long ago
    for n, booking in enumerate(await Booking.objects().order_by(Booking.id)):
        moment = past + timedelta(minutes=15 * n)
        await Booking.update(
            {
                Booking.starts_at: moment,
                Booking.ends_at: moment + timedelta(minutes=15),
                Booking.blocked_until: moment + timedelta(minutes=15),
            }
        ).where(Booking.id == booking.id)


async def _completed() -> int:
    return await Booking.count().where(Booking.status == BookingStatus.completed.value)


async def _captured_once(count: int) -> None:
    captures = await Entry.select(Entry.reference).where(Entry.kind == EntryKind.capture.value)
    references = [row["reference"] for row in captures]
    assert len(references) == count and len(set(references)) == count
    assert await verify_all() == {}


async def test_a_worker_killed_mid_batch_then_restarted_captures_each_once() -> None:
    count = 300
    await _due_bookings(count)
    with worker("worker-killed") as first:
        await wait_until(lambda: _more_than(0))
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    done_before = await _completed()
    assert done_before < count, "the batch ended before the kill: nothing was tested"
    with worker("worker-restarted"):
        await wait_until(lambda: _all(count))
        await wait_until(_events_read)
    await _captured_once(count)
    await _told_once(count)


async def test_a_worker_killed_while_writing_emails_writes_each_once() -> None:
    """The notify consumer's round (a batch of events, their emails, the cursor) is one
    transaction: killed in the middle, it is read again whole by the next worker."""
    count = 300
    await _due_bookings(count)
    await Booking.update({Booking.status: BookingStatus.cancelled.value}).where(
        Booking.id > 0
    )  # nothing to confirm: only the 300 booking.created events to tell
    with worker("consumer-killed") as first:
        await wait_until(lambda: _emails_more_than(0))
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert await Notification.count() < 2 * count, "all written before the kill: untested"
    with worker("consumer-restarted"):
        await wait_until(_events_read)
    await _told_once(count)


async def _emails_more_than(n: int) -> bool:
    return await Notification.count() > n


async def _events_read() -> bool:
    return await lag(NOTIFY.name) == 0


async def _told_once(count: int) -> None:
    """Every event read once by the notify consumer, each booking told to both once."""
    cursor = await Cursor.objects().get(Cursor.consumer == NOTIFY.name)
    assert cursor is not None and cursor.events == await Event.count()
    kinds = Counter(row["kind"] for row in await Notification.select(Notification.kind))
    kinds.pop("balance_low", None)  # the reminders' notice: every credit is spent or held
    assert kinds == {"booking_booked": count, "expert_booking_booked": count}


async def _more_than(n: int) -> bool:
    return await _completed() > n


async def _all(count: int) -> bool:
    return await _completed() == count


async def test_two_workers_at_once_capture_each_once() -> None:
    count = 120
    await _due_bookings(count)
    with worker("worker-a"), worker("worker-b"):
        await wait_until(lambda: _all(count))
        await wait_until(_events_read)
    await _captured_once(count)
    await _told_once(count)


async def test_jobs_lost_with_redis_are_done_by_the_sweep() -> None:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await give_credits(client, expert, 10)
    questions = [
        await ask(client=client, expert=expert, body=f"Q{n}", urgent=False, key=f"k{n}")
        for n in range(5)
    ]
    redis = connect(get_settings().redis_url or "")
    try:
        for question in questions:
            await answer(expert=expert, question_id=question.id, body="R", billable=True)
            await redis.enqueue_job(
                "settle_question", question.id, _job_id=f"question:{question.id}"
            )
        await redis.flushdb()  # Redis restarted empty: the queued jobs are gone
    finally:
        await redis.aclose()

    async def settled() -> bool:
        return await Question.count().where(Question.status == QuestionStatus.settled.value) == 5

    with worker("worker-sweep"):
        await wait_until(settled)
    assert await Entry.count().where(Entry.kind == EntryKind.capture.value) == 5
    assert await verify_all() == {}
