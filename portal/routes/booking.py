"""Booking pages: the slot picker, the confirmation, a booking's page (invite, how it
happens, cancel or move at a cost stated beforehand) and the client's list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.plugins.flash import flash

from portal import i18n
from portal.accounts.tables import Expert, User
from portal.booking.presentation import (
    book_view,
    booking_view,
    confirm_terms,
    confirm_view,
    move_view,
    next_slots_view,
)
from portal.booking.selectors import last_phone_of, own_booking_at
from portal.booking.services import (
    CostChanged,
    SlotChoice,
    SlotTaken,
    booking_cancel,
    booking_contest,
    booking_create,
    booking_move,
    booking_no_show,
    booking_of_client,
    check_timezone,
)
from portal.charter.services import expert_by_slug
from portal.errors import N_, DomainError, ValidationFailed
from portal.i18n import gettext as _
from portal.params import PathId, QueryId, Slug
from portal.routes.forms import Form, field, see_other
from portal.validation import whole_number
from portal.web.auth import current_user, login_required, signed_in_user
from portal.web.errors import refusal
from portal.web.render import render

BOOK_FIELDS = ("channel", "duration", "start", "tz", "key", "charter_version", "phone")


def _tz(text: str | None) -> str:
    return text if text and text in i18n.timezones() else i18n.current_timezone()


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
    context = await book_view(
        expert=await expert_by_slug(slug),
        client=current_user(request),
        channel=channel,
        duration=duration,
        day=day,
        tz=_tz(tz),
        move=move,
    )
    return render(request, "pages/booking/book.html", block="slots", **context)


@get("/e/{slug:str}/next-slots", name="expert_next_slots", include_in_schema=False)
async def next_slots(request: Request[Any, Any, Any], slug: Slug) -> Response[Any]:
    """The first free slots of the shortest call (or video call), for the charter page."""
    context = await next_slots_view(expert=await expert_by_slug(slug), tz=i18n.current_timezone())
    return render(request, "pages/booking/next_slots.html", **context)


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
    user = signed_in_user(request)
    context = await confirm_view(
        expert=await expert_by_slug(slug),
        client=user,
        channel=channel,
        duration=duration,
        start=_start(start),
        tz=_tz(tz),
    )
    form = {"phone": await last_phone_of(client_id=user.id)}  # the last number, offered
    return render(request, "pages/booking/confirm.html", form=form, errors={}, **context)


@post("/e/{slug:str}/book", name="book_submit", guards=[login_required], include_in_schema=False)
async def book_submit(request: Request[Any, Any, Any], slug: Slug, data: Form) -> Response[Any]:
    user = signed_in_user(request)
    expert = await expert_by_slug(slug)
    form = {name: field(data, name, 200) for name in BOOK_FIELDS}
    asked = SlotChoice(
        channel=form["channel"],
        duration=whole_number(form["duration"]) or 0,
        start=_start(form["start"]),
        charter_version=whole_number(form["charter_version"]) or 0,
        key=form["key"],
        timezone=check_timezone(form["tz"] or user.timezone),
        phone=form["phone"],
    )
    try:
        booking = await booking_create(client=user, expert=expert, asked=asked)
    except SlotTaken as exc:  # by the client themselves (Back, a second tab)? Say so.
        own = await own_booking_at(client_id=user.id, expert_id=expert.id, start=asked.start)
        if own is None:
            return await _book_refused(request, expert, user, asked, form, exc)
        flash(request, _("You have already booked this slot: here is your booking."), "info")
        booking = own
    except DomainError as exc:
        return await _book_refused(request, expert, user, asked, form, exc)
    return see_other(request.app.route_reverse("booking_page", booking_id=booking.id))


async def _book_refused(
    request: Request[Any, Any, Any],
    expert: Expert,
    user: User,
    asked: SlotChoice,
    form: dict[str, str],
    exc: DomainError,
) -> Response[Any]:
    """The confirmation again, with what was typed and why the booking was refused."""
    context = await confirm_terms(
        expert=expert,
        client=user,
        channel=asked.channel,
        duration=asked.duration,
        start=asked.start,
        tz=asked.timezone,
    )
    said = refusal(exc)
    context.update(said.extras)  # `missing`: the credits still needed, as the service counted
    # Only the phone number is a field of this page: say any other problem plainly.
    others = [message for name, message in said.errors.items() if name != "phone"]
    return render(
        request,
        "pages/booking/confirm.html",
        status_code=said.status,
        form=form,
        errors={name: message for name, message in said.errors.items() if name == "phone"},
        problem=" ".join(others) if others else said.problem,
        problem_code=exc.code,
        **context,
    )


@get(
    "/me/bookings/{booking_id:int}",
    name="booking_page",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_page(request: Request[Any, Any, Any], booking_id: PathId) -> Response[Any]:
    booking = await booking_of_client(client_id=signed_in_user(request).id, booking_id=booking_id)
    return render(request, "pages/booking/booking.html", **await booking_view(booking=booking))


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
    booking = await booking_of_client(client_id=signed_in_user(request).id, booking_id=booking_id)
    stated = whole_number(field(data, "cost", 10))
    try:
        await booking_cancel(
            booking=booking, by_expert=False, expected_cost=-1 if stated is None else stated
        )
    except CostChanged as exc:
        said = refusal(exc)
        context = await booking_view(booking=booking)
        context["notice"] = said.message
        return render(request, "pages/booking/booking.html", status_code=said.status, **context)
    return see_other(request.app.route_reverse("booking_page", booking_id=booking.id))


@post(
    "/me/bookings/{booking_id:int}/contest",
    name="booking_contest",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_contest_page(
    request: Request[Any, Any, Any], booking_id: PathId, data: Form
) -> Response[Any]:
    """The client was there: they say what happened; the expert decides."""
    user = signed_in_user(request)
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    try:
        await booking_contest(booking=booking, text=field(data, "contest", 4000))
    except ValidationFailed as exc:
        said = refusal(exc)
        context = await booking_view(booking=booking)
        return render(
            request,
            "pages/booking/booking.html",
            status_code=said.status,
            notice=" ".join(said.errors.values()),
            **context,
        )
    flash(request, _("Sent: the expert reads it and decides; you will be told."), "success")
    return see_other(request.app.route_reverse("booking_page", booking_id=booking.id))


@post(
    "/me/bookings/{booking_id:int}/expert-absent",
    name="booking_expert_absent",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_expert_absent(
    request: Request[Any, Any, Any], booking_id: PathId
) -> Response[Any]:
    """The expert did not call or join: the client says so, every credit is released."""
    user = signed_in_user(request)
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    await booking_no_show(booking=booking, client_absent=False, reported_by="client")
    flash(request, _("Recorded: every credit of the booking is released."), "success")
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
    booking = await booking_of_client(client_id=signed_in_user(request).id, booking_id=booking_id)
    context = await move_view(booking=booking, new_start=_start(start))
    return render(request, "pages/booking/move.html", problem=None, **context)


@post(
    "/me/bookings/{booking_id:int}/move",
    name="booking_move",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_move_submit(
    request: Request[Any, Any, Any], booking_id: PathId, data: Form
) -> Response[Any]:
    booking = await booking_of_client(client_id=signed_in_user(request).id, booking_id=booking_id)
    new_start = _start(field(data, "start", 64))
    try:
        await booking_move(booking=booking, start=new_start)
    except DomainError as exc:
        said = refusal(exc)
        context = await move_view(booking=booking, new_start=new_start)
        return render(
            request,
            "pages/booking/move.html",
            status_code=said.status,
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
    booking_contest_page,
    booking_expert_absent,
    booking_move_confirm,
    booking_move_submit,
]
