"""Written questions: what one costs before it is sent, sending it (the credits held in the
same transaction), the expert's answer and its classification, and settling the credits.

- The price is the charter's answer price plus, for an urgent question, the premium.
- A booked call or video call includes the charter's number of questions, from its booking
  until `included_window_days` after its end: such a question costs no answer price (the
  urgency premium, if asked for, is still held). Expired questions give their place back.
- The reply deadline runs on the working-hours clock (the charter's hours, with the
  expert's closed dates): urgent ones within `urgent_deadline_minutes`, others within
  `reply_working_hours`.
- Answered as expertise: the price is captured, and the premium only if the answer came
  before the deadline (a late urgent answer releases it). Answered as coordination: all is
  released. Unanswered after `question_expiry_days`: released, and the question expires.
- Settling happens once whatever runs it how often (the ledger's keys, the status checked on
  the locked question).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from portal.accounts.tables import Expert, User
from portal.booking.availability import overrides_of, weekly_minutes
from portal.booking.tables import Booking, BookingStatus
from portal.charter.rules import Rules
from portal.charter.services import Published, version_current, version_get
from portal.credits import ledger
from portal.credits.tables import Wallet
from portal.db import is_postgres, is_unique_violation, write_transaction
from portal.errors import N_, Conflict, NotFound, ValidationFailed
from portal.events.log import record
from portal.questions import clock
from portal.questions.tables import Question, QuestionStatus
from portal.validation import check_text

log = logging.getLogger(__name__)

MAX_BODY = 4000
MAX_KEY = 100
CLOCK_DAYS = 400  # the clock looks this far for working time


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Included:
    """A booking whose included questions the client may still use."""

    booking_id: int
    left: int
    until: datetime


@dataclass(frozen=True, slots=True)
class Quote:
    """What a question will cost and when it is due, shown before it is sent."""

    price: int  # the answer price, 0 when included with a booking
    premium: int  # the urgency premium, 0 when not urgent
    charter_version: int
    due_at: datetime
    expires_at: datetime
    off_hours: bool  # sent outside working hours: the clock starts at the next opening
    included: Included | None  # the booking paying for it, if any
    urgent_offered: bool

    @property
    def total(self) -> int:
        return self.price + self.premium


async def _published(expert: Expert) -> Published:
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound(N_("This expert has no published charter."))
    return current


async def _clock_inputs(expert: Expert, rules: Rules, start: date) -> dict[str, Any]:
    """The charter's working hours and zone, less the dates the expert closed (holidays).
    Dates with other booking hours do not change the reply clock: the charter says when
    the expert answers."""
    overrides = await overrides_of(expert, first=start, last=start + timedelta(days=CLOCK_DAYS))
    return {
        "weekly": weekly_minutes(rules.working_hours),
        "overrides": {day: () for day, periods in overrides.items() if not periods},
        "tz": rules.timezone,
    }


async def clock_inputs_for(expert: Expert) -> dict[str, Any]:
    """The clock's working time for this expert now: the current charter's hours and time
    zone, with the expert's closed dates."""
    rules = (await _published(expert)).rules
    return await _clock_inputs(expert, rules, _now().date() - timedelta(days=1))


async def _included(client: User, expert: Expert, now: datetime) -> Included | None:
    """The call (oldest first) whose included follow-up questions are not all used yet.

    Only a call that took place includes questions (one still to come could be cancelled
    after its questions were asked for free), from its end for `included_window_days`. A
    question that expired or was answered as coordination (free anyway) gives its place back.
    """
    bookings = (
        await Booking.objects()
        .where(
            (Booking.client == client.id)
            & (Booking.expert == expert.id)
            & (
                (Booking.status == BookingStatus.completed.value)
                | ((Booking.status == BookingStatus.booked.value) & (Booking.ends_at <= now))
            )
            & (Booking.ends_at > now - timedelta(days=90))
        )
        .order_by(Booking.starts_at)
    )
    for booking in bookings:
        rules = (await version_get(expert=expert, number=booking.charter_version)).rules
        until = booking.ends_at + timedelta(days=rules.included_window_days)
        if rules.included_messages == 0 or until <= now:
            continue
        used = await Question.count().where(
            (Question.included_by == booking.id)
            & (Question.status != QuestionStatus.expired.value)
            & (Question.billable.is_null() | (Question.billable == True))  # noqa: E712
        )
        if used < rules.included_messages:
            return Included(booking.id, rules.included_messages - used, until)
    return None


