"""Reading the event log: each consumer from its own cursor, in order, once.

A round locks the consumer's cursor, reads the next events, applies the consumer's
effect for each, and moves the cursor, all in one transaction: the effect and the move
are kept or lost together, so each event is acted on once with several workers (they
queue on the cursor) and after a crash (the round is rolled back and read again).

What is slow and only reads (rendering an email) a consumer does in `prepare`, before the
transaction: the round reads the cursor and the next events, prepares them (all the
round's at once, so a consumer can do once what several events ask), then locks the
cursor; if it has not moved meanwhile, the transaction only stores what was prepared. If
it has (another worker took those events), what was prepared is dropped and the round
reads and handles the events inside the transaction, as without `prepare`; if preparing
failed, the round handles its events inside the transaction, one by one.

When acting on an event fails:
- for a reason that passes (the database unreachable, a lock or deadlock, a timeout), the
  round is rolled back and the cursor stays: the next wake-up or sweep reads it again;
- for a reason in the event itself (a bug, a row gone), its own writes are undone (a
  savepoint), it is written down as a Failure and passed, so it never holds up the events
  after it; `retry_failed` tries it again later (the worker every 10 minutes, or
  `portal events retry`) until it succeeds or RETRIES run out.

Rounds are short: BATCH events at most (fewer on SQLite, whose writers wait for the round,
and below PostgreSQL's 64 subtransactions a snapshot can track).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncpg.exceptions import (
    DeadlockDetectedError,
    InterfaceError,
    LockNotAvailableError,
    PostgresConnectionError,
    QueryCanceledError,
    SerializationError,
    TooManyConnectionsError,
)

from portal.db import is_postgres, write_transaction
from portal.events.tables import Cursor, Event, Failure

log = logging.getLogger(__name__)

BATCH_POSTGRES = 50
BATCH_SQLITE = 20
RETRIES = 12
# What fails for a while, not for the event: the round is tried again whole.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    sqlite3.OperationalError,
    PostgresConnectionError,
    InterfaceError,
    DeadlockDetectedError,
    LockNotAvailableError,
    QueryCanceledError,
    SerializationError,
    TooManyConnectionsError,
)


def batch() -> int:
    return BATCH_POSTGRES if is_postgres() else BATCH_SQLITE


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
    """For the events of `kinds` only (the cursor passes the others): `prepare`, when
    given, runs before the round's transaction with the round's events and may only read;
    it returns what to hand each event's `handle`, by event id. `handle` runs inside the
    transaction, with None when there is no `prepare` or what it prepared was dropped."""

    name: str
    kinds: frozenset[str]
    handle: Callable[[Recorded, Any], Awaitable[None]]
    prepare: Callable[[list[Recorded]], Awaitable[dict[int, Any]]] | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A round's events read and prepared before its transaction, from cursor `after`."""

    after: tuple[int, int]
    rows: list[dict[str, Any]]
    values: dict[int, Any]  # event id -> what `prepare` returned (none if it failed)


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


# The horizon on PostgreSQL: the oldest transaction still running, in this statement's
# snapshot, that may be writing to this database. A transaction another database on the
# same server is running cannot write our events: it does not hold them back (a long one
# there would otherwise stop every email here). Transaction ids are server-wide; one in
# the snapshot whose session has ended since, or that no session shows, counts as ours.
_NEXT_POSTGRES = """
WITH snap AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
  SELECT backend_xid::text::bigint AS xid FROM pg_stat_activity
  WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
),
ours AS (
  SELECT x::text::bigint AS xid FROM snap, pg_snapshot_xip(snap.s) AS x
  WHERE x::text::bigint % 4294967296 NOT IN (SELECT xid FROM elsewhere)
),
horizon AS (
  SELECT coalesce(
    (SELECT min(xid) FROM ours), (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap)
  ) AS txid
)
SELECT id, kind, key, data, events_event.txid, recorded_at FROM events_event, horizon
WHERE (events_event.txid, id) > ({}, {}) AND events_event.txid < horizon.txid
ORDER BY events_event.txid, id LIMIT {}
"""


