"""Busy times read from an expert's other calendar: the events of an iCalendar file that
fall in a window, recurring series expanded. Pure: bytes in, spans out, no I/O.

The file comes from anyone's server, so the work it can cause is bounded here:

- a series is expanded from the window, not from its DTSTART (a rule starting in year 1
  costs what one starting last week does). Only a series with a COUNT is walked from its
  start, since its occurrences must be counted; the count bounds that walk;
- each series may generate at most SERIES_LIMIT occurrences: one that repeats more often
  (every minute, say) is ignored and named, so that the expert knows what we did not read;
- the calendar may hold at most MAX_SPANS busy times, and generate at most
  CALENDAR_BUDGET occurrences in all, or it is refused.

What a rule engine can still do with a rule that never matches (it searches year after
year) is bounded by the child process that runs this code (`portal.booking.sandbox`).

Events follow RFC 5545 as calendar apps read it: EXDATE removes an occurrence, RDATE adds
one (a PERIOD with its own end), a RECURRENCE-ID replaces one (with RANGE=THISANDFUTURE,
that one and the following), the highest SEQUENCE of a UID wins, DTSTART is the first
occurrence. Dates (all-day events) and floating times are read in the calendar's
X-WR-TIMEZONE when it names a zone, else in the expert's zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from dateutil import rrule as du

from portal.errors import N_, DomainError

Span = tuple[datetime, datetime]

MAX_SPANS = 20_000  # busy times kept from one calendar (a year of a very full diary)
SERIES_LIMIT = 20_000  # occurrences one series may generate (every hour for two years)
CALENDAR_BUDGET = 300_000  # occurrences all series together may generate
MARGIN = timedelta(days=2)  # local dates may differ from UTC dates by a day either way
MAX_IGNORED = 10  # ignored series named to the expert


class CalendarError(DomainError):
    """An external calendar we cannot use. `code` says why; the message says it to the
    expert; `detail` says exactly what happened, for the logs."""

    REASONS = {
        "bad_url": N_("This is not the address of a calendar (https://… or webcal://…)."),
        "unreachable": N_("The calendar could not be reached."),
        "http_status": N_("The calendar's server answered with an error."),
        "too_large": N_("The calendar is too large."),
        "too_complex": N_("The calendar is too complex to read."),
        "not_calendar": N_("This is not a calendar in iCalendar (.ics) format."),
        "private": N_(
            "This address leads into a private network: give the calendar's public address."
        ),
    }

    def __init__(self, code: str, *, detail: str = "") -> None:
        self.detail = detail
        super().__init__(self.REASONS[code], code=code)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A series we did not read, as the expert knows it."""

    uid: str
    summary: str


@dataclass(slots=True)
class Busy:
    spans: list[Span]
    ignored: list[Ignored] = field(default_factory=list)


class _SeriesTooLong(Exception):
    """One series generated more than SERIES_LIMIT occurrences."""


class _Counter:
    def __init__(self) -> None:
        self.total = 0

    def take(self, series: int) -> None:
        self.total += 1
        if series > SERIES_LIMIT:
            raise _SeriesTooLong
        if self.total > CALENDAR_BUDGET:
            raise CalendarError("too_complex", detail=f"more than {CALENDAR_BUDGET} occurrences")


# --- reading one value ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Clock:
    """How a series counts: wall-clock times in `zone`, or dates when `all_day`."""

    zone: tzinfo
    all_day: bool

    def wall(self, value: date | datetime) -> datetime:
        """A value as a naive wall-clock time of this clock (dates: their midnight)."""
        if not isinstance(value, datetime):
            return datetime.combine(value, time())
        if value.tzinfo is None:
            return value
        return value.astimezone(self.zone).replace(tzinfo=None)

    def instant(self, wall: datetime) -> datetime:
        return wall.replace(tzinfo=self.zone).astimezone(UTC)


def _zone_named(name: object) -> ZoneInfo | None:
    try:
        return ZoneInfo(str(name)) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _clock_of(start: date | datetime, expert: tzinfo, named: tzinfo | None) -> _Clock:
    if not isinstance(start, datetime):
        return _Clock(expert, all_day=True)
    if start.tzinfo is None:
        return _Clock(named or expert, all_day=False)
    if named is not None and start.utcoffset() == timedelta(0):
        # Google writes UTC times for a calendar whose zone is X-WR-TIMEZONE: a weekly
        # 10:00 stays 10:00 there across the change of clocks.
        return _Clock(named, all_day=False)
    return _Clock(start.tzinfo, all_day=False)


# --- rules --------------------------------------------------------------------------------

