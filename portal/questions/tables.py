"""Written questions and their answers.

A question is one paid (or included, or free) exchange. A follow-up in the same thread is a
question of its own, with its own price, pointing at the first one (`thread`).
"""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.accounts.tables import Expert, User
from portal.booking.tables import Booking
from portal.credits.tables import Hold


class QuestionStatus(StrEnum):
    open = "open"  # waiting for the expert; its credits are held
    answered = "answered"  # answered and classified; the worker settles the credits
    settled = "settled"  # credits captured (expertise) or released (coordination)
    expired = "expired"  # unanswered in time: credits released


class Question(Table, tablename="questions_question"):
    id: Serial  # the primary key Piccolo adds, declared for type checkers
    expert = ForeignKey(Expert, null=False, on_delete=OnDelete.restrict, index=True)
    client = ForeignKey(User, null=False, on_delete=OnDelete.restrict, index=True)
    thread = Integer(null=True, default=None, index=True)  # the first question's id; None: it
    body = Text(null=False)
    urgent = Boolean(default=False, null=False)
    status = Varchar(
        length=16, choices=QuestionStatus, default=QuestionStatus.open.value, null=False
    )
    # What the client accepted: the answer's price (0 when a booked call included it) and
    # the urgency premium, under this charter version.
    price = Integer(null=False)
    premium = Integer(default=0, null=False)
    charter_version = Integer(null=False)
    included_by = ForeignKey(Booking, null=True, default=None, on_delete=OnDelete.restrict)
    hold = ForeignKey(Hold, null=True, default=None, on_delete=OnDelete.restrict)
    key = Varchar(length=120, null=False, unique=True)  # one question per submitted form
    sent_at = Timestamptz(default=TimestamptzNow(), null=False)
    due_at = Timestamptz(null=False)  # by the working-hours clock
    expires_at = Timestamptz(null=False)  # unanswered then: released
    answer = Text(default="", null=False)
    billable = Boolean(null=True, default=None)  # expertise (True) or coordination (False)
    answered_at = Timestamptz(null=True, default=None)
    captured = Integer(default=0, null=False)  # credits debited in the end
    settled_at = Timestamptz(null=True, default=None)
