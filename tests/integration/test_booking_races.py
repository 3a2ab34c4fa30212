"""Races against the running app: `portal web` with two server processes, many
simultaneous HTTP requests, on the test database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from portal.accounts.services import token_create
from portal.accounts.tables import Expert, User
from portal.booking.tables import Booking, ExternalCalendar
from portal.charter.rules import Rules
from portal.credits import ledger
from portal.credits.services import verify_all
from portal.events.tables import Event
from tests.conftest import TMP
from tests.support import (
    csrf_from,
    give_credits,
    login,
    make_published_expert,
    make_user,
    web_server,
)

pytestmark = pytest.mark.slow

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with web_server(TMP, workers=2, log_name="races-web.log") as url:
        yield url


def _weekday(weeks: int = 1) -> date:
    """A Monday at least a week ahead."""
    today = datetime.now(UTC).date()
    return today + timedelta(days=(7 - today.weekday()) + 7 * (weeks - 1))


async def _funded(expert: Expert, count: int, credits: int) -> list[tuple[User, str]]:
    """Clients with credits with the expert, each with an API token."""
    clients = []
    for n in range(count):
        user = await make_user(f"client{n}@example.org")
        await give_credits(user, expert, credits)
        clients.append((user, await token_create(user=user)))
    return clients


async def _book(
    http: httpx.AsyncClient, token: str, start: datetime, duration: int = 30
) -> httpx.Response:
    return await http.post(
        "/api/v1/experts/alice-expert/bookings",
        json={
            "start": start.isoformat(),
            "duration": duration,
            "channel": "call",
            "charter_version": 1,
            "phone": "+33 6 12 34 56 78",
        },
        headers={"Authorization": f"Bearer {token}"},
    )


def _client(url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=120)


async def _balances(clients: list[tuple[User, str]], expert: Expert) -> Counter[tuple[int, int]]:
    seen: Counter[tuple[int, int]] = Counter()
    for user, _token in clients:
        wallet = await ledger.wallet_for(client_id=user.id, expert_id=expert.id)
        got = await ledger.balance(wallet_id=wallet.id)
        seen[(got.available, got.held)] += 1
    return seen


async def test_two_hundred_clients_one_slot(server: str) -> None:
    expert = await make_published_expert()
    clients = await _funded(expert, 200, credits=5)
    start = datetime.combine(_weekday(), time(10), PARIS)
    async with _client(server) as http:
        answers = await asyncio.gather(*(_book(http, token, start) for _user, token in clients))
    codes = Counter(
        (r.status_code, r.json().get("code") if r.status_code != 201 else "booked") for r in answers
    )
    assert codes == {(201, "booked"): 1, (409, "slot_taken"): 199}, codes
    assert await Booking.count() == 1
    assert await _events("booking.created") == 1  # the failed attempts left none
    assert await _balances(clients, expert) == {(3, 2): 1, (5, 0): 199}
    assert await verify_all() == {}


async def test_a_long_and_a_short_booking_racing_on_overlapping_times(server: str) -> None:
    expert = await make_published_expert()
    clients = await _funded(expert, 2, credits=100)
    (_long, long_token), (_short, short_token) = clients
    monday = _weekday()
    rounds = 12
    async with _client(server) as http:
        for n in range(rounds):  # 4 rounds a day (09:00, 11:00, 14:00, 16:00), Monday on
            day = monday + timedelta(days=n // 4)
            long_start = datetime.combine(day, time((9, 11, 14, 16)[n % 4]), PARIS)
            answers = await asyncio.gather(
                _book(http, long_token, long_start, 45),
                _book(http, short_token, long_start + timedelta(minutes=30), 15),
            )
            statuses = sorted(r.status_code for r in answers)
            assert statuses == [201, 409], [r.text for r in answers]
    assert await Booking.count() == rounds
    assert await verify_all() == {}


async def test_fifty_bookings_on_a_wallet_that_affords_ten(server: str) -> None:
    expert = await make_published_expert(rules=Rules(daily_cap=0))
    ((user, token),) = await _funded(expert, 1, credits=10)
    monday = _weekday()
    starts = [
        datetime.combine(monday + timedelta(days=day), time(hour, minute), PARIS)
        for day in range(4)
        for hour in (9, 10, 11, 14, 15, 16, 17)
        for minute in (0, 30)
    ][:50]
    async with _client(server) as http:
        answers = await asyncio.gather(*(_book(http, token, s, 15) for s in starts))
    codes = Counter(
        (r.status_code, r.json().get("code") if r.status_code != 201 else "booked") for r in answers
    )
    assert codes == {(201, "booked"): 10, (402, "insufficient_credits"): 40}, codes
    assert await _events("booking.created") == 10
    assert all(r.json().get("missing") == 1 for r in answers if r.status_code == 402)
    wallet = await ledger.wallet_for(client_id=user.id, expert_id=expert.id)
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=0, held=10)
    assert await verify_all() == {}


async def _events(kind: str) -> int:
    return await Event.count().where(Event.kind == kind)


async def test_one_booking_cancelled_twenty_times_at_once_records_one_event(server: str) -> None:
    """Twenty cancellations of the same booking at once (two server processes): one
    cancels, the others are told it has ended or answered the same; one event."""
    expert = await make_published_expert()
    ((_user, token),) = await _funded(expert, 1, credits=5)
    start = datetime.combine(_weekday(), time(10), PARIS)
    async with _client(server) as http:
        booked = await _book(http, token, start)
        assert booked.status_code == 201, booked.text
        path = f"/api/v1/bookings/{booked.json()['id']}/cancel"
        headers = {"Authorization": f"Bearer {token}"}
        answers = await asyncio.gather(*(http.post(path, headers=headers) for _ in range(20)))
    assert {r.status_code for r in answers} <= {200, 409}, [r.text for r in answers]
    assert all(r.json()["status"] == "cancelled" for r in answers if r.status_code == 200)
    assert await _events("booking.created") == 1
    assert await _events("booking.cancelled") == 1
    assert await verify_all() == {}


async def test_twenty_calendars_added_at_once_stop_at_five(server: str) -> None:
    """The same expert's form sent 20 times at once (two server processes): exactly five
    calendars are stored, the other answers say why."""
    expert = await make_published_expert()
    async with _client(server) as http:
        await login(http, "expert@example.org")
        token = csrf_from((await http.get("/expert/availability")).text)
        answers = await asyncio.gather(
            *(
                http.post(
                    "/expert/availability/calendars",
                    data={
                        "url": f"https://calendar.example.org/{n}.ics",
                        "name": f"Calendar {n}",
                        "_csrf_token": token,
                    },
                )
                for n in range(20)
            )
        )
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {303: 5, 422: 15}, statuses
    assert all("5 calendriers au plus." in r.text for r in answers if r.status_code == 422)
    assert await ExternalCalendar.count().where(ExternalCalendar.expert == expert.id) == 5
