"""The working-hours clock: by hand the cases one checks on a calendar (the Friday evening
question, the lunch break, a holiday, the clock changes), then random calendars checked for
the clock's own rules and against a walk of the wall clock, minute by minute.

The walk uses neither `open_spans` nor `local_to_utc`: it reads the local clock at every
minute of UTC, and a minute is working time when the clock shows, then, a time of a
working period of the date it shows. On the night the clocks go back, both passes of the
repeated hour count where the hours cover them, and nothing outside the hours does (a
period ending at 01:30 in the repeated hour works the first 01:00-01:30 and the second,
not the first 01:30-02:00).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.questions.clock import due_at, is_working, working_minutes_between

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
MICROSECOND = timedelta.resolution
PARIS = ZoneInfo("Europe/Paris")
Weekly = dict[int, list[tuple[int, int]]]
Overrides = dict[date, list[tuple[int, int]]]


def period(start: str, end: str) -> tuple[int, int]:
    """Wall-clock "HH:MM" times as minutes after midnight."""

    def after_midnight(hhmm: str) -> int:
        hours, minutes = hhmm.split(":")
        return int(hours) * 60 + int(minutes)

    return after_midnight(start), after_midnight(end)


OFFICE = {weekday: [period("09:00", "18:00")] for weekday in range(5)}  # Monday to Friday
LUNCH_BREAK = {
    weekday: [period("09:00", "12:30"), period("14:00", "18:00")] for weekday in range(5)
}
NIGHTS = {weekday: [period("00:00", "06:00")] for weekday in range(7)}


def paris(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An instant of 2026 on the clocks of Paris."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=PARIS)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def due(
    sent_at: datetime,
    minutes: int,
    weekly: Weekly = OFFICE,
    overrides: Overrides | None = None,
    tz: str = "Europe/Paris",
    max_days: int = 400,
) -> datetime:
    return due_at(
        sent_at, minutes, weekly=weekly, overrides=overrides or {}, tz=tz, max_days=max_days
    )


def between(
    start: datetime, end: datetime, weekly: Weekly = OFFICE, tz: str = "Europe/Paris"
) -> timedelta:
    return working_minutes_between(start, end, weekly=weekly, overrides={}, tz=tz)


def working(at: datetime, weekly: Weekly = OFFICE) -> bool:
    return is_working(at, weekly=weekly, overrides={}, tz="Europe/Paris")


# --- by hand, in January 2026: the 5th is a Monday --------------------------------------


def test_a_question_sent_on_friday_evening_is_due_on_monday_morning() -> None:
    deadline = due(paris(1, 9, 22), 60)
    assert deadline == paris(1, 12, 10)
    assert deadline.tzinfo is UTC
    new_york = datetime(2026, 1, 9, 16, tzinfo=ZoneInfo("America/New_York"))  # 22:00 in Paris
    assert due(new_york, 60) == paris(1, 12, 10)


def test_closing_time_and_the_lunch_break_are_skipped() -> None:
    assert due(paris(1, 7, 17, 30), 60, LUNCH_BREAK) == paris(1, 8, 9, 30)
    assert due(paris(1, 6, 12), 60, LUNCH_BREAK) == paris(1, 6, 14, 30)


def test_overrides_close_a_holiday_and_open_a_saturday() -> None:
    holiday = {date(2026, 1, 12): []}
    assert due(paris(1, 9, 22), 60, overrides=holiday) == paris(1, 13, 10)
    saturday_morning = {date(2026, 1, 10): [period("10:00", "12:00")]}
    assert due(paris(1, 9, 22), 60, overrides=saturday_morning) == paris(1, 10, 11)


def test_a_long_deadline_runs_over_several_days() -> None:
    sent_at = paris(1, 9, 22)
    deadline = due(sent_at, 1200)  # 9 h on Monday, 9 h on Tuesday, 2 h on Wednesday
    assert deadline == paris(1, 14, 11)
    assert between(sent_at, deadline) == 1200 * MINUTE


def test_sent_exactly_at_opening_or_at_closing() -> None:
    opening, closing = paris(1, 5, 9), paris(1, 5, 18)
    assert due(opening, 60) == paris(1, 5, 10)
    assert due(closing, 60) == paris(1, 6, 10)
    assert working(opening)
    assert not working(opening - MICROSECOND)
    assert not working(closing)
    assert working(closing - MICROSECOND)


def test_minutes_used_up_at_closing_are_due_at_closing() -> None:
    assert due(paris(1, 5, 17), 60) == paris(1, 5, 18)
    assert due(paris(1, 9, 17), 60) == paris(1, 9, 18)  # Friday 18:00, not Monday 09:00
    assert due(paris(1, 5, 12), 30, LUNCH_BREAK) == paris(1, 5, 12, 30)  # not 14:00


def test_no_minutes_is_the_first_working_instant() -> None:
    assert due(paris(1, 5, 10, 17, 42), 0) == paris(1, 5, 10, 17, 42)
    assert due(paris(1, 5, 9), 0) == paris(1, 5, 9)
    assert due(paris(1, 5, 18), 0) == paris(1, 6, 9)  # closing time is not working time
    assert due(paris(1, 10, 3), 0) == paris(1, 12, 9)


def test_seconds_are_kept() -> None:
    assert due(paris(1, 5, 17, 30, 15), 60) == paris(1, 6, 9, 30, 15)


def test_the_countdown_in_working_time() -> None:
    assert between(paris(1, 5, 16, 40), paris(1, 6, 11)) == timedelta(hours=3, minutes=20)
    assert between(paris(1, 9, 17), paris(1, 12, 10)) == timedelta(hours=2)  # over the weekend
    assert between(paris(1, 6, 11), paris(1, 5, 16, 40)) == timedelta(0)  # overdue


def test_refused_without_working_time_or_too_far_away() -> None:
    for week in ({}, {0: []}, {0: [period("09:00", "09:00")]}):
        with pytest.raises(ValueError):
            due(paris(1, 5, 9), 60, week)
    with pytest.raises(ValueError):
        due(paris(1, 5, 9), -1)
    mondays = {0: [period("09:00", "09:15")]}
    sent_at = paris(1, 5, 9, 15)  # the 12th, the 19th, the 26th: exactly 21 days away
    assert due(sent_at, 45, mondays, max_days=21) == paris(1, 26, 9, 15)
    with pytest.raises(ValueError):
        due(sent_at, 45, mondays, max_days=20)


# --- clock changes: working hours 00:00-06:00 every night --------------------------------

# (zone, the day before the change, minutes from 05:00 that day, deadline, on its clock)
ACROSS_A_CHANGE = [
    ("Europe/Paris", date(2026, 3, 28), 180, utc(2026, 3, 29, 1), "03:00", 0),  # 02:00 skipped
    ("America/New_York", date(2026, 3, 7), 180, utc(2026, 3, 8, 7), "03:00", 0),
    ("Europe/Paris", date(2026, 10, 24), 270, utc(2026, 10, 25, 1, 30), "02:30", 1),  # twice
    ("America/New_York", date(2026, 10, 31), 210, utc(2026, 11, 1, 6, 30), "01:30", 1),
]


@pytest.mark.parametrize(("tz", "eve", "minutes", "expected", "clock", "fold"), ACROSS_A_CHANGE)
def test_a_deadline_across_a_clock_change_counts_real_minutes(
    tz: str, eve: date, minutes: int, expected: datetime, clock: str, fold: int
) -> None:
    zone = ZoneInfo(tz)
    deadline = due(datetime.combine(eve, time(5), zone), minutes, NIGHTS, tz=tz)
    assert deadline == expected
    wall = deadline.astimezone(zone)
    assert (f"{wall:%H:%M}", wall.fold) == (clock, fold)  # fold 1: the second time round


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        ("Europe/Paris", date(2026, 3, 29), 5),
        ("Europe/Paris", date(2026, 10, 25), 7),
        ("America/New_York", date(2026, 3, 8), 5),
        ("America/New_York", date(2026, 11, 1), 7),
    ],
)
def test_a_night_of_clock_change_has_the_hours_that_really_pass(
    tz: str, day: date, hours: int
) -> None:
    zone = ZoneInfo(tz)
    midnight, six = datetime.combine(day, time(), zone), datetime.combine(day, time(6), zone)
    assert (
        between(midnight, datetime.combine(day, time(12), zone), NIGHTS, tz) == hours * 60 * MINUTE
    )
    eve = datetime.combine(day - DAY, time(5), zone)
    assert due(eve, 60 + hours * 60, NIGHTS, tz=tz) == six  # the end of the night, not the next


def test_a_midnight_that_happens_twice_counts_once() -> None:
    # Havana goes back from 01:00 to 00:00 on 1 November: 22:00-24:00 on the 31st ends at
    # the first midnight and 00:00-01:00 on the 1st runs twice, four real hours in all.
    # Sent on each date of the fortnight before, so that some computation turns the two
    # dates into spans in different batches.
    tz = "America/Havana"
    night = {
        date(2026, 10, 31): [period("22:00", "24:00")],
        date(2026, 11, 1): [period("00:00", "01:00")],
    }
    for sent_on in range(17, 32):
        sent_at = datetime(2026, 10, sent_on, 12, tzinfo=ZoneInfo(tz))
        assert due(sent_at, 240, {}, night, tz) == utc(2026, 11, 1, 6)
        total = working_minutes_between(
            sent_at, utc(2026, 11, 2), weekly={}, overrides=night, tz=tz
        )
        assert total == 4 * 60 * MINUTE
    # The first 00:30 of the 1st is the 1st's time: with the 1st closed, nobody works then.
    first_half_past = utc(2026, 11, 1, 4, 30)
    eve_only = {date(2026, 10, 31): [period("22:00", "24:00")]}
    assert not is_working(first_half_past, weekly={}, overrides=eve_only, tz=tz)
    assert is_working(first_half_past, weekly={}, overrides=night, tz=tz)
    eve = utc(2026, 10, 31, 12)
    assert working_minutes_between(eve, utc(2026, 11, 2), weekly={}, overrides=eve_only, tz=tz) == (
        2 * 60 * MINUTE
    )


# --- random calendars ------------------------------------------------------------------

# Each zone's 2026 clock changes, where the mistakes are; Kolkata and UTC have none.
CLOCK_CHANGES = {
    "Europe/Paris": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Asia/Kolkata": [],
    "UTC": [],
}
# A quarter hour a week makes 3,000 minutes last 200 weeks: no random deadline is refused.
FAR = 1500


@dataclass(frozen=True)
class Case:
    tz: str
    weekly: Weekly
    overrides: Overrides
    sent_at: datetime

    def periods(self, day: date) -> list[tuple[int, int]]:
        return self.overrides[day] if day in self.overrides else self.weekly.get(day.weekday(), [])

    def due(self, sent_at: datetime, minutes: int) -> datetime:
        return due_at(
            sent_at,
            minutes,
            weekly=self.weekly,
            overrides=self.overrides,
            tz=self.tz,
            max_days=FAR,
        )

    def between(self, start: datetime, end: datetime) -> timedelta:
        return working_minutes_between(
            start, end, weekly=self.weekly, overrides=self.overrides, tz=self.tz
        )

    def is_working(self, at: datetime) -> bool:
        return is_working(at, weekly=self.weekly, overrides=self.overrides, tz=self.tz)


# Quarter-hour marks of a day, often in the small hours where the clocks change.
marks = st.one_of(st.integers(0, 16), st.integers(0, 96))
periods = st.lists(marks, min_size=2, max_size=2, unique=True).map(
    lambda pair: (min(pair) * 15, max(pair) * 15)
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Hours somewhere in the week, a question sent in 2026 (often just before a clock
    change, to any microsecond), and overrides of the following days, some closing them."""
    tz = draw(st.sampled_from(sorted(CLOCK_CHANGES)))
    weekly = draw(
        st.dictionaries(
            st.integers(0, 6), st.lists(periods, min_size=1, max_size=3), min_size=1, max_size=7
        )
    )
    day = draw(
        st.one_of(
            st.sampled_from(CLOCK_CHANGES[tz] or [date(2026, 6, 1)]),
            st.dates(min_value=date(2026, 1, 4), max_value=date(2026, 12, 31)),
        )
    )
    sent_at = (
        datetime.combine(day, time(), UTC)
        + draw(st.integers(-3 * 1440, 1440)) * MINUTE
        + draw(st.one_of(st.just(0), st.integers(0, 59_999_999))) * MICROSECOND
    )
    local = sent_at.astimezone(ZoneInfo(tz)).date()
    overrides = draw(
        st.dictionaries(
            st.integers(-1, 12).map(lambda k: local + k * DAY),
            st.lists(periods, max_size=3),
            max_size=4,
        )
    )
    return Case(tz, weekly, overrides, sent_at)