async def quote(
    *, expert: Expert, client: User | None, urgent: bool, now: datetime | None = None
) -> Quote:
    """The price and deadline of a question sent now; refuses urgency the charter does not
    offer (or not off-hours)."""
    now = now or _now()
    current = await _published(expert)
    rules = current.rules
    inputs = await _clock_inputs(expert, rules, now.date() - timedelta(days=1))
    off_hours = not clock.is_working(now, **inputs)
    if urgent and not rules.urgent_enabled:
        raise ValidationFailed({"urgent": N_("This expert does not take urgent questions.")})
    if urgent and off_hours and not rules.off_hours_urgent:
        raise ValidationFailed(
            {"urgent": N_("This expert takes urgent questions during working hours only.")}
        )
    minutes = rules.urgent_deadline_minutes if urgent else rules.reply_working_hours * 60
    included = await _included(client, expert, now) if client is not None else None
    try:
        due = clock.due_at(now, minutes, max_days=CLOCK_DAYS, **inputs)
    except ValueError:  # no working time for a year (every date closed)
        raise ValidationFailed(
            {"body": N_("This expert has no working hours ahead: questions cannot be answered.")}
        ) from None
    return Quote(
        price=0 if included else rules.answer_price,
        premium=rules.urgent_premium if urgent else 0,
        charter_version=current.number,
        due_at=due,
        # Never closed before its own deadline (a long reply time, closed weeks).
        expires_at=max(now + timedelta(days=rules.question_expiry_days), due),
        off_hours=off_hours,
        included=included,
        urgent_offered=rules.urgent_enabled and (rules.off_hours_urgent or not off_hours),
    )


def _body(text: str) -> str:
    body = text.replace("\r\n", "\n").strip()
    if not body:
        raise ValidationFailed({"body": N_("Write your question.")})
    if len(body) > MAX_BODY:
        raise ValidationFailed({"body": N_("At most 4,000 characters.")})
    errors: dict[str, str] = {}
    check_text(errors, "body", body, multiline=True)
    if errors:
        raise ValidationFailed(errors)
    return body


async def _thread_of(client: User, expert: Expert, follows: int | None) -> int | None:
    """The thread a follow-up joins (its first question's id); only the client's own."""
    if follows is None:
        return None
    first = (
        await Question.objects()
        .where(
            (Question.id == follows)
            & (Question.client == client.id)
            & (Question.expert == expert.id)
        )
        .first()
    )
    if first is None:
        raise NotFound(N_("This question does not exist."))
    return first.thread or first.id


async def ask(
    *,
    client: User,
    expert: Expert,
    body: str,
    urgent: bool,
    key: str,
    charter_version: int | None = None,
    follows: int | None = None,
    now: datetime | None = None,
) -> Question:
    """Send a question and hold its credits, all or nothing. The same key again returns the
    question it sent. Raises InsufficientCredits (402), ValidationFailed (422), Conflict
    `charter_changed` when the version accepted is no longer the current one."""
    now = now or _now()
    text = _body(body)
    if not key or len(key) > MAX_KEY:
        raise ValidationFailed({"key": N_("This form has expired: please write it again.")})
    key = f"{client.id}:{key}"[:120]
    if (done := await Question.objects().where(Question.key == key).first()) is not None:
        return done
    thread = await _thread_of(client, expert, follows)
    wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
    try:
        async with write_transaction():
            # The client's wallet, locked: their questions are priced one at a time, so
            # two cannot use the same included place.
            locked = Wallet.select(Wallet.id).where(Wallet.id == wallet.id)
            await (locked.lock_rows() if is_postgres() else locked)
            priced = await quote(expert=expert, client=client, urgent=urgent, now=now)
            if charter_version is not None and charter_version != priced.charter_version:
                raise Conflict(
                    N_("The charter has changed since you wrote this question: please review it."),
                    code="charter_changed",
                )
            question = Question(
                expert=expert.id,
                client=client.id,
                thread=thread,
                body=text,
                urgent=urgent,
                price=priced.price,
                premium=priced.premium,
                charter_version=priced.charter_version,
                included_by=priced.included.booking_id if priced.included else None,
                key=key,
                sent_at=now,
                due_at=priced.due_at,
                expires_at=priced.expires_at,
            )
            await question.save()
            if priced.total:
                held = await ledger.hold(
                    wallet_id=wallet.id, amount=priced.total, reference=f"question:{question.id}"
                )
                await Question.update({Question.hold: held.id}).where(Question.id == question.id)
                question.hold = held.id
            await record(
                "question.asked",
                f"question:{question.id}:asked",
                question=question.id,
                client=question.client,
                expert=question.expert,
            )
            return question
    except Exception as exc:
        if is_unique_violation(exc):  # the same form twice at once
            done = await Question.objects().where(Question.key == key).first()
            if done is not None:
                return done
        raise


