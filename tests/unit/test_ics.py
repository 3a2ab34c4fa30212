"""Invites and feeds read back by two independent parsers (icalendar and vobject), and busy
times read from calendars built with icalendar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from portal.booking.busy import CalendarError, busy_from_ics
from portal.booking.ics import PRODID, Event, _calendar, _text, feed, invite
from portal.booking.vtimezone import vtimezone

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def booking(**changes: Any) -> Event:
    fields: dict[str, Any] = {
        "uid": "booking-3f9c2a@portal.example",
        "sequence": 1,
        "starts_at": utc(2026, 3, 2, 9),
        "ends_at": utc(2026, 3, 2, 9, 30),
        "tz": "Europe/Paris",
        "summary": "Appel · 30 min",
        "description": "L'expert vous appelle.",
        "location": "+33 1 23 45 67 89",
        "url": "https://portal.example/bookings/3f9c2a",
        "organizer": "expert@example.fr",
        "attendees": ("client@example.fr",),
    }
    return Event(**(fields | changes))


# --- two readers, one shape -------------------------------------------------------------


def read_with_icalendar(data: bytes) -> dict[str, Any]:
    calendar = icalendar.Calendar.from_ical(data)
    assert calendar.get_missing_tzids() == set()
    events = []
    for vevent in calendar.walk("VEVENT"):
        events.append(
            {
                "uid": str(vevent["UID"]),
                "sequence": int(vevent["SEQUENCE"]),
                "status": str(vevent["STATUS"]),
                "start": vevent.start.astimezone(UTC),
                "end": vevent.end.astimezone(UTC),
                "tzid": vevent["DTSTART"].params["TZID"],
                "stamp_offset": vevent.stamp.utcoffset(),
                "summary": str(vevent["SUMMARY"]),
                "description": str(vevent.get("DESCRIPTION", "")),
                "location": str(vevent.get("LOCATION", "")),
                "url": str(vevent.get("URL", "")),
                "organizer": str(vevent.get("ORGANIZER", "")),
                "attendees": [str(a) for a in vevent.attendees],
            }
        )
    return {
        "method": str(calendar["METHOD"]),
        "version": str(calendar["VERSION"]),
        "name": str(calendar.get("X-WR-CALNAME", "")),
        "timezones": {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")},
        "events": events,
    }


# vobject keeps the first VTIMEZONE it meets for each TZID, for the whole process.
VOBJECT_TZIDS: dict[str, Any] = vars(vobject.icalendar)["__tzidMap"]


def read_with_vobject(data: bytes) -> dict[str, Any]:
    """vobject computes instants from our VTIMEZONE definitions, not from the TZID's name:
    it checks that those definitions are right."""
    for tzid in set(VOBJECT_TZIDS) - {"UTC"}:
        del VOBJECT_TZIDS[tzid]  # so that this calendar's own definitions are used
    calendar = vobject.readOne(data.decode())

    def text(component: Any, name: str) -> str:
        return component.contents[name][0].value if name in component.contents else ""

    events = []
    for vevent in calendar.vevent_list:
        events.append(
            {
                "uid": vevent.uid.value,
                "sequence": int(vevent.sequence.value),
                "status": vevent.status.value,
                "start": vevent.dtstart.value.astimezone(UTC),
                "end": vevent.dtend.value.astimezone(UTC),
                "tzid": vevent.dtstart.params["X-VOBJ-ORIGINAL-TZID"][0],
                "stamp_offset": vevent.dtstamp.value.utcoffset(),
                "summary": vevent.summary.value,
                "description": text(vevent, "description"),
                "location": text(vevent, "location"),
                "url": text(vevent, "url"),
                "organizer": text(vevent, "organizer"),
                "attendees": [a.value for a in vevent.contents.get("attendee", [])],
            }
        )
    return {
        "method": calendar.method.value,
        "version": calendar.version.value,
        "name": text(calendar, "x-wr-calname"),
        "timezones": {tz.tzid.value for tz in calendar.contents.get("vtimezone", [])},
        "events": events,
    }


READERS = pytest.mark.parametrize(
    "read", [read_with_icalendar, read_with_vobject], ids=["icalendar", "vobject"]
)
Reader = Callable[[bytes], dict[str, Any]]


# --- invites ------------------------------------------------------------------------------


@READERS
def test_an_invite_is_a_request_with_the_booking_in_its_zone(read: Reader) -> None:
    parsed = read(invite(booking()))
    assert (parsed["method"], parsed["version"]) == ("REQUEST", "2.0")
    assert parsed["timezones"] == {"Europe/Paris"}
    [event] = parsed["events"]
    assert event["uid"] == "booking-3f9c2a@portal.example"
    assert event["sequence"] == 1
    assert event["status"] == "CONFIRMED"
    assert event["tzid"] == "Europe/Paris"
    assert (event["start"], event["end"]) == (utc(2026, 3, 2, 9), utc(2026, 3, 2, 9, 30))
    assert event["stamp_offset"] == timedelta(0)
    assert event["location"] == "+33 1 23 45 67 89"
    assert event["url"] == "https://portal.example/bookings/3f9c2a"
    assert event["organizer"] == "mailto:expert@example.fr"
    assert event["attendees"] == ["mailto:client@example.fr"]


@READERS
def test_an_invite_in_summer_keeps_the_instant(read: Reader) -> None:
    """11:00 in Paris in July is 09:00 UTC: the VTIMEZONE must say CEST."""
    [event] = read(invite(booking(starts_at=utc(2026, 7, 2, 9), ends_at=utc(2026, 7, 2, 10))))[
        "events"
    ]
    assert (event["start"], event["end"]) == (utc(2026, 7, 2, 9), utc(2026, 7, 2, 10))


@READERS
@pytest.mark.parametrize(
    ("event", "method"),
    [(booking(cancelled=True, sequence=2), "REQUEST"), (booking(sequence=2), "CANCEL")],
    ids=["cancelled-event", "cancel-method"],
)
def test_a_cancellation_says_cancel_and_cancelled(read: Reader, event: Event, method: str) -> None:
    parsed = read(invite(event, method=method))
    assert parsed["method"] == "CANCEL"
    [vevent] = parsed["events"]
    assert (vevent["uid"], vevent["sequence"], vevent["status"]) == (event.uid, 2, "CANCELLED")


@pytest.mark.parametrize("zones", [["Europe/Paris"], ["America/New_York", "Europe/Paris"]])
def test_zones_written_once_are_what_icalendar_writes(zones: list[str]) -> None:
    """The kept text of each VTIMEZONE, put before the events, gives the same bytes as
    icalendar writing the zones as the calendar's first components."""
    events = [booking(uid=f"booking-{n}@portal.example", tz=tz) for n, tz in enumerate(zones)]
    for _ in range(2):  # the second time from what was kept
        calendar = _calendar(events, method="PUBLISH", prodid=PRODID)
        fast = _text(calendar, events)
        calendar.subcomponents[0:0] = [vtimezone(tz) for tz in sorted(zones)]
        assert fast == calendar.to_ical()


