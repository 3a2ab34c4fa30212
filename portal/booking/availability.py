"""When an expert takes bookings: weekly hours in their time zone, date overrides (a
holiday, different hours), external calendars, and how calls and video calls happen.

An expert's availability starts as their charter's working hours; they change it here
without publishing a new charter (hours are not a price).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from portal.accounts.tables import Expert
from portal.booking.slots import Span, open_spans
from portal.booking.tables import Availability, CallMode, DateOverride, ExternalCalendar
from portal.charter.rules import (
    WEEKDAYS,
    Interval,
    Rules,
    check_periods,
    format_hours,
    parse_hours,
)
from portal.charter.services import version_current
from portal.db import is_postgres, is_unique_violation, write_transaction
from portal.errors import N_, NotFound, ValidationFailed
from portal.i18n import timezones
from portal.validation import DIGITS, check_text

MAX_CALENDARS = 5
MAX_OVERRIDES_AHEAD = 400


def _token() -> str:
    return secrets.token_urlsafe(24)


def weekly_of(availability: Availability) -> dict[str, list[Interval]]:
    return {
        day: [Interval(start, end) for start, end in periods]
        for day, periods in json.loads(availability.weekly).items()
    }


def weekly_minutes(weekly: dict[str, list[Interval]]) -> dict[int, list[tuple[int, int]]]:
    """{"mon": [09:00-12:30]} -> {0: [(540, 750)]}, as slot computation wants it."""
    return {
        WEEKDAYS.index(day): [period.minutes() for period in periods]
        for day, periods in weekly.items()
        if day in WEEKDAYS
    }


def _encode(weekly: dict[str, list[Interval]]) -> str:
    return json.dumps({day: [[p.start, p.end] for p in periods] for day, periods in weekly.items()})


async def availability_of(expert: Expert) -> Availability:
    """The expert's availability, made from their charter's hours the first time.

    Call it outside transactions: a row made inside one that then rolls back would vanish
    under a concurrent request that had waited for it.
    """
    query = Availability.objects().where(Availability.expert == expert.id)
    if (found := await query.first()) is not None:
        return found
    current = await version_current(expert=expert)
    rules = current.rules if current is not None else Rules()
    try:
        async with write_transaction():
            if (found := await query.first()) is not None:
                return found
            made = Availability(
                expert=expert.id,
                timezone=rules.timezone,
                weekly=_encode(rules.working_hours),
                feed_token=_token(),
            )
            await made.save()
            return made
    except Exception as exc:  # PostgreSQL: made meanwhile by another request
        if not is_unique_violation(exc) or (found := await query.first()) is None:
            raise
        return found


@dataclass(frozen=True, slots=True)
class AvailabilityForm:
    timezone: str
    hours: dict[str, str]  # weekday -> "09:00-12:30, 14:00-18:00"
    call_mode: str
    phone: str
    meeting_url: str


def form_of(availability: Availability) -> dict[str, str]:
    form = {f"hours_{day}": format_hours(p) for day, p in weekly_of(availability).items()}
    form.update(
        timezone=availability.timezone,
        call_mode=availability.call_mode,
        phone=availability.phone,
        meeting_url=availability.meeting_url,
    )
    return form


def _phone_ok(text: str) -> bool:
    digits = [c for c in text if c in DIGITS]
    return 6 <= len(digits) <= 15 and all(c in DIGITS or c in "+ .-()" for c in text)


def _url_ok(text: str, schemes: tuple[str, ...] = ("https",), longest: int = 500) -> bool:
    parts = urlsplit(text)
    return parts.scheme in schemes and bool(parts.hostname) and len(text) <= longest


async def availability_save(expert: Expert, form: AvailabilityForm) -> Availability:
    """Check everything, report every problem at once, then save."""
    errors: dict[str, str] = {}
    weekly: dict[str, list[Interval]] = {}
    for day in WEEKDAYS:
        periods = parse_hours(form.hours.get(day, ""))
        if periods is None:
            errors[f"hours_{day}"] = N_("Write periods as 09:00-12:30, separated by commas.")
        elif (problem := check_periods(periods)) is not None:
            errors[f"hours_{day}"] = problem
        elif periods:
            weekly[day] = sorted(periods, key=lambda p: p.start)
    if not weekly and not any(k.startswith("hours_") for k in errors):
        errors["hours_mon"] = N_("Set at least one working period in the week.")
    if form.timezone not in timezones():
        errors["timezone"] = N_("Choose a time zone from the list.")
    if form.call_mode not in CallMode.__members__:
        errors["call_mode"] = N_("Choose how calls happen.")
    phone = form.phone.strip()
    if form.call_mode == CallMode.client_calls.value and not _phone_ok(phone):
        errors["phone"] = N_("A phone number clients can call, e.g. +33 1 23 45 67 89.")
    elif phone and not _phone_ok(phone):
        errors["phone"] = N_("A phone number, e.g. +33 1 23 45 67 89.")
    url = form.meeting_url.strip()
    if url and not _url_ok(url):
        errors["meeting_url"] = N_("An address starting with https://, or nothing.")
    check_text(errors, "phone", phone)
    check_text(errors, "meeting_url", url)
    if errors:
        raise ValidationFailed(errors)
    availability = await availability_of(expert)
    await Availability.update(
        {
            Availability.timezone: form.timezone,
            Availability.weekly: _encode(weekly),
            Availability.call_mode: form.call_mode,
            Availability.phone: phone,
            Availability.meeting_url: url,
        }
    ).where(Availability.id == availability.id)
    saved = await Availability.objects().get(Availability.id == availability.id)
    if saved is None:  # its expert deleted meanwhile
        raise NotFound(N_("This expert does not exist."))
    return saved


async def feed_token_rotate(expert: Expert) -> str:
    """A new private feed address; the old one stops working at once."""
    availability = await availability_of(expert)
    token = _token()
    await Availability.update({Availability.feed_token: token}).where(
        Availability.id == availability.id
    )
    return token


async def overrides_of(expert: Expert, *, first: date, last: date) -> dict[date, list[Interval]]:
    rows = await DateOverride.select(DateOverride.day, DateOverride.hours).where(
        (DateOverride.expert == expert.id)
        & (DateOverride.day >= first)
        & (DateOverride.day <= last)
    )
    return {
        row["day"]: [Interval(start, end) for start, end in json.loads(row["hours"])]
        for row in rows
    }


async def override_list(expert: Expert, *, first: date) -> list[DateOverride]:
    return (
        await DateOverride.objects()
        .where((DateOverride.expert == expert.id) & (DateOverride.day >= first))
        .order_by(DateOverride.day)
        .limit(MAX_OVERRIDES_AHEAD)
    )


async def override_set(expert: Expert, *, day: date, hours: str, note: str) -> DateOverride:
    """Hours for one date instead of the weekly ones; no hours: closed that day."""
    periods = parse_hours(hours)
    if periods is None:
        raise ValidationFailed({"hours": N_("Write periods as 09:00-12:30, separated by commas.")})
    if (problem := check_periods(periods)) is not None:
        raise ValidationFailed({"hours": problem})
    note = note.strip()[:120]
    errors: dict[str, str] = {}
    check_text(errors, "note", note)
    if errors:
        raise ValidationFailed(errors)
    encoded = json.dumps([[p.start, p.end] for p in sorted(periods, key=lambda p: p.start)])
    values: dict[Any, Any] = {DateOverride.hours: encoded, DateOverride.note: note}
    query = DateOverride.objects().where(
        (DateOverride.expert == expert.id) & (DateOverride.day == day)
    )
    for _attempt in range(2):  # PostgreSQL: a second submission may insert first
        try:
            async with write_transaction():
                if (existing := await query.first()) is not None:
                    await DateOverride.update(values).where(DateOverride.id == existing.id)
                else:
                    await DateOverride(expert=expert.id, day=day, hours=encoded, note=note).save()
            break
        except Exception as exc:
            if not is_unique_violation(exc):
                raise
    found = await query.first()
    assert found is not None
    return found


async def override_delete(expert: Expert, override_id: int) -> None:
    deleted = (
        await DateOverride.delete()
        .where((DateOverride.id == override_id) & (DateOverride.expert == expert.id))
        .returning(DateOverride.id)
    )
    if not deleted:
        raise NotFound(N_("This date is not in your list."))


async def calendars_of(expert: Expert) -> list[ExternalCalendar]:
    return (
        await ExternalCalendar.objects()
        .where(ExternalCalendar.expert == expert.id)
        .order_by(ExternalCalendar.id)
    )


async def lock_expert(expert: Expert) -> None:
    """Inside a write transaction: one expert's changes queue here (PostgreSQL: a lock on
    the expert's row; SQLite's immediate transaction already serializes every writer)."""
    if is_postgres():
        await Expert.select(Expert.id).where(Expert.id == expert.id).lock_rows()


async def lock_days(availability: Availability, start: datetime, until: datetime) -> None:
    """Inside a write transaction, before a booking takes the time from `start` to `until`
    (its buffer included): the bookings that could meet it queue here, the others do not.

    PostgreSQL: a transaction-level advisory lock on (expert, date) for each of the
    expert's local dates that time touches, in date order. Two bookings that overlap, or
    count towards the same daily cap, touch a date in common; bookings on other dates of
    the same expert go ahead at once. The exclusion constraint stays the guarantee (of no
    overlap: the expert's zone changed while bookings are being made could let one date's
    cap be passed once, the dates then read in two zones). SQLite's immediate transaction
    already serializes every writer."""
    if not is_postgres():
        return
    zone = ZoneInfo(availability.timezone)
    first = start.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    for day in range(first.toordinal(), last.toordinal() + 1):
        await Expert.raw("SELECT pg_advisory_xact_lock({}, {})", availability.expert, day)


async def calendar_add(expert: Expert, *, url: str, name: str) -> ExternalCalendar:
    """Saved at once (status pending); the worker fetches it and records the outcome.
    Adds of one expert are made one at a time, so the limit holds however many arrive."""
    url = url.strip()
    if url.startswith("webcal://"):
        url = "https://" + url.removeprefix("webcal://")
    name = name.strip()[:80]
    errors: dict[str, str] = {}
    if not _url_ok(url, ("https", "http"), 2000):
        errors["url"] = N_("A calendar address starting with https:// or webcal://.")
    check_text(errors, "url", url)
    check_text(errors, "name", name)
    if errors:
        raise ValidationFailed(errors)
    async with write_transaction():
        await lock_expert(expert)
        if await ExternalCalendar.count().where(ExternalCalendar.expert == expert.id) >= (
            MAX_CALENDARS
        ):
            raise ValidationFailed({"url": N_("At most 5 calendars.")})
        calendar = ExternalCalendar(expert=expert.id, url=url, name=name)
        await calendar.save()
    return calendar


async def calendar_delete(expert: Expert, calendar_id: int) -> None:
    deleted = (
        await ExternalCalendar.delete()
        .where((ExternalCalendar.id == calendar_id) & (ExternalCalendar.expert == expert.id))
        .returning(ExternalCalendar.id)
    )
    if not deleted:
        raise NotFound(N_("This calendar is not in your list."))


async def working_time(
    expert: Expert, availability: Availability, first: date, last: date
) -> list[Span]:
    """The expert's working periods from local date `first` to `last` as UTC spans: weekly
    hours, or a date's own hours where it has some."""
    overrides = await overrides_of(expert, first=first, last=last)
    return open_spans(
        weekly_minutes(weekly_of(availability)),
        {day: [p.minutes() for p in periods] for day, periods in overrides.items()},
        availability.timezone,
        first,
        last,
    )
