"""Calendar files: a booking's invite for the client, the expert's private feed."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from portal.accounts.selectors import expert_get
from portal.accounts.tables import User
from portal.booking.invites import client_invite, expert_feed
from portal.booking.selectors import availability_by_feed_token
from portal.booking.services import booking_of_client
from portal.booking.tables import Booking, BookingStatus
from portal.errors import NotFound
from portal.params import PathId
from portal.settings import Settings
from portal.web.auth import current_user, login_required
from portal.web.deps import SettingsDep

ICS = "text/calendar"  # Litestar adds the charset of text types


async def invite_response(
    request: Request[Any, Any, Any], settings: Settings, user: User, booking: Booking
) -> Response[bytes]:
    """The client's invite for one of their bookings, as a calendar file."""
    expert = await expert_get(expert_id=booking.expert)
    page = request.app.route_reverse("booking_page", booking_id=booking.id)
    body = client_invite(booking, expert, user, base_url=settings.base_url, page=page)
    method = "CANCEL" if booking.status == BookingStatus.cancelled.value else "REQUEST"
    return Response(
        body,
        media_type=f"{ICS}; method={method}",
        headers={"Content-Disposition": f'attachment; filename="booking-{booking.id}.ics"'},
    )


@get(
    "/me/bookings/{booking_id:int}/invite.ics",
    name="booking_invite",
    guards=[login_required],
    include_in_schema=False,
)
async def booking_invite(
    request: Request[Any, Any, Any], booking_id: PathId, settings: SettingsDep
) -> Response[bytes]:
    user = current_user(request)
    assert user is not None
    booking = await booking_of_client(client_id=user.id, booking_id=booking_id)
    return await invite_response(request, settings, user, booking)


@get("/calendar/{filename:str}", name="expert_feed", include_in_schema=False)
async def feed(filename: FromPath[str], settings: SettingsDep) -> Response[bytes]:
    """The expert's private feed at /calendar/<token>.ics: whoever has the address can read
    it, so it is long, random and replaceable (the old one then stops working)."""
    token = filename.removesuffix(".ics")
    if token == filename or len(token) < 20:
        raise NotFound()
    availability = await availability_by_feed_token(token=token)
    if availability is None:
        raise NotFound()
    expert = await expert_get(expert_id=availability.expert)
    body = await expert_feed(expert, availability, base_url=settings.base_url)
    return Response(body, media_type=ICS, headers={"Cache-Control": "private, max-age=300"})


ROUTES = [booking_invite, feed]
