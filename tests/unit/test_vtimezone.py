"""The VTIMEZONE we write says what zoneinfo says, at every change of clocks from 1970 to
2060, read by dateutil (which vobject, Radicale and icalendar use to read definitions);
and every invite and feed, parsed by three independent parsers in one process, gives each
booking its true start and end."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import ics as ics_py
import pytest
import vobject
from dateutil.tz import tzical

from portal.booking.ics import Event, feed, invite
from portal.booking.vtimezone import vtimezone
from portal.i18n import timezones

ZONES = ["Europe/Paris", "America/New_York", "America/Santiago", "Australia/Sydney", "Asia/Kolkata"]
ODD_ZONES = [
    "Africa/Cairo",  # changes at 24:00 of the last Thursday: no RRULE for that
    "America/Nuuk",  # at -01:00 of the last Sunday: the Saturday before
    "Asia/Jerusalem",  # the Friday before the last Sunday
    "Asia/Gaza",
    "Europe/Dublin",  # winter is its "daylight" time
    "Australia/Lord_Howe",  # half an hour
    "Pacific/Chatham",
    "America/Sao_Paulo",  # gave up summer time in 2019
    "Europe/Moscow",
    "Asia/Tehran",
]


def changes_of(zone: ZoneInfo, first: int, last: int) -> list[datetime]:
    """When zoneinfo's offset changes, to the hour, found by looking every day."""
    found = []
    moment = datetime(first, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year <= last:
        following = moment + timedelta(days=1)
        next_offset = following.astimezone(zone).utcoffset()
        if next_offset != offset:
            for hour in range(25):
                probe = moment + timedelta(hours=hour)
                if probe.astimezone(zone).utcoffset() != offset:
                    found.append(probe)
                    break
            offset = next_offset
        moment = following
    return found


def probes(key: str, first: int = 1970, last: int = 2060) -> list[datetime]:
    """Around every change (every half hour from a day before to a day after) and the
    middle of every month."""
    zone = ZoneInfo(key)
    moments = [datetime(y, m, 15, 12, tzinfo=UTC) for y in range(first, last) for m in range(1, 13)]
    for change in changes_of(zone, first, last):
        moments += [change + timedelta(minutes=30 * n) for n in range(-48, 49)]
    return moments


def read_definition(key: str) -> Any:
    (zone,) = [tzical(io.StringIO(vtimezone(key).to_ical().decode())).get()]
    return zone


def disagreements(key: str, moments: list[datetime]) -> list[datetime]:
    """The moments whose local time (as an event's DTSTART says it) our definition turns
    into another instant than zoneinfo does. Local times that happen twice or never are
    left out: a reader must guess there."""
    ours, truth = read_definition(key), ZoneInfo(key)
    wrong = []
    for moment in moments:
        wall = moment.astimezone(truth).replace(tzinfo=None)
        if wall.replace(tzinfo=truth).utcoffset() != wall.replace(tzinfo=truth, fold=1).utcoffset():
            continue
        if wall.replace(tzinfo=ours).utcoffset() != moment.astimezone(truth).utcoffset():
            wrong.append(moment)
    return wrong


@pytest.mark.parametrize("key", ZONES + ODD_ZONES)
def test_the_definition_says_what_zoneinfo_says_from_1970_to_2060(key: str) -> None:
    assert disagreements(key, probes(key)) == []


def test_every_zone_offered_is_right_around_its_changes_this_decade() -> None:
    wrong = {}
    for key in sorted(timezones()):
        if bad := disagreements(key, probes(key, 2024, 2031)):
            wrong[key] = bad[:3]
    assert wrong == {}


def test_the_spring_change_in_paris_is_at_two_in_the_morning() -> None:
    """RFC 5545: DTSTART is the local time before the change (02:00 CET becomes 03:00)."""
    text = vtimezone("Europe/Paris").to_ical().decode()
    assert (
        "BEGIN:DAYLIGHT\r\nDTSTART:19960331T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n"
    ) in text
    assert "DTSTART:19961027T030000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n" in text


# --- invites and feeds through three parsers ---------------------------------------------


def booking_times(key: str) -> list[tuple[datetime, datetime]]:
    """10:00 local the day before and the day after each change of clocks of 2025 to 2028,
    and 23:30-00:30 across the night of each change, and mid-January and mid-July."""
    zone = ZoneInfo(key)
    times = []
    for change in changes_of(zone, 2025, 2028):
        for days in (-1, 1):
            day = (change + timedelta(days=days)).astimezone(zone).date()
            start = datetime(day.year, day.month, day.day, 10, tzinfo=zone)
            times.append((start, start + timedelta(minutes=45)))
        night = change - timedelta(hours=1)
        times.append((night, night + timedelta(hours=2)))
    for year in range(2025, 2029):
        for month in (1, 7):
            start = datetime(year, month, 15, 10, tzinfo=zone)
            times.append((start, start + timedelta(hours=1)))
    return [(s.astimezone(UTC), e.astimezone(UTC)) for s, e in times]


def events_for(key: str) -> list[Event]:
    return [
        Event(
            uid=f"booking-{key.replace('/', '-')}-{n}@portal.example",
            sequence=n % 3,
            starts_at=start,
            ends_at=end,
            tz=key,
            summary=f"Appel {n}",
        )
        for n, (start, end) in enumerate(booking_times(key))
    ]


def with_vobject(data: bytes) -> dict[str, tuple[datetime, datetime]]:
    """vobject keeps the first definition it meets for each TZID, for the whole process,
    as Radicale does: every later file of the zone is read with it."""
    calendar = vobject.readOne(data.decode())
    return {
        e.uid.value: (e.dtstart.value.astimezone(UTC), e.dtend.value.astimezone(UTC))
        for e in calendar.vevent_list
    }


def with_ics(data: bytes) -> dict[str, tuple[datetime, datetime]]:
    """ics (ics-py) reads the local time and the TZID's name."""
    calendar = ics_py.Calendar(data.decode())
    return {
        e.uid: (e.begin.datetime.astimezone(UTC), e.end.datetime.astimezone(UTC))
        for e in calendar.events
    }


def with_icalendar(data: bytes) -> dict[str, tuple[datetime, datetime]]:
    """icalendar, computing each instant from the VTIMEZONE's own transitions (its
    get_transitions, not dateutil's reading nor the TZID's name)."""
    calendar = icalendar.Calendar.from_ical(data)
    assert calendar.get_missing_tzids() == set()
    definitions = {str(tz["TZID"]): tz.get_transitions() for tz in calendar.timezones}

    def instant(prop: Any) -> datetime:
        wall = prop.dt.replace(tzinfo=None)
        times, infos = definitions[prop.params["TZID"]]
        candidates = []
        for offset, _dst, _name in {info for info in infos}:
            moment = wall - offset
            in_force = [i for t, i in zip(times, infos, strict=True) if t <= moment]
            if in_force and in_force[-1][0] == offset:
                candidates.append(moment)
        assert candidates, f"{wall} has no instant"
        return min(candidates).replace(tzinfo=UTC)  # a repeated hour: its first time

    return {
        str(e["UID"]): (instant(e["DTSTART"]), instant(e["DTEND"])) for e in calendar.walk("VEVENT")
    }


def test_every_invite_and_feed_gives_each_booking_its_true_times_in_three_parsers() -> None:
    vars(vobject.icalendar)["__tzidMap"].clear()  # this process's first definitions: ours
    expected: dict[str, tuple[datetime, datetime]] = {}
    files = []
    for key in ZONES:
        events = events_for(key)
        expected |= {e.uid: (e.starts_at, e.ends_at) for e in events}
        files += [invite(e) for e in events]
        files += [invite(e, method="CANCEL") for e in events[::3]]
        files.append(feed(events, name=key))
    files.append(feed([e for key in ZONES for e in events_for(key)], name="all"))
    assert len(expected) > 100
    for read in (with_vobject, with_ics, with_icalendar):
        for data in files:
            for uid, times in read(data).items():
                assert times == expected[uid], (read.__name__, uid)
