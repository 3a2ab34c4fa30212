"""VTIMEZONE components that follow the rules of the zone, whatever the dates of the events.

Read from the zone's TZif file, the one `zoneinfo` uses (RFC 8536): its transitions, and
the POSIX TZ string at its end that says the rule in force since the last change of law
("CET-1CEST,M3.5.0,M10.5.0/3": last Sunday of March at 02:00, last Sunday of October at
03:00). Written as clients read best (RFC 5545 §3.6.5):

- the zone as it was on 1970-01-01, then every transition since, each DTSTART in the local
  time *before* the change (02:00 for the spring change in Paris, not 03:00);
- the rule in force as STANDARD and DAYLIGHT with a yearly RRULE from the first change it
  governs, so no end date: clients compute any year, and two invites of the same zone carry
  the same definition (a client that keeps the first one it met, as vobject and Radicale
  do, reads every later invite right);
- a rule that RRULE cannot say (a change at 24:00 of the last Thursday, which may fall in
  the next month) as its transitions, year by year, until 2100.
"""

from __future__ import annotations

import re
import struct
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path

import icalendar

HISTORY_FROM = datetime(1970, 1, 1, tzinfo=UTC)
EXPLICIT_UNTIL = 2100  # the last year written out for a rule RRULE cannot say
_ICAL_DAYS = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]  # POSIX counts from Sunday
_SHORTEST_MONTH = {2: 28, 4: 30, 6: 30, 9: 30, 11: 30}


@dataclass(frozen=True, slots=True)
class _Type:
    offset: int  # seconds east of UTC
    is_dst: bool
    name: str


@dataclass(frozen=True, slots=True)
class _Change:
    at: int  # UTC, seconds since the epoch
    before: _Type
    after: _Type


@dataclass(frozen=True, slots=True)
class _Date:
    """A POSIX rule's day: Mm.w.d (w = 5: the last), Jn (1-365, no Feb 29), n (0-365)."""

    kind: str  # "M", "J" or "n"
    month: int = 0
    week: int = 0
    weekday: int = 0  # 0 = Sunday
    day: int = 0
    seconds: int = 7200  # local time of the change, in the time before it; may pass 24:00

    def local(self, year: int) -> datetime:
        """The local time of the change in `year` (naive, in the offset before it)."""
        if self.kind == "J":
            start = date(year, 1, 1) + timedelta(days=self.day - 1)
            if self.day >= 60 and _leap(year):
                start += timedelta(days=1)
        elif self.kind == "n":
            start = date(year, 1, 1) + timedelta(days=self.day)
        else:
            first = date(year, self.month, 1)
            start = first + timedelta(days=(self.weekday - (first.weekday() + 1)) % 7)
            start += timedelta(weeks=self.week - 1)
            while start.month != self.month:  # week 5: the last such day of the month
                start -= timedelta(weeks=1)
        return datetime.combine(start, datetime.min.time()) + timedelta(seconds=self.seconds)

    def rrule(self) -> dict[str, object] | None:
        """The yearly RRULE that gives these days, when RRULE can say it."""
        if self.kind != "M":
            return None
        days, _time = divmod(self.seconds, 86400)
        weekday = _ICAL_DAYS[(self.weekday + days) % 7]
        if days == 0:
            return {
                "FREQ": "YEARLY",
                "BYMONTH": self.month,
                "BYDAY": f"{self.week % 5 or -1}{weekday}",
            }
        shortest = _SHORTEST_MONTH.get(self.month, 31)
        if self.week == 5:
            first, last = -7 + days, -1 + days
            fits = -shortest <= first and last <= -1
        else:
            first, last = (self.week - 1) * 7 + 1 + days, self.week * 7 + days
            fits = first >= 1 and last <= shortest
        if not fits:
            return None
        return {
            "FREQ": "YEARLY",
            "BYMONTH": self.month,
            "BYDAY": weekday,
            "BYMONTHDAY": list(range(first, last + 1)),
        }


