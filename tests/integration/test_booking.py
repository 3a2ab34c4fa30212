"""Booking through the services and the JSON API: free slots, booking with a hold,
idempotent forms, bad input, cancelling, moving, no-shows and the worker's confirmation."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient

from portal.accounts.tables import Expert, User
from portal.booking.availability import (
    AvailabilityForm,
    availability_of,
    availability_save,
    override_set,
)
from portal.booking.services import (
    CostChanged,
    SlotChoice,
    SlotTaken,
    booking_cancel,
    booking_create,
    booking_move,
    booking_no_show,
    bookings_confirm_due,
    free_slots,
)
from portal.booking.tables import Availability, Booking, BookingStatus
from portal.charter.rules import WEEKDAYS, Rules
from portal.charter.services import charter_publish, draft_save
from portal.credits import ledger
from portal.credits.ledger import InsufficientCredits
from portal.credits.services import verify_all
from portal.errors import Conflict, ValidationFailed
from tests.support import PASSWORD, give_credits, login, make_published_expert, make_user

PARIS = "Europe/Paris"
ZONE = ZoneInfo(PARIS)


def _next_monday(weeks: int = 1) -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=(7 - today.weekday()) + 7 * (weeks - 1))


async def _expert(**rules: Any) -> Expert:
    return await make_published_expert(rules=Rules(**rules))


async def _client(expert: Expert, email: str = "c@example.org", credits: int = 20) -> User:
    client = await make_user(email)
    if credits:
        await give_credits(client, expert, credits)
    return client


async def _balance(client: User, expert: Expert) -> tuple[int, int]:
    wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
    assert await ledger.wallet_check(wallet_id=wallet.id) == []
    got = await ledger.balance(wallet_id=wallet.id)
    return got.available, got.held


def _choice(start: datetime, key: str = "k1", duration: int = 30, **kw: Any) -> SlotChoice:
    values: dict[str, Any] = {
        "channel": "call",
        "duration": duration,
        "start": start,
        "charter_version": 1,
        "key": key,
        "timezone": PARIS,
        "phone": "+33 6 12 34 56 78",
    }
    values.update(kw)
    return SlotChoice(**values)


async def test_slots_follow_hours_buffer_and_bookings() -> None:
    expert = await _expert()
    client = await _client(expert)
    monday = _next_monday()
    free = await free_slots(
        expert, channel="call", duration=30, first=monday, last=monday, tz=PARIS
    )
    local = [s.astimezone(ZONE).strftime("%H:%M") for s in free.starts]
    # 09:00-12:30 and 14:00-18:00: every quarter hour a 30-minute call fits in.
    assert local[0] == "09:00" and local[-1] == "17:30" and "12:00" in local
    assert "12:15" not in local and "13:45" not in local
    assert free.credits == 2 and free.charter_version == 1

    booking = await booking_create(client=client, expert=expert, asked=_choice(free.starts[4]))
    assert booking.status == BookingStatus.booked.value
    assert await _balance(client, expert) == (18, 2)
    after = await free_slots(
        expert, channel="call", duration=30, first=monday, last=monday, tz=PARIS
    )
    taken = {s.astimezone(ZONE).strftime("%H:%M") for s in free.starts} - {
        s.astimezone(ZONE).strftime("%H:%M") for s in after.starts
    }
    # The booking is 10:00-10:30; with the 10-minute buffer no call may start between
    # 09:30 (ends 10:00, +10 > 10:00) and 10:30 (starts before 10:30 + 10).
    assert taken == {"09:30", "09:45", "10:00", "10:15", "10:30"}


async def test_the_same_form_twice_books_once_and_a_taken_slot_is_refused() -> None:
    expert = await _expert()
    first, second = await _client(expert), await _client(expert, "d@example.org")
    start = datetime.combine(_next_monday(), datetime.min.time(), ZONE).replace(hour=9)
    one = await booking_create(client=first, expert=expert, asked=_choice(start))
    again = await booking_create(client=first, expert=expert, asked=_choice(start))
    assert one.id == again.id and await Booking.count() == 1
    with pytest.raises(SlotTaken):
        await booking_create(client=second, expert=expert, asked=_choice(start, key="k2"))
    overlapping = start + timedelta(minutes=15)
    with pytest.raises(SlotTaken):
        await booking_create(
            client=second, expert=expert, asked=_choice(overlapping, key="k3", duration=15)
        )
    assert await _balance(second, expert) == (20, 0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "off-grid"}, "start"),
        ({"start": "past"}, "start"),
        ({"start": "beyond"}, "start"),
        ({"duration": 20}, "duration"),
        ({"channel": "video", "duration": 15}, "duration"),
        ({"channel": "fax"}, "channel"),
        ({"timezone": "Mars/Olympus"}, "tz"),
        ({"phone": ""}, "phone"),
    ],
)
async def test_bad_requests_say_what_is_wrong(change: dict[str, Any], field: str) -> None:
    expert = await _expert()
    client = await _client(expert)
    start = datetime.combine(_next_monday(), datetime.min.time(), ZONE).replace(hour=9)
    moments = {
        "off-grid": start + timedelta(minutes=5),
        "past": datetime.now(UTC) - timedelta(days=1),
        "beyond": start + timedelta(days=70),
    }
    if "start" in change:
        start, change = moments[change["start"]], {}
    with pytest.raises(ValidationFailed) as raised:
        await booking_create(client=client, expert=expert, asked=_choice(start, **change))
    assert field in raised.value.errors
    assert await Booking.count() == 0


async def test_not_enough_credits_or_a_changed_charter_book_nothing() -> None:
    expert = await _expert()
    client = await _client(expert, credits=1)
    start = datetime.combine(_next_monday(), datetime.min.time(), ZONE).replace(hour=9)
    with pytest.raises(InsufficientCredits) as raised:
        await booking_create(client=client, expert=expert, asked=_choice(start))
    assert raised.value.missing == 1
    with pytest.raises(Conflict) as changed:
        await booking_create(
            client=client, expert=expert, asked=_choice(start, key="k2", charter_version=7)
        )
    assert changed.value.code == "charter_changed"
    assert await Booking.count() == 0 and await _balance(client, expert) == (1, 0)


async def test_overrides_close_days_and_change_hours() -> None:
    expert = await _expert()
    monday = _next_monday()
    await override_set(expert, day=monday, hours="", note="Férié")
    await override_set(expert, day=monday + timedelta(days=1), hours="10:00-11:00", note="")
    free = await free_slots(
        expert, channel="call", duration=30, first=monday, last=monday + timedelta(days=1), tz=PARIS
    )
    local = [s.astimezone(ZONE).strftime("%a %H:%M") for s in free.starts]
    assert local == ["Tue 10:00", "Tue 10:15", "Tue 10:30"]


async def _always_open(expert: Expert) -> None:
    await availability_save(
        expert,
        AvailabilityForm(
            timezone=PARIS,
            hours={day: "00:00-24:00" for day in WEEKDAYS},
            call_mode="expert_calls",
            phone="",
            meeting_url="",
        ),
    )


def _soon(hours: int) -> datetime:
    moment = datetime.now(UTC) + timedelta(hours=hours)
    return moment.replace(minute=(moment.minute // 15) * 15, second=0, microsecond=0) + timedelta(
        minutes=15
    )


async def test_cancelling_early_is_free_late_costs_what_the_charter_says() -> None:
    expert = await _expert(cancel_free_hours=24, cancel_late_forfeit_percent=50, daily_cap=0)
    await _always_open(expert)
    client = await _client(expert)
    early = await booking_create(client=client, expert=expert, asked=_choice(_soon(48)))
    late = await booking_create(
        client=client, expert=expert, asked=_choice(_soon(13), key="k2", duration=45)
    )
    assert await _balance(client, expert) == (15, 5)
    await booking_cancel(booking=early, by_expert=False)
    assert await _balance(client, expert) == (17, 3)
    cancelled = await booking_cancel(booking=late, by_expert=False)  # 50 % of 3: 1.5, so 2
    assert cancelled.status == BookingStatus.cancelled.value and cancelled.cancelled_by == "client"
    assert await _balance(client, expert) == (18, 0)
    again = await booking_cancel(booking=late, by_expert=True)  # a second click: no change
    assert again.cancelled_by == "client" and await _balance(client, expert) == (18, 0)


async def test_the_expert_cancelling_is_always_free() -> None:
    expert = await _expert(cancel_free_hours=48)
    await _always_open(expert)
    client = await _client(expert)
    booking = await booking_create(client=client, expert=expert, asked=_choice(_soon(13)))
    await booking_cancel(booking=booking, by_expert=True, reason="Malade")
    assert await _balance(client, expert) == (20, 0)


async def _in_the_past(booking: Booking, hours_ago: float) -> Booking:
    start = datetime.now(UTC) - timedelta(hours=hours_ago)
    await Booking.update(
        {
            Booking.starts_at: start,
            Booking.ends_at: start + timedelta(minutes=booking.duration),
            Booking.blocked_until: start + timedelta(minutes=booking.duration),
        }
    ).where(Booking.id == booking.id)
    return await Booking.objects().get(Booking.id == booking.id)


async def test_the_worker_confirms_once_after_the_end() -> None:
    expert = await _expert()
    await _always_open(expert)
    client = await _client(expert)
    done = await _in_the_past(
        await booking_create(client=client, expert=expert, asked=_choice(_soon(20))), 2
    )
    just_ended = await _in_the_past(
        await booking_create(client=client, expert=expert, asked=_choice(_soon(30), key="k2")),
        0.6,  # ended 6 minutes ago: within the grace period
    )
    assert await bookings_confirm_due() == 1
    assert await bookings_confirm_due() == 0  # a second run: nothing more
    assert (await Booking.objects().get(Booking.id == done.id)).status == "completed"
    assert (await Booking.objects().get(Booking.id == just_ended.id)).status == "booked"
    assert await _balance(client, expert) == (16, 2)
    assert await verify_all() == {}


async def test_no_shows_after_the_start() -> None:
    expert = await _expert(no_show_client_percent=100)
    await _always_open(expert)
    client = await _client(expert)
    absent = await booking_create(client=client, expert=expert, asked=_choice(_soon(20)))
    with pytest.raises(Conflict):
        await booking_no_show(booking=absent, client_absent=True)  # not started yet
    absent = await _in_the_past(absent, 0.25)
    missed = await _in_the_past(
        await booking_create(client=client, expert=expert, asked=_choice(_soon(30), key="k2")),
        1,
    )
    await booking_no_show(booking=absent, client_absent=True)
    await booking_no_show(booking=missed, client_absent=False)
    assert await _balance(client, expert) == (18, 0)
    assert await bookings_confirm_due(now=datetime.now(UTC) + timedelta(days=1)) == 0


async def test_moving_keeps_the_hold_and_the_uid() -> None:
    expert = await _expert()
    client = await _client(expert)
    start = datetime.combine(_next_monday(), datetime.min.time(), ZONE).replace(hour=9)
    booking = await booking_create(client=client, expert=expert, asked=_choice(start))
    other = await _client(expert, "d@example.org")
    blocker = await booking_create(
        client=other, expert=expert, asked=_choice(start + timedelta(hours=2), key="k2")
    )
    with pytest.raises(SlotTaken):
        await booking_move(booking=booking, start=blocker.starts_at)
    # Overlapping its own old time is fine.
    moved = await booking_move(booking=booking, start=start + timedelta(minutes=15))
    assert (moved.uid, moved.hold, moved.sequence) == (booking.uid, booking.hold, 1)
    assert moved.starts_at == start + timedelta(minutes=15)
    assert await _balance(client, expert) == (18, 2)


# --- the JSON API ---------------------------------------------------------------------


async def _token(client: AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_the_api_lists_books_shows_and_cancels(client: AsyncClient) -> None:
    expert = await _expert()
    await _client(expert)
    monday = _next_monday()
    listed = await client.get(
        "/api/v1/experts/alice-expert/slots",
        params={
            "start": monday.isoformat(),
            "end": monday.isoformat(),
            "duration": 30,
            "channel": "call",
            "tz": "America/New_York",
        },
    )
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["timezone"] == "America/New_York" and body["credits"] == 2
    first = body["slots"][0]
    assert first["start"].endswith("-05:00") and first["start"].startswith(
        f"{monday.isoformat()}T03:00"
    )
    headers = await _token(client, "c@example.org")
    created = await client.post(
        "/api/v1/experts/alice-expert/bookings",
        json={
            "start": first["start"],
            "duration": 30,
            "channel": "call",
            "charter_version": 1,
            "key": "form-1",
            "phone": "+1 212 555 0100",
            "tz": "America/New_York",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    booking = created.json()
    assert booking["status"] == "booked" and booking["credits"] == 2
    assert booking["start"] == first["start"] and booking["cancellation_cost_now"] == 0
    again = await client.post(
        "/api/v1/experts/alice-expert/bookings",
        json={
            "start": first["start"],
            "duration": 30,
            "channel": "call",
            "charter_version": 1,
            "key": "form-1",
            "phone": "+1 212 555 0100",
        },
        headers=headers,
    )
    assert again.status_code == 201 and again.json()["id"] == booking["id"]

    await _client(expert, "d@example.org", credits=1)
    other = await _token(client, "d@example.org")
    taken = await client.post(
        "/api/v1/experts/alice-expert/bookings",
        json={
            "start": first["start"],
            "duration": 30,
            "channel": "call",
            "charter_version": 1,
            "phone": "+33 6 00 00 00 00",
        },
        headers=other,
    )
    assert taken.status_code == 409 and taken.json()["code"] == "slot_taken"
    poor = await client.post(
        "/api/v1/experts/alice-expert/bookings",
        json={
            "start": body["slots"][-1]["start"],
            "duration": 30,
            "channel": "call",
            "charter_version": 1,
            "phone": "+33 6 00 00 00 00",
        },
        headers=other,
    )
    assert poor.status_code == 402 and poor.json() | {"detail": ""} == {
        "code": "insufficient_credits",
        "detail": "",
        "missing": 1,
    }
    assert (await client.get(f"/api/v1/bookings/{booking['id']}", headers=other)).status_code == 404

    mine = (await client.get("/api/v1/bookings", headers=headers)).json()
    assert [b["id"] for b in mine] == [booking["id"]]
    cancelled = await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-13-01"}, None),
        ({"tz": "Nowhere/City"}, "tz"),
        ({"duration": 20}, "duration"),
        ({"end": "2020-01-01"}, "end"),
    ],
)
async def test_bad_slot_queries_are_422(
    client: AsyncClient, params: dict[str, Any], field: str | None
) -> None:
    await _expert()
    monday = _next_monday()
    query = {
        "start": monday.isoformat(),
        "end": monday.isoformat(),
        "duration": 30,
        "channel": "call",
        "tz": PARIS,
    }
    response = await client.get("/api/v1/experts/alice-expert/slots", params=query | params)
    assert response.status_code == 422, response.text
    if field:
        assert field in response.json()["errors"]


async def test_concurrent_first_looks_at_availability_make_one() -> None:
    expert = await _expert()
    made = await asyncio.gather(*(availability_of(expert) for _ in range(8)))
    assert len({a.id for a in made}) == 1 and await Availability.count() == 1


async def test_a_key_used_for_another_slot_is_refused() -> None:
    expert = await _expert()
    client = await _client(expert)
    start = datetime.combine(_next_monday(), datetime.min.time(), ZONE).replace(hour=9)
    await booking_create(client=client, expert=expert, asked=_choice(start))
    with pytest.raises(Conflict) as reused:
        await booking_create(
            client=client, expert=expert, asked=_choice(start + timedelta(hours=1))
        )
    assert reused.value.code == "key_reused" and await Booking.count() == 1


async def test_a_cancellation_never_costs_more_than_was_shown() -> None:
    expert = await _expert(cancel_free_hours=24, cancel_late_forfeit_percent=100)
    await _always_open(expert)
    client = await _client(expert)
    booking = await booking_create(client=client, expert=expert, asked=_choice(_soon(13)))
    with pytest.raises(CostChanged) as changed:  # the page said free; it is not (any more)
        await booking_cancel(booking=booking, by_expert=False, expected_cost=0)
    assert changed.value.cost == 2
    assert (await Booking.objects().get(Booking.id == booking.id)).status == "booked"
    await booking_cancel(booking=booking, by_expert=False, expected_cost=2)
    assert await _balance(client, expert) == (18, 0)


async def test_slots_across_midnight_are_checked_like_they_are_listed() -> None:
    expert = await _expert(daily_cap=0)
    await _always_open(expert)
    client = await _client(expert)
    monday = _next_monday()
    late = datetime.combine(monday, datetime.min.time(), ZONE).replace(hour=23, minute=45)
    free = await free_slots(
        expert, channel="call", duration=30, first=monday, last=monday, tz=PARIS
    )
    assert late in free.starts  # 23:45-00:15 runs into Tuesday
    await booking_create(client=client, expert=expert, asked=_choice(late))
    # The next day's first quarter is within the buffer of that booking: not listed, not
    # bookable (on either database).
    tuesday = late + timedelta(minutes=30)
    with pytest.raises(SlotTaken):
        await booking_create(
            client=client, expert=expert, asked=_choice(tuesday, key="k2", duration=15)
        )


async def test_a_lower_buffer_keeps_older_bookings_buffers() -> None:
    expert = await _expert(buffer_minutes=10)
    client = await _client(expert)
    start = datetime.combine(_next_monday(), datetime.min.time(), ZONE).replace(hour=9)
    await booking_create(client=client, expert=expert, asked=_choice(start))
    await draft_save(expert=expert, rules=Rules(buffer_minutes=0))
    await charter_publish(expert=expert)
    day = start.date()
    free = await free_slots(expert, channel="call", duration=15, first=day, last=day, tz=PARIS)
    after = start + timedelta(minutes=30)
    assert after not in free.starts  # back to back: within the booking's own 10 minutes
    assert after + timedelta(minutes=15) in free.starts
    with pytest.raises(SlotTaken):
        await booking_create(
            client=client,
            expert=expert,
            asked=_choice(after, key="k2", duration=15, charter_version=2),
        )
    moved_on = after + timedelta(minutes=15)
    booked = await booking_create(
        client=client,
        expert=expert,
        asked=_choice(moved_on, key="k3", duration=15, charter_version=2),
    )
    assert booked.starts_at == moved_on


async def test_a_booking_ended_meanwhile_is_not_moved() -> None:
    expert = await _expert()
    client = await _client(expert)
    start = datetime.combine(_next_monday(), datetime.min.time(), ZONE).replace(hour=9)
    booking = await booking_create(client=client, expert=expert, asked=_choice(start))
    await booking_cancel(booking=booking, by_expert=True, reason="Empêchée")
    with pytest.raises(Conflict) as ended:
        await booking_move(booking=booking, start=start + timedelta(hours=2))  # a stale copy
    assert ended.value.code == "booking_ended"
    assert (await Booking.objects().get(Booking.id == booking.id)).starts_at == start


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/experts/alice-expert/slots?start=0001-01-01&end=0001-01-02&duration=30",
        "/api/v1/experts/alice-expert/slots?start=9999-12-30&end=9999-12-31&duration=30",
        "/e/alice-expert/book/confirm?channel=call&duration=30&start=0001-01-01T00:00:00%2B01:00",
        "/e/alice-expert/book/confirm?channel=call&duration=30&start=9999-12-31T23:00:00-05:00",
    ],
)
async def test_dates_out_of_range_are_refused_not_errors(client: AsyncClient, path: str) -> None:
    await _client(await _expert(), credits=0)
    await login(client, "c@example.org")
    assert (await client.get(path)).status_code == 422
    for page in ("/e/alice-expert/book?day=9999-12-31", "/e/alice-expert/book?day=0001-01-01"):
        assert (await client.get(page)).status_code == 200


async def test_the_api_gives_the_invite_and_the_experts_availability(client: AsyncClient) -> None:
    expert = await _expert()
    await _client(expert)
    start = datetime.combine(_next_monday(), datetime.min.time(), ZONE).replace(hour=9)
    headers = await _token(client, "c@example.org")
    created = await client.post(
        "/api/v1/experts/alice-expert/bookings",
        json={
            "start": start.isoformat(),
            "duration": 30,
            "channel": "call",
            "charter_version": 1,
            "phone": "0612345678",
        },
        headers=headers,
    )
    invite = await client.get(created.json()["invite"], headers=headers)
    assert invite.status_code == 200 and b"BEGIN:VEVENT" in invite.content

    expert_headers = await _token(client, "expert@example.org")
    got = (await client.get("/api/v1/expert/availability", headers=expert_headers)).json()
    assert got["timezone"] == PARIS and got["weekly"]["mon"] == ["09:00-12:30", "14:00-18:00"]
    bad = await client.put(
        "/api/v1/expert/availability",
        json={**got, "weekly": {"mon": ["18:00-09:00"]}, "meeting_url": "ftp://x"},
        headers=expert_headers,
    )
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"weekly.mon", "meeting_url"}
    put = await client.put(
        "/api/v1/expert/availability",
        json={**got, "weekly": {"tue": ["10:00-11:00"]}, "timezone": "America/New_York"},
        headers=expert_headers,
    )
    assert put.status_code == 200 and put.json()["weekly"] == {"tue": ["10:00-11:00"]}
    assert (await client.get("/api/v1/expert/availability", headers=headers)).status_code == 403
    schema = (await client.get("/schema/openapi.json")).json()
    assert (
        "security" not in schema["paths"]["/api/v1/experts/{slug}/slots"]["get"]
        or schema["paths"]["/api/v1/experts/{slug}/slots"]["get"]["security"] == []
    )


async def test_the_confirmation_goes_batch_after_batch_until_none_is_left() -> None:
    expert = await _expert(daily_cap=0)
    await _always_open(expert)
    client = await _client(expert)
    for n in range(5):
        booked = await booking_create(
            client=client, expert=expert, asked=_choice(_soon(20 + n), key=f"k{n}")
        )
        await _in_the_past(booked, 10 + n)
    assert await bookings_confirm_due(batch=2) == 5
    assert await _balance(client, expert) == (10, 0)