@settings(max_examples=200, deadline=None)
@given(cases(), st.integers(0, 3000))
def test_a_deadline_leaves_exactly_its_minutes_of_working_time(case: Case, minutes: int) -> None:
    deadline = case.due(case.sent_at, minutes)
    assert deadline.tzinfo is UTC
    assert deadline >= case.sent_at
    assert case.between(case.sent_at, deadline) == minutes * MINUTE
    if minutes:  # the last moment counted was working time: no closed time is added at the end
        assert case.is_working(deadline - MICROSECOND)
    else:  # the first working instant, and not the first of a later period
        assert case.is_working(deadline)
        assert deadline == case.sent_at or not case.is_working(deadline - MICROSECOND)


@settings(max_examples=150, deadline=None)
@given(cases(), st.integers(0, 3000), st.integers(0, 3000), st.integers(0, 3 * 86_400_000_000))
def test_deadlines_never_come_sooner(case: Case, a: int, b: int, later: int) -> None:
    fewer, more = sorted((a, b))
    assert case.due(case.sent_at, fewer) <= case.due(case.sent_at, more)
    assert case.due(case.sent_at, more) <= case.due(case.sent_at + later * MICROSECOND, more)


@settings(max_examples=150, deadline=None)
@given(cases(), st.integers(0, 1500), st.integers(1, 1500))
def test_a_deadline_carries_on_from_an_earlier_one(case: Case, first: int, then: int) -> None:
    earlier = case.due(case.sent_at, first)
    assert case.due(earlier, then) == case.due(case.sent_at, first + then)