@dataclass(frozen=True, slots=True)
class _Rule:
    standard: _Type
    daylight: _Type | None = None
    starts: _Date | None = None  # of daylight time
    ends: _Date | None = None

    def changes(self, year: int) -> list[_Change]:
        if self.daylight is None or self.starts is None or self.ends is None:
            return []
        found = [
            _Change(_epoch(self.starts.local(year), self.standard), self.standard, self.daylight),
            _Change(_epoch(self.ends.local(year), self.daylight), self.daylight, self.standard),
        ]
        return sorted(found, key=lambda change: change.at)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _epoch(local: datetime, offset: _Type) -> int:
    return int((local.replace(tzinfo=UTC) - HISTORY_FROM).total_seconds()) - offset.offset


# --- the TZif file ---------------------------------------------------------------------------


def _tzif_bytes(key: str) -> bytes:
    """The file ZoneInfo(key) reads: the first of TZPATH that has it, else `tzdata`."""
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / key
        if path.is_file():
            return path.read_bytes()
    package, _, name = f"tzdata.zoneinfo.{key}".replace("/", ".").rpartition(".")
    return resources.files(package).joinpath(name).read_bytes()


def _tzif(data: bytes) -> tuple[list[int], list[int], list[_Type], str]:
    """Transition times, the type each leads to, the types, and the POSIX TZ string."""
    if data[:4] != b"TZif":
        raise ValueError("not a TZif file")
    counts = struct.unpack(">6l", data[20:44])
    version, offset, size = data[4], 44, 4
    if version >= ord("2"):  # skip the 32-bit block for the 64-bit one
        isut, isstd, leap, times, types, chars = counts
        offset += times * 5 + types * 6 + chars + leap * 8 + isstd + isut + 44
        counts = struct.unpack(">6l", data[offset - 24 : offset])
        size = 8
    isut, isstd, leap, times, types, chars = counts
    at = list(
        struct.unpack(f">{times}{'q' if size == 8 else 'l'}", data[offset : offset + times * size])
    )
    offset += times * size
    index = list(data[offset : offset + times])
    offset += times
    raw = [struct.unpack(">lBB", data[offset + 6 * n : offset + 6 * n + 6]) for n in range(types)]
    offset += types * 6
    names = data[offset : offset + chars]
    offset += chars + leap * (size + 4) + isstd + isut
    kinds = [
        _Type(utoff, bool(dst), names[start : names.index(b"\0", start)].decode())
        for utoff, dst, start in raw
    ]
    footer = data[offset:].strip(b"\n").decode() if size == 8 else ""
    return at, index, kinds, footer


_NAME = r"(<[^>]+>|[A-Za-z]{3,})"
_CLOCK = r"([+-]?\d{1,3}(?::\d{1,2}){0,2})"
_POSIX = re.compile(
    rf"^{_NAME}{_CLOCK}(?:{_NAME}{_CLOCK}?(?:,([^,]+),([^,]+))?)?$",
)