def test_dtstamp_is_written_in_utc() -> None:
    for data in (invite(booking()), feed([booking()], name="Agenda")):
        stamps = [line for line in data.decode().splitlines() if line.startswith("DTSTAMP")]
        assert stamps
        assert all(line.startswith("DTSTAMP:") and line.endswith("Z") for line in stamps)


@READERS
def test_text_round_trips(read: Reader) -> None:
    tricky = "Rendez-vous, « été » ; à 10h\nligne 2 \\ fin — ça marche ? " + "é" * 80
    parsed = read(invite(booking(summary=tricky, description=tricky, location=tricky)))
    [event] = parsed["events"]
    assert event["summary"] == event["description"] == event["location"] == tricky


def test_an_event_refuses_naive_or_empty_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        booking(starts_at=datetime(2026, 3, 2, 9))
    with pytest.raises(ValueError, match="end after"):
        booking(ends_at=utc(2026, 3, 2, 9))


# --- feeds --------------------------------------------------------------------------------


@READERS
def test_a_feed_publishes_every_event_with_a_timezone_for_each(read: Reader) -> None:
    events = [
        booking(uid="booking-a@portal.example"),
        booking(
            uid="booking-b@portal.example",
            starts_at=utc(2026, 7, 2, 9),
            ends_at=utc(2026, 7, 2, 9, 45),
        ),
        booking(
            uid="booking-c@portal.example",
            sequence=3,
            tz="America/New_York",
            starts_at=utc(2026, 3, 4, 15),
            ends_at=utc(2026, 3, 4, 16),
            cancelled=True,
        ),
    ]
    parsed = read(feed(events, name="Réservations — Dupont"))
    assert parsed["method"] == "PUBLISH"
    assert parsed["name"] == "Réservations — Dupont"
    assert parsed["timezones"] == {"Europe/Paris", "America/New_York"}
    by_uid = {event["uid"]: event for event in parsed["events"]}
    assert set(by_uid) == {e.uid for e in events}
    for event in events:
        read_back = by_uid[event.uid]
        assert (read_back["start"], read_back["end"]) == (event.starts_at, event.ends_at)
        assert read_back["tzid"] == event.tz
        assert read_back["status"] == ("CANCELLED" if event.cancelled else "CONFIRMED")
        assert read_back["sequence"] == event.sequence


