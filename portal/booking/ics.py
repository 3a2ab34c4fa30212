"""Calendars in iCalendar: the invites and feeds we publish, and the busy times we read from
the calendars experts point us to.

Everything goes through `icalendar`, never hand-written text. What we write follows RFC 5545
and 5546 as the common clients read them: a UID that stays the same for the booking's life
and says nothing about anyone, a SEQUENCE that grows on each change, METHOD:CANCEL with
STATUS:CANCELLED for a cancellation (Gmail keeps the event otherwise), DTSTAMP in UTC, and a
VTIMEZONE for every TZID, complete and the same in every file (`portal.booking.vtimezone`).
What we read comes from anyone's server: it is fetched within limits of redirects, size and
time, and every failure is a CalendarError with a stable code (its busy times are then read
by `portal.booking.busy`, in `portal.booking.sandbox`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import httpx
import icalendar

from portal.booking.busy import CalendarError
from portal.booking.vtimezone import vtimezone

PRODID = "-//Portal//Bookings//FR"
# How often subscribed clients should refresh the feed, for those that listen (Apple,
# Outlook); Google refreshes on its own schedule.
FEED_REFRESH = timedelta(hours=1)
MAX_REDIRECTS = 5


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
    """The calendar and its events, without their zones (see `_text`)."""
    calendar = icalendar.Calendar()
    calendar.version = "2.0"
    calendar.prodid = prodid
    calendar.method = method
    for event in events:
        calendar.add_component(_vevent(event))
    return calendar


@lru_cache(maxsize=64)
def _zone_text(tz: str) -> bytes:
    return vtimezone(tz).to_ical()


def _text(calendar: icalendar.Calendar, events: Sequence[Event]) -> bytes:
    """The calendar's text with the VTIMEZONE of each of its events' zones before the first
    event: the bytes icalendar writes when the zones are its first components, without
    writing each zone's long history again for every invite (two thirds of an invite's
    cost). The zones' text is kept per zone; it depends on the zone's rules only."""
    text = calendar.to_ical()
    if not events:
        return text
    at = text.index(b"\r\nBEGIN:VEVENT\r\n") + 2  # a line of its own, not folded text
    zones = b"".join(_zone_text(tz) for tz in sorted({event.tz for event in events}))
    return text[:at] + zones + text[at:]


def invite(event: Event, *, method: str = "REQUEST", prodid: str = PRODID) -> bytes:
    """One event for one person's calendar (an email attachment, a download). A cancelled
    event is always sent as a cancellation, and a cancellation always says CANCELLED."""
    if method == "CANCEL":
        event = replace(event, cancelled=True)
    method = "CANCEL" if event.cancelled else method
    return _text(_calendar([event], method=method, prodid=prodid), [event])


def feed(events: Sequence[Event], *, name: str, prodid: str = PRODID) -> bytes:
    """A subscription feed. Cancelled events stay in it, marked STATUS:CANCELLED, so that
    clients that already show them learn of the cancellation (Apple strikes them through,
    Google drops them)."""
    calendar = _calendar(events, method="PUBLISH", prodid=prodid)
    calendar.calendar_name = name  # NAME and X-WR-CALNAME
    calendar.add("REFRESH-INTERVAL", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", icalendar.vDuration(FEED_REFRESH))
    return _text(calendar, events)


# --- what we read ----------------------------------------------------------------------


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
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
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
    non-public network are refused ("private") unless `allow_private` (CALENDARS_ALLOW_PRIVATE:
    a firm's own calendar server on its network).
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
