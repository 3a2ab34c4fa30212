"""JSON API: free slots, the caller's bookings (book, list, show, move, cancel) and the
expert's side (their bookings, no-shows, cancellations)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request, Response, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, JSONBody

from portal.accounts.selectors import expert_slugs
from portal.booking.availability import (
    AvailabilityForm,
    availability_of,
    availability_save,
    weekly_of,
)
from portal.booking.policy import cancellation_cost
from portal.booking.selectors import bookings_for_client, bookings_for_expert
from portal.booking.services import (
    SlotChoice,
    booking_cancel,
    booking_create,
    booking_move,
    booking_no_show,
    booking_of_client,
    booking_of_expert,
    free_slots,
    terms_of,
)
from portal.booking.tables import Availability, Booking, BookingStatus
from portal.charter.services import expert_by_slug
from portal.errors import N_, ValidationFailed
from portal.params import PathId, Slug
from portal.routes.api_charter import ERRORS, ErrorOut
from portal.routes.calendar import invite_response
from portal.web.auth import current_expert, current_user, expert_required, login_required
from portal.web.deps import SettingsDep

CHANGE_ERRORS = {
    **ERRORS,
    409: ResponseSpec(ErrorOut, description="booking_ended, booking_started, too_late, slot_taken"),
}
BOOKING_ERRORS = {
    **ERRORS,
    402: ResponseSpec(ErrorOut, description="insufficient_credits (with `missing`)"),
    409: ResponseSpec(ErrorOut, description="slot_taken, charter_changed, key_reused"),
}


class SlotOut(msgspec.Struct):
    start: datetime  # in the asked time zone, with its offset
    end: datetime


class SlotsOut(msgspec.Struct):
    timezone: str
    channel: str
    duration: int
    credits: int
    charter_version: int
    slots: list[SlotOut]


@get(
    "/experts/{slug:str}/slots",
    name="api_slots",
    responses=ERRORS,
    tags=["booking"],
)
async def slots(
    slug: Slug,
    start: FromQuery[date],
    end: FromQuery[date],
    duration: FromQuery[int],
    channel: FromQuery[str] = "call",
    tz: FromQuery[str | None] = None,
) -> SlotsOut:
    """Free slots starting between two dates (inclusive) of time zone `tz` (default: the
    expert's), as ISO 8601 times with their offset; book one with its `start` as given."""
    expert = await expert_by_slug(slug)
    tz = tz or (await availability_of(expert)).timezone
    free = await free_slots(
        expert, channel=channel, duration=duration, first=start, last=end, tz=tz
    )
    zone = ZoneInfo(tz)
    step = free.duration * 60
    return SlotsOut(
        timezone=tz,
        channel=channel,
        duration=free.duration,
        credits=free.credits,
        charter_version=free.charter_version,
        slots=[
            SlotOut(s.astimezone(zone), datetime.fromtimestamp(s.timestamp() + step, zone))
            for s in free.starts
        ],
    )


class BookingIn(msgspec.Struct, forbid_unknown_fields=True):
    start: str  # ISO 8601 with offset, as the slots list gives it
    duration: int
    channel: str
    charter_version: int  # the version the client accepts (the current one)
    key: str | None = None  # repeat a request with the same key: one booking
    tz: str | None = None  # the client's time zone (default: the account's)
    phone: str = ""  # the client's number, when the expert calls


class BookingOut(msgspec.Struct):
    id: int
    status: str  # booked, completed, cancelled, no_show_client, no_show_expert
    expert: str
    channel: str
    duration: int
    start: datetime
    end: datetime
    timezone: str
    credits: int
    charter_version: int
    free_cancellation_until: datetime
    cancellation_cost_now: int | None  # credits kept if the client cancelled now; None: cannot
    meeting_url: str
    phone: str
    invite: str  # the .ics invite's path (bearer token as for the rest of the API)


def _out(booking: Booking, expert_slug: str, invite: str) -> BookingOut:
    zone = ZoneInfo(booking.timezone)
    terms = terms_of(booking)
    now = datetime.now(UTC)
    cancellable = booking.status == BookingStatus.booked.value and booking.starts_at > now
    return BookingOut(
        id=booking.id,
        status=booking.status,
        expert=expert_slug,
        channel=booking.channel,
        duration=booking.duration,
        start=booking.starts_at.astimezone(zone),
        end=booking.ends_at.astimezone(zone),
        timezone=booking.timezone,
        credits=booking.credits,
        charter_version=booking.charter_version,
        free_cancellation_until=terms.free_until.astimezone(zone),
        cancellation_cost_now=cancellation_cost(terms, now=now, by_expert=False)
        if cancellable
        else None,
        meeting_url=booking.meeting_url,
        phone=booking.phone,
        invite=invite,
    )


async def _outs(request: Request[Any, Any, Any], bookings: list[Booking]) -> list[BookingOut]:
    slugs = await expert_slugs(expert_ids=(b.expert for b in bookings))
    return [
        _out(b, slugs[b.expert], request.app.route_reverse("api_booking_invite", booking_id=b.id))
        for b in bookings
    ]


def _start(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("no offset")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            {"start": N_("A time in ISO 8601 with its offset, e.g. 2026-12-01T09:00:00+01:00.")}
        ) from None


@post(
    "/experts/{slug:str}/bookings",
    name="api_booking_create",
    guards=[login_required],
    status_code=201,
    responses=BOOKING_ERRORS,
    tags=["booking"],
)
async def booking_create_handler(
    request: Request[Any, Any, Any], slug: Slug, data: JSONBody[BookingIn]
) -> BookingOut:
    """Book a free slot and hold its credits, in one step; 409 `slot_taken` when someone was
    faster, 402 `insufficient_credits` (with `missing`) when the balance is short."""
    user = current_user(request)
    assert user is not None
    expert = await expert_by_slug(slug)
    booking = await booking_create(
        client=user,
        expert=expert,
        asked=SlotChoice(
            channel=data.channel,
            duration=data.duration,
            start=_start(data.start),
            charter_version=data.charter_version,
            key=data.key or uuid.uuid4().hex,
            timezone=data.tz or user.timezone,
            phone=data.phone,
        ),
    )
    return (await _outs(request, [booking]))[0]


@get("/bookings", name="api_bookings", guards=[login_required], tags=["booking"])
async def bookings(request: Request[Any, Any, Any]) -> list[BookingOut]:
    """The caller's bookings, latest start first."""
    user = current_user(request)
    assert user is not None
    return await _outs(request, await bookings_for_client(client_id=user.id))


@get(
    "/bookings/{booking_id:int}",
    name="api_booking",
    guards=[login_required],
    responses=ERRORS,
    tags=["booking"],
)
async def booking_show(request: Request[Any, Any, Any], booking_id: PathId) -> BookingOut:
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    return (await _outs(request, [booking]))[0]


@post(
    "/bookings/{booking_id:int}/cancel",
    name="api_booking_cancel",
    guards=[login_required],
    status_code=200,
    responses=CHANGE_ERRORS,
    tags=["booking"],
)
async def booking_cancel_handler(request: Request[Any, Any, Any], booking_id: PathId) -> BookingOut:
    """Cancel: free before `free_cancellation_until`; later the charter's share is kept
    (`cancellation_cost_now` says how much beforehand)."""
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    return (await _outs(request, [await booking_cancel(booking=booking, by_expert=False)]))[0]


class MoveIn(msgspec.Struct, forbid_unknown_fields=True):
    start: str


@post(
    "/bookings/{booking_id:int}/move",
    name="api_booking_move",
    guards=[login_required],
    status_code=200,
    responses=CHANGE_ERRORS,
    tags=["booking"],
)
async def booking_move_handler(
    request: Request[Any, Any, Any], booking_id: PathId, data: JSONBody[MoveIn]
) -> BookingOut:
    """Move to another free slot of the same length, before the free-cancellation deadline."""
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    moved = await booking_move(booking=booking, start=_start(data.start))
    return (await _outs(request, [moved]))[0]


@get("/expert/bookings", name="api_expert_bookings", guards=[expert_required], tags=["expert"])
async def expert_bookings(
    request: Request[Any, Any, Any],
    start: FromQuery[date | None] = None,
    end: FromQuery[date | None] = None,
) -> list[BookingOut]:
    """The expert's bookings starting between two dates (UTC), earliest first."""
    expert = await current_expert(request)
    rows = await bookings_for_expert(expert_id=expert.id, first=start, last=end)
    return await _outs(request, rows)


class ExpertCancelIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


@post(
    "/expert/bookings/{booking_id:int}/cancel",
    name="api_expert_booking_cancel",
    guards=[expert_required],
    status_code=200,
    responses=CHANGE_ERRORS,
    tags=["expert"],
)
async def expert_booking_cancel(
    request: Request[Any, Any, Any], booking_id: PathId, data: JSONBody[ExpertCancelIn]
) -> BookingOut:
    """Cancel a booking: always free for the client (the credits are released). `reason`
    (required, up to 500 characters) is shown to the client and in their email."""
    expert = await current_expert(request)
    booking = await booking_of_expert(expert_id=expert.id, booking_id=booking_id)
    ended = await booking_cancel(booking=booking, by_expert=True, reason=data.reason)
    return (await _outs(request, [ended]))[0]


class NoShowIn(msgspec.Struct, forbid_unknown_fields=True):
    absent: str  # "client" or "expert"


@post(
    "/expert/bookings/{booking_id:int}/no-show",
    name="api_expert_booking_no_show",
    guards=[expert_required],
    status_code=200,
    responses=CHANGE_ERRORS,
    tags=["expert"],
)
async def expert_booking_no_show(
    request: Request[Any, Any, Any], booking_id: PathId, data: JSONBody[NoShowIn]
) -> BookingOut:
    """After the start: the client did not come (the charter's share is captured) or the
    expert did not (the credits are released)."""
    if data.absent not in ("client", "expert"):
        raise ValidationFailed({"absent": N_("Say who did not come: client or expert.")})
    expert = await current_expert(request)
    booking = await booking_of_expert(expert_id=expert.id, booking_id=booking_id)
    ended = await booking_no_show(booking=booking, client_absent=data.absent == "client")
    return (await _outs(request, [ended]))[0]


@get(
    "/bookings/{booking_id:int}/invite.ics",
    name="api_booking_invite",
    guards=[login_required],
    responses=ERRORS,
    tags=["booking"],
    media_type="text/calendar",
)
async def booking_invite_api(
    request: Request[Any, Any, Any], booking_id: PathId, settings: SettingsDep
) -> Response[bytes]:
    """The booking as an iCalendar invite (METHOD:REQUEST; METHOD:CANCEL once cancelled)."""
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    return await invite_response(request, settings, user, booking)


class AvailabilityIO(msgspec.Struct, forbid_unknown_fields=True):
    timezone: str
    weekly: dict[str, list[str]]  # "mon": ["09:00-12:30", "14:00-18:00"]; absent or []: closed
    call_mode: str  # expert_calls (the client gives a number) or client_calls
    phone: str  # the expert's, shown when the client calls
    meeting_url: str  # empty: a room per booking on Jitsi Meet


def _availability_out(availability: Availability) -> AvailabilityIO:
    return AvailabilityIO(
        timezone=availability.timezone,
        weekly={
            day: [f"{p.start}-{p.end}" for p in periods]
            for day, periods in weekly_of(availability).items()
        },
        call_mode=availability.call_mode,
        phone=availability.phone,
        meeting_url=availability.meeting_url,
    )


@get(
    "/expert/availability",
    name="api_availability",
    guards=[expert_required],
    tags=["expert"],
)
async def availability_get(request: Request[Any, Any, Any]) -> AvailabilityIO:
    """When the expert takes bookings."""
    return _availability_out(await availability_of(await current_expert(request)))


@put(
    "/expert/availability",
    name="api_availability_put",
    guards=[expert_required],
    responses=ERRORS,
    tags=["expert"],
)
async def availability_put(
    request: Request[Any, Any, Any], data: JSONBody[AvailabilityIO]
) -> AvailabilityIO:
    """Replace the weekly hours and call settings; 422 with `errors` per field
    (`weekly.mon`, `timezone`, `phone`, `meeting_url`...)."""
    expert = await current_expert(request)
    try:
        saved = await availability_save(
            expert,
            AvailabilityForm(
                timezone=data.timezone,
                hours={day: ", ".join(periods) for day, periods in data.weekly.items()},
                call_mode=data.call_mode,
                phone=data.phone,
                meeting_url=data.meeting_url,
            ),
        )
    except ValidationFailed as exc:
        raise ValidationFailed(
            {name.replace("hours_", "weekly.", 1): message for name, message in exc.errors.items()}
        ) from None
    return _availability_out(saved)


PUBLIC_HANDLERS = [slots]  # no token needed
HANDLERS = [
    booking_create_handler,
    bookings,
    booking_show,
    booking_cancel_handler,
    booking_move_handler,
    expert_bookings,
    expert_booking_cancel,
    expert_booking_no_show,
    booking_invite_api,
    availability_get,
    availability_put,
]
