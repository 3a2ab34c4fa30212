"""Booking pages: the slot picker, the confirmation, a booking's page (invite, how it
happens, cancel or move at a cost stated beforehand) and the client's list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.params import FromQuery

from portal import i18n
from portal.accounts.tables import Expert
from portal.booking.availability import availability_of
from portal.booking.policy import cancellation_cost
from portal.booking.services import (
    MAX_AHEAD_DAYS,
    CostChanged,
    SlotChoice,
    booking_cancel,
    booking_create,
    booking_move,
    booking_of_client,
    check_timezone,
    free_slots,
    terms_of,
)
from portal.booking.tables import Booking, BookingStatus
from portal.charter.rules import CHANNELS, Rules
from portal.charter.services import expert_by_slug, packs_for, version_current
from portal.credits import ledger
from portal.errors import N_, DomainError, NotFound, ValidationFailed
from portal.i18n import gettext as _
from portal.params import PathId, QueryId, Slug
from portal.routes.forms import Form, field, see_other
from portal.validation import whole_number
from portal.web.auth import current_user, login_required
from portal.web.errors import refusal
from portal.web.render import render

WEEK = 7


def _choices(rules: Rules) -> list[tuple[str, int, int]]:
    """(channel, minutes, credits) the charter offers, calls first."""
    return [
        (channel, minutes, credits)
        for channel in CHANNELS
        for minutes, credits in sorted(rules.prices(channel).items())
    ]


def _day(text: str | None, tz: str) -> date:
    """The first day shown: today unless a later one within a year is asked for."""
    today = datetime.now(ZoneInfo(tz)).date()
    try:
        asked = date.fromisoformat(text or "")
    except ValueError:
        return today
    return min(max(today, asked), today + timedelta(days=MAX_AHEAD_DAYS - WEEK))


def _tz(text: str | None) -> str:
    return text if text and text in i18n.timezones() else i18n.current_timezone()


async def _published(expert: Expert) -> Any:
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound(N_("This expert has no published charter."))
    return current


@get("/e/{slug:str}/book", name="book", include_in_schema=False)
async def book_page(
    request: Request[Any, Any, Any],
    slug: Slug,
    channel: FromQuery[str | None] = None,
    duration: FromQuery[int | None] = None,
    day: FromQuery[str | None] = None,
    tz: FromQuery[str | None] = None,
    move: QueryId = None,
) -> Response[Any]:
    """Choose a channel and duration, move through the weeks, pick a free slot. With
    `move`, the client's booking being moved fixes the channel and duration."""
    expert = await expert_by_slug(slug)
    current = await _published(expert)
    choices = _choices(current.rules)
    tz = _tz(tz)
    moving = None
    if move is not None:
        user = current_user(request)
        if user is None:
            raise NotFound()
        moving = await booking_of_client(client_id=user.id, booking_id=move)
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
    first = _day(day, tz)
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
    return render(
        request,
        "pages/booking/book.html",
        block="slots",
        expert=expert,
        version=current,
        choices=choices,
        chosen=chosen,
        days=days,
        tz=tz,
        first=first,
        previous=max(today, first - timedelta(days=WEEK)) if first > today else None,
        following=first + timedelta(days=WEEK),
        moving=moving,
    )


NEXT_SLOTS = 6
NEXT_DAYS = 14


@get("/e/{slug:str}/next-slots", name="expert_next_slots", include_in_schema=False)
async def next_slots(request: Request[Any, Any, Any], slug: Slug) -> Response[Any]:
    """The first free slots of the shortest call (or video call), for the charter page."""
    expert = await expert_by_slug(slug)
    current = await _published(expert)
    choices = _choices(current.rules)
    tz = i18n.current_timezone()
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
    return render(
        request,
        "pages/booking/next_slots.html",
        expert=expert,
        starts=starts,
        choice=choice,
        tz=tz,
    )


async def _confirm_context(
    request: Request[Any, Any, Any],
    expert: Expert,
    channel: str,
    duration: int,
    start: datetime,
    tz: str,
) -> dict[str, Any]:
    current = await _published(expert)
    credits = current.rules.prices(channel).get(duration) if channel in CHANNELS else None
    if credits is None:
        raise ValidationFailed({"duration": N_("This expert does not offer this duration.")})
    user = current_user(request)
    assert user is not None
    wallet = await ledger.wallet_for(client_id=user.id, expert_id=expert.id)
    available = (await ledger.balance(wallet_id=wallet.id)).available
    availability = await availability_of(expert)
    rules = current.rules
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
        "free_until": start - timedelta(hours=rules.cancel_free_hours),
        "late_cost": credits * rules.cancel_late_forfeit_percent // 100,
        "free_hours": rules.cancel_free_hours,
        "now": datetime.now(UTC),
        "late_percent": rules.cancel_late_forfeit_percent,
        "no_show_percent": rules.no_show_client_percent,
        "available": available,
        "missing": max(0, credits - available),
        "packs": await packs_for(expert=expert),
    }


def _start(text: str | None) -> datetime:
    try:
        moment = datetime.fromisoformat(text or "")
        if moment.tzinfo is None:
            raise ValueError("no offset")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            {"start": N_("This slot is not valid; choose one from the list.")}
        ) from None


