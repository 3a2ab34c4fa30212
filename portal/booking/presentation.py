"""Bookings in plain words, and what each booking page shows: one view function per page
that assembles several things (the charter, free slots, the wallet, the terms)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from portal import i18n
from portal.accounts.selectors import expert_get
from portal.accounts.tables import Expert, User
from portal.booking import slots
from portal.booking.availability import (
    availability_of,
    calendars_of,
    form_of,
    override_list,
    working_time,
)
from portal.booking.ics import CalendarError
from portal.booking.policy import (
    CONTEST_WITHIN,
    NO_SHOW_GRACE,
    Terms,
    cancellation_cost,
    late_cancellation_cost,
)
from portal.booking.selectors import own_booking_at, schedule_of
from portal.booking.services import MAX_AHEAD_DAYS, booking_of_client, free_slots, terms_of
from portal.booking.tables import Booking, BookingStatus
from portal.charter.rules import CHANNELS, WEEKDAYS, Rules
from portal.charter.services import Published, packs_for, version_current
from portal.credits.selectors import credits_available, hold_captured
from portal.errors import N_, NotFound, ValidationFailed

BOOKING_STATUS = {
    "booked": N_("Booked: the credits are held"),
    "completed": N_("Took place: the credits were debited"),
    "cancelled": N_("Cancelled"),
    "no_show_client": N_("Missed by the client"),
    "no_show_expert": N_("Missed by the expert: the credits were released"),
}

WEEK = 7  # days the slot picker shows at once
NEXT_SLOTS = 6  # slots the charter page shows
NEXT_DAYS = 14  # days it looks through for them
SCHEDULE_YEARS = 5  # how far back or ahead the schedule can be browsed
PREVIEW_DAYS = 7  # days of working time the availability page shows


def _choices(rules: Rules) -> list[tuple[str, int, int]]:
    """(channel, minutes, credits) the charter offers, calls first."""
    return [
        (channel, minutes, credits)
        for channel in CHANNELS
        for minutes, credits in sorted(rules.prices(channel).items())
    ]


async def _published(expert: Expert) -> Published:
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound(N_("This expert has no published charter."))
    return current


def _first_day(text: str | None, tz: str) -> date:
    """The first day shown: today unless a later one within a year is asked for."""
    today = datetime.now(ZoneInfo(tz)).date()
    try:
        asked = date.fromisoformat(text or "")
    except ValueError:
        return today
    return min(max(today, asked), today + timedelta(days=MAX_AHEAD_DAYS - WEEK))


async def book_view(
    *,
    expert: Expert,
    client: User | None,
    channel: str | None,
    duration: int | None,
    day: str | None,
    tz: str,
    move: int | None,
) -> dict[str, Any]:
    """The slot picker: a channel and duration (the asked one if offered, else the first),
    a week of free slots from `day`. With `move`, the client's booking being moved fixes
    the channel and duration."""
    current = await _published(expert)
    choices = _choices(current.rules)
    moving = None
    if move is not None:
        if client is None:
            raise NotFound()
        moving = await booking_of_client(client_id=client.id, booking_id=move)
        if moving.expert != expert.id:
            raise NotFound(N_("This booking does not exist."))
        chosen: tuple[str, int, int] | None = (moving.channel, moving.duration, moving.credits)
    else:
        chosen = next(
            (c for c in choices if (c[0], c[1]) == (channel, duration)),
            choices[0] if choices else None,
        )
    if chosen is None:
        raise NotFound(N_("This expert offers no calls or video calls."))
    first = _first_day(day, tz)
    free = await free_slots(
        expert,
        channel=chosen[0],
        duration=chosen[1],
        first=first,
        last=first + timedelta(days=WEEK - 1),
        tz=tz,
        moving=moving,
    )
    zone = ZoneInfo(tz)
    days: dict[date, list[datetime]] = {first + timedelta(days=n): [] for n in range(WEEK)}
    for start in free.starts:
        days[start.astimezone(zone).date()].append(start)
    today = datetime.now(zone).date()
    return {
        "expert": expert,
        "version": current,
        "choices": choices,
        "chosen": chosen,
        "days": days,
        "tz": tz,
        "first": first,
        "previous": max(today, first - timedelta(days=WEEK)) if first > today else None,
        "following": first + timedelta(days=WEEK),
        "moving": moving,
    }


async def next_slots_view(*, expert: Expert, tz: str) -> dict[str, Any]:
    """The first free slots of the shortest call (or video call), for the charter page."""
    current = await _published(expert)
    choices = _choices(current.rules)
    starts: list[datetime] = []
    choice = None
    if choices:
        channel, minutes, _credits = min(choices, key=lambda c: (c[1], c[0] != "call"))
        choice = (channel, minutes)
        first = datetime.now(ZoneInfo(tz)).date()
        free = await free_slots(
            expert,
            channel=channel,
            duration=minutes,
            first=first,
            last=first + timedelta(days=NEXT_DAYS - 1),
            tz=tz,
        )
        starts = free.starts[:NEXT_SLOTS]
    return {"expert": expert, "starts": starts, "choice": choice, "tz": tz}


async def confirm_terms(
    *, expert: Expert, client: User, channel: str, duration: int, start: datetime, tz: str
) -> dict[str, Any]:
    """What a booking will be and cost, and what the client has to pay for it: the
    confirmation page, before anything is held."""
    current = await _published(expert)
    credits = current.rules.prices(channel).get(duration) if channel in CHANNELS else None
    if credits is None:
        raise ValidationFailed({"duration": N_("This expert does not offer this duration.")})
    available = await credits_available(client_id=client.id, expert_id=expert.id)
    availability = await availability_of(expert)
    rules = current.rules
    terms = Terms(
        credits=credits,
        starts_at=start,
        cancel_free_hours=rules.cancel_free_hours,
        cancel_late_forfeit_percent=rules.cancel_late_forfeit_percent,
        no_show_client_percent=rules.no_show_client_percent,
    )
    return {
        "expert": expert,
        "version": current,
        "channel": channel,
        "duration": duration,
        "credits": credits,
        "start": start,
        "end": start + timedelta(minutes=duration),
        "tz": tz,
        "expert_tz": availability.timezone,
        "call_mode": availability.call_mode,
        "free_until": terms.free_until,
        "late_cost": late_cancellation_cost(terms),
        "free_hours": rules.cancel_free_hours,
        "now": datetime.now(UTC),
        "late_percent": rules.cancel_late_forfeit_percent,
        "no_show_percent": rules.no_show_client_percent,
        "available": available,
        "missing": max(0, credits - available),
        "packs": await packs_for(expert=expert),
    }


async def confirm_view(
    *, expert: Expert, client: User, channel: str, duration: int, start: datetime, tz: str
) -> dict[str, Any]:
    """The confirmation page; a time that is not a free slot (any more) is said so."""
    context = await confirm_terms(
        expert=expert, client=client, channel=channel, duration=duration, start=start, tz=tz
    )
    day = start.astimezone(ZoneInfo(tz)).date()
    try:
        free = await free_slots(
            expert, channel=channel, duration=duration, first=day, last=day, tz=tz
        )
        available = start in free.starts
    except ValidationFailed:  # a day outside what can be booked at all
        available = False
    problem = i18n.gettext("This time is not a free slot: choose one from the list.")
    own = (
        None
        if available
        else await own_booking_at(client_id=client.id, expert_id=expert.id, start=start)
    )
    if own is not None:  # Back after booking, a second tab: it is the client's own
        problem = i18n.gettext("You have booked this slot already.")
    context["problem"] = None if available else problem
    context["problem_code"] = "" if available else ("own_booking" if own else "slot_taken")
    context["own_booking"] = own
    return context


async def booking_view(*, booking: Booking) -> dict[str, Any]:
    """A booking's page: how it happens, and what cancelling it costs now."""
    expert = await expert_get(expert_id=booking.expert)
    availability = await availability_of(expert)
    terms = terms_of(booking)
    now = datetime.now(UTC)
    return {
        "booking": booking,
        "expert": expert,
        "expert_tz": availability.timezone,
        "free_until": terms.free_until,
        "cost_now": cancellation_cost(terms, now=now, by_expert=False),
        "active": booking.status == BookingStatus.booked.value,
        "started": booking.starts_at <= now,
        "movable": booking.status == BookingStatus.booked.value and now < terms.free_until,
        "now": now,
        "kept": await hold_captured(hold_id=booking.hold),  # once ended: what it cost
        # The expert did not call: the client may say so, from the grace period on.
        "absent_open": booking.status == BookingStatus.booked.value
        and now >= booking.starts_at + NO_SHOW_GRACE,
        "contest_open": booking.status == BookingStatus.no_show_client.value
        and booking.contested_at is None
        and booking.settled_at is not None
        and now <= booking.settled_at + CONTEST_WITHIN,
        "contest_until": booking.settled_at + CONTEST_WITHIN if booking.settled_at else None,
    }