def test_an_empty_feed_is_still_a_calendar() -> None:
    calendar = icalendar.Calendar.from_ical(feed([], name="Agenda"))
    assert (calendar["METHOD"], calendar.calendar_name) == ("PUBLISH", "Agenda")
    assert calendar.events == []


def test_our_feed_read_as_an_external_calendar_skips_cancellations() -> None:
    events = [booking(), booking(uid="booking-x@portal.example", cancelled=True)]
    busy = busy_from_ics(
        feed(events, name="Agenda"), utc(2026, 3, 1), utc(2026, 3, 3), tz="Europe/Paris"
    )
    assert busy == [(utc(2026, 3, 2, 9), utc(2026, 3, 2, 9, 30))]


# --- busy times ---------------------------------------------------------------------------


def ics(*vevents: icalendar.Event, **properties: str) -> bytes:
    calendar = icalendar.Calendar()
    calendar.version = "2.0"
    calendar.prodid = "-//Tests//Other calendar//EN"
    for name, value in properties.items():
        calendar.add(name.replace("_", "-"), value)
    for vevent in vevents:
        calendar.add_component(vevent)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def vevent(
    start: date | datetime, end: date | datetime | None = None, uid: str | None = None, **extra: Any
) -> icalendar.Event:
    return icalendar.Event.new(uid=uid, start=start, end=end, **extra)


def test_a_weekly_series_with_an_exception_and_a_moved_occurrence() -> None:
    series = vevent(datetime(2026, 1, 5, 10, tzinfo=PARIS), datetime(2026, 1, 5, 11, tzinfo=PARIS))
    series.add("RRULE", {"FREQ": "WEEKLY", "BYDAY": "MO"})
    series.add("EXDATE", datetime(2026, 1, 12, 10, tzinfo=PARIS))
    moved = vevent(
        datetime(2026, 1, 20, 14, tzinfo=PARIS),
        datetime(2026, 1, 20, 15, tzinfo=PARIS),
        uid=str(series["UID"]),
        recurrence_id=datetime(2026, 1, 19, 10, tzinfo=PARIS),
    )
    busy = busy_from_ics(ics(series, moved), utc(2026, 1, 1), utc(2026, 2, 1), tz="Europe/Paris")
    assert busy == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)),
        (utc(2026, 1, 20, 13), utc(2026, 1, 20, 14)),
        (utc(2026, 1, 26, 9), utc(2026, 1, 26, 10)),
    ]


def test_a_weekly_series_keeps_its_wall_time_across_the_clock_change() -> None:
    """10:00 in Paris every Monday: 08:00 UTC in summer time, 09:00 UTC after 2026-10-25."""
    series = vevent(
        datetime(2026, 10, 19, 10, tzinfo=PARIS), datetime(2026, 10, 19, 11, tzinfo=PARIS)
    )
    series.add("RRULE", {"FREQ": "WEEKLY"})
    busy = busy_from_ics(ics(series), utc(2026, 10, 18), utc(2026, 11, 3), tz="Europe/Paris")
    assert busy == [
        (utc(2026, 10, 19, 8), utc(2026, 10, 19, 9)),
        (utc(2026, 10, 26, 9), utc(2026, 10, 26, 10)),
        (utc(2026, 11, 2, 9), utc(2026, 11, 2, 10)),
    ]


def test_an_all_day_event_is_busy_from_local_midnight_to_local_midnight() -> None:
    data = ics(vevent(date(2026, 1, 15), date(2026, 1, 16)))
    window = (utc(2026, 1, 10), utc(2026, 1, 20))
    assert busy_from_ics(data, *window, tz="Europe/Paris") == [
        (utc(2026, 1, 14, 23), utc(2026, 1, 15, 23))
    ]
    assert busy_from_ics(data, *window, tz="America/New_York") == [
        (utc(2026, 1, 15, 5), utc(2026, 1, 16, 5))
    ]


def test_floating_times_are_in_the_experts_zone_unless_the_calendar_names_one() -> None:
    floating = vevent(datetime(2026, 1, 5, 10), datetime(2026, 1, 5, 11))
    window = (utc(2026, 1, 4), utc(2026, 1, 6))
    assert busy_from_ics(ics(floating), *window, tz="Europe/Paris") == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))
    ]
    named = ics(floating, X_WR_TIMEZONE="America/New_York")
    assert busy_from_ics(named, *window, tz="Europe/Paris") == [
        (utc(2026, 1, 5, 15), utc(2026, 1, 5, 16))
    ]


