"""Availability, date overrides, external calendars and bookings.

Times are stored in UTC; weekly hours and overrides are wall-clock times of the expert's
time zone (stored with them), turned into instants only when slots are computed.
"""

from __future__ import annotations

import json
from enum import StrEnum

from piccolo.columns import (
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.accounts.tables import Expert, User
from portal.credits.tables import Hold


class CallMode(StrEnum):
    expert_calls = "expert_calls"  # the client gives a number when booking
    client_calls = "client_calls"  # the client calls the expert's number


class Availability(Table, tablename="booking_availability"):
    """When an expert takes bookings, and how calls and video calls happen."""

    id: Serial  # the primary key Piccolo adds, declared for type checkers
    expert = ForeignKey(Expert, null=False, unique=True, on_delete=OnDelete.cascade)
    timezone = Varchar(length=64, null=False)
    weekly = Text(null=False)  # JSON: {"mon": [["09:00", "12:30"], ...], ...}
    call_mode = Varchar(
        length=16, choices=CallMode, default=CallMode.expert_calls.value, null=False
    )
    phone = Varchar(length=40, default="", null=False)  # the expert's, for client_calls
    meeting_url = Varchar(length=500, default="", null=False)  # empty: a room per booking
    feed_token = Varchar(length=64, null=False, unique=True)  # the private calendar feed
    updated_at = Timestamptz(default=TimestamptzNow(), null=False)


class DateOverride(Table, tablename="booking_date_override"):
    """Different hours on one date (a holiday: no hours at all)."""

    id: Serial
    expert = ForeignKey(Expert, null=False, on_delete=OnDelete.cascade, index=True)
    day = Date(null=False)  # unique with expert (migration)
    hours = Text(default="[]", null=False)  # JSON: [["09:00", "12:00"]]; [] = closed
    note = Varchar(length=120, default="", null=False)


class CalendarStatus(StrEnum):
    pending = "pending"  # never synchronised yet
    ok = "ok"
    error = "error"


class ExternalCalendar(Table, tablename="booking_external_calendar"):
    """An expert's other calendar (an ICS address): its busy times are never offered."""

    id: Serial
    expert = ForeignKey(Expert, null=False, on_delete=OnDelete.cascade, index=True)
    url = Varchar(length=2000, null=False)
    name = Varchar(length=80, default="", null=False)
    status = Varchar(
        length=16, choices=CalendarStatus, default=CalendarStatus.pending.value, null=False
    )
    error = Varchar(length=40, default="", null=False)  # a CalendarError code
    busy = Text(default="[]", null=False)  # JSON: [[start, end], ...] ISO UTC, the horizon
    # JSON: [{"uid", "summary"}, ...], the series not read (repeating too often, unreadable)
    ignored = Text(default="[]", null=False)
    synced_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)

    def ignored_series(self) -> list[dict[str, str]]:
        return json.loads(self.ignored or "[]")


class BookingStatus(StrEnum):
    booked = "booked"  # credits held; occupies its time
    completed = "completed"  # confirmed after its end: credits captured
    cancelled = "cancelled"
    no_show_client = "no_show_client"  # captured as the charter says
    no_show_expert = "no_show_expert"  # released


class Booking(Table, tablename="booking_booking"):
    """A slot booked by a client, with the charter terms it was booked under.

    Only `booked` bookings occupy time: PostgreSQL refuses two of them overlapping for one
    expert (an exclusion constraint on [starts_at, blocked_until), which includes the
    buffer); SQLite checks inside an immediate transaction.
    """

    id: Serial
    expert = ForeignKey(Expert, null=False, on_delete=OnDelete.restrict, index=True)
    client = ForeignKey(User, null=False, on_delete=OnDelete.restrict, index=True)
    channel = Varchar(length=8, null=False)  # call, video
    duration = Integer(null=False)  # minutes
    starts_at = Timestamptz(null=False)
    ends_at = Timestamptz(null=False)
    blocked_until = Timestamptz(null=False)  # ends_at + the charter's buffer
    status = Varchar(
        length=16, choices=BookingStatus, default=BookingStatus.booked.value, null=False
    )
    credits = Integer(null=False)
    charter_version = Integer(null=False)
    cancel_free_hours = Integer(null=False)  # the charter's terms, frozen at booking
    cancel_late_forfeit_percent = Integer(null=False)
    no_show_client_percent = Integer(null=False)
    timezone = Varchar(length=64, null=False)  # the client's, for what they are shown
    # How a call happens, as agreed at booking (the expert may change their settings later).
    call_mode = Varchar(length=16, default="", null=False)  # a CallMode, calls only
    phone = Varchar(length=40, default="", null=False)  # the client's, when the expert calls
    expert_phone = Varchar(length=40, default="", null=False)  # when the client calls
    meeting_url = Varchar(length=500, default="", null=False)
    hold = ForeignKey(Hold, null=True, default=None, on_delete=OnDelete.restrict)
    key = Varchar(length=120, null=False, unique=True)  # one booking per submitted form
    uid = Varchar(length=64, null=False, unique=True)  # iCalendar UID: no personal data
    sequence = Integer(default=0, null=False)  # iCalendar SEQUENCE: grows on each change
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    cancelled_at = Timestamptz(null=True, default=None)
    cancelled_by = Varchar(length=8, default="", null=False)  # client, expert
    cancel_reason = Text(default="", null=False)  # the expert's, shown to the client
    no_show_reported_by = Varchar(length=8, default="", null=False)  # client, expert
    # A client's no-show contested (within CONTEST_WITHIN of it), and the expert's answer.
    contest_text = Text(default="", null=False)
    contested_at = Timestamptz(null=True, default=None)
    contest_decision = Varchar(length=8, default="", null=False)  # accepted, rejected
    contest_reply = Text(default="", null=False)  # the expert's reason for keeping it
    decided_at = Timestamptz(null=True, default=None)
    settled_at = Timestamptz(null=True, default=None)
