"""Bookings as calendar events: the client's invite and the expert's private feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from portal import i18n
from portal.accounts.tables import Expert, User
from portal.booking.ics import Event, feed, invite
from portal.booking.tables import Availability, Booking, BookingStatus, CallMode
from portal.errors import N_, NotFound
from portal.i18n import gettext as _

FEED_DAYS_BACK = 60


def _uid(booking: Booking, base_url: str) -> str:
    """Stable for the booking's life, and says nothing about who booked."""
    return f"booking-{booking.uid}@{urlsplit(base_url).hostname or 'portal'}"


def _how(booking: Booking, expert_name: str) -> str:
    """As agreed at booking time, whatever the expert's settings are now."""
    if booking.channel == "video":
        return booking.meeting_url
    if booking.call_mode == CallMode.client_calls.value:
        return _("You call %(name)s at %(phone)s.") % {
            "name": expert_name,
            "phone": booking.expert_phone,
        }
    return _("%(name)s calls you at %(phone)s.") % {"name": expert_name, "phone": booking.phone}


def _what(booking: Booking) -> str:
    kind = _("Call") if booking.channel == "call" else _("Video call")
    return f"{kind} · {i18n.format_minutes(booking.duration)}"


def client_invite(
    booking: Booking,
    expert: Expert,
    client: User,
    *,
    base_url: str,
    page: str,
) -> bytes:
    """The client's invite: a request while booked, a cancellation once cancelled. The
    portal organises it (its no-reply address: the expert's stays private)."""
    host = urlsplit(base_url).hostname or "portal"
    event = Event(
        uid=_uid(booking, base_url),
        sequence=booking.sequence,
        starts_at=booking.starts_at,
        ends_at=booking.ends_at,
        tz=booking.timezone,
        summary=f"{_what(booking)} — {expert.display_name}",
        description=_how(booking, expert.display_name),
        location=booking.meeting_url or booking.expert_phone or booking.phone,
        url=base_url + page,
        cancelled=booking.status == BookingStatus.cancelled.value,
        organizer=f"noreply@{host}",
        attendees=(client.email,),
    )
    return invite(event, method="CANCEL" if event.cancelled else "REQUEST")


async def expert_feed(expert: Expert, availability: Availability, *, base_url: str) -> bytes:
    """The expert's bookings from two months back, cancelled ones marked as such, said in
    the expert's language (the feed is fetched by their calendar's servers, not by them)."""
    owner = await User.objects().get(User.id == expert.user)
    if owner is None:
        raise NotFound(N_("This expert does not exist."))
    with i18n.speaking(owner.locale, availability.timezone):
        return await _feed(expert, availability, base_url=base_url)


async def _feed(expert: Expert, availability: Availability, *, base_url: str) -> bytes:
    since = datetime.now(UTC) - timedelta(days=FEED_DAYS_BACK)
    rows = (
        await Booking.objects()
        .where((Booking.expert == expert.id) & (Booking.starts_at >= since))
        .order_by(Booking.starts_at)
    )
    clients = {
        user.id: user
        for user in await User.objects().where(User.id.is_in([b.client for b in rows] or [0]))
    }
    events = []
    for booking in rows:
        client = clients[booking.client]
        who = client.name or client.email
        how = booking.meeting_url or (
            booking.phone if booking.call_mode == CallMode.expert_calls.value else ""
        )
        events.append(
            Event(
                uid=_uid(booking, base_url),
                sequence=booking.sequence,
                starts_at=booking.starts_at,
                ends_at=booking.ends_at,
                tz=availability.timezone,
                summary=f"{_what(booking)} — {who}",
                description=f"{client.email}\n{how}".strip(),
                location=how,
                cancelled=booking.status == BookingStatus.cancelled.value,
            )
        )
    return feed(events, name=_("%(name)s — Bookings") % {"name": expert.display_name})