@get(
    "/e/{slug:str}/book/confirm",
    name="book_confirm",
    guards=[login_required],
    include_in_schema=False,
)
async def book_confirm(
    request: Request[Any, Any, Any],
    slug: Slug,
    channel: FromQuery[str],
    duration: FromQuery[int],
    start: FromQuery[str],
    tz: FromQuery[str | None] = None,
) -> Response[Any]:
    """What the booking will be and cost, before anything is held; a time that is not a
    free slot (any more) is said so, without a form."""
    expert = await expert_by_slug(slug)
    moment, zone = _start(start), _tz(tz)
    context = await _confirm_context(request, expert, channel, duration, moment, zone)
    day = moment.astimezone(ZoneInfo(zone)).date()
    try:
        free = await free_slots(
            expert, channel=channel, duration=duration, first=day, last=day, tz=zone
        )
        available = moment in free.starts
    except ValidationFailed:  # a day outside what can be booked at all
        available = False
    problem = None if available else _("This time is not a free slot: choose one from the list.")
    return render(
        request,
        "pages/booking/confirm.html",
        form={},
        errors={},
        problem=problem,
        problem_code="" if available else "slot_taken",
        **context,
    )


@post("/e/{slug:str}/book", name="book_submit", guards=[login_required], include_in_schema=False)
async def book_submit(request: Request[Any, Any, Any], slug: Slug, data: Form) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    expert = await expert_by_slug(slug)
    form = {
        name: field(data, name, 200)
        for name in ("channel", "duration", "start", "tz", "key", "charter_version", "phone")
    }
    duration = whole_number(form["duration"]) or 0
    version = whole_number(form["charter_version"]) or 0
    start, tz = _start(form["start"]), check_timezone(form["tz"] or user.timezone)
    try:
        booking = await booking_create(
            client=user,
            expert=expert,
            asked=SlotChoice(
                channel=form["channel"],
                duration=duration,
                start=start,
                charter_version=version,
                key=form["key"],
                timezone=tz,
                phone=form["phone"],
            ),
        )
    except DomainError as exc:
        context = await _confirm_context(request, expert, form["channel"], duration, start, tz)
        said = refusal(exc)
        # Only the phone number is a field of this page: say any other problem plainly.
        others = [message for name, message in said.errors.items() if name != "phone"]
        problem = " ".join(others) if others else said.problem
        errors = {name: message for name, message in said.errors.items() if name == "phone"}
        context.update(said.extras)
        return render(
            request,
            "pages/booking/confirm.html",
            status_code=said.status,
            form=form,
            errors=errors,
            problem=problem,
            problem_code=exc.code,
            **context,
        )
    return see_other(request.app.route_reverse("booking_page", booking_id=booking.id))


async def _booking_context(booking: Booking) -> dict[str, Any]:
    expert = await Expert.objects().get(Expert.id == booking.expert)
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
    }


@get(
    "/me/bookings/{booking_id:int}",
    name="booking_page",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_page(request: Request[Any, Any, Any], booking_id: PathId) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    return render(request, "pages/booking/booking.html", **await _booking_context(booking))


@post(
    "/me/bookings/{booking_id:int}/cancel",
    name="booking_cancel",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_cancel_page(
    request: Request[Any, Any, Any], booking_id: PathId, data: Form
) -> Response[Any]:
    """Cancel at the cost the page stated; if the deadline passed meanwhile, say so first."""
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    stated = whole_number(field(data, "cost", 10))
    try:
        await booking_cancel(
            booking=booking, by_expert=False, expected_cost=-1 if stated is None else stated
        )
    except CostChanged as exc:
        said = refusal(exc)
        context = await _booking_context(booking)
        context["notice"] = said.message
        return render(request, "pages/booking/booking.html", status_code=said.status, **context)
    return see_other(request.app.route_reverse("booking_page", booking_id=booking.id))


@get(
    "/me/bookings/{booking_id:int}/move",
    name="booking_move_confirm",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_move_confirm(
    request: Request[Any, Any, Any], booking_id: PathId, start: FromQuery[str]
) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    context = await _booking_context(booking)
    new_start = _start(start)
    return render(
        request,
        "pages/booking/move.html",
        new_start=new_start,
        new_free_until=new_start - timedelta(hours=booking.cancel_free_hours),
        problem=None,
        **context,
    )


@post(
    "/me/bookings/{booking_id:int}/move",
    name="booking_move",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_move_submit(
    request: Request[Any, Any, Any], booking_id: PathId, data: Form
) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    new_start = _start(field(data, "start", 64))
    try:
        await booking_move(booking=booking, start=new_start)
    except DomainError as exc:
        said = refusal(exc)
        context = await _booking_context(booking)
        return render(
            request,
            "pages/booking/move.html",
            status_code=said.status,
            new_start=new_start,
            new_free_until=new_start - timedelta(hours=booking.cancel_free_hours),
            problem=said.message,
            **context,
        )
    return see_other(request.app.route_reverse("booking_page", booking_id=booking.id))


ROUTES = [
    next_slots,
    book_page,
    book_confirm,
    book_submit,
    booking_page,
    booking_cancel_page,
    booking_move_confirm,
    booking_move_submit,
]
