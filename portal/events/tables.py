"""The domain event log (a transactional outbox) and where each consumer has read to."""

from __future__ import annotations

from piccolo.columns import BigInt, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Event(Table, tablename="events_event"):
    """What happened, written in the transaction of the change it describes.

    `key` makes an operation repeated record its event once. `txid` is the writing
    transaction's id on PostgreSQL (0 on SQLite, whose writes commit in id order): events
    are read in (txid, id) order, and only from transactions older than every one still
    running, so a consumer never passes an event that commits later with a smaller id.
    """

    id: Serial

    kind = Varchar(length=40, null=False)  # booking.created, purchase.paid, ...
    key = Varchar(length=200, null=False, unique=True)
    data = Text(null=False, default="{}")  # JSON: the ids it concerns, what changed
    txid = BigInt(null=False, default=0)
    recorded_at = Timestamptz(default=TimestamptzNow(), null=False)


class Cursor(Table, tablename="events_cursor"):
    """How far one consumer has read: moved in the transaction of the consumer's effect."""

    id: Serial

    consumer = Varchar(length=40, null=False, unique=True)
    txid = BigInt(null=False, default=0)
    event = BigInt(null=False, default=0)  # the last event read
    events = BigInt(null=False, default=0)  # how many it has read in all
    moved_at = Timestamptz(default=TimestamptzNow(), null=False)


class Failure(Table, tablename="events_failure"):
    """An event a consumer could not act on (a bug, a row gone): the cursor went past it,
    so the events after it were not held up; it is tried again (`retry_failed`) until it
    succeeds or RETRIES run out, and shown on /healthz meanwhile."""

    id: Serial

    consumer = Varchar(length=40, null=False)
    event = BigInt(null=False)
    error = Varchar(length=300, null=False, default="")
    attempts = Integer(null=False, default=1)
    failed_at = Timestamptz(default=TimestamptzNow(), null=False)