_FREQ = {
    "YEARLY": du.YEARLY,
    "MONTHLY": du.MONTHLY,
    "WEEKLY": du.WEEKLY,
    "DAILY": du.DAILY,
    "HOURLY": du.HOURLY,
    "MINUTELY": du.MINUTELY,
    "SECONDLY": du.SECONDLY,
}
_DAYS = {"MO": du.MO, "TU": du.TU, "WE": du.WE, "TH": du.TH, "FR": du.FR, "SA": du.SA, "SU": du.SU}
_INTS = {
    "BYSETPOS": "bysetpos",
    "BYMONTH": "bymonth",
    "BYMONTHDAY": "bymonthday",
    "BYYEARDAY": "byyearday",
    "BYWEEKNO": "byweekno",
    "BYHOUR": "byhour",
    "BYMINUTE": "byminute",
    "BYSECOND": "bysecond",
}


def _weekday(text: str) -> du.weekday:
    text = str(text).strip().upper()
    day = _DAYS[text[-2:]]
    return day(int(text[:-2])) if text[:-2] not in ("", "+", "-") else day


def _rule_options(recur: Any, clock: _Clock, start: datetime) -> dict[str, Any]:
    """dateutil's arguments for one RRULE, every default dateutil would take from DTSTART
    written out, so that the rule means the same whatever start it is given."""
    if not isinstance(recur, icalendar.vRecur):
        recur = icalendar.vRecur.from_ical(str(recur))
    options: dict[str, Any] = {"freq": _FREQ[str(recur["FREQ"][0]).upper()]}
    if "INTERVAL" in recur:
        options["interval"] = int(recur["INTERVAL"][0])
    if "COUNT" in recur and int(recur["COUNT"][0]) > 0:
        options["count"] = int(recur["COUNT"][0])
    if "UNTIL" in recur and "count" not in options:  # RFC 5545: never both
        until = clock.wall(recur["UNTIL"][0])
        if not isinstance(recur["UNTIL"][0], datetime) and not clock.all_day:
            until += timedelta(days=1, seconds=-1)  # the whole of that day
        options["until"] = until
    if "WKST" in recur:
        options["wkst"] = _DAYS[str(recur["WKST"][0]).upper()]
    if "BYDAY" in recur:
        options["byweekday"] = [_weekday(day) for day in recur["BYDAY"]]
    for name, option in _INTS.items():
        if name in recur:
            options[option] = [int(value) for value in recur[name]]
    freq = options["freq"]
    if not any(options.get(k) for k in ("byweekno", "byyearday", "bymonthday", "byweekday")):
        if freq == du.YEARLY:
            options.setdefault("bymonth", [start.month])
            options["bymonthday"] = [start.day]
        elif freq == du.MONTHLY:
            options["bymonthday"] = [start.day]
        elif freq == du.WEEKLY:
            options["byweekday"] = [start.weekday()]
    for option, unit, value in (
        ("byhour", du.HOURLY, start.hour),
        ("byminute", du.MINUTELY, start.minute),
        ("bysecond", du.SECONDLY, start.second),
    ):
        if freq < unit and not options.get(option):
            options[option] = [value]
    return options