def test_free_and_cancelled_events_are_not_busy() -> None:
    start, end = datetime(2026, 1, 5, 10, tzinfo=PARIS), datetime(2026, 1, 5, 11, tzinfo=PARIS)
    data = ics(
        vevent(start, end),
        vevent(start + timedelta(hours=2), end + timedelta(hours=2), transparency="TRANSPARENT"),
        vevent(start + timedelta(hours=4), end + timedelta(hours=4), status="CANCELLED"),
    )
    assert busy_from_ics(data, utc(2026, 1, 5), utc(2026, 1, 6), tz="Europe/Paris") == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))
    ]


def test_a_cancelled_occurrence_of_a_series_is_not_busy() -> None:
    series = vevent(datetime(2026, 1, 5, 10, tzinfo=PARIS), datetime(2026, 1, 5, 11, tzinfo=PARIS))
    series.add("RRULE", {"FREQ": "DAILY", "COUNT": 2})
    cancelled = vevent(
        datetime(2026, 1, 6, 10, tzinfo=PARIS),
        datetime(2026, 1, 6, 11, tzinfo=PARIS),
        uid=str(series["UID"]),
        recurrence_id=datetime(2026, 1, 6, 10, tzinfo=PARIS),
        status="CANCELLED",
    )
    busy = busy_from_ics(ics(series, cancelled), utc(2026, 1, 1), utc(2026, 1, 9), tz="UTC")
    assert busy == [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))]


def test_events_crossing_the_window_are_clipped_to_it() -> None:
    data = ics(
        vevent(utc(2026, 1, 5, 7), utc(2026, 1, 5, 9, 30)),  # crosses the start
        vevent(utc(2026, 1, 5, 17), utc(2026, 1, 5, 20)),  # crosses the end
        vevent(utc(2026, 1, 5, 6), utc(2026, 1, 5, 8)),  # ends as the window opens
        vevent(utc(2026, 1, 5, 18), utc(2026, 1, 5, 19)),  # starts as it closes
    )
    busy = busy_from_ics(data, utc(2026, 1, 5, 8), utc(2026, 1, 5, 18), tz="Europe/Paris")
    assert busy == [
        (utc(2026, 1, 5, 8), utc(2026, 1, 5, 9, 30)),
        (utc(2026, 1, 5, 17), utc(2026, 1, 5, 18)),
    ]


def test_overlapping_and_touching_events_are_merged() -> None:
    data = ics(
        vevent(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)),
        vevent(utc(2026, 1, 5, 9, 30), utc(2026, 1, 5, 11)),
        vevent(utc(2026, 1, 5, 11), utc(2026, 1, 5, 12)),
        vevent(utc(2026, 1, 5, 14), utc(2026, 1, 5, 15)),
    )
    assert busy_from_ics(data, utc(2026, 1, 5), utc(2026, 1, 6), tz="UTC") == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 12)),
        (utc(2026, 1, 5, 14), utc(2026, 1, 5, 15)),
    ]


def test_events_without_an_end() -> None:
    with_duration = vevent(utc(2026, 1, 5, 9))
    with_duration.add("DURATION", timedelta(minutes=45))
    data = ics(
        with_duration,
        vevent(utc(2026, 1, 5, 13)),  # a moment, not a span: dropped
        vevent(date(2026, 1, 7)),  # a date alone: that whole day
    )
    assert busy_from_ics(data, utc(2026, 1, 5), utc(2026, 1, 9), tz="UTC") == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 9, 45)),
        (utc(2026, 1, 7), utc(2026, 1, 8)),
    ]


def test_unreadable_or_absurd_series_are_skipped_not_fatal() -> None:
    """A series repeating every second would take minutes to expand; a rule that cannot be
    read cannot be expanded. The rest of the calendar still counts."""
    every_second = vevent(utc(2026, 1, 5, 12), utc(2026, 1, 5, 12, 0, 1))
    every_second.add("RRULE", {"FREQ": "SECONDLY"})
    unreadable = vevent(utc(2026, 1, 5, 14), utc(2026, 1, 5, 15))
    unreadable["RRULE"] = icalendar.vText("FREQ=NOPE")
    data = ics(vevent(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)), every_second, unreadable)
    assert busy_from_ics(data, utc(2026, 1, 5), utc(2026, 1, 6), tz="UTC") == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"<!doctype html><html><body>Sign in</body></html>",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        vevent(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)).to_ical(),  # an event, no calendar
    ],
    ids=["empty", "text", "html", "binary", "lone-event"],
)
def test_what_is_not_a_calendar_is_refused(data: bytes) -> None:
    with pytest.raises(CalendarError) as caught:
        busy_from_ics(data, utc(2026, 1, 1), utc(2026, 2, 1), tz="Europe/Paris")
    assert caught.value.code == "not_calendar"
    assert caught.value.message  # a sentence for the expert
