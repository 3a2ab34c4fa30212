"""Reading the event log: each consumer from its own cursor, in order, once.

A round locks the consumer's cursor, reads the next events, applies the consumer's
effect for each, and moves the cursor, all in one transaction: the effect and the move
are kept or lost together, so each event is acted on once with several workers (they
queue on the cursor) and after a crash (the round is rolled back and read again). An
event the consumer cannot act on (a bug, a row gone) is logged and passed, inside a
savepoint, so it never stops the events after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from portal.db import is_postgres, write_transaction
from portal.events.tables import Cursor, Event

log = logging.getLogger(__name__)

BATCH = 100


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as a consumer sees it."""

    id: int
    kind: str
    key: str
    data: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Consumer:
    """`handle` runs inside the round's transaction, for the events of `kinds` only (the
    cursor passes the others)."""

    name: str
    kinds: frozenset[str]
    handle: Callable[[Recorded], Awaitable[None]]


async def _locked_cursor(name: str) -> dict[str, Any]:
    if is_postgres():
        await Cursor.raw(
            "INSERT INTO events_cursor (consumer, moved_at) VALUES ({}, {}) "
            "ON CONFLICT (consumer) DO NOTHING",
            name,
            datetime.now(UTC),
        )
        [row] = await Cursor.raw(
            "SELECT txid, event FROM events_cursor WHERE consumer = {} FOR UPDATE", name
        )
        return row
    # SQLite: the round's transaction holds the database's write lock already.
    row = await Cursor.select(Cursor.txid, Cursor.event).where(Cursor.consumer == name).first()
    if row is None:
        await Cursor.insert(Cursor(consumer=name))
        return {"txid": 0, "event": 0}
    return row


async def _next(cursor: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    if is_postgres():
        # Only from transactions older than every one still running: none of those can
        # still commit an event that sorts before the cursor.
        return await Event.raw(
            "SELECT id, kind, key, data, txid, recorded_at FROM events_event "
            "WHERE (txid, id) > ({}, {}) "
            "AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
            "ORDER BY txid, id LIMIT {}",
            cursor["txid"],
            cursor["event"],
            limit,
        )
    # SQLite commits one writer at a time, in id order.
    return await Event.raw(
        "SELECT id, kind, key, data, txid, recorded_at FROM events_event "
        "WHERE id > {} ORDER BY id LIMIT {}",
        cursor["event"],
        limit,
    )


def _recorded(row: dict[str, Any]) -> Recorded:
    return Recorded(
        id=row["id"],
        kind=row["kind"],
        key=row["key"],
        data=json.loads(row["data"]),
        recorded_at=row["recorded_at"],
    )


async def consume_round(consumer: Consumer, limit: int = BATCH) -> int:
    """One round: up to `limit` events read and acted on; how many were read."""
    async with write_transaction() as transaction:
        cursor = await _locked_cursor(consumer.name)
        rows = await _next(cursor, limit)
        if not rows:
            return 0
        for row in rows:
            if row["kind"] not in consumer.kinds:
                continue
            event = _recorded(row)
            savepoint = await transaction.savepoint()
            try:
                await consumer.handle(event)
            except Exception:
                await savepoint.rollback_to()
                log.exception("%s: event %s (%s) passed", consumer.name, event.id, event.key)
            else:
                await savepoint.release()
        last = rows[-1]
        await Cursor.update(
            {
                Cursor.txid: last["txid"],
                Cursor.event: last["id"],
                Cursor.events: Cursor.events + len(rows),
                Cursor.moved_at: datetime.now(UTC),
            }
        ).where(Cursor.consumer == consumer.name)
    return len(rows)


async def consume(consumer: Consumer, limit: int = BATCH) -> int:
    """Read until the log is caught up; how many events were read."""
    total = 0
    while read := await consume_round(consumer, limit):
        total += read
    return total


async def lag(name: str) -> int:
    """How many events the consumer `name` has still to read (for the dashboard)."""
    cursor = await Cursor.select(Cursor.txid, Cursor.event).where(Cursor.consumer == name).first()
    position = cursor or {"txid": 0, "event": 0}
    if is_postgres():
        [row] = await Event.raw(
            "SELECT count(*) AS n FROM events_event WHERE (txid, id) > ({}, {})",
            position["txid"],
            position["event"],
        )
    else:
        [row] = await Event.raw(
            "SELECT count(*) AS n FROM events_event WHERE id > {}", position["event"]
        )
    return int(row["n"])