async def move_view(*, booking: Booking, new_start: datetime) -> dict[str, Any]:
    """Moving a booking: its page, and the free-cancellation deadline at the new time."""
    context = await booking_view(booking=booking)
    context["new_start"] = new_start
    context["new_free_until"] = replace(terms_of(booking), starts_at=new_start).free_until
    context["late_cost"] = late_cancellation_cost(terms_of(booking))
    return context


async def _week_preview(
    expert: Expert, tz: str
) -> list[tuple[date, list[tuple[datetime, datetime]]]]:
    """The next 7 days' working periods as the slot computation sees them (weekly hours
    and date overrides), in the expert's zone."""
    availability = await availability_of(expert)
    today = datetime.now(ZoneInfo(tz)).date()
    last = today + timedelta(days=PREVIEW_DAYS - 1)
    spans = await working_time(expert, availability, today, last)
    zone = ZoneInfo(tz)
    days: dict[date, list[tuple[datetime, datetime]]] = {
        today + timedelta(days=n): [] for n in range(PREVIEW_DAYS)
    }
    for start, end in spans:
        day = start.astimezone(zone).date()
        if day in days:
            days[day].append((start, end))
    return list(days.items())


async def availability_view(*, expert: Expert) -> dict[str, Any]:
    """The expert's availability page: the weekly hours (as a form) and the next week as
    the slots see it, the dates set apart, the other calendars read."""
    availability = await availability_of(expert)
    today = datetime.now(ZoneInfo(availability.timezone)).date()
    return {
        "availability": availability,
        "form": form_of(availability),
        "weekdays": WEEKDAYS,
        "preview": await _week_preview(expert, availability.timezone),
        "overrides": [
            {"id": o.id, "day": o.day, "periods": json.loads(o.hours), "note": o.note}
            for o in await override_list(expert, first=today)
        ],
        "calendar_errors": CalendarError.REASONS,
        "calendars": await calendars_of(expert),
    }


