"""Experts' other calendars, read by the worker's job from a real HTTP server: their busy
times are never offered; a broken calendar is marked for the expert and stops nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
import time as clock
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from arq.worker import Worker
from httpx import AsyncClient

from portal.booking.availability import calendar_add
from portal.booking.busy import CalendarError
from portal.booking.sandbox import WALL_SECONDS, busy_in_sandbox
from portal.booking.services import free_slots
from portal.booking.sync import calendars_sync
from portal.booking.tables import ExternalCalendar
from portal.db import is_postgres
from portal.redis import connect
from portal.settings import get_settings
from tests.processes import wait_until as wait_for
from tests.processes import worker
from tests.support import login, make_published_expert, post_form
from workers.settings import sync_calendar

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


SERVED: dict[str, bytes] = {}  # more files, by path


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in SERVED:
            body, status = SERVED[self.path], 200
        elif self.path == "/busy.ics":
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


async def _free_next_monday_and_tuesday(expert: Any) -> set[str]:
    """The starts of free 30-minute calls, as "Tue 09:15" in Paris."""
    monday = _monday()
    free = await free_slots(
        expert,
        channel="call",
        duration=30,
        first=monday,
        last=monday + timedelta(days=1),
        tz="Europe/Paris",
    )
    return {s.astimezone(PARIS).strftime("%a %H:%M") for s in free.starts}


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
    local = await _free_next_monday_and_tuesday(expert)
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


HOURS = ",".join(str(h) for h in range(24))
MINUTES = ",".join(str(m) for m in range(60))
# Each a few hundred bytes; before each was read in a child process with limits, they cost
# the worker 35 s of CPU and 1.2 GB (minutes), all its memory (seconds), or never ended.
HOSTILE = {
    "minutes": ("20260101T000000Z", f"FREQ=DAILY;BYHOUR={HOURS};BYMINUTE={MINUTES}"),
    "seconds": (
        "20260101T000000Z",
        f"FREQ=DAILY;BYHOUR={HOURS};BYMINUTE={MINUTES};BYSECOND={MINUTES}",
    ),
    "year-one": ("00010101T000000Z", f"FREQ=DAILY;BYHOUR={HOURS};BYMINUTE={MINUTES}"),
}


def _with_hostile(start: str, rule: str, copies: int = 1) -> bytes:
    """The weekday stand-up, and a series written to exhaust whoever expands it."""
    calendar = icalendar.Calendar.from_ical(_calendar())
    for n in range(copies):
        calendar.add_component(
            icalendar.Event.from_ical(
                f"BEGIN:VEVENT\r\nUID:hostile-{n}@test\r\nSUMMARY:Tick\r\n"
                f"DTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{start}\r\n"
                f"RRULE:{rule}\r\nEND:VEVENT\r\n"
            )
        )
    return calendar.to_ical()


async def _tuesday_is_busy(expert: Any) -> bool:
    local = await _free_next_monday_and_tuesday(expert)
    return "Tue 09:15" in local and "Tue 10:00" not in local


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_a_series_written_to_exhaust_the_worker_is_ignored_and_named(
    client: AsyncClient, calendar_server: str, name: str
) -> None:
    expert = await make_published_expert()
    SERVED["/hostile.ics"] = _with_hostile(*HOSTILE[name])
    hostile = await calendar_add(expert, url=f"{calendar_server}/hostile.ics", name="Work")
    began = clock.monotonic()
    report = await calendars_sync(allow_private=True)
    elapsed = clock.monotonic() - began
    assert elapsed < 20, f"{elapsed:.1f} s"
    assert (report.ok, report.failed) == (1, 0)
    read = await ExternalCalendar.objects().get(ExternalCalendar.id == hostile.id)
    assert json.loads(read.ignored) == [{"uid": "hostile-0@test", "summary": "Tick"}]
    assert await _tuesday_is_busy(expert)  # the rest of the calendar is read
    await login(client, "expert@example.org")
    page = (await client.get("/expert/availability")).text
    assert "Non lus (répétés trop souvent, ou répétition illisible)" in page
    assert "«&nbsp;Tick&nbsp;»" in page


async def test_a_calendar_too_complex_to_read_keeps_its_last_busy_times(
    client: AsyncClient, calendar_server: str
) -> None:
    """Rules that never match keep a rule engine searching year after year: the child
    reading them is stopped at its CPU limit, the calendar is marked, its busy times stay,
    and the other calendars are read in the same round."""
    expert = await make_published_expert()
    other = await make_published_expert("other@example.org", "other-expert")
    SERVED["/changing.ics"] = _calendar()
    changing = await calendar_add(expert, url=f"{calendar_server}/changing.ics", name="Work")
    assert (await calendars_sync(allow_private=True)).ok == 1
    SERVED["/changing.ics"] = _with_hostile(
        "20260101T000000Z", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", copies=8
    )
    fine = await calendar_add(other, url=f"{calendar_server}/busy.ics", name="Work")
    began = clock.monotonic()
    report = await calendars_sync(everything=True, allow_private=True)
    elapsed = clock.monotonic() - began
    assert elapsed < 20, f"{elapsed:.1f} s"
    assert (report.ok, report.failed) == (1, 1)
    states = {c.id: (c.status, c.error) for c in await ExternalCalendar.objects()}
    assert states == {changing.id: ("error", "too_complex"), fine.id: ("ok", "")}
    assert await _tuesday_is_busy(expert)  # the last busy times are kept
    await login(client, "expert@example.org")
    assert (
        "Le calendrier est trop complexe pour être lu."
        in (await client.get("/expert/availability")).text
    )


async def _status(calendar_id: int) -> tuple[str, str]:
    calendar = await ExternalCalendar.objects().get(ExternalCalendar.id == calendar_id)
    return calendar.status, calendar.error


@pytest.mark.slow
async def test_a_worker_reads_a_calendar_on_the_intranet_only_when_allowed(
    calendar_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A firm's own calendar server on its network, served here on the loopback, read by
    real `portal worker` processes: refused by default, read with CALENDARS_ALLOW_PRIVATE."""
    expert = await make_published_expert()
    calendar = await calendar_add(expert, url=f"{calendar_server}/busy.ics", name="Nextcloud")

    async def read() -> bool:
        return (await _status(calendar.id))[0] != "pending"

    monkeypatch.delenv("CALENDARS_ALLOW_PRIVATE", raising=False)
    with worker("worker-public-only"):
        await wait_for(read)
    assert await _status(calendar.id) == ("error", "private")
    assert not await _tuesday_is_busy(expert)

    await ExternalCalendar.update({ExternalCalendar.synced_at: None}).where(
        ExternalCalendar.id == calendar.id
    )
    monkeypatch.setenv("CALENDARS_ALLOW_PRIVATE", "1")

    async def read_again() -> bool:
        return (await _status(calendar.id))[0] == "ok"

    with worker("worker-intranet"):
        await wait_for(read_again)
    assert await _tuesday_is_busy(expert)


