"""Calendars in iCalendar: the invites and feeds we publish, and the busy times we read from
the calendars experts point us to.

Everything goes through `icalendar`, never hand-written text. What we write follows RFC 5545
and 5546 as the common clients read them: a UID that stays the same for the booking's life
and says nothing about anyone, a SEQUENCE that grows on each change, METHOD:CANCEL with
STATUS:CANCELLED for a cancellation (Gmail keeps the event otherwise), DTSTAMP in UTC, and a
VTIMEZONE for every TZID. What we read comes from anyone's server: it is fetched within
limits of redirects, size and time, and every failure is a CalendarError with a stable code.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import icalendar
import recurring_ical_events

from portal.errors import N_, DomainError

PRODID = "-//Portal//Bookings//FR"
# How often subscribed clients should refresh the feed, for those that listen (Apple,
# Outlook); Google refreshes on its own schedule.
FEED_REFRESH = timedelta(hours=1)
# Local dates may differ from UTC dates by a day either way.
TIMEZONE_MARGIN = timedelta(days=2)
MAX_REDIRECTS = 5
# Expanding a rule walks every repetition since its DTSTART: one that repeats every second,
# minute or hour from centuries ago costs minutes of CPU for one line of text. No personal
# calendar has such events; they are skipped.
TOO_FREQUENT = frozenset({"SECONDLY", "MINUTELY", "HOURLY"})
MAX_SPANS = 20_000  # busy spans kept from one calendar (a year of a very full diary)

Span = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Event:
    """A booking as a calendar sees it. Clients match their copy by `uid` and keep the one
    with the highest `sequence`, so both must come from the booking, not from this call."""

    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    tz: str
    summary: str
    description: str = ""
    location: str = ""
    url: str = ""
    cancelled: bool = False
    organizer: str = ""
    attendees: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A naive time would silently be read in the server's zone.
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("an event's times must be aware")
        if self.ends_at <= self.starts_at:
            raise ValueError("an event must end after it starts")


class CalendarError(DomainError):
    """An external calendar we cannot use. `code` says why; the message says it to the
    expert; `detail` says exactly what happened, for the logs."""

    REASONS = {
        "bad_url": N_("This is not the address of a calendar (https://… or webcal://…)."),
        "unreachable": N_("The calendar could not be reached."),
        "http_status": N_("The calendar's server answered with an error."),
        "too_large": N_("The calendar is too large."),
        "not_calendar": N_("This is not a calendar in iCalendar (.ics) format."),
        "private": N_(
            "This address leads into a private network: give the calendar's public address."
        ),
    }

    def __init__(self, code: str, *, detail: str = "") -> None:
        self.detail = detail
        super().__init__(self.REASONS[code], code=code)


# --- what we publish -------------------------------------------------------------------


def _vevent(event: Event) -> icalendar.Event:
    zone = ZoneInfo(event.tz)
    return icalendar.Event.new(
        uid=event.uid,
        sequence=event.sequence,
        start=event.starts_at.astimezone(zone),
        end=event.ends_at.astimezone(zone),
        summary=event.summary,
        description=event.description or None,
        location=event.location or None,
        url=event.url or None,
        status=icalendar.STATUS.CANCELLED if event.cancelled else icalendar.STATUS.CONFIRMED,
        organizer=f"mailto:{event.organizer}" if event.organizer else None,
        attendees=[icalendar.vCalAddress(f"mailto:{email}") for email in event.attendees],
    )


def _calendar(events: Sequence[Event], *, method: str, prodid: str) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.version = "2.0"
    calendar.prodid = prodid
    calendar.method = method
    for event in events:
        calendar.add_component(_vevent(event))
    if events:
        # Each VTIMEZONE covers the events' dates only: a few lines rather than every
        # transition since 1970, and no long RDATE lists, which some readers get wrong.
        calendar.add_missing_timezones(
            first_date=min(event.starts_at for event in events).date() - TIMEZONE_MARGIN,
            last_date=max(event.ends_at for event in events).date() + TIMEZONE_MARGIN,
        )
    return calendar


def invite(event: Event, *, method: str = "REQUEST", prodid: str = PRODID) -> bytes:
    """One event for one person's calendar (an email attachment, a download). A cancelled
    event is always sent as a cancellation, and a cancellation always says CANCELLED."""
    if method == "CANCEL":
        event = replace(event, cancelled=True)
    method = "CANCEL" if event.cancelled else method
    return _calendar([event], method=method, prodid=prodid).to_ical()


def feed(events: Sequence[Event], *, name: str, prodid: str = PRODID) -> bytes:
    """A subscription feed. Cancelled events stay in it, marked STATUS:CANCELLED, so that
    clients that already show them learn of the cancellation (Apple strikes them through,
    Google drops them)."""
    calendar = _calendar(events, method="PUBLISH", prodid=prodid)
    calendar.calendar_name = name  # NAME and X-WR-CALNAME
    calendar.add("REFRESH-INTERVAL", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", icalendar.vDuration(FEED_REFRESH))
    return calendar.to_ical()


# --- what we read ----------------------------------------------------------------------


def _parse(data: bytes) -> icalendar.Calendar:
    """The calendar, less the series that repeat too often to expand (TOO_FREQUENT)."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise CalendarError("not_calendar", detail=str(exc)[:200]) from exc
    if not isinstance(calendar, icalendar.Calendar):
        raise CalendarError("not_calendar", detail=f"a lone {calendar.name}")
    calendar.subcomponents = [c for c in calendar.subcomponents if not _too_frequent(c)]
    return calendar


