"""Bookings: free slots, booking with a credit hold in one transaction, moving, cancelling,
no-shows, and the worker's confirmation after the end.

No double booking: bookings that could meet are made one at a time (on PostgreSQL a lock on
each of the expert's local dates the slot and its buffer touch, see `lock_days`; on SQLite
the immediate transaction), re-checking the slot with the same pure function that listed it;
on PostgreSQL an exclusion constraint refuses overlapping active bookings whatever happens,
and a violation is reported as `slot_taken`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from asyncpg.exceptions import DeadlockDetectedError, ExclusionViolationError

from portal.accounts.tables import Expert, User
from portal.booking import slots
from portal.booking.availability import availability_of, lock_days, working_time
from portal.booking.policy import (
    CONTEST_WITHIN,
    NO_SHOW_GRACE,
    Terms,
    cancellation_cost,
    no_show_cost,
)
from portal.booking.tables import Availability, Booking, BookingStatus, CallMode, ExternalCalendar
from portal.charter.rules import CHANNELS, Rules
from portal.charter.services import Published, version_current
from portal.credits import ledger
from portal.credits.tables import EntryKind, Hold
from portal.db import is_postgres, is_unique_violation, write_transaction
from portal.errors import N_, Conflict, NotFound, ValidationFailed
from portal.events.log import record, record_many
from portal.i18n import timezones
from portal.validation import DIGITS, check_text

CONFIRM_GRACE = timedelta(minutes=30)  # after the end, before the credits are captured
MAX_RANGE_DAYS = 62
MAX_KEY = 100  # an idempotency key, as the client sends it
MAX_AHEAD_DAYS = 367  # the longest horizon a charter allows, and a day
VIDEO_ROOMS = "https://meet.jit.si/"


class SlotTaken(Conflict):
    code = "slot_taken"

    def __init__(self) -> None:
        super().__init__(N_("This slot has just been taken. Please choose another one."))


EVENTS = {
    BookingStatus.booked: "booking.created",
    BookingStatus.cancelled: "booking.cancelled",
    BookingStatus.completed: "booking.confirmed",
    BookingStatus.no_show_client: "booking.no_show",
    BookingStatus.no_show_expert: "booking.no_show",
}


# What a booking's event says of it.
EVENT_COLUMNS = (
    Booking.id,
    Booking.client,
    Booking.expert,
    Booking.sequence,
    Booking.starts_at,
    Booking.ends_at,
    Booking.status,
    Booking.credits,
    Booking.cancelled_by,
    Booking.no_show_reported_by,
)


def _event(kind: str, booking: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The booking's event, with the times and sequence it had then (the emails and
    invites are written from these, however the booking changes after)."""
    return (
        kind,
        f"booking:{booking['id']}:{kind.removeprefix('booking.')}:{booking['sequence']}",
        {
            "booking": booking["id"],
            "client": booking["client"],
            "expert": booking["expert"],
            "sequence": booking["sequence"],
            "starts_at": booking["starts_at"].isoformat(),
            "ends_at": booking["ends_at"].isoformat(),
            "status": booking["status"],
            "credits": booking["credits"],
            "cancelled_by": booking["cancelled_by"],
            "reported_by": booking["no_show_reported_by"],
        },
    )


async def _recorded(booking: Booking, kind: str) -> None:
    values = {column._meta.name: getattr(booking, column._meta.name) for column in EVENT_COLUMNS}
    await record_many([_event(kind, values)])


def _now() -> datetime:
    return datetime.now(UTC)


async def _published(expert: Expert) -> Published:
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound(N_("This expert has no published charter."))
    return current


def _offered(rules: Rules, channel: str, duration: int) -> int:
    """The price in credits; refuses what the charter does not offer."""
    if channel not in CHANNELS:
        raise ValidationFailed({"channel": N_("Choose a call or a video call.")})
    price = rules.prices(channel).get(duration)
    if price is None:
        raise ValidationFailed({"duration": N_("This expert does not offer this duration.")})
    return price


