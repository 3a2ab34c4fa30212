"""The working-hours clock: reply deadlines counted in the expert's working time only.

Working time is what `portal.booking.slots.open_spans` makes of the weekly hours and date
overrides: UTC spans, so that daylight saving time follows its rules (a skipped hour is no
working time, a repeated one counts twice) and the clock itself only adds up real elapsed
time between instants. A span includes its start and excludes its end.

Local dates are turned into spans a fortnight at a time, as far as needed: a deadline an
hour away costs two weeks of spans, not the `max_days` a deadline may reach.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from portal.booking.slots import Span, open_spans

Weekly = Mapping[int, Sequence[tuple[int, int]]]  # weekday (0 = Monday) -> (start, end) minutes
Overrides = Mapping[date, Sequence[tuple[int, int]]]  # a date's own periods; none: closed

_DAY = timedelta(days=1)
_WINDOW = 14  # local dates turned into spans at once


def due_at(
    sent_at: datetime,
    minutes: int,
    *,
    weekly: Weekly,
    overrides: Overrides,
    tz: str,
    max_days: int = 400,
) -> datetime:
    """The instant (aware, UTC) at which `minutes` of working time have passed since `sent_at`.

    Counting starts at the first working instant at or after `sent_at`, which is the answer
    for `minutes == 0`. Minutes used up exactly at the end of a working period make that end
    the deadline, not the next opening: the expert had all the time owed.

    Raises ValueError for negative minutes, and when the deadline would be more than
    `max_days` days after `sent_at` (a week without working time never has one).
    """
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, not {minutes}")
    left = timedelta(minutes=minutes)
    limit = sent_at + timedelta(days=max_days)
    for start, end in _working_spans(sent_at, limit, weekly, overrides, tz):
        if left <= end - start:
            return start + left
        left -= end - start
    raise ValueError(f"{minutes} working minutes do not fit in the {max_days} days after {sent_at}")


def working_minutes_between(
    start: datetime, end: datetime, *, weekly: Weekly, overrides: Overrides, tz: str
) -> timedelta:
    """The working time between two instants, zero when `end` is not after `start`.

    A timedelta rather than a count of minutes: instants need not fall on whole minutes,
    and a countdown ("3 h 20 of working time left") rounds as its display needs.
    """
    spans = _working_spans(start, end, weekly, overrides, tz)
    return sum((span_end - span_start for span_start, span_end in spans), timedelta())


def is_working(at: datetime, *, weekly: Weekly, overrides: Overrides, tz: str) -> bool:
    """Whether `at` is working time: the opening instant of a period is, its closing one not."""
    moment = _working_spans(at, at + timedelta.resolution, weekly, overrides, tz)
    return next(moment, None) is not None


def _working_spans(
    start: datetime, end: datetime, weekly: Weekly, overrides: Overrides, tz: str
) -> Iterator[Span]:
    """The working time between two instants as sorted UTC spans, none empty, none overlapping.

    Where the clocks go back across midnight (Havana), a date's last period ends after the
    next date has begun: one date more on each side, and spans clipped to the time already
    covered, as `open_spans` joins them only within one window.
    """
    zone = ZoneInfo(tz)
    covered, end = start.astimezone(UTC), end.astimezone(UTC)
    first = start.astimezone(zone).date() - _DAY
    last = end.astimezone(zone).date() + _DAY
    while first <= last:
        window_last = min(first + (_WINDOW - 1) * _DAY, last)
        for span_start, span_end in open_spans(weekly, overrides, tz, first, window_last):
            span_start, span_end = max(span_start, covered), min(span_end, end)
            if span_start < span_end:
                yield span_start, span_end
                covered = span_end
        first = window_last + _DAY