async def schedule_view(*, expert: Expert, day: str | None, view: str) -> dict[str, Any]:
    """The expert's bookings of a day or a week (from Monday), in the expert's zone."""
    availability = await availability_of(expert)
    zone = ZoneInfo(availability.timezone)
    today = datetime.now(zone).date()
    try:
        first = date.fromisoformat(day) if day else today
    except ValueError:
        first = today
    if abs((first - today).days) > SCHEDULE_YEARS * 366:
        first = today
    if view != "day":
        view = "week"
        first -= timedelta(days=first.weekday())
    span = 1 if view == "day" else 7
    start = slots.local_to_utc(first, 0, zone)
    end = slots.local_to_utc(first + timedelta(days=span), 0, zone)
    bookings = await schedule_of(expert_id=expert.id, start=start, end=end)
    days: dict[date, list[dict[str, Any]]] = {first + timedelta(days=n): [] for n in range(span)}
    for booking in bookings:
        days.setdefault(booking["starts_at"].astimezone(zone).date(), []).append(booking)
    return {
        "expert": expert,
        "tz": availability.timezone,
        "view": view,
        "first": first,
        "days": days,
        "previous": first - timedelta(days=span),
        "following": first + timedelta(days=span),
        "now": datetime.now(UTC),
        "no_show_grace": NO_SHOW_GRACE,
    }