def _too_frequent(component: icalendar.Component) -> bool:
    rules = component.rrules if isinstance(component, icalendar.Event) else []
    return any(
        isinstance(rule, icalendar.vRecur) and TOO_FREQUENT.intersection(rule.get("FREQ", ()))
        for rule in rules
    )


def _is_busy(vevent: icalendar.Component) -> bool:
    transparent = str(vevent.get("TRANSP", "")).upper() == "TRANSPARENT"
    return not transparent and str(vevent.get("STATUS", "")).upper() != "CANCELLED"


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """Aware UTC. A date is the local midnight that starts it, a floating time a local time."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), zone)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def busy_from_ics(data: bytes, start: datetime, end: datetime, *, tz: str) -> list[Span]:
    """When an external calendar is busy between `start` and `end` (aware): sorted, merged
    spans in UTC, clipped to the window.

    Recurring events are expanded. Dates (all-day events) and floating times are read in
    `tz`, the expert's zone. Transparent
    ("free") and cancelled events are not busy; events of no length are dropped. A series
    whose rules cannot be read is skipped, as calendar apps do, rather than making the whole
    calendar unusable; data that is not an iCalendar raises CalendarError("not_calendar").
    """
    zone = ZoneInfo(tz)
    calendar = _parse(data)
    window_start, window_end = start.astimezone(UTC), end.astimezone(UTC)
    spans: list[Span] = []
    try:
        query = recurring_ical_events.of(calendar, skip_bad_series=True)
        for vevent in query.between(start.astimezone(zone), end.astimezone(zone)):
            if not _is_busy(vevent):
                continue
            span_start = max(_instant(vevent.start, zone), window_start)
            span_end = min(_instant(vevent.end, zone), window_end)
            if span_start < span_end:
                spans.append((span_start, span_end))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # e.g. no DTSTART
        raise CalendarError("not_calendar", detail=f"{type(exc).__name__}: {exc}"[:200]) from exc
    if len(spans) > MAX_SPANS:
        raise CalendarError("too_large", detail=f"more than {MAX_SPANS} busy times")
    return _merged(spans)


def _http_url(url: str) -> httpx.URL:
    """The address to fetch; webcal:// is how calendar apps write a subscription's https://."""
    try:
        parsed = httpx.URL(url.strip())
        host = parsed.host  # decoding an international name can fail here
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise CalendarError("bad_url", detail=str(exc)[:200]) from exc
    if parsed.scheme == "webcal":
        parsed = parsed.copy_with(scheme="https")
    if parsed.scheme not in ("http", "https") or not host:
        raise CalendarError("bad_url", detail=url[:200])
    return parsed


async def _body(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, read no further than `max_bytes` (decompressed bytes are what count)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise CalendarError("too_large", detail=f"{declared} bytes announced")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise CalendarError("too_large", detail=f"more than {max_bytes} bytes")
    return bytes(body)


async def _check_public(url: httpx.URL) -> None:
    """The address comes from an expert: it must not lead into the portal's own network
    (loopback, private ranges, link-local cloud metadata services)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(url.host, port)
    except OSError as exc:
        raise CalendarError("unreachable", detail=f"{url.host}: {exc}"[:200]) from exc
    for *_rest, address in found:
        if not ipaddress.ip_address(address[0]).is_global:
            raise CalendarError("private", detail=f"{url.host} is not a public address")


async def _download(
    client: httpx.AsyncClient, url: httpx.URL, max_bytes: int, allow_private: bool
) -> bytes:
    # Redirects are followed here rather than by httpx, so that the limit and the check of
    # each address hold whatever client the caller passes.
    for _hop in range(MAX_REDIRECTS + 1):
        if not allow_private:
            await _check_public(url)
        async with client.stream("GET", url, follow_redirects=False) as response:
            if response.next_request is not None:
                url = _http_url(str(response.next_request.url))
                continue
            if not response.is_success:
                raise CalendarError("http_status", detail=f"HTTP {response.status_code}")
            return await _body(response, max_bytes)
    raise CalendarError("unreachable", detail=f"more than {MAX_REDIRECTS} redirects")


async def fetch_ics(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    max_bytes: int = 5_000_000,
    timeout: float = 10.0,  # noqa: ASYNC109 (one deadline per calendar, whatever the client)
    allow_private: bool = False,
) -> bytes:
    """The raw body of an external calendar. The address comes from the expert and the
    server can be anyone's, so any failure is a CalendarError ("bad_url", "unreachable",
    "http_status", "too_large"), never another exception.

    `timeout` bounds the whole exchange: httpx's own timeouts apply to each read, which a
    server sending a byte now and then would never reach. Addresses that resolve to a
    non-public network are refused ("private") unless `allow_private` (tests on loopback).
    """
    target = _http_url(url)
    try:
        async with asyncio.timeout(timeout):
            if client is None:
                async with httpx.AsyncClient() as own_client:
                    return await _download(own_client, target, max_bytes, allow_private)
            return await _download(client, target, max_bytes, allow_private)
    except TimeoutError as exc:
        raise CalendarError("unreachable", detail=f"no answer within {timeout} s") from exc
    except httpx.HTTPError as exc:
        raise CalendarError("unreachable", detail=f"{type(exc).__name__}: {exc}"[:200]) from exc
