"""Emails to send, written when what they tell happens (in the same transaction), sent by
the worker, each once: its key is unique."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.accounts.tables import User


class NotificationStatus(StrEnum):
    pending = "pending"  # to send (again at `next_attempt_at` after a failure)
    sending = "sending"  # taken by a worker until `next_attempt_at` (then free to take again)
    sent = "sent"
    failed = "failed"  # every attempt failed; the sweep tries again later


class Notification(Table, tablename="notify_notification"):
    id: Serial  # the primary key Piccolo adds, declared for type checkers
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=40, null=False)  # booking_confirmed, question_answered, ...
    key = Varchar(length=160, null=False, unique=True)  # one email per event
    to_address = Varchar(length=254, null=False)
    subject = Varchar(length=300, null=False)
    text = Text(null=False)
    html = Text(null=False)
    ics = Text(default="", null=False)  # a calendar part (invite or cancellation), if any
    ics_method = Varchar(length=16, default="", null=False)  # REQUEST, CANCEL
    status = Varchar(
        length=16, choices=NotificationStatus, default=NotificationStatus.pending.value, null=False
    )
    attempts = Integer(default=0, null=False)
    last_error = Varchar(length=300, default="", null=False)
    next_attempt_at = Timestamptz(default=TimestamptzNow(), null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    sent_at = Timestamptz(null=True, default=None)
