"""Busy times read from other calendars: series expanded from the window within a budget,
checked against dateutil walking each rule from its start, and hostile rules that cost
nothing to write and minutes to expand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule as du
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.booking.busy import Ignored, busy_from_ics, busy_read

PARIS = ZoneInfo("Europe/Paris")
HOURS = ",".join(str(h) for h in range(24))
MINUTES = ",".join(str(m) for m in range(60))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def calendar(*vevents: str) -> bytes:
    """Written by hand on purpose: these are the files a hostile server sends."""
    body = "".join(
        f"BEGIN:VEVENT\r\nUID:{n}@test\r\nDTSTAMP:20260101T000000Z\r\n{v}END:VEVENT\r\n"
        for n, v in enumerate(vevents)
    )
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tests//EN\r\n" + body + "END:VCALENDAR\r\n"
    ).encode()


def lines(*text: str) -> str:
    return "".join(f"{line}\r\n" for line in text)


MEETING = lines("SUMMARY:Meeting", "DTSTART:20260302T090000Z", "DTEND:20260302T100000Z")
WINDOW = (utc(2026, 3, 1), utc(2027, 3, 2))  # a year, as the worker reads


def test_a_bounded_hourly_series_is_busy() -> None:
    """Four one-hour meetings back to back, written as an hourly series of four."""
    data = calendar(
        lines(
            "SUMMARY:Workshop",
            "DTSTART;TZID=Europe/Paris:20260303T090000",
            "DTEND;TZID=Europe/Paris:20260303T093000",
            "RRULE:FREQ=HOURLY;COUNT=4",
        )
    )
    assert busy_from_ics(data, *WINDOW, tz="Europe/Paris") == [
        (utc(2026, 3, 3, h), utc(2026, 3, 3, h, 30)) for h in (8, 9, 10, 11)
    ]


def test_an_hourly_series_until_a_date_is_busy() -> None:
    data = calendar(
        lines(
            "DTSTART:20260303T090000Z",
            "DTEND:20260303T091500Z",
            "RRULE:FREQ=HOURLY;INTERVAL=2;UNTIL=20260303T150000Z",
        )
    )
    assert busy_from_ics(data, *WINDOW, tz="UTC") == [
        (utc(2026, 3, 3, h), utc(2026, 3, 3, h, 15)) for h in (9, 11, 13, 15)
    ]


@pytest.mark.parametrize(
    ("name", "rule", "start"),
    [
        ("minutes", f"FREQ=DAILY;BYHOUR={HOURS};BYMINUTE={MINUTES}", "20260101T000000Z"),
        (
            "seconds",
            f"FREQ=DAILY;BYHOUR={HOURS};BYMINUTE={MINUTES};BYSECOND={MINUTES}",
            "20260101T000000Z",
        ),
        ("secondly", "FREQ=SECONDLY", "20260101T000000Z"),
        ("minutely-from-year-1", "FREQ=MINUTELY", "00010101T000000Z"),
    ],
)
def test_a_series_repeating_too_often_is_ignored_and_named(
    name: str, rule: str, start: str
) -> None:
    """A few hundred bytes that ask for half a million occurrences a year (or thirty
    million): the series is ignored, named for the expert, the rest is read, at once."""
    hostile = lines("SUMMARY:Every minute", f"DTSTART:{start}", f"DTEND:{start}", f"RRULE:{rule}")
    began = time.monotonic()
    busy = busy_read(calendar(MEETING, hostile), *WINDOW, tz="Europe/Paris")
    assert time.monotonic() - began < 20
    assert busy.spans == [(utc(2026, 3, 2, 9), utc(2026, 3, 2, 10))]
    assert busy.ignored == [Ignored(uid="1@test", summary="Every minute")]


def test_a_series_from_year_one_is_expanded_from_the_window() -> None:
    """Walking an hourly rule from year 1 to today is 18 million occurrences."""
    data = calendar(
        lines(
            "DTSTART:00010101T000000Z",
            "DTEND:00010101T001000Z",
            f"RRULE:FREQ=DAILY;BYHOUR={HOURS}",
        )
    )
    began = time.monotonic()
    busy = busy_read(data, utc(2026, 3, 1, 12), utc(2026, 3, 3), tz="UTC")
    assert time.monotonic() - began < 20
    hours = [utc(2026, 3, 1, 12) + timedelta(hours=n) for n in range(36)]
    assert busy.spans == [(hour, hour + timedelta(minutes=10)) for hour in hours]
    assert busy.ignored == []


def test_every_other_week_since_2001_keeps_its_weeks() -> None:
    data = calendar(
        lines(
            "DTSTART;TZID=Europe/Paris:20010103T100000",  # a Wednesday
            "DTEND;TZID=Europe/Paris:20010103T110000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
            "EXDATE;TZID=Europe/Paris:20260311T100000",
        )
    )
    busy = busy_from_ics(data, utc(2026, 3, 1), utc(2026, 3, 31), tz="Europe/Paris")
    # 2001-01-01 and 2026-03-02 are 1313 weeks apart: an odd number, so the weeks of
    # 2026-03-09 and 2026-03-23 are the series' weeks.
    assert busy == [
        (utc(2026, 3, 9, 9), utc(2026, 3, 9, 10)),
        (utc(2026, 3, 23, 9), utc(2026, 3, 23, 10)),
        (utc(2026, 3, 25, 9), utc(2026, 3, 25, 10)),
    ]


def test_a_counted_series_ends_where_its_count_says() -> None:
    """Ten days from 2026-02-22: the last four fall in the window."""
    data = calendar(
        lines("DTSTART:20260222T080000Z", "DTEND:20260222T090000Z", "RRULE:FREQ=DAILY;COUNT=10")
    )
    busy = busy_from_ics(data, utc(2026, 2, 28), utc(2026, 3, 31), tz="UTC")
    assert busy == [(utc(2026, 2, d, 8), utc(2026, 2, d, 9)) for d in (28,)] + [
        (utc(2026, 3, d, 8), utc(2026, 3, d, 9)) for d in (1, 2, 3)
    ]


def test_a_moved_occurrence_and_those_after_it() -> None:
    """RANGE=THISANDFUTURE moves that occurrence and the following ones."""
    data = (
        calendar(
            lines(
                "UID:weekly@test",
                "DTSTART:20260302T090000Z",
                "DTEND:20260302T100000Z",
                "RRULE:FREQ=WEEKLY;COUNT=4",
            ),
            lines(
                "UID:weekly@test",
                "RECURRENCE-ID;RANGE=THISANDFUTURE:20260316T090000Z",
                "DTSTART:20260316T140000Z",
                "DTEND:20260316T143000Z",
            ),
        )
        .replace(b"UID:0@test\r\n", b"")
        .replace(b"UID:1@test\r\n", b"")
    )
    busy = busy_from_ics(data, utc(2026, 3, 1), utc(2026, 4, 1), tz="UTC")
    assert busy == [
        (utc(2026, 3, 2, 9), utc(2026, 3, 2, 10)),
        (utc(2026, 3, 9, 9), utc(2026, 3, 9, 10)),
        (utc(2026, 3, 16, 14), utc(2026, 3, 16, 14, 30)),
        (utc(2026, 3, 23, 14), utc(2026, 3, 23, 14, 30)),
    ]


# --- against dateutil walking each rule from its start ------------------------------------

DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rules(draw: st.DrawFn) -> tuple[str, datetime]:
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 5))}"]
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))
        parts.append("BYDAY=" + ",".join(days))
    if freq in ("YEARLY", "MONTHLY") and draw(st.booleans()):
        monthdays = st.sampled_from([1, 2, 15, 28, 30, 31, -1])
        days = draw(st.lists(monthdays, min_size=1, max_size=2, unique=True))
        parts.append("BYMONTHDAY=" + ",".join(map(str, days)))
    if freq == "YEARLY" and draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))
        parts.append("BYMONTH=" + ",".join(map(str, months)))
    if freq != "HOURLY" and draw(st.booleans()):
        hours = draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True))
        parts.append("BYHOUR=" + ",".join(map(str, hours)))
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(DAYS))}")
    if draw(st.integers(0, 3)) == 0:
        parts.append(f"COUNT={draw(st.integers(1, 400))}")
    earliest = datetime(2025, 6, 1) if freq == "HOURLY" else datetime(1995, 1, 1)
    start = draw(st.datetimes(earliest, datetime(2026, 5, 1)))
    return ";".join(parts), start.replace(second=0, microsecond=0)


@settings(max_examples=150, deadline=None)
@given(rules(), st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]))
def test_expanding_from_the_window_finds_what_walking_from_the_start_finds(
    rule_and_start: tuple[str, datetime], tz: str
) -> None:
    rule, start = rule_and_start
    zone = ZoneInfo(tz)
    data = calendar(
        lines(
            f"DTSTART;TZID={tz}:{start:%Y%m%dT%H%M%S}",
            f"DTEND;TZID={tz}:{start + timedelta(minutes=1):%Y%m%dT%H%M%S}",
            f"RRULE:{rule}",
        )
    ).replace(b"TZID=UTC:", b"TZID=Etc/UTC:")
    window = (utc(2026, 5, 10), utc(2026, 8, 1))
    walked = du.rrulestr(rule, dtstart=start, cache=False)
    expected = sorted(
        {
            local.replace(tzinfo=zone).astimezone(UTC)
            for local in [start, *walked.between(start, datetime(2026, 8, 2), inc=True)]
        }
    )
    expected = [s for s in expected if window[0] <= s < window[1]]
    busy = busy_read(data, *window, tz="UTC")
    assert busy.ignored == []
    assert [s for s, _e in busy.spans] == expected