def _period_start(options: dict[str, Any], start: datetime, earliest: datetime) -> datetime:
    """Where to start the rule so that it yields, from `earliest` on, what it would yield
    from `start`: the beginning of a period that is a whole number of intervals after the
    one of `start` (dateutil counts intervals from the period of the start it is given)."""
    interval = options.get("interval", 1)
    freq = options["freq"]
    if freq == du.YEARLY:
        years = (earliest.year - start.year) // interval * interval
        return datetime(start.year + years, 1, 1)
    if freq == du.MONTHLY:
        months = (earliest.year - start.year) * 12 + earliest.month - start.month
        index = start.year * 12 + start.month - 1 + months // interval * interval
        return datetime(index // 12, index % 12 + 1, 1)
    if freq == du.WEEKLY:
        wkst = options.get("wkst", du.MO).weekday
        week = start.date() - timedelta(days=(start.weekday() - wkst) % 7)
        weeks = (earliest.date() - week).days // 7 // interval * interval
        return datetime.combine(week + timedelta(weeks=weeks), time())
    if freq == du.DAILY:
        days = (earliest.date() - start.date()).days // interval * interval
        return datetime.combine(start.date() + timedelta(days=days), time())
    unit = {du.HOURLY: 3600, du.MINUTELY: 60, du.SECONDLY: 1}[freq]
    first = start.replace(microsecond=0)
    if unit > 1:
        first = first.replace(second=0)
    if unit > 60:
        first = first.replace(minute=0)
    step = unit * interval
    return first + timedelta(seconds=(earliest - first).total_seconds() // step * step)


def _rule_starts(
    recur: Any, clock: _Clock, start: datetime, earliest: datetime, latest: datetime
) -> Iterator[datetime]:
    """The wall-clock starts one RRULE gives from `earliest` to `latest`."""
    options = _rule_options(recur, clock, start)
    until = options.get("until")
    if until is not None and until < earliest:
        return
    first = start
    if "count" not in options and earliest > start:
        first = max(start, _period_start(options, start, earliest))
    for occurrence in du.rrule(dtstart=first, cache=False, **options):
        if occurrence > latest:
            return
        if occurrence >= start:
            yield occurrence


# --- series ---------------------------------------------------------------------------------


def _is_busy(component: icalendar.Component) -> bool:
    transparent = str(component.get("TRANSP", "")).upper() == "TRANSPARENT"
    return not transparent and str(component.get("STATUS", "")).upper() != "CANCELLED"


def _sequence(component: icalendar.Component) -> int:
    try:
        return int(component.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        return 0


@dataclass(slots=True)
class _Window:
    start: datetime  # UTC
    end: datetime
    expert: tzinfo  # for dates, and floating times unless the calendar names a zone
    named: tzinfo | None  # X-WR-TIMEZONE

    def clip(self, start: datetime, end: datetime) -> Span | None:
        start, end = max(start, self.start), min(end, self.end)
        return (start, end) if start < end else None


def _bounds(component: icalendar.Event) -> tuple[date | datetime, date | datetime]:
    """DTSTART and the end (DTEND, DURATION, or what RFC 5545 says without them)."""
    return component.start, component.end


def _length(clock: _Clock, start: date | datetime, end: date | datetime) -> timedelta:
    if clock.all_day:
        return timedelta(days=max((_as_date(end) - _as_date(start)).days, 0))
    return _utc(end, clock) - _utc(start, clock)


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _utc(value: date | datetime, clock: _Clock) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return clock.instant(clock.wall(value))


def _occurrence(clock: _Clock, wall: datetime, length: timedelta) -> Span:
    if clock.all_day:  # from local midnight to local midnight, whatever the day's length
        return clock.instant(wall), clock.instant(wall + length)
    start = clock.instant(wall)
    return start, start + length


class _Series:
    """One UID: its main event (the highest SEQUENCE) and its changed occurrences."""

    def __init__(self, components: list[icalendar.Event], window: _Window) -> None:
        self.window = window
        masters = [c for c in components if "RECURRENCE-ID" not in c]
        self.master = max(masters, key=_sequence) if masters else None
        self.changes = [c for c in components if "RECURRENCE-ID" in c]
        named = self.master or components[0]
        self.ignored = Ignored(
            uid=str(named.get("UID", ""))[:200], summary=str(named.get("SUMMARY", ""))[:200]
        )

    def spans(self, counter: _Counter) -> Iterator[Span]:
        clock = None
        excluded: set[datetime | date] = set()  # EXDATE, and replaced occurrences
        excluded_days: set[date] = set()  # EXDATE as a date in a timed series
        if self.master is not None:
            clock = _clock_of(self.master.start, self.window.expert, self.window.named)
            for value in self.master.exdates:
                if isinstance(value, datetime) or clock.all_day:
                    excluded.add(self._key(clock, value))
                else:
                    excluded_days.add(value)
        moved: list[tuple[datetime | date, icalendar.Event]] = []
        for change in sorted(self.changes, key=_sequence, reverse=True):
            recurrence_id = change["RECURRENCE-ID"]
            key = self._key(clock, recurrence_id.dt)  # type: ignore[union-attr,arg-type]
            if key in excluded:  # removed, or replaced by a later SEQUENCE
                continue
            excluded.add(key)
            if str(recurrence_id.params.get("RANGE", "")).upper() == "THISANDFUTURE":
                moved.append((key, change))
            if _is_busy(change):
                yield from self._single(change)
        if self.master is None or clock is None or not _is_busy(self.master):
            return
        if self.master.rrules or self.master.rdates:
            yield from self._expand(clock, excluded, excluded_days, sorted(moved), counter)
        elif self._key(clock, self.master.start) not in excluded:
            yield from self._single(self.master)

    @staticmethod
    def _key(clock: _Clock | None, value: date | datetime) -> datetime | date:
        """What identifies an occurrence: its instant, or its date for all-day series."""
        if clock is None:
            return value
        if clock.all_day:
            return _as_date(clock.wall(value))
        return _utc(value, clock)

    def _single(self, component: icalendar.Event) -> Iterator[Span]:
        start, end = _bounds(component)
        clock = _clock_of(start, self.window.expert, self.window.named)
        span = self.window.clip(*_occurrence(clock, clock.wall(start), _length(clock, start, end)))
        if span:
            yield span

    def _expand(
        self,
        clock: _Clock,
        excluded: set[datetime | date],
        excluded_days: set[date],
        moved: list[tuple[datetime | date, icalendar.Event]],
        counter: _Counter,
    ) -> Iterator[Span]:
        assert self.master is not None
        start_value, end_value = _bounds(self.master)
        start = clock.wall(start_value)
        length = _length(clock, start_value, end_value)
        longest = max([length] + [_length(clock, *_bounds(c)) for _key, c in moved])
        earliest = clock.wall(self.window.start - longest - MARGIN)
        latest = clock.wall(self.window.end + MARGIN)
        starts: dict[datetime, timedelta] = {}
        generated = 0
        if start <= latest:
            starts[start] = length  # DTSTART is always the first occurrence
        for recur in self.master.rrules:
            for wall in _rule_starts(recur, clock, start, earliest, latest):
                generated += 1
                counter.take(generated)
                starts.setdefault(wall, length)
        for rdate, rdate_end in self.master.rdates:
            generated += 1
            counter.take(generated)
            wall = clock.wall(rdate)
            if rdate_end is None:
                starts.setdefault(wall, length)
            elif isinstance(rdate_end, timedelta):
                starts[wall] = rdate_end
            else:
                starts[wall] = _utc(rdate_end, clock) - _utc(rdate, clock)
        for wall, span_length in starts.items():
            if wall < earliest:
                continue
            key = self._key(clock, wall)
            if key in excluded or (not clock.all_day and wall.date() in excluded_days):
                continue
            occurrence = _occurrence(clock, wall, span_length)
            for moved_key, change in reversed(moved):
                if moved_key <= key:  # RANGE=THISANDFUTURE: moved like that occurrence
                    change_start, change_end = _bounds(change)
                    shift = _utc(change_start, clock) - _utc(moved_key, clock)
                    begins = occurrence[0] + shift
                    occurrence = (begins, begins + _length(clock, change_start, change_end))
                    if not _is_busy(change):
                        occurrence = (begins, begins)
                    break
            span = self.window.clip(*occurrence)
            if span:
                yield span


# --- the calendar -------------------------------------------------------------------------


def _parse(data: bytes) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise CalendarError("not_calendar", detail=str(exc)[:200]) from exc
    if not isinstance(calendar, icalendar.Calendar):
        raise CalendarError("not_calendar", detail=f"a lone {calendar.name}")
    return calendar


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def busy_read(data: bytes, start: datetime, end: datetime, *, tz: str) -> Busy:
    """When an external calendar is busy between `start` and `end` (aware): sorted, merged
    spans in UTC, clipped to the window, and the series we did not read.

    Transparent ("free") and cancelled events are not busy; events of no length are
    dropped. A series whose rules cannot be read, or that repeats more than SERIES_LIMIT
    times, is ignored (and named), as calendar apps skip what they cannot show, rather than
    making the whole calendar unusable. Data that is not an iCalendar raises
    CalendarError("not_calendar"); more than MAX_SPANS busy times "too_large".
    """
    calendar = _parse(data)
    window = _Window(
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        expert=ZoneInfo(tz),
        named=_zone_named(calendar.get("X-WR-TIMEZONE")),
    )
    groups: dict[str, list[icalendar.Event]] = {}
    for number, vevent in enumerate(calendar.events):
        groups.setdefault(str(vevent.get("UID", f"#{number}")), []).append(vevent)
    counter = _Counter()
    spans: list[Span] = []
    ignored: list[Ignored] = []
    for components in groups.values():
        series = _Series(components, window)
        found: list[Span] = []
        try:
            found.extend(series.spans(counter))
        except _SeriesTooLong:
            ignored.append(series.ignored)
            continue
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError):
            # no DTSTART, a rule that cannot be read, a date out of range...
            ignored.append(series.ignored)
            continue
        spans.extend(found)
        if len(spans) > MAX_SPANS:
            raise CalendarError("too_large", detail=f"more than {MAX_SPANS} busy times")
    return Busy(_merged(spans), ignored[:MAX_IGNORED])


def busy_from_ics(data: bytes, start: datetime, end: datetime, *, tz: str) -> list[Span]:
    """The busy spans alone (see `busy_read`)."""
    return busy_read(data, start, end, tz=tz).spans