async def _run_queued_jobs() -> None:
    """The jobs queued so far, run by an arq worker with the calendar job alone (no sweep:
    what gets read here was read by the job the page queued)."""
    settings = replace(get_settings(), calendars_allow_private=True)
    redis = connect(settings.redis_url or "")
    runner = Worker(
        functions=[sync_calendar],
        redis_pool=redis,
        burst=True,
        poll_delay=0.01,
        handle_signals=False,
        ctx={"settings": settings},
    )
    try:
        await runner.async_run()
    finally:
        await runner.close()
        await redis.aclose()


async def test_a_calendar_added_again_is_read_at_once(
    client: AsyncClient, calendar_server: str
) -> None:
    """Removed then added again, a calendar may get its old id back (SQLite reuses the
    highest id; a restored PostgreSQL sequence too), while arq still keeps the first read's
    job id for an hour: the new one must be read at once all the same."""
    await make_published_expert()
    await login(client, "expert@example.org")

    async def add() -> ExternalCalendar:
        added = await post_form(
            client,
            "/expert/availability/calendars",
            {"url": f"{calendar_server}/busy.ics", "name": "Work"},
            from_page="/expert/availability",
        )
        assert added.status_code == 303
        calendar = await ExternalCalendar.objects().first()
        assert calendar is not None
        return calendar

    first = await add()
    await _run_queued_jobs()
    assert await _status(first.id) == ("ok", "")
    removed = await post_form(
        client,
        f"/expert/availability/calendars/{first.id}/delete",
        {},
        from_page="/expert/availability",
    )
    assert removed.status_code == 303
    if is_postgres():
        await ExternalCalendar.raw(
            "SELECT setval(pg_get_serial_sequence('booking_external_calendar', 'id'), {}, false)",
            first.id,
        )
    again = await add()
    assert again.id == first.id  # the case at stake
    await _run_queued_jobs()
    assert await _status(again.id) == ("ok", "")


def _sandbox_children() -> list[int]:
    """Readers this process started that are still running."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"portal.booking.sandbox" in command:
            found.append(int(stat.parent.name))
    return found


def _limits(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/limits").read_text()
    return ""


async def test_a_read_cancelled_with_its_job_stops_its_reader() -> None:
    """arq cancels a job at its timeout or at shutdown: the child goes with it (a thread
    would have gone on expanding)."""
    never_matching = _with_hostile(
        "20260101T000000Z", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", copies=8
    )
    now = datetime.now(UTC)
    reading = asyncio.create_task(
        busy_in_sandbox(never_matching, now, now + timedelta(days=366), tz="UTC")
    )
    await asyncio.sleep(1)
    assert _sandbox_children(), "the reader should be running"
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert _sandbox_children() == []


async def test_the_reader_runs_within_5_s_of_cpu_and_256_mb_and_is_stopped_there() -> None:
    """The limits are the kernel's, on the child: read from /proc while it runs, and the
    never-ending file ends by SIGXCPU (the CPU limit), well before the wall-clock one."""
    never_matching = _with_hostile(
        "20260101T000000Z", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", copies=8
    )
    now = datetime.now(UTC)
    began = clock.monotonic()
    reading = asyncio.create_task(
        busy_in_sandbox(never_matching, now, now + timedelta(days=366), tz="UTC")
    )
    limits = ""
    deadline = clock.monotonic() + 5
    while "268435456" not in limits and clock.monotonic() < deadline:
        await asyncio.sleep(0.05)
        limits = "".join(_limits(pid) for pid in _sandbox_children())
    rows = {line[:26].strip(): line[26:].split()[:2] for line in limits.splitlines()[1:]}
    assert rows["Max cpu time"] == ["5", "6"], limits
    assert rows["Max address space"] == ["268435456", "268435456"], limits
    assert rows["Max core file size"] == ["0", "0"], limits
    with pytest.raises(CalendarError) as stopped:
        await reading
    assert stopped.value.code == "too_complex"
    assert stopped.value.detail.startswith(f"exit -{signal.SIGXCPU.value}:"), stopped.value.detail
    assert clock.monotonic() - began < WALL_SECONDS