async def question_for(*, user: User, question_id: int) -> Question:
    """A question its client or its expert may read; anyone else: not found."""
    question = await Question.objects().where(Question.id == question_id).first()
    if question is not None:
        if question.client == user.id:
            return question
        expert = await Expert.objects().where(Expert.user == user.id).first()
        if expert is not None and question.expert == expert.id:
            return question
    raise NotFound(N_("This question does not exist."))


async def thread_of(question: Question) -> list[Question]:
    """The question's whole thread, oldest first."""
    root = question.thread or question.id
    return (
        await Question.objects()
        .where((Question.id == root) | (Question.thread == root))
        .order_by(Question.id)
    )


async def answer(
    *, expert: Expert, question_id: int, body: str, billable: bool, now: datetime | None = None
) -> Question:
    """Record the expert's answer and its classification; the credits are settled next.
    A question past its closing time is closed (the client was told nothing is debited)."""
    now = now or _now()
    text = body.replace("\r\n", "\n").strip()
    if not text:
        raise ValidationFailed({"answer": N_("Write your answer.")})
    if len(text) > MAX_BODY * 2:
        raise ValidationFailed({"answer": N_("At most 8,000 characters.")})
    errors: dict[str, str] = {}
    check_text(errors, "answer", text, multiline=True)
    if errors:
        raise ValidationFailed(errors)
    async with write_transaction():
        query = Question.objects().where(
            (Question.id == question_id) & (Question.expert == expert.id)
        )
        question = await (query.lock_rows() if is_postgres() else query).first()
        if question is None:
            raise NotFound(N_("This question does not exist."))
        if question.status != QuestionStatus.open.value or question.expires_at <= now:
            raise Conflict(N_("This question is already closed."), code="question_closed")
        await Question.update(
            {
                Question.answer: text,
                Question.billable: billable,
                Question.answered_at: now,
                Question.status: QuestionStatus.answered.value,
            }
        ).where(Question.id == question.id)
        answered = await Question.objects().get(Question.id == question_id)
        assert answered is not None  # locked and changed above, in this transaction
        await record(
            "question.answered",
            f"question:{answered.id}:answered",
            question=answered.id,
            client=answered.client,
            expert=answered.expert,
            billable=answered.billable,
        )
    return answered


def owed(question: Question) -> int:
    """What an answered question costs: expertise pays its price, and the premium only if
    answered by the deadline; coordination is free."""
    if not question.billable:
        return 0
    on_time = question.answered_at is not None and question.answered_at <= question.due_at
    return question.price + (question.premium if on_time else 0)


async def settle(*, question_id: int, now: datetime | None = None) -> Question | None:
    """Settle one answered question, or expire one left unanswered past its limit; nothing
    for any other (safe to run again)."""
    now = now or _now()
    async with write_transaction():
        query = Question.objects().where(Question.id == question_id)
        question = await (query.lock_rows() if is_postgres() else query).first()
        if question is None:
            return None
        if question.status == QuestionStatus.answered.value:
            amount = owed(question)
            status = QuestionStatus.settled
        elif question.status == QuestionStatus.open.value and question.expires_at <= now:
            amount = 0
            status = QuestionStatus.expired
        else:
            return question
        if question.hold is not None:  # nothing was held for an included question
            await ledger.finish(
                hold_id=question.hold, amount=amount, reference=f"question:{question.id}"
            )
        [row] = (
            await Question.update(
                {Question.status: status.value, Question.captured: amount, Question.settled_at: now}
            )
            .where(Question.id == question.id)
            .returning(*Question.all_columns())
        )
        await record(
            "question.settled",
            f"question:{question.id}:{status.value}",
            question=question.id,
            client=question.client,
            expert=question.expert,
            status=status.value,
            captured=amount,
        )
        return Question(_exists_in_db=True, **row)


async def questions_settle_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Every answered question not settled yet and every open one past its limit."""
    now = now or _now()
    due = (
        await Question.select(Question.id)
        .where(
            (Question.status == QuestionStatus.answered.value)
            | ((Question.status == QuestionStatus.open.value) & (Question.expires_at <= now))
        )
        .order_by(Question.id)
        .limit(limit)
    )
    settled = 0
    for row in due:
        try:
            question = await settle(question_id=row["id"], now=now)
        except Exception:  # one question's trouble must not hold up the others
            log.exception("question %s could not be settled", row["id"])
            continue
        if question is not None and question.settled_at == now:  # settled by this run
            settled += 1
    return settled
