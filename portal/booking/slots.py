"""Free slots: pure functions from working hours, busy times and bookings to start instants.

Instants are aware datetimes in UTC; working hours are wall-clock minutes of the expert's
local dates, turned into UTC spans once (`open_spans`), so that the slot search itself
(`free_slots`) compares instants only and never converts a slot to local time.

Daylight saving time: working time is every instant at which the wall clock shows a time
of a working period of its date. A period that covers a skipped hour loses it, one that
covers a repeated hour gets it twice, and one that starts or ends inside the repeated hour
gets only the wall-clock times it names (two spans); slots start on the 15-minute grid of
UTC, so a repeated hour gives distinct instants and a skipped one none.

`free_slots` merges bookings and busy times (each widened by the buffer) into sorted
blocked spans once, then walks open spans, blocked spans and the allowed start windows
(minimum notice, horizon, days at their cap) together: its cost grows with the number of
spans and slots, not with their product.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from operator import itemgetter
from zoneinfo import ZoneInfo

Span = tuple[datetime, datetime]  # [start, end), aware UTC
GRID = timedelta(minutes=15)
MINUTES_PER_DAY = 1440

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # on the grid: every grid instant is EPOCH + n * GRID
_DAY = timedelta(days=1)
_by_start = itemgetter(0)


@cache
def _zone(name: str) -> ZoneInfo:
    """The zone of an IANA name, looked up once per process."""
    return ZoneInfo(name)


def local_to_utc(day: date, minutes: int, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """The UTC instant of the wall-clock time `minutes` (0..1440) after local midnight of `day`.

    A time the clocks skip (spring forward) is the transition instant, the first one that
    exists after it. A time that occurs twice (fall back) is its first occurrence for the
    start of a period and its second for an end (`end=True`), so that 01:00-04:00 on the
    night the clocks go back covers all four real hours.
    """
    if minutes == MINUTES_PER_DAY:
        day, minutes = day + _DAY, 0
    elif not 0 <= minutes < MINUTES_PER_DAY:
        raise ValueError(f"minutes must be within 0..{MINUTES_PER_DAY}, not {minutes}")
    clock, clock_later = _clocks(minutes)
    # PEP 495: fold=0 takes the offset in force before a transition, fold=1 the one after.
    before = tz.utcoffset(datetime.combine(day, clock))
    after = tz.utcoffset(datetime.combine(day, clock_later))
    assert before is not None and after is not None  # a ZoneInfo always has an offset
    as_utc = datetime.combine(day, clock, UTC)  # the wall time read as UTC: minus an offset
    if before == after:
        return as_utc - before
    if before > after:  # the clocks went back: the wall time occurs twice
        return as_utc - (after if end else before)
    # Skipped: the transition comes after as_utc - after (the old offset still holds) and
    # no later than as_utc - before (the new one does).
    return _transition(as_utc - after, as_utc - before, tz)


@cache
def _clocks(minutes: int) -> tuple[time, time]:
    """The time of day `minutes` after midnight, at fold 0 and at fold 1.

    Built once: keyword arguments and replace() cost more than all the rest of
    local_to_utc, which open_spans calls twice per working period.
    """
    hour, minute = divmod(minutes, 60)
    return time(hour, minute), time(hour, minute, fold=1)


def _transition(old: datetime, new: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after `old` with the UTC offset that `tz` has at `new`.

    zoneinfo does not publish its transitions, so bisect; this runs only for a period
    boundary in a skipped hour, a few times a year.
    """
    offset = new.astimezone(tz).utcoffset()
    while new - old > timedelta.resolution:
        middle = old + (new - old) // 2
        if middle.astimezone(tz).utcoffset() == offset:
            new = middle
        else:
            old = middle
    return new


def open_spans(
    weekly: Mapping[int, Sequence[tuple[int, int]]],
    overrides: Mapping[date, Sequence[tuple[int, int]]],
    tz: str,
    first: date,
    last: date,
) -> list[Span]:
    """Working time of the local dates `first`..`last`, as sorted, separate UTC spans.

    A date's periods are `overrides[day]` when the date has an override (none: closed),
    else `weekly[day.weekday()]` (0 = Monday); each is (start, end) in minutes of local
    wall-clock time, the end up to 1440. Periods that overlap or touch, within a date or
    across midnight, join: 22:00-24:00 and the next day's 00:00-02:00 make one span.
    """
    tzinfo = _zone(tz)
    spans = []
    day = first
    while day <= last:
        periods = overrides[day] if day in overrides else weekly.get(day.weekday(), ())
        for start_minute, end_minute in periods:
            spans.extend(_period_spans(day, start_minute, end_minute, tzinfo))
        day += _DAY
    return _merge(spans)


