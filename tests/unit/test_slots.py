"""Slot computation: random calendars checked against a brute-force walk of the wall clock,
then by hand the cases that matter: clock changes, buffer, daily cap, overrides, notice and
horizon.

The brute force looks at every quarter hour of UTC and the local time the clock shows then.
It is exact for the zones used here: their offsets and clock changes fall on quarter hours,
so the wall clock moves by a quarter hour within each quarter of UTC.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.booking.slots import (
    GRID,
    Frame,
    Span,
    free_slots,
    local_to_utc,
    on_grid,
    open_spans,
    slot_conflicts,
)

MINUTE = timedelta(minutes=1)
# Each zone's 2026 clock changes, where the mistakes are; Kolkata and UTC have none.
CLOCK_CHANGES = {
    "Europe/Paris": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "America/Santiago": [date(2026, 4, 4), date(2026, 9, 6)],  # at midnight
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],  # half an hour
    "Asia/Kolkata": [date(2026, 6, 1)],
    "UTC": [date(2026, 6, 1)],
}
ANYTIME = Frame(min_notice=timedelta(0), horizon=timedelta(days=3650), buffer=timedelta(0))
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
MONDAY = date(2026, 1, 5)
NINE_TO_TWELVE = {weekday: [(540, 720)] for weekday in range(7)}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def starts(
    spans: Sequence[Span],
    *,
    tz: str = "UTC",
    busy: Sequence[Span] = (),
    bookings: Sequence[Span] = (),
    duration: int = 15,
    now: datetime = LONG_AGO,
    frame: Frame = ANYTIME,
) -> list[datetime]:
    return free_slots(
        open=spans,
        busy=busy,
        bookings=bookings,
        duration=duration * MINUTE,
        now=now,
        frame=frame,
        tz=tz,
    )


# --- the brute force --------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    tz: str
    first: date
    last: date
    weekly: dict[int, list[tuple[int, int]]]
    overrides: dict[date, list[tuple[int, int]]]

    def periods(self, day: date) -> list[tuple[int, int]]:
        return self.overrides[day] if day in self.overrides else self.weekly.get(day.weekday(), [])

    def open_spans(self) -> list[Span]:
        return open_spans(self.weekly, self.overrides, self.tz, self.first, self.last)


def worked_quarters(calendar: Calendar) -> set[datetime]:
    """The quarters of UTC inside a working period, found by watching the wall clock.

    A quarter is worked when the clock shows, at its start, a time of a working period of
    the date it shows: on the night the clocks go back, both passes of the repeated hour
    count where the hours cover them, and no other time does; a skipped time is never
    shown, so never worked. None of `open_spans`' code.
    """
    zone = ZoneInfo(calendar.tz)
    start = datetime.combine(calendar.first, time(), UTC) - timedelta(days=2)
    quarters = [start + i * GRID for i in range(((calendar.last - calendar.first).days + 5) * 96)]
    walls = [q.astimezone(zone).replace(tzinfo=None) for q in quarters]
    worked = set()
    for day in dates(calendar.first, calendar.last):
        midnight = datetime.combine(day, time())
        for a, b in calendar.periods(day):
            wall_a, wall_b = midnight + a * MINUTE, midnight + b * MINUTE
            worked.update(
                q for q, wall in zip(quarters, walls, strict=True) if wall_a <= wall < wall_b
            )
    return worked


@dataclass(frozen=True)
class Case:
    calendar: Calendar
    busy: list[Span]
    bookings: list[Span]
    duration: timedelta
    now: datetime
    frame: Frame

    def free_slots(self, spans: list[Span] | None = None) -> list[datetime]:
        return free_slots(
            open=self.calendar.open_spans() if spans is None else spans,
            busy=self.busy,
            bookings=self.bookings,
            duration=self.duration,
            now=self.now,
            frame=self.frame,
            tz=self.calendar.tz,
        )


def brute_force(case: Case) -> list[datetime]:
    """Every quarter tried against every rule, one by one."""
    zone = ZoneInfo(case.calendar.tz)
    frame = case.frame
    worked = worked_quarters(case.calendar)
    per_day = Counter(start.astimezone(zone).date() for start, _end in case.bookings)
    found = []
    for start in sorted(worked):
        if not all(start + i * GRID in worked for i in range(case.duration // GRID)):
            continue
        if not case.now + frame.min_notice <= start < case.now + frame.horizon:
            continue
        end = start + case.duration
        if any(
            start < e + frame.buffer and s < end + frame.buffer
            for s, e in case.busy + case.bookings
        ):
            continue
        if frame.daily_cap and per_day[start.astimezone(zone).date()] >= frame.daily_cap:
            continue
        found.append(start)
    return found


# --- random calendars -------------------------------------------------------------------

# Quarter-hour marks of a day, often in the small hours or near midnight, where the
# clocks change.
marks = st.one_of(st.integers(0, 16), st.integers(84, 96), st.integers(0, 96))


@st.composite
def periods(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Up to three periods of a day, which may overlap or touch."""
    found = []
    for _ in range(draw(st.integers(1, 3))):
        a, b = draw(marks), draw(marks)
        if a != b:
            found.append((min(a, b) * 15, max(a, b) * 15))
    return found


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    tz = draw(st.sampled_from(sorted(CLOCK_CHANGES)))
    around = draw(
        st.one_of(
            st.sampled_from(CLOCK_CHANGES[tz]),
            st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)),
        )
    )
    first = around - timedelta(days=draw(st.integers(0, 1)))
    last = first + timedelta(days=draw(st.integers(0, 3)))
    weekly = draw(st.dictionaries(st.integers(0, 6), periods(), min_size=3, max_size=7))
    changed = draw(st.lists(st.sampled_from(dates(first, last)), max_size=3, unique=True))
    overrides = {day: draw(periods()) for day in changed}
    return Calendar(tz, first, last, weekly, overrides)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    calendar = draw(calendars())
    midnight = datetime.combine(calendar.first, time(), ZoneInfo(calendar.tz)).astimezone(UTC)
    reach = ((calendar.last - calendar.first).days + 3) * 1440  # minutes from the day before

    def spans(step: int, max_size: int) -> list[Span]:
        found = []
        for _ in range(draw(st.integers(0, max_size))):
            start = (
                midnight - timedelta(days=1) + draw(st.integers(0, reach // step)) * step * MINUTE
            )
            found.append((start, start + draw(st.integers(1, 180 // step)) * step * MINUTE))
        return found

    notice = draw(st.integers(0, 720)) * MINUTE
    return Case(
        calendar=calendar,
        busy=spans(1, 6),  # imported events: any minute
        bookings=spans(15, 12),  # on the grid, as bookings are
        duration=draw(st.sampled_from([15, 30, 45])) * MINUTE,
        now=midnight + draw(st.integers(-12 * 3600, 6 * 3600)) * timedelta(seconds=1),
        frame=Frame(
            min_notice=notice,
            horizon=notice
            + draw(st.sampled_from([1, 6, 24, 72, 240])) * timedelta(hours=1)
            + draw(st.integers(0, 600)) * MINUTE,
            buffer=draw(st.sampled_from([0, 5, 10, 15, 30])) * MINUTE,
            daily_cap=draw(st.integers(0, 3)),
        ),
    )


@settings(max_examples=300, deadline=None)
@given(calendars())
def test_open_spans_are_the_worked_quarters(calendar: Calendar) -> None:
    spans = calendar.open_spans()
    assert all(start < end for start, end in spans)
    assert all(end < following for (_s, end), (following, _e) in pairwise(spans))
    inside = {start + i * GRID for start, end in spans for i in range((end - start) // GRID)}
    assert all(on_grid(start) and on_grid(end) for start, end in spans)
    assert inside == worked_quarters(calendar)


@settings(max_examples=400, deadline=None)
@given(cases())
def test_free_slots_match_the_brute_force(case: Case) -> None:
    assert case.free_slots() == brute_force(case)


def inside_hours(calendar: Calendar, instant: datetime) -> bool:
    """Whether the wall clock shows, at `instant`, a time of a working period of its date."""
    wall = instant.astimezone(ZoneInfo(calendar.tz))
    shown = wall.hour * 60 + wall.minute
    return any(a <= shown < b for a, b in calendar.periods(wall.date()))


@settings(max_examples=400, deadline=None)
@given(cases())
def test_every_slot_lies_inside_the_wall_clock_hours(case: Case) -> None:
    for start in case.free_slots():
        quarters = [start + i * GRID for i in range(case.duration // GRID)]
        assert all(inside_hours(case.calendar, q) for q in quarters), start


@settings(max_examples=300, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_free_slots_keep_every_rule(case: Case, rng: random.Random) -> None:
    spans = case.calendar.open_spans()
    slots = case.free_slots()
    frame = case.frame
    zone = ZoneInfo(case.calendar.tz)
    per_day = Counter(start.astimezone(zone).date() for start, _end in case.bookings)
    assert all(a < b for a, b in pairwise(slots))
    for start in slots:
        end = start + case.duration
        assert on_grid(start) and start.utcoffset() == timedelta(0)
        assert any(s <= start and end <= e for s, e in spans)
        assert case.now + frame.min_notice <= start < case.now + frame.horizon
        assert not slot_conflicts(
            start, case.duration, busy=case.busy, bookings=case.bookings, buffer=frame.buffer
        )
        if frame.daily_cap:
            assert per_day[start.astimezone(zone).date()] < frame.daily_cap
    # Open time cut into touching pieces, in any order, is the same open time.
    pieces = []
    for s, e in spans:
        cut = s + rng.randrange((e - s) // GRID + 1) * GRID
        pieces += [(s, cut), (cut, e)]
    rng.shuffle(pieces)
    assert case.free_slots(pieces) == slots


# --- wall clock to UTC ------------------------------------------------------------------


def test_local_to_utc_on_ordinary_and_changing_days() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert local_to_utc(date(2026, 3, 28), minutes("09:30"), paris) == utc(2026, 3, 28, 8, 30)
    assert local_to_utc(date(2026, 3, 28), 1440, paris) == utc(2026, 3, 28, 23)
    # 02:00-03:00 does not exist on 29 March: its times are the moment summer time starts.
    for hhmm in ("02:00", "02:30", "03:00"):
        assert local_to_utc(date(2026, 3, 29), minutes(hhmm), paris) == utc(2026, 3, 29, 1)
        assert local_to_utc(date(2026, 3, 29), minutes(hhmm), paris, end=True) == utc(
            2026, 3, 29, 1
        )
    # 02:00-03:00 happens twice on 25 October: a start takes the first, an end the second.
    assert local_to_utc(date(2026, 10, 25), minutes("02:30"), paris) == utc(2026, 10, 25, 0, 30)
    assert local_to_utc(date(2026, 10, 25), minutes("02:30"), paris, end=True) == utc(
        2026, 10, 25, 1, 30
    )
    # 02:00 too: a period ending at 02:00 that night runs to the second 02:00.
    assert local_to_utc(date(2026, 10, 25), minutes("02:00"), paris, end=True) == utc(
        2026, 10, 25, 1
    )
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # half-hour changes
    assert local_to_utc(date(2026, 10, 4), minutes("02:15"), lord_howe) == utc(2026, 10, 3, 15, 30)
    assert local_to_utc(date(2026, 4, 5), minutes("01:45"), lord_howe) == utc(2026, 4, 4, 14, 45)
    assert local_to_utc(date(2026, 4, 5), minutes("01:45"), lord_howe, end=True) == utc(
        2026, 4, 4, 15, 15
    )


@pytest.mark.parametrize("bad", [-1, 1441])
def test_local_to_utc_refuses_minutes_outside_a_day(bad: int) -> None:
    with pytest.raises(ValueError):
        local_to_utc(date(2026, 1, 5), bad, ZoneInfo("UTC"))


def test_fall_back_night_covers_every_real_hour() -> None:
    day = date(2026, 10, 25)  # 01:00-04:00: four hours, as 02:00-03:00 happens twice
    spans = open_spans({}, {day: [(minutes("01:00"), minutes("04:00"))]}, "Europe/Paris", day, day)
    assert spans == [(utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))]


def test_period_inside_a_skipped_hour_is_no_time() -> None:
    day = date(2026, 3, 29)
    assert (
        open_spans({}, {day: [(minutes("02:00"), minutes("02:45"))]}, "Europe/Paris", day, day)
        == []
    )


def test_periods_join_across_midnight() -> None:
    weekly = {0: [(minutes("22:00"), 1440)], 1: [(0, minutes("02:00"))]}
    spans = open_spans(weekly, {}, "UTC", date(2026, 1, 5), date(2026, 1, 6))
    assert spans == [(utc(2026, 1, 5, 22), utc(2026, 1, 6, 2))]
    assert utc(2026, 1, 5, 23, 30) in starts(spans, duration=45)


def test_overrides_close_a_day_or_change_its_hours() -> None:
    tuesday, wednesday = date(2026, 1, 6), date(2026, 1, 7)
    overrides = {tuesday: [], wednesday: [(minutes("13:00"), minutes("14:00"))]}
    assert open_spans(NINE_TO_TWELVE, overrides, "Europe/Paris", MONDAY, wednesday) == [
        (utc(2026, 1, 5, 8), utc(2026, 1, 5, 11)),
        (utc(2026, 1, 7, 12), utc(2026, 1, 7, 13)),
    ]


def test_periods_off_the_quarter_hour_start_on_the_next_one() -> None:
    spans = open_spans({}, {MONDAY: [(minutes("09:10"), minutes("10:00"))]}, "UTC", MONDAY, MONDAY)
    assert starts(spans) == [utc(2026, 1, 5, 9, 15), utc(2026, 1, 5, 9, 30), utc(2026, 1, 5, 9, 45)]
    assert starts(spans, duration=45) == [utc(2026, 1, 5, 9, 15)]


# --- clock changes ----------------------------------------------------------------------


def day_slots(
    tz: str, day: date, hours: list[tuple[int, int]], duration: int = 15
) -> list[datetime]:
    return starts(open_spans({}, {day: hours}, tz, day, day), tz=tz, duration=duration)


def clock_times(start: str, end: str) -> list[time]:
    return [time(m // 60, m % 60) for m in range(minutes(start), minutes(end), 15)]


NIGHT_AND_DAY = [(0, minutes("06:00")), (minutes("09:00"), minutes("18:00"))]

# (zone, date, the wall-clock times the clocks skip)
SPRING_FORWARD = [
    ("Europe/Paris", date(2026, 3, 29), ("02:00", "03:00")),
    ("America/New_York", date(2026, 3, 8), ("02:00", "03:00")),
    ("Australia/Lord_Howe", date(2026, 10, 4), ("02:00", "02:30")),
]
# (zone, date, the wall-clock times that happen twice)
FALL_BACK = [
    ("Europe/Paris", date(2026, 10, 25), ("02:00", "03:00")),
    ("America/New_York", date(2026, 11, 1), ("01:00", "02:00")),
    ("Australia/Lord_Howe", date(2026, 4, 5), ("01:30", "02:00")),
]


@pytest.mark.parametrize(("tz", "day", "skipped"), SPRING_FORWARD)
def test_no_slot_in_the_skipped_hour(tz: str, day: date, skipped: tuple[str, str]) -> None:
    zone = ZoneInfo(tz)
    walls = [start.astimezone(zone) for start in day_slots(tz, day, NIGHT_AND_DAY)]
    night = [wall.time() for wall in walls if wall.hour < 6]
    assert night == clock_times("00:00", skipped[0]) + clock_times(skipped[1], "06:00")
    lost = minutes(skipped[1]) - minutes(skipped[0])
    assert len(night) == (360 - lost) // 15  # a day of 23 hours, or 23 and a half
    assert [wall.time() for wall in walls if wall.hour >= 9] == clock_times("09:00", "18:00")


@pytest.mark.parametrize(("tz", "day", "repeated"), FALL_BACK)
def test_repeated_hour_gives_each_instant_once(
    tz: str, day: date, repeated: tuple[str, str]
) -> None:
    zone = ZoneInfo(tz)
    found = day_slots(tz, day, NIGHT_AND_DAY)
    walls = [start.astimezone(zone) for start in found]
    night = [wall for wall in walls if wall.hour < 6]
    assert [wall.time() for wall in night] == (
        clock_times("00:00", repeated[1]) + clock_times(repeated[0], "06:00")
    )
    gained = minutes(repeated[1]) - minutes(repeated[0])
    assert len(night) == (360 + gained) // 15  # a day of 25 hours, or 24 and a half
    twice = [wall for wall in night if repeated[0] <= f"{wall:%H:%M}" < repeated[1]]
    assert len(twice) == 2 * gained // 15
    assert len({wall.utcoffset() for wall in twice}) == 2  # summer time, then winter time
    assert len(set(found)) == len(found)
    assert [wall.time() for wall in walls if wall.hour >= 9] == clock_times("09:00", "18:00")


@pytest.mark.parametrize(("tz", "day"), [(tz, day) for tz, day, _ in SPRING_FORWARD + FALL_BACK])
@pytest.mark.parametrize(("duration", "count"), [(15, 36), (30, 35), (45, 34)])
def test_office_hours_on_a_clock_change_day_are_ordinary(
    tz: str, day: date, duration: int, count: int
) -> None:
    found = day_slots(tz, day, [(minutes("09:00"), minutes("18:00"))], duration)
    walls = [start.astimezone(ZoneInfo(tz)).time() for start in found]
    assert walls == clock_times("09:00", "18:00")[:count]


# A period that starts or ends inside the repeated hour: (zone, date, hours, wall-clock
# starts offered with their UTC offsets in hours).
BOUNDARY_IN_REPEATED_HOUR = [
    (  # Santiago goes back from 24:00 to 23:00 on Saturday 3 April 2027
        "America/Santiago",
        date(2027, 4, 3),
        ("19:45", "23:30"),
        [(t, -3) for t in clock_times("19:45", "23:30")]
        + [(t, -4) for t in clock_times("23:00", "23:30")],
    ),
    (  # New York goes back from 02:00 to 01:00 on Sunday 7 November 2027
        "America/New_York",
        date(2027, 11, 7),
        ("01:15", "02:30"),
        [(t, -4) for t in clock_times("01:15", "02:00")]
        + [(t, -5) for t in clock_times("01:15", "02:30")],
    ),
    (  # a period that ends where the repeated hour begins holds neither pass of it
        "America/Santiago",
        date(2027, 4, 3),
        ("22:00", "23:00"),
        [(t, -3) for t in clock_times("22:00", "23:00")],
    ),
]


@pytest.mark.parametrize(("tz", "day", "hours", "offered"), BOUNDARY_IN_REPEATED_HOUR)
def test_hours_ending_or_starting_in_the_repeated_hour_stay_inside_them(
    tz: str, day: date, hours: tuple[str, str], offered: list[tuple[time, int]]
) -> None:
    found = day_slots(tz, day, [(minutes(hours[0]), minutes(hours[1]))])
    walls = [start.astimezone(ZoneInfo(tz)) for start in found]
    assert [(wall.time(), wall.utcoffset() // timedelta(hours=1)) for wall in walls] == offered


# --- the booking frame ------------------------------------------------------------------


def monday(**given: Any) -> list[datetime]:
    """Slots of Monday 5 January 2026, 09:00-12:00 UTC."""
    return starts(open_spans(NINE_TO_TWELVE, {}, "UTC", MONDAY, MONDAY), **given)


def test_back_to_back_without_buffer() -> None:
    found = monday(bookings=[(utc(2026, 1, 5, 10), utc(2026, 1, 5, 10, 30))], duration=30)
    assert utc(2026, 1, 5, 9, 30) in found
    assert utc(2026, 1, 5, 10, 30) in found
    for taken in (utc(2026, 1, 5, 9, 45), utc(2026, 1, 5, 10), utc(2026, 1, 5, 10, 15)):
        assert taken not in found


def test_buffer_keeps_slots_apart_on_both_sides() -> None:
    booking = (utc(2026, 1, 5, 10), utc(2026, 1, 5, 10, 30))
    found = monday(bookings=[booking], duration=30, frame=replace(ANYTIME, buffer=10 * MINUTE))
    assert utc(2026, 1, 5, 9, 15) in found  # ends at 09:45, 15 minutes before
    assert utc(2026, 1, 5, 9, 30) not in found  # ends at 10:00: no buffer left
    assert utc(2026, 1, 5, 10, 30) not in found  # starts right after
    assert utc(2026, 1, 5, 10, 45) in found  # 15 minutes after
    after = utc(2026, 1, 5, 10, 30)
    assert slot_conflicts(after, 30 * MINUTE, busy=[], bookings=[booking], buffer=10 * MINUTE)
    assert not slot_conflicts(after, 30 * MINUTE, busy=[], bookings=[booking], buffer=0 * MINUTE)


def test_busy_events_off_the_grid_block_what_they_touch() -> None:
    found = monday(busy=[(utc(2026, 1, 5, 10, 5), utc(2026, 1, 5, 10, 20))])
    assert utc(2026, 1, 5, 9, 45) in found
    assert utc(2026, 1, 5, 10) not in found
    assert utc(2026, 1, 5, 10, 15) not in found
    assert utc(2026, 1, 5, 10, 30) in found


def test_an_event_over_a_break_blocks_both_sides_of_it() -> None:
    spans = open_spans({0: [(540, 600), (630, 720)]}, {}, "UTC", MONDAY, MONDAY)
    found = starts(spans, busy=[(utc(2026, 1, 5, 9, 45), utc(2026, 1, 5, 10, 45))])
    assert found == [utc(2026, 1, 5, 9, m) for m in (0, 15, 30)] + [
        utc(2026, 1, 5, 10, 45),
        *(utc(2026, 1, 5, 11, m) for m in (0, 15, 30, 45)),
    ]


def test_notice_and_horizon_edges() -> None:
    now = utc(2026, 1, 5, 8, 50)

    def found(notice: int, horizon: int) -> list[datetime]:
        frame = replace(ANYTIME, min_notice=notice * MINUTE, horizon=horizon * MINUTE)
        return monday(now=now, frame=frame)

    assert found(10, 1440)[0] == utc(2026, 1, 5, 9)  # exactly the notice
    assert found(11, 1440)[0] == utc(2026, 1, 5, 9, 15)
    assert found(0, 130)[-1] == utc(2026, 1, 5, 10, 45)  # 11:00 is exactly the horizon
    assert found(0, 131)[-1] == utc(2026, 1, 5, 11)
    assert found(1, 1) == []
    assert monday(now=utc(2026, 1, 5, 9, 0, 1))[0] == utc(2026, 1, 5, 9, 15)


def test_daily_cap_counts_the_experts_local_date() -> None:
    tz, day = "America/New_York", MONDAY
    late = (utc(2026, 1, 6, 4, 30), utc(2026, 1, 6, 4, 45))  # 23:30 on the 5th in New York
    spans = open_spans(NINE_TO_TWELVE, {}, tz, day, day + timedelta(days=1))
    found = starts(spans, tz=tz, bookings=[late], frame=replace(ANYTIME, daily_cap=1))
    assert {start.astimezone(ZoneInfo(tz)).date() for start in found} == {date(2026, 1, 6)}
    assert len(found) == 12


def test_daily_cap_east_of_utc_and_below_the_cap() -> None:
    tz, day = "Asia/Kolkata", MONDAY
    early = (utc(2026, 1, 4, 19, 30), utc(2026, 1, 4, 20))  # 01:00 on the 5th in Kolkata
    same_day = (utc(2026, 1, 5, 12), utc(2026, 1, 5, 13))  # 17:30 on the 5th in Kolkata
    spans = open_spans(NINE_TO_TWELVE, {}, tz, day - timedelta(days=1), day)

    def local_days(cap: int, busy: list[Span]) -> set[date]:
        frame = replace(ANYTIME, daily_cap=cap)
        found = starts(spans, tz=tz, busy=busy, bookings=[early], frame=frame)
        return {start.astimezone(ZoneInfo(tz)).date() for start in found}

    sunday = date(2026, 1, 4)
    assert local_days(1, []) == {sunday}
    assert local_days(2, []) == {sunday, day}
    assert local_days(0, []) == {sunday, day}
    assert local_days(2, [same_day]) == {sunday, day}  # calendar events are not bookings


def test_daily_cap_ends_a_date_when_the_next_one_first_begins() -> None:
    # Havana goes back from 01:00 to 00:00 on 1 November: midnight happens twice.
    tz = "America/Havana"
    night = {
        date(2026, 10, 31): [(minutes("22:00"), 1440)],
        date(2026, 11, 1): [(0, minutes("01:00"))],
    }
    spans = open_spans({}, night, tz, date(2026, 10, 31), date(2026, 11, 1))
    assert spans == [(utc(2026, 11, 1, 2), utc(2026, 11, 1, 6))]
    booking = (utc(2026, 10, 31, 14), utc(2026, 10, 31, 15))  # 10:00 on the 31st
    found = starts(spans, tz=tz, bookings=[booking], frame=replace(ANYTIME, daily_cap=1))
    assert found[0] == utc(2026, 11, 1, 4)  # the first midnight
    assert len(found) == 8  # both passes of 00:00-01:00


def test_on_grid() -> None:
    assert on_grid(utc(2026, 1, 5, 9, 15))
    assert on_grid(datetime(2026, 1, 5, 14, 45, tzinfo=ZoneInfo("Asia/Kolkata")))  # 09:15 UTC
    assert not on_grid(utc(2026, 1, 5, 9, 10))
    assert not on_grid(utc(2026, 1, 5, 9, 15, 1))