def _seconds(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")] + [0, 0]
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _date(text: str) -> _Date:
    day, _, clock = text.partition("/")
    seconds = _seconds(clock) if clock else 7200
    if day.startswith("M"):
        month, week, weekday = (int(p) for p in day[1:].split("."))
        return _Date("M", month=month, week=week, weekday=weekday, seconds=seconds)
    if day.startswith("J"):
        return _Date("J", day=int(day[1:]), seconds=seconds)
    return _Date("n", day=int(day), seconds=seconds)


def _rule(footer: str) -> _Rule | None:
    match = _POSIX.match(footer)
    if match is None:
        return None
    std_name, std_clock, dst_name, dst_clock, starts, ends = match.groups()
    standard = _Type(-_seconds(std_clock), False, std_name.strip("<>"))
    if dst_name is None:
        return _Rule(standard)
    dst_offset = -_seconds(dst_clock) if dst_clock else standard.offset + 3600
    daylight = _Type(dst_offset, True, dst_name.strip("<>"))
    if starts is None or ends is None:  # POSIX's default rule: none is used by tzdata
        return _Rule(standard)
    return _Rule(standard, daylight, _date(starts), _date(ends))


# --- the component ---------------------------------------------------------------------------


def _year(at: int) -> int:
    return (HISTORY_FROM + timedelta(seconds=at)).year


def _is_ruled(change: _Change, rule: _Rule) -> bool:
    return change in rule.changes(_year(change.at + change.before.offset))


@dataclass(frozen=True, slots=True)
class _Zone:
    initial: _Type  # in force on HISTORY_FROM
    history: tuple[_Change, ...]  # written out one by one
    rule: _Rule | None  # in force after the history, as RRULEs
    ruled_from: int  # when the rule's first change may happen


@lru_cache(maxsize=64)
def _zone(key: str) -> _Zone:
    at, index, kinds, footer = _tzif(_tzif_bytes(key))
    rule = _rule(footer)
    initial = kinds[0]  # before the first transition (RFC 8536)
    for moment, kind in zip(at, index, strict=True):
        if moment <= 0:
            initial = kinds[kind]
    changes: list[_Change] = []
    current = initial
    for moment, kind in zip(at, index, strict=True):
        if moment > 0 and kinds[kind] != current:
            changes.append(_Change(moment, current, kinds[kind]))
            current = kinds[kind]
    ruled_from = at[-1] + 1 if at else 0
    if rule is not None and rule.daylight is not None:
        while changes and _is_ruled(changes[-1], rule):
            ruled_from = changes.pop().at
        if (
            rule.starts is not None
            and rule.ends is not None
            and not (rule.starts.rrule() and rule.ends.rrule())
        ):
            last = _year(ruled_from)
            for year in range(last - 1, EXPLICIT_UNTIL + 1):
                changes.extend(c for c in rule.changes(year) if c.at >= ruled_from)
            rule = None
    return _Zone(initial, tuple(changes), rule, max(ruled_from, 0))


def _wall(change: _Change) -> datetime:
    """When a change happens, in the local time before it (what DTSTART says)."""
    return (HISTORY_FROM + timedelta(seconds=change.at + change.before.offset)).replace(tzinfo=None)


def _part(kind: _Type, before: _Type, start: datetime) -> icalendar.Component:
    part = icalendar.TimezoneDaylight() if kind.is_dst else icalendar.TimezoneStandard()
    part.add("DTSTART", start)
    part.add("TZOFFSETFROM", timedelta(seconds=before.offset))
    part.add("TZOFFSETTO", timedelta(seconds=kind.offset))
    part.add("TZNAME", kind.name)
    return part


def vtimezone(key: str) -> icalendar.Timezone:
    """The VTIMEZONE of an IANA zone, with TZID `key`."""
    zone = _zone(key)
    component = icalendar.Timezone()
    component.add("TZID", key)
    component.add_component(_part(zone.initial, zone.initial, HISTORY_FROM.replace(tzinfo=None)))
    groups: dict[tuple[_Type, _Type], list[datetime]] = {}
    for change in zone.history:
        groups.setdefault((change.before, change.after), []).append(_wall(change))
    for (before, after), starts in groups.items():
        part = _part(after, before, starts[0])
        for start in starts[1:]:
            part.add("RDATE", start)
        component.add_component(part)
    rule = zone.rule
    if rule is not None and rule.starts is not None and rule.ends is not None:
        year = _year(zone.ruled_from) - 1
        for when in (rule.starts, rule.ends):
            first = next(
                change
                for y in range(year, year + 3)
                for change in rule.changes(y)
                if change.at >= zone.ruled_from and change.after.is_dst == (when is rule.starts)
            )
            part = _part(first.after, first.before, _wall(first))
            part.add("RRULE", when.rrule())
            component.add_component(part)
    return component