def _period_spans(day: date, start_minute: int, end_minute: int, tz: ZoneInfo) -> list[Span]:
    """The instants at which the wall clock of `day` shows a time in [start, end): one span,
    or two on the night the clocks go back when a boundary lies in the repeated hour.

    01:15-02:30 in New York on that night is 01:15-02:00 summer time, then 01:15-02:30
    winter time (wall-clock 01:00-01:15 of the second pass is outside the hours); a period
    that covers the whole repeated hour is one span holding it twice. A period inside a
    skipped hour has no time at all.
    """
    first = local_to_utc(day, start_minute, tz)  # the first instant showing `start`
    last = local_to_utc(day, end_minute, tz, end=True)  # the last instant showing `end`
    if first >= last:
        return []
    # `last` may be the very instant the clocks go back (a period ending where the repeated
    # hour begins ends at its second pass): its own offset is the one that counts.
    before, after = first.astimezone(tz).utcoffset(), last.astimezone(tz).utcoffset()
    assert before is not None and after is not None
    if before <= after:  # no clock went back in between: the wall clock only moves forward
        return [(first, last)]
    back = _transition(first, last, tz)  # the instant the clocks went back
    # Before it, the wall clock runs up to the repeated hour's end; after it, from its start.
    summer = (first, min(back, local_to_utc(day, end_minute, tz)))
    winter = (max(back, local_to_utc(day, start_minute, tz, end=True)), last)
    return [span for span in (summer, winter) if span[0] < span[1]]


@dataclass(frozen=True, slots=True)
class Frame:
    """The booking frame of a charter: how soon, how far ahead, how far apart, how many."""

    min_notice: timedelta
    horizon: timedelta
    buffer: timedelta
    daily_cap: int = 0  # bookings starting on one local date of the expert; 0: no cap


def free_slots(
    *,
    open: Sequence[Span],
    busy: Sequence[Span],
    bookings: Sequence[Span],
    duration: timedelta,
    now: datetime,
    frame: Frame,
    tz: str,
) -> list[datetime]:
    """Start instants (UTC, sorted, distinct) of the free slots of `duration`.

    A slot starts on the 15-minute grid of UTC (the local grid in every zone whose offset
    is a multiple of 15 minutes), lies inside one open span (touching open spans count as
    one), starts no sooner than `now + min_notice` and before `now + horizon`, keeps the
    buffer from every busy span and booking ([t, t+d) conflicts with [s, e) when
    t < e + buffer and s < t + d + buffer: with no buffer, back to back is fine), and does
    not start on a local date of `tz` (the expert's zone) on which `daily_cap` bookings
    already start.
    """
    buffer = frame.buffer
    blocked = _merge((start - buffer, end + buffer) for start, end in (*busy, *bookings))
    earliest, latest = now + frame.min_notice, now + frame.horizon
    full_days = _full_days(bookings, frame.daily_cap, _zone(tz))
    windows = list(_subtract([(earliest, latest)], full_days))
    slots: list[datetime] = []
    append = slots.append
    w, n = 0, len(windows)
    for free_start, free_end in _subtract(_merge(open), blocked):
        last_start = free_end - duration  # a start in [free_start, last_start] fits
        if last_start < free_start:
            continue
        while w < n and windows[w][1] <= free_start:
            w += 1
        k = w  # windows[k] may reach into the next free span too: w stays
        while k < n and windows[k][0] <= last_start:
            window_start, window_end = windows[k]
            t = _ceil(max(free_start, window_start))
            while t <= last_start and t < window_end:
                append(t)
                t += GRID
            k += 1
    return slots


def slot_conflicts(
    start: datetime,
    duration: timedelta,
    *,
    busy: Iterable[Span],
    bookings: Iterable[Span],
    buffer: timedelta,
) -> bool:
    """Whether [start, start + duration) comes within `buffer` of a busy span or booking:
    the rule of `free_slots`, for checking one chosen slot again."""
    end = start + duration
    return any(
        start < other_end + buffer and other_start < end + buffer
        for other_start, other_end in (*busy, *bookings)
    )


def on_grid(t: datetime) -> bool:
    """Whether an aware instant is a possible slot start (UTC minute % 15 == 0, no seconds)."""
    return not (t - _EPOCH) % GRID


def _ceil(t: datetime) -> datetime:
    """The first grid instant at or after `t`, in UTC."""
    return _EPOCH + -((_EPOCH - t) // GRID) * GRID


def _merge(spans: Iterable[Span]) -> list[Span]:
    """The spans sorted by start, those that overlap or touch joined into one."""
    merged: list[Span] = []
    for start, end in sorted(spans, key=_by_start):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(spans: Sequence[Span], holes: Sequence[Span]) -> Iterator[Span]:
    """The parts of `spans` outside `holes`; both sorted and separate, as `_merge` makes them."""
    j, n = 0, len(holes)
    for start, end in spans:
        while j < n and holes[j][1] <= start:
            j += 1
        while j < n and holes[j][0] < end:
            hole_start, hole_end = holes[j]
            if start < hole_start:
                yield start, hole_start
            start = max(start, hole_end)
            if hole_end >= end:
                break  # this hole may cover the next span as well: j stays on it
            j += 1
        if start < end:
            yield start, end


def _full_days(bookings: Sequence[Span], cap: int, tz: ZoneInfo) -> list[Span]:
    """The UTC spans of the local dates on which `cap` bookings start (none without a cap).

    A local date runs from its first instant to the next date's first instant, so that a
    booking at 23:30 in New York counts for its own date although UTC is a day ahead.
    """
    if cap <= 0:
        return []
    starts = Counter(start.astimezone(tz).date() for start, _end in bookings)
    return [
        (local_to_utc(day, 0, tz), local_to_utc(day + _DAY, 0, tz))
        for day in sorted(day for day, count in starts.items() if count >= cap)
    ]
