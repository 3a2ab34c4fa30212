"""Reads of bookings and calendars that pages and the API need."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from portal.booking.tables import (
    Availability,
    Booking,
    BookingStatus,
    CalendarStatus,
    ExternalCalendar,
)

UPCOMING = 8  # bookings on the expert's dashboard


async def bookings_for_client(*, client_id: int, limit: int = 500) -> list[Booking]:
    """The client's bookings, the latest start first."""
    return (
        await Booking.objects()
        .where(Booking.client == client_id)
        .order_by(Booking.starts_at, ascending=False)
        .limit(limit)
    )


async def bookings_for_expert(
    *, expert_id: int, first: date | None = None, last: date | None = None, limit: int = 1000
) -> list[Booking]:
    """The expert's bookings starting from day `first` to day `last` (UTC, both included;
    None: no bound), the earliest first."""
    query = Booking.objects().where(Booking.expert == expert_id)
    if first is not None:
        query = query.where(Booking.starts_at >= datetime.combine(first, time(), UTC))
    if last is not None:  # to the day's last instant: the next day may be beyond year 9999
        query = query.where(Booking.starts_at <= datetime.combine(last, time.max, UTC))
    return await query.order_by(Booking.starts_at).limit(limit)


async def schedule_of(*, expert_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The expert's bookings starting from `start` until before `end`, with their clients'
    email and name, the earliest first."""
    return (
        await Booking.select(*Booking.all_columns(), Booking.client.email, Booking.client.name)
        .where(
            (Booking.expert == expert_id) & (Booking.starts_at >= start) & (Booking.starts_at < end)
        )
        .order_by(Booking.starts_at)
    )


async def bookings_upcoming_for(*, expert_id: int) -> list[dict[str, Any]]:
    """The expert's next booked exchanges (one that started within the hour included)."""
    now = datetime.now(UTC)
    rows = await schedule_of(
        expert_id=expert_id, start=now - timedelta(hours=1), end=now + timedelta(days=60)
    )
    return [r for r in rows if r["status"] == BookingStatus.booked.value][:UPCOMING]


async def own_booking_at(*, client_id: int, expert_id: int, start: datetime) -> Booking | None:
    """The client's own booking with the expert at `start`, still on, if there is one."""
    return (
        await Booking.objects()
        .where(
            (Booking.client == client_id)
            & (Booking.expert == expert_id)
            & (Booking.starts_at == start)
            & (Booking.status == BookingStatus.booked.value)
        )
        .first()
    )


async def last_phone_of(*, client_id: int) -> str:
    """The number the client gave for their latest call, to offer it again."""
    row = (
        await Booking.select(Booking.phone)
        .where((Booking.client == client_id) & (Booking.phone != ""))
        .order_by(Booking.id, ascending=False)
        .first()
    )
    return str(row["phone"]) if row else ""


async def availability_by_feed_token(*, token: str) -> Availability | None:
    """The availability whose private calendar feed has this token."""
    return await Availability.objects().where(Availability.feed_token == token).first()


async def calendars_failing_count(*, expert_id: int) -> int:
    """The expert's external calendars that could not be read."""
    return await ExternalCalendar.count().where(
        (ExternalCalendar.expert == expert_id)
        & (ExternalCalendar.status == CalendarStatus.error.value)
    )
