"""Reading experts' other calendars: their busy times are stored with the calendar and
never offered as slots.

One calendar's trouble (unreachable, not a calendar, too large, too complex) is recorded on
it for the expert to see and never stops the others; its last good busy times are kept
meanwhile, so an outage of their calendar never opens slots they are busy in. The series
that could not be read are named on it too. Each file is read in a child process with
limits (`portal.booking.sandbox`): however it is written, the worker goes on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from portal.booking.busy import CalendarError
from portal.booking.ics import fetch_ics
from portal.booking.sandbox import busy_in_sandbox
from portal.booking.tables import Availability, CalendarStatus, ExternalCalendar

log = logging.getLogger(__name__)

SYNC_EVERY = timedelta(minutes=15)
LOOK_BACK = timedelta(days=1)
LOOK_AHEAD = timedelta(days=366)  # beyond any charter's horizon


@dataclass(slots=True)
class Synced:
    ok: int = 0
    failed: int = 0


async def calendar_sync(
    calendar: ExternalCalendar,
    *,
    client: httpx.AsyncClient,
    now: datetime,
    allow_private: bool = False,
) -> bool:
    """Read one calendar now; True when it was read. (`allow_private`: CALENDARS_ALLOW_PRIVATE,
    addresses on private networks are read too.)"""
    availability = (
        await Availability.objects().where(Availability.expert == calendar.expert).first()
    )
    tz = availability.timezone if availability else "UTC"
    try:
        data = await fetch_ics(calendar.url, client=client, allow_private=allow_private)
        busy = await busy_in_sandbox(data, now - LOOK_BACK, now + LOOK_AHEAD, tz=tz)
    except CalendarError as exc:
        code = getattr(exc, "code", "unreachable")
        await ExternalCalendar.update(
            {
                ExternalCalendar.status: CalendarStatus.error.value,
                ExternalCalendar.error: code,
                ExternalCalendar.synced_at: now,
            }
        ).where(ExternalCalendar.id == calendar.id)
        return False
    await ExternalCalendar.update(
        {
            ExternalCalendar.status: CalendarStatus.ok.value,
            ExternalCalendar.error: "",
            ExternalCalendar.busy: json.dumps(
                [[start.isoformat(), end.isoformat()] for start, end in busy.spans]
            ),
            ExternalCalendar.ignored: json.dumps(
                [{"uid": i.uid, "summary": i.summary} for i in busy.ignored]
            ),
            ExternalCalendar.synced_at: now,
        }
    ).where(ExternalCalendar.id == calendar.id)
    return True


async def calendars_sync(
    *, now: datetime | None = None, everything: bool = False, allow_private: bool = False
) -> Synced:
    """Read the calendars not read for 15 minutes (all of them with `everything`)."""
    now = now or datetime.now(UTC)
    query = ExternalCalendar.objects().order_by(ExternalCalendar.id)
    if not everything:
        query = query.where(
            ExternalCalendar.synced_at.is_null()
            | (ExternalCalendar.synced_at <= now - SYNC_EVERY + timedelta(minutes=1))
        )
    report = Synced()
    async with httpx.AsyncClient() as client:
        for calendar in await query:
            try:
                read = await calendar_sync(
                    calendar, client=client, now=now, allow_private=allow_private
                )
            except Exception:  # a bug on one calendar must not stop the others
                log.exception("calendar %s could not be read", calendar.id)
                read = False
            if read:
                report.ok += 1
            else:
                report.failed += 1
    return report