def _frame(rules: Rules) -> slots.Frame:
    return slots.Frame(
        min_notice=timedelta(hours=rules.min_notice_hours),
        horizon=timedelta(days=rules.horizon_days),
        buffer=timedelta(minutes=rules.buffer_minutes),
        daily_cap=rules.daily_cap,
    )


def check_timezone(tz: str) -> str:
    if tz not in timezones():
        raise ValidationFailed({"tz": N_("Unknown time zone.")})
    return tz


@dataclass(frozen=True, slots=True)
class Free:
    """Free slots of one channel and duration, between two dates of the client."""

    starts: list[datetime]  # UTC
    duration: int
    credits: int
    charter_version: int
    expert_timezone: str


async def _occupied(
    expert: Expert,
    availability: Availability,
    first: date,
    last: date,
    buffer: timedelta,
    exclude: int = 0,
) -> tuple[list[slots.Span], list[slots.Span], list[slots.Span]]:
    """Working time, busy times of external calendars and active bookings of the expert
    (but booking `exclude`) between two of their local dates."""
    open_spans, busy = await _unbookable(expert, availability, first, last)
    bookings, _ = await _booked(expert, availability, first, last, buffer, exclude=exclude)
    return open_spans, busy, bookings


def _bounds(availability: Availability, first: date, last: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(availability.timezone)
    return slots.local_to_utc(first, 0, zone), slots.local_to_utc(last + timedelta(days=1), 0, zone)


async def _unbookable(
    expert: Expert, availability: Availability, first: date, last: date
) -> tuple[list[slots.Span], list[slots.Span]]:
    """The expert's working time and the busy times of their other calendars between two of
    their local dates: what changes with their settings and calendars, not with bookings."""
    open_spans = await working_time(expert, availability, first, last)
    start, end = _bounds(availability, first, last)
    busy: list[slots.Span] = []
    for calendar in await ExternalCalendar.select(ExternalCalendar.busy).where(
        ExternalCalendar.expert == expert.id
    ):
        for span_start, span_end in json.loads(calendar["busy"]):
            span = (datetime.fromisoformat(span_start), datetime.fromisoformat(span_end))
            if span[0] < end and span[1] > start:
                busy.append(span)
    return open_spans, busy


async def _booked(
    expert: Expert,
    availability: Availability,
    first: date,
    last: date,
    buffer: timedelta,
    *,
    exclude: int = 0,
    key: str | None = None,
) -> tuple[list[slots.Span], int | None]:
    """The expert's active bookings (but booking `exclude`) between two of their local
    dates and, in the same statement, the booking made with `key` if any (its id).

    A booking keeps the buffer it was made with (`blocked_until`, which PostgreSQL's
    constraint checks); the slot computation adds today's buffer after each booking, so
    bookings are given as ending at `blocked_until` less today's buffer. A new slot must
    then end today's buffer before a booking, and start after its own buffer: exactly what
    the constraint refuses otherwise."""
    start, end = _bounds(availability, first, last)
    around: Any = (
        (Booking.expert == expert.id)
        & (Booking.status == BookingStatus.booked.value)
        & (Booking.starts_at < end)
        & (Booking.blocked_until > start - timedelta(days=1))
        & (Booking.id != exclude)
    )
    columns: list[Any] = [Booking.starts_at, Booking.blocked_until]
    if key is not None:
        around |= Booking.key == key
        columns += [Booking.id, Booking.key]
    rows = await Booking.select(*columns).where(around)
    made = next((row["id"] for row in rows if key is not None and row["key"] == key), None)
    return [(row["starts_at"], row["blocked_until"] - buffer) for row in rows], made


async def free_slots(
    expert: Expert,
    *,
    channel: str,
    duration: int,
    first: date,
    last: date,
    tz: str,
    now: datetime | None = None,
    moving: Booking | None = None,
) -> Free:
    """The free slots starting on the client's dates `first`..`last` (in `tz`); for
    `moving`, a booking being moved: its own time counts as free and its channel, length and
    price stay what they were, even if the charter no longer offers them."""
    check_timezone(tz)
    if last < first or (last - first).days >= MAX_RANGE_DAYS:
        raise ValidationFailed({"end": N_("Ask for at most 62 days, the end after the start.")})
    today = (now or _now()).date()
    if first < today - timedelta(days=1) or last > today + timedelta(days=MAX_AHEAD_DAYS):
        raise ValidationFailed({"start": N_("Ask for dates from today to a year ahead.")})
    current = await _published(expert)
    if moving is None:
        credits = _offered(current.rules, channel, duration)
    else:
        channel, duration, credits = moving.channel, moving.duration, moving.credits
    availability = await availability_of(expert)
    # The client's dates, widened by a day each side, cover the expert's local dates.
    open_spans, busy, bookings = await _occupied(
        expert,
        availability,
        first - timedelta(days=1),
        last + timedelta(days=1),
        timedelta(minutes=current.rules.buffer_minutes),
        exclude=moving.id if moving else 0,
    )
    starts = slots.free_slots(
        open=open_spans,
        busy=busy,
        bookings=bookings,
        duration=timedelta(minutes=duration),
        now=now or _now(),
        frame=_frame(current.rules),
        tz=availability.timezone,
    )
    zone = ZoneInfo(tz)
    return Free(
        starts=[s for s in starts if first <= s.astimezone(zone).date() <= last],
        duration=duration,
        credits=credits,
        charter_version=current.number,
        expert_timezone=availability.timezone,
    )


def _aware(start: datetime) -> datetime:
    if start.tzinfo is None:
        raise ValidationFailed({"start": N_("Give the time with its offset, e.g. +01:00.")})
    try:
        return start.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset
        raise ValidationFailed({"start": N_("This time is too soon or already past.")}) from None


def _check_start(start: datetime, rules: Rules, now: datetime) -> None:
    if not slots.on_grid(start):
        raise ValidationFailed({"start": N_("Slots start on a quarter hour.")})
    if start < now + timedelta(hours=rules.min_notice_hours):
        raise ValidationFailed({"start": N_("This time is too soon or already past.")})
    if start >= now + timedelta(days=rules.horizon_days):
        raise ValidationFailed({"start": N_("This time is too far ahead.")})


async def _slot_is_free(
    expert: Expert,
    availability: Availability,
    rules: Rules,
    start: datetime,
    duration: int,
    now: datetime,
    exclude: int = 0,
) -> bool:
    """Inside the booking transaction: the slot as `free_slots` would list it now."""
    first, last = _days_around(availability, start)
    open_spans, busy, bookings = await _occupied(
        expert, availability, first, last, timedelta(minutes=rules.buffer_minutes), exclude
    )
    return _is_free(availability, rules, start, duration, now, open_spans, busy, bookings)


def _days_around(availability: Availability, start: datetime) -> tuple[date, date]:
    """The expert's local dates a slot check reads: the slot's, and one each side."""
    day = start.astimezone(ZoneInfo(availability.timezone)).date()
    return day - timedelta(days=1), day + timedelta(days=1)


def _is_free(
    availability: Availability,
    rules: Rules,
    start: datetime,
    duration: int,
    now: datetime,
    open_spans: list[slots.Span],
    busy: list[slots.Span],
    bookings: list[slots.Span],
) -> bool:
    free = slots.free_slots(
        open=open_spans,
        busy=busy,
        bookings=bookings,
        duration=timedelta(minutes=duration),
        now=now,
        frame=_frame(rules),
        tz=availability.timezone,
    )
    return start in free


def _meeting_url(availability: Availability, channel: str) -> str:
    if channel != "video":
        return ""
    return availability.meeting_url or VIDEO_ROOMS + "portal-" + secrets.token_hex(10)


@dataclass(frozen=True, slots=True)
class SlotChoice:
    """What a client asks to book."""

    channel: str
    duration: int
    start: datetime
    charter_version: int
    key: str  # the form's (or API call's) key: the same request twice books once
    timezone: str  # the client's, for what they are shown
    phone: str = ""  # the client's, when the expert calls


async def _same_request(key: str, expert: Expert, asked: SlotChoice) -> Booking | None:
    """The booking this key already made, if any; a key used for something else is refused
    (a client's mistake, never a reason to book or to hide a booking)."""
    done = await Booking.objects().where(Booking.key == key).first()
    if done is None:
        return None
    same = (done.expert, done.channel, done.duration, done.starts_at) == (
        expert.id,
        asked.channel,
        asked.duration,
        _aware(asked.start),
    )
    if not same:
        raise Conflict(N_("This key was already used for another booking."), code="key_reused")
    return done


async def booking_create(*, client: User, expert: Expert, asked: SlotChoice) -> Booking:
    """Book and hold the credits, all or nothing. Raises SlotTaken (409),
    InsufficientCredits (402), ValidationFailed (422) or Conflict `charter_changed`."""
    now = _now()
    if not asked.key or len(asked.key) > MAX_KEY:
        raise ValidationFailed({"key": N_("This form has expired: please choose the slot again.")})
    key = f"{client.id}:{asked.key}"[:120]
    if (done := await _same_request(key, expert, asked)) is not None:
        return done
    current = await _published(expert)
    rules = current.rules
    if asked.charter_version != current.number:
        raise Conflict(
            N_("The charter has changed since you chose this slot: please review it."),
            code="charter_changed",
        )
    credits = _offered(rules, asked.channel, asked.duration)
    start = _aware(asked.start)
    _check_start(start, rules, now)
    check_timezone(asked.timezone)
    availability = await availability_of(expert)
    phone, errors = asked.phone.strip()[:40], {}
    if (
        asked.channel == "call"
        and availability.call_mode == CallMode.expert_calls.value
        and sum(c in DIGITS for c in phone) < 6
    ):
        errors["phone"] = N_(
            "Your phone number, so the expert can call you: at least 6 digits, with the "
            "country code when outside France (e.g. +33 6 12 34 56 78)."
        )
    if asked.channel == "call":  # kept for calls only
        check_text(errors, "phone", phone)
    if errors:
        raise ValidationFailed(errors)
    wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
    ends = start + timedelta(minutes=asked.duration)
    # Read before the transaction, so that bookings of the expert wait for no more than
    # they must: working time and other calendars do not change with bookings.
    first, last = _days_around(availability, start)
    open_spans, busy = await _unbookable(expert, availability, first, last)
    buffer = timedelta(minutes=rules.buffer_minutes)
    try:
        async with write_transaction():
            await lock_days(availability, start, ends + buffer)
            bookings, made = await _booked(expert, availability, first, last, buffer, key=key)
            if made is not None and (done := await _same_request(key, expert, asked)) is not None:
                return done
            if not _is_free(
                availability, rules, start, asked.duration, now, open_spans, busy, bookings
            ):
                raise SlotTaken()
            booking = Booking(
                expert=expert.id,
                client=client.id,
                channel=asked.channel,
                duration=asked.duration,
                starts_at=start,
                ends_at=ends,
                blocked_until=ends + timedelta(minutes=rules.buffer_minutes),
                credits=credits,
                charter_version=current.number,
                cancel_free_hours=rules.cancel_free_hours,
                cancel_late_forfeit_percent=rules.cancel_late_forfeit_percent,
                no_show_client_percent=rules.no_show_client_percent,
                timezone=asked.timezone,
                call_mode=availability.call_mode if asked.channel == "call" else "",
                phone=phone if asked.channel == "call" else "",
                expert_phone=availability.phone
                if asked.channel == "call" and availability.call_mode == CallMode.client_calls.value
                else "",
                meeting_url=_meeting_url(availability, asked.channel),
                key=key,
                uid=secrets.token_hex(16),
            )
            await booking.save()
            held = await ledger.hold(
                wallet_id=wallet.id, amount=credits, reference=f"booking:{booking.id}"
            )
            await Booking.update({Booking.hold: held.id}).where(Booking.id == booking.id)
            booking.hold = held.id
            await _recorded(booking, EVENTS[BookingStatus.booked])
            return booking
    except (ExclusionViolationError, DeadlockDetectedError) as exc:
        raise SlotTaken() from exc
    except Exception as exc:
        if is_unique_violation(exc):  # the same form, submitted twice at once
            done = await _same_request(key, expert, asked)
            if done is not None:
                return done
        raise


def terms_of(booking: Booking) -> Terms:
    return Terms(
        credits=booking.credits,
        starts_at=booking.starts_at,
        cancel_free_hours=booking.cancel_free_hours,
        cancel_late_forfeit_percent=booking.cancel_late_forfeit_percent,
        no_show_client_percent=booking.no_show_client_percent,
    )


async def booking_of_client(*, client_id: int, booking_id: int) -> Booking:
    booking = (
        await Booking.objects()
        .where((Booking.id == booking_id) & (Booking.client == client_id))
        .first()
    )
    if booking is None:
        raise NotFound(N_("This booking does not exist."))
    return booking


async def bookings_of_client(
    *, client_id: int, upcoming: int = 50, past: int = 20
) -> list[dict[str, Any]]:
    """The client's upcoming bookings, soonest first, then the latest past ones."""
    now = _now()
    query = Booking.select(*Booking.all_columns(), Booking.expert.display_name)
    coming = (
        await query.where((Booking.client == client_id) & (Booking.ends_at > now))
        .order_by(Booking.starts_at)
        .limit(upcoming)
    )
    query = Booking.select(*Booking.all_columns(), Booking.expert.display_name)
    done = (
        await query.where((Booking.client == client_id) & (Booking.ends_at <= now))
        .order_by(Booking.starts_at, ascending=False)
        .limit(past)
    )
    return coming + done


async def booking_of_expert(*, expert_id: int, booking_id: int) -> Booking:
    booking = (
        await Booking.objects()
        .where((Booking.id == booking_id) & (Booking.expert == expert_id))
        .first()
    )
    if booking is None:
        raise NotFound(N_("This booking does not exist."))
    return booking


class CostChanged(Conflict):
    code = "cost_changed"

    def __init__(self, cost: int) -> None:
        self.cost = cost
        super().__init__(
            N_("The cost of cancelling has changed since the page was shown: please confirm again.")
        )


async def _settle(
    booking_id: int,
    status: BookingStatus,
    cost_of: Callable[[Booking], int],
    *,
    expected: int | None = None,
    skip_busy: bool = False,
    **values: Any,
) -> Booking | None:
    """End a booked booking once: capture what `cost_of` says for the booking as it is once
    locked (the rest released) and set its new status, in one transaction. When the caller
    showed a cost (`expected`) and it is no longer the one, nothing happens (CostChanged).
    A booking already ended this way is returned as is (a repeated job or click); ended
    another way, refused. With `skip_busy` (workers going through a list), a booking
    another worker is settling right now is left to it: None."""
    async with write_transaction():
        query = Booking.objects().where(Booking.id == booking_id)
        if is_postgres():
            query = query.lock_rows(skip_locked=skip_busy)
        booking = await query.first()
        if booking is None and skip_busy:
            return None
        if booking is None:
            raise NotFound(N_("This booking does not exist."))
        if booking.status != BookingStatus.booked.value:
            if booking.status == status.value:
                return booking
            raise Conflict(N_("This booking has already ended."), code="booking_ended")
        amount = cost_of(booking)
        if expected is not None and amount != expected:
            raise CostChanged(amount)
        await ledger.finish(hold_id=booking.hold, amount=amount, reference=f"booking:{booking.id}")
        [row] = (
            await Booking.update(
                {
                    Booking.status: status.value,
                    Booking.settled_at: _now(),
                    Booking.sequence: Booking.sequence + 1,
                    **{getattr(Booking, name): value for name, value in values.items()},
                }
            )
            .where(Booking.id == booking.id)
            .returning(*Booking.all_columns())
        )
        await record_many([_event(EVENTS[status], row)])
        return Booking(_exists_in_db=True, **row)


REASON_MAX = 500


async def booking_cancel(
    *,
    booking: Booking,
    by_expert: bool,
    now: datetime | None = None,
    expected_cost: int | None = None,
    reason: str = "",
) -> Booking:
    """Cancel: free before the deadline or when the expert cancels, else the charter's
    share of the credits is kept. `expected_cost`: what the client was shown. The expert
    says why (`reason`, shown to the client and in their email)."""
    now = now or _now()
    reason = reason.replace("\r\n", "\n").strip()
    errors: dict[str, str] = {}
    if by_expert:
        if not reason:
            errors["reason"] = N_("Say why: the client reads it.")
        elif len(reason) > REASON_MAX:
            errors["reason"] = N_("At most 500 characters.")
        check_text(errors, "reason", reason, multiline=True)

    def cost(locked: Booking) -> int:  # only for a booking this call ends
        if locked.starts_at <= now and not by_expert:
            raise Conflict(N_("This booking has already started."), code="booking_started")
        if by_expert and errors:  # (a repeated click on an ended booking needs no reason)
            raise ValidationFailed(errors)
        return cancellation_cost(terms_of(locked), now=now, by_expert=by_expert)

    ended = await _settle(
        booking.id,
        BookingStatus.cancelled,
        cost,
        expected=expected_cost,
        cancelled_at=now,
        cancelled_by="expert" if by_expert else "client",
        cancel_reason=reason if by_expert else "",
    )
    assert ended is not None  # only a skipping caller gets None
    return ended


async def booking_no_show(
    *,
    booking: Booking,
    client_absent: bool,
    now: datetime | None = None,
    reported_by: str = "expert",
) -> Booking:
    """Who did not come, told NO_SHOW_GRACE after the start at the earliest: by the expert
    (either side), or by the client (the expert did not call)."""
    now = now or _now()
    if now < booking.starts_at + NO_SHOW_GRACE:
        minutes = int(NO_SHOW_GRACE.total_seconds() // 60)
        raise Conflict(
            N_("A no-show can be told from %(minutes)s minutes after the start.")
            % {"minutes": minutes},
            code="not_started",
        )
    status = BookingStatus.no_show_client if client_absent else BookingStatus.no_show_expert
    ended = await _settle(
        booking.id,
        status,
        lambda locked: no_show_cost(terms_of(locked), client_absent=client_absent),
        no_show_reported_by=reported_by,
    )
    assert ended is not None  # only a skipping caller gets None
    return ended


CONTEST_MAX = 1000


async def _locked(booking_id: int) -> Booking:
    query = Booking.objects().where(Booking.id == booking_id)
    booking = await (query.lock_rows() if is_postgres() else query).first()
    if booking is None:
        raise NotFound(N_("This booking does not exist."))
    return booking


async def booking_contest(*, booking: Booking, text: str, now: datetime | None = None) -> Booking:
    """The client says they were there: within CONTEST_WITHIN of the no-show, once, with
    what happened (the expert reads it and decides)."""
    now = now or _now()
    text = text.replace("\r\n", "\n").strip()
    errors: dict[str, str] = {}
    if not text:
        errors["contest"] = N_("Say what happened: the expert reads it.")
    elif len(text) > CONTEST_MAX:
        errors["contest"] = N_("At most 1,000 characters.")
    check_text(errors, "contest", text, multiline=True)
    if errors:
        raise ValidationFailed(errors)
    async with write_transaction():
        locked = await _locked(booking.id)
        if locked.status != BookingStatus.no_show_client.value or locked.contested_at:
            raise Conflict(N_("This no-show cannot be contested."), code="not_contestable")
        if locked.settled_at is None or now > locked.settled_at + CONTEST_WITHIN:
            raise Conflict(
                N_("The 48 hours to contest this no-show have passed."), code="contest_closed"
            )
        await Booking.update({Booking.contest_text: text, Booking.contested_at: now}).where(
            Booking.id == locked.id
        )
        locked.contest_text, locked.contested_at = text, now
        await record(
            "booking.contested",
            f"booking:{locked.id}:contested",
            booking=locked.id,
            client=locked.client,
            expert=locked.expert,
        )
    return locked


async def booking_contest_decide(
    *, booking: Booking, accept: bool, reply: str = "", now: datetime | None = None
) -> Booking:
    """The expert answers a contested no-show, once: accepted, the credits it kept are given
    back to the client (valid 12 months); rejected, they stay debited, and the expert says
    why (`reply`, shown to the client and in their email). Both are told."""
    now = now or _now()
    reply = reply.replace("\r\n", "\n").strip() if not accept else ""
    errors: dict[str, str] = {}
    if not accept:
        if not reply:
            errors["reply"] = N_("Say why the no-show stands: the client reads it.")
        elif len(reply) > REASON_MAX:
            errors["reply"] = N_("At most 500 characters.")
        check_text(errors, "reply", reply, multiline=True)
    if errors:
        raise ValidationFailed(errors)
    async with write_transaction():
        locked = await _locked(booking.id)
        if locked.contested_at is None or locked.contest_decision:
            raise Conflict(N_("There is no contest to answer."), code="no_contest")
        given = 0
        hold = None
        if accept and locked.hold is not None:
            hold = (
                await Hold.select(Hold.wallet, Hold.captured).where(Hold.id == locked.hold).first()
            )
            given = hold["captured"] if hold else 0
        if hold is not None and given:
            await ledger.grant(
                wallet_id=hold["wallet"],
                credits=given,
                expires_at=now + timedelta(days=365),
                reference=f"contest:{locked.id}",  # "No-show contested, booking #7"
                key=f"contest:booking:{locked.id}",
                kind=EntryKind.adjust,
            )
        decision = "accepted" if accept else "rejected"
        await Booking.update(
            {
                Booking.contest_decision: decision,
                Booking.contest_reply: reply,
                Booking.decided_at: now,
            }
        ).where(Booking.id == locked.id)
        locked.contest_decision, locked.contest_reply, locked.decided_at = decision, reply, now
        await record(
            "booking.contest_decided",
            f"booking:{locked.id}:contest:{decision}",
            booking=locked.id,
            client=locked.client,
            expert=locked.expert,
            decision=decision,
            given=given,
        )
    return locked


async def booking_move(
    *, booking: Booking, start: datetime, now: datetime | None = None
) -> Booking:
    """Move a booking to another free slot of the same length, before its free-cancellation
    deadline; the credits stay held, the calendar event keeps its UID (SEQUENCE grows)."""
    now = now or _now()
    if booking.status != BookingStatus.booked.value:
        raise Conflict(N_("This booking has already ended."), code="booking_ended")
    if now >= terms_of(booking).free_until:
        raise Conflict(
            N_("The free-cancellation deadline has passed: this booking can no longer be moved."),
            code="too_late",
        )
    expert = await Expert.objects().get(Expert.id == booking.expert)
    if expert is None:
        raise NotFound(N_("This expert does not exist."))
    rules = (await _published(expert)).rules
    start = _aware(start)
    _check_start(start, rules, now)
    ends = start + timedelta(minutes=booking.duration)
    availability = await availability_of(expert)  # never made inside the transaction
    try:
        async with write_transaction():
            await lock_days(availability, start, ends + (booking.blocked_until - booking.ends_at))
            query = Booking.objects().where(Booking.id == booking.id)
            locked = await (query.lock_rows() if is_postgres() else query).first()
            if locked is None or locked.status != BookingStatus.booked.value:
                raise Conflict(N_("This booking has already ended."), code="booking_ended")
            if not await _slot_is_free(
                expert, availability, rules, start, booking.duration, now, exclude=booking.id
            ):
                raise SlotTaken()
            await Booking.update(
                {
                    Booking.starts_at: start,
                    Booking.ends_at: ends,
                    Booking.blocked_until: ends + (booking.blocked_until - booking.ends_at),
                    Booking.sequence: Booking.sequence + 1,
                }
            ).where((Booking.id == booking.id) & (Booking.status == BookingStatus.booked.value))
            moved = await Booking.objects().get(Booking.id == booking.id)
            assert moved is not None  # locked and changed above, in this transaction
            await _recorded(moved, "booking.moved")
    except (ExclusionViolationError, DeadlockDetectedError) as exc:
        raise SlotTaken() from exc
    return moved


CONFIRM_BATCH = 50  # bookings confirmed in one transaction


async def bookings_confirm_due(*, now: datetime | None = None, batch: int = CONFIRM_BATCH) -> int:
    """Capture the credits of every booking ended (plus a grace period) and not cancelled,
    `batch` bookings to a transaction until none is left; safe to run twice or from two
    workers at once: on PostgreSQL each takes the bookings no other holds (SKIP LOCKED), on
    SQLite their transactions take turns and each reads what the other left."""
    now = now or _now()
    confirmed = 0
    passed: list[int] = []  # bookings this run could not confirm: not asked again
    while True:
        done, seen, left = await _confirm_batch(now, batch, passed)
        confirmed += done
        for booking_id in left:  # their holds could not be captured with the others
            try:
                settled = await _settle(
                    booking_id,
                    BookingStatus.completed,
                    lambda locked: locked.credits,
                    skip_busy=True,
                )
            except Conflict:  # ended meanwhile (cancelled, no-show) by someone else
                settled = None
            if settled is None:
                passed.append(booking_id)
            else:
                confirmed += 1
        if seen < batch:
            return confirmed


async def _confirm_batch(now: datetime, size: int, passed: list[int]) -> tuple[int, int, list[int]]:
    """In one transaction: up to `size` due bookings locked, their holds captured together
    and each booking completed, with its `booking.confirmed` event. Returns how many were
    confirmed, how many were due, and the bookings left to confirm one by one (a hold that
    no longer holds the booking's credits)."""
    due = (Booking.status == BookingStatus.booked.value) & (Booking.ends_at <= now - CONFIRM_GRACE)
    if passed:
        due &= Booking.id.not_in(passed)
    async with write_transaction():
        query = (
            Booking.select(Booking.id, Booking.hold, Booking.credits)
            .where(due)
            .order_by(Booking.ends_at)
            .limit(size)
        )
        if is_postgres():
            query = query.lock_rows(skip_locked=True)
        rows = await query
        amounts = {row["hold"]: row["credits"] for row in rows if row["hold"] is not None}
        captured = {held.id for held in await ledger.capture_all(amounts=amounts)}
        ids = [row["id"] for row in rows if row["hold"] in captured]
        if ids:
            ended = (
                await Booking.update(
                    {
                        Booking.status: BookingStatus.completed.value,
                        Booking.settled_at: _now(),
                        Booking.sequence: Booking.sequence + 1,
                    }
                )
                .where(Booking.id.is_in(ids))
                .returning(*EVENT_COLUMNS)
            )
            kind = EVENTS[BookingStatus.completed]
            await record_many([_event(kind, row) for row in ended])
    return len(ids), len(rows), [row["id"] for row in rows if row["hold"] not in captured]