@settings(max_examples=150, deadline=None)
@given(cases(), st.lists(st.integers(0, 20 * 86_400_000_000), min_size=1, max_size=4))
def test_working_time_adds_up_over_any_cuts(case: Case, offsets: list[int]) -> None:
    instants = [case.sent_at + offset * MICROSECOND for offset in sorted({0, *offsets})]
    parts = sum((case.between(a, b) for a, b in pairwise(instants)), timedelta())
    assert case.between(instants[0], instants[-1]) == parts


# --- the walk of the wall clock ----------------------------------------------------------


class Walk:
    """The working minutes of UTC from the question on, read off the local clock one by one.

    `days` days are walked from the question's minute; the clock is read two days further
    on each side, so that every period the walk meets is whole.
    """

    def __init__(self, case: Case, days: int) -> None:
        zone = ZoneInfo(case.tz)
        self.sent_at = case.sent_at
        self.origin = case.sent_at.replace(second=0, microsecond=0) - 2 * DAY
        self.first_minute, self.end_minute = 2 * 1440, (2 + days) * 1440
        count = (days + 4) * 1440
        walls = [
            (self.origin + i * MINUTE).astimezone(zone).replace(tzinfo=None) for i in range(count)
        ]
        self.worked = [
            any(a <= wall.hour * 60 + wall.minute < b for a, b in case.periods(wall.date()))
            for wall in walls
        ]

    @property
    def end(self) -> datetime:
        return self.origin + self.end_minute * MINUTE

    def working_from_the_question(self) -> list[tuple[datetime, timedelta]]:
        """(first instant, length) of each worked minute in the walk, the first one cut."""
        found = []
        for i in range(self.first_minute, self.end_minute):
            if self.worked[i]:
                start = max(self.origin + i * MINUTE, self.sent_at)
                found.append((start, self.origin + (i + 1) * MINUTE - start))
        return found

    def due(self, minutes: int) -> datetime | None:
        left = minutes * MINUTE
        for start, length in self.working_from_the_question():
            if left <= length:
                return start + left
            left -= length
        return None

    def is_working(self, at: datetime) -> bool:
        return self.worked[(at - self.origin) // MINUTE]


@settings(max_examples=150, deadline=None)
@given(cases(), st.integers(0, 600))
def test_the_clock_matches_a_walk_of_the_wall_clock(case: Case, minutes: int) -> None:
    walk = Walk(case, days=4)
    expected = walk.due(minutes)
    deadline = case.due(case.sent_at, minutes)
    if expected is None:  # less working time than that in the walk
        assert deadline >= walk.end
    else:
        assert deadline == expected
    worked = sum((length for _start, length in walk.working_from_the_question()), timedelta())
    assert case.between(case.sent_at, walk.end) == worked
    assert case.is_working(case.sent_at) == walk.is_working(case.sent_at)