async def _next(cursor: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    if is_postgres():
        # Only from transactions older than every one still running here: none of those
        # can still commit an event that sorts before the cursor.
        return await Event.raw(
            _NEXT_POSTGRES,
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
    at = row["recorded_at"]
    at = datetime.fromisoformat(at) if isinstance(at, str) else at
    at = at if at.tzinfo else at.replace(tzinfo=UTC)  # stored in UTC
    return Recorded(
        id=row["id"],
        kind=row["kind"],
        key=row["key"],
        data=json.loads(row["data"]),
        recorded_at=at,
    )


async def _act(
    consumer: Consumer, event: Recorded, transaction: Any, prepared: Any = None
) -> str | None:
    """Act on one event inside a savepoint: None when done, else the error (its writes
    undone). A transient error is raised: the whole round goes."""
    savepoint = await transaction.savepoint()
    try:
        await consumer.handle(event, prepared)
        await savepoint.release()
    except TRANSIENT:
        raise
    except Exception as exc:
        await savepoint.rollback_to()
        log.exception("%s: event %s (%s) failed", consumer.name, event.id, event.key)
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


async def _all_at_once(
    consumer: Consumer, events: list[Recorded], values: dict[int, Any], transaction: Any
) -> bool:
    """Prepared events stored in one savepoint (three statements fewer an event than one
    savepoint each); False, with nothing kept, when one of them fails: the round then
    takes them one by one, to write down which."""
    savepoint = await transaction.savepoint()
    try:
        for event in events:
            await consumer.handle(event, values.get(event.id))
        await savepoint.release()
    except TRANSIENT:
        raise
    except Exception:
        await savepoint.rollback_to()
        return False
    return True


async def _prepared(consumer: Consumer, limit: int) -> Prepared | None:
    """The next events read and prepared outside any transaction; None when none wait."""
    assert consumer.prepare is not None
    cursor = await Cursor.select(Cursor.txid, Cursor.event).where(
        Cursor.consumer == consumer.name
    ).first() or {"txid": 0, "event": 0}
    rows = await _next(cursor, limit)
    if not rows:
        return None
    events = [_recorded(row) for row in rows if row["kind"] in consumer.kinds]
    try:
        values = await consumer.prepare(events) if events else {}
    except TRANSIENT:
        raise
    except Exception:  # handled one by one in the round: the failing event written down there
        log.exception("%s: preparing events from %s failed", consumer.name, rows[0]["id"])
        values = {}
    return Prepared((cursor["txid"], cursor["event"]), rows, values)


_rounds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _round_lock(name: str) -> asyncio.Lock:
    """One round of a consumer at a time in a process (its jobs, woken together, would
    otherwise prepare the same events and all but one drop what they prepared)."""
    locks = _rounds.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(name, asyncio.Lock())


async def consume_round(consumer: Consumer, limit: int | None = None) -> int:
    """One round: up to `limit` events read and acted on; how many were read."""
    async with _round_lock(consumer.name):
        return await _round(consumer, limit or batch())


async def _round(consumer: Consumer, limit: int) -> int:
    ahead = None
    if consumer.prepare is not None:
        ahead = await _prepared(consumer, limit)
        if ahead is None:  # none waiting: no transaction (those recorded since wake it again)
            return 0
    async with write_transaction() as transaction:
        cursor = await _locked_cursor(consumer.name)
        if ahead is not None and ahead.after == (cursor["txid"], cursor["event"]):
            rows, values = ahead.rows, ahead.values
        else:  # nothing prepared, or another worker moved the cursor meanwhile
            rows, values = await _next(cursor, limit), {}
        if not rows:
            return 0
        events = [_recorded(row) for row in rows if row["kind"] in consumer.kinds]
        if not (values and await _all_at_once(consumer, events, values, transaction)):
            for event in events:
                # Unprepared: what was prepared for the round assumed it went whole.
                error = await _act(consumer, event, transaction)
                if error is not None:
                    await Failure.insert(
                        Failure(consumer=consumer.name, event=event.id, error=error)
                    )
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


async def retry_failed(consumer: Consumer) -> tuple[int, int]:
    """Try the consumer's failed events again, oldest first, each in its own transaction
    (so a consumer's round never waits on them): (done now, still failing)."""
    done = failing = 0
    failures = (
        await Failure.select(Failure.id, Failure.event)
        .where((Failure.consumer == consumer.name) & (Failure.attempts < RETRIES))
        .order_by(Failure.event)
    )
    for failure in failures:
        async with write_transaction() as transaction:
            rows = await Event.raw(
                "SELECT id, kind, key, data, txid, recorded_at FROM events_event WHERE id = {}",
                failure["event"],
            )
            error = await _act(consumer, _recorded(rows[0]), transaction) if rows else None
            if error is None:
                await Failure.delete().where(Failure.id == failure["id"])
                done += 1
            else:
                await Failure.update(
                    {Failure.error: error, Failure.attempts: Failure.attempts + 1}
                ).where(Failure.id == failure["id"])
                failing += 1
    return done, failing


async def consume(consumer: Consumer, limit: int | None = None) -> int:
    """Read until the log is caught up; how many events were read."""
    total = 0
    while read := await consume_round(consumer, limit):
        total += read
    return total


async def lag(name: str) -> int:
    """How many events the consumer `name` has still to read."""
    return (await _waiting(name))[0]


async def _waiting(name: str) -> tuple[int, datetime | None]:
    """(events the consumer `name` has still to read, when the oldest was recorded)."""
    cursor = await Cursor.select(Cursor.txid, Cursor.event).where(Cursor.consumer == name).first()
    position = cursor or {"txid": 0, "event": 0}
    if is_postgres():
        [row] = await Event.raw(
            "SELECT count(*) AS n, min(recorded_at) AS oldest FROM events_event "
            "WHERE (txid, id) > ({}, {})",
            position["txid"],
            position["event"],
        )
    else:
        [row] = await Event.raw(
            "SELECT count(*) AS n, min(recorded_at) AS oldest FROM events_event WHERE id > {}",
            position["event"],
        )
    oldest = row["oldest"]
    return int(row["n"]), datetime.fromisoformat(oldest) if isinstance(oldest, str) else oldest


async def consumers_state(names: list[str]) -> dict[str, dict[str, Any]]:
    """For /healthz: per consumer, the events waiting, how long the oldest has waited (on
    PostgreSQL a transaction left open anywhere on the server holds them back), and the
    events that failed."""
    state = {}
    now = datetime.now(UTC)
    for name in names:
        waiting, oldest = await _waiting(name)
        state[name] = {
            "waiting": waiting,
            "oldest_waiting_s": round((now - oldest).total_seconds(), 1) if oldest else None,
            "failed": await Failure.count().where(Failure.consumer == name),
        }
    return state
