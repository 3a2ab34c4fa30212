"""Experts' other calendars, read by the worker's job from a real HTTP server: their busy
times are never offered; a broken calendar is marked for the expert and stops nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from portal.booking.availability import calendar_add
from portal.booking.services import free_slots
from portal.booking.sync import calendars_sync
from portal.booking.tables import ExternalCalendar
from tests.support import make_published_expert

PARIS = ZoneInfo("Europe/Paris")


def _monday() -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 - today.weekday())


def _calendar() -> bytes:
    """Busy every weekday 10:00-11:00 (Paris), except the next Monday's occurrence."""
    monday = _monday()
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//test//")
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", "standup@test")
    event.add("dtstamp", datetime(2026, 1, 1, tzinfo=UTC))
    event.add("dtstart", datetime.combine(monday - timedelta(days=7), time(10), PARIS))
    event.add("dtend", datetime.combine(monday - timedelta(days=7), time(11), PARIS))
    event.add("rrule", {"freq": "weekly", "byday": ["MO", "TU", "WE", "TH", "FR"]})
    event.add("exdate", datetime.combine(monday, time(10), PARIS))
    calendar.add_component(event)
    return calendar.to_ical()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/busy.ics":
            body, status = _calendar(), 200
        elif self.path == "/page.html":
            body, status = b"<html>not a calendar</html>", 200
        else:
            body, status = b"gone", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def calendar_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_busy_times_are_never_offered(calendar_server: str) -> None:
    expert = await make_published_expert()
    broken = await calendar_add(expert, url=f"{calendar_server}/missing.ics", name="Old")
    not_ics = await calendar_add(expert, url=f"{calendar_server}/page.html", name="Page")
    good = await calendar_add(expert, url=f"{calendar_server}/busy.ics", name="Work")
    report = await calendars_sync(allow_private=True)
    assert (report.ok, report.failed) == (1, 2)
    states = {c.id: (c.status, c.error) for c in await ExternalCalendar.objects()}
    assert states == {
        broken.id: ("error", "http_status"),
        not_ics.id: ("error", "not_calendar"),
        good.id: ("ok", ""),
    }
    monday = _monday()
    free = await free_slots(
        expert,
        channel="call",
        duration=30,
        first=monday,
        last=monday + timedelta(days=1),
        tz="Europe/Paris",
    )
    local = {s.astimezone(PARIS).strftime("%a %H:%M") for s in free.starts}
    assert "Mon 10:00" in local  # the cancelled occurrence (EXDATE) frees Monday
    # Tuesday 10:00-11:00 is busy; with the 10-minute buffer, no call from 09:30 to 11:00.
    assert not {"Tue 09:30", "Tue 09:45", "Tue 10:00", "Tue 10:30", "Tue 10:45"} & local
    assert {"Tue 09:15", "Tue 11:15"} <= local

    # Read again within 15 minutes: nothing to do; forced: the same outcome.
    assert (await calendars_sync(allow_private=True)).ok == 0
    assert (await calendars_sync(everything=True, allow_private=True)).ok == 1


async def test_the_worker_refuses_addresses_inside_our_network(calendar_server: str) -> None:
    expert = await make_published_expert()
    await calendar_add(expert, url=f"{calendar_server}/busy.ics", name="Work")
    report = await calendars_sync()  # as the worker runs it
    assert (report.ok, report.failed) == (0, 1)
    calendar = await ExternalCalendar.objects().first()
    assert calendar is not None and (calendar.status, calendar.error) == ("error", "private")
