"""Recording an event, in the transaction of the change it describes.

`record()` is all a domain service calls: it imports nothing of who listens. The event's
key is unique, so an operation repeated (a webhook delivered twice, a job run again)
records its event once. On PostgreSQL the event carries its transaction's id, which
orders the log in commit-safe order (see tables.Event).

Whoever runs the domain code (a web request, a worker job) opens a `Recording` around it
and, when it ends with events recorded, wakes the consumers (`wake()`): a job is only a
trigger, the worker's sweep reads what a lost wake-up missed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from portal.db import get_engine, is_postgres
from portal.events.tables import Event

WAKE_JOB = "process_events"


@dataclass(slots=True)
class Recording:
    """How many events the code run inside `recording()` wrote (rolled back or not)."""

    events: int = 0


_recording: ContextVar[Recording | None] = ContextVar("events_recording", default=None)


@contextmanager
def recording() -> Iterator[Recording]:
    """Count the events recorded by the code run inside (tasks it starts included)."""
    counter = Recording()
    token = _recording.set(counter)
    try:
        yield counter
    finally:
        _recording.reset(token)


def wake_job_id(now: float | None = None) -> str:
    """One wake-up per half second at most, across every process: a burst of writes
    queues one job, and a job already run for this half second is not queued again."""
    moment = datetime.now(UTC).timestamp() if now is None else now
    return f"events:{int(moment * 2)}"


async def record(kind: str, key: str, **data: Any) -> None:
    """Write the event `kind` (once per `key`) with `data` (ids and values, JSON), in the
    current transaction."""
    await record_many([(kind, key, data)])


async def record_many(events: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Write several events in one statement, in the current transaction."""
    if not events:
        return
    engine = get_engine()
    if engine.current_transaction.get() is None:
        raise RuntimeError("an event is recorded in the transaction of its change")
    now = datetime.now(UTC)
    txid = "pg_current_xact_id()::text::bigint" if is_postgres(engine) else "0"
    rows = ", ".join(f"({{}}, {{}}, {{}}, {txid}, {{}})" for _ in events)
    args: list[Any] = []
    for kind, key, data in events:
        args += [kind, key, json.dumps(data, separators=(",", ":"), sort_keys=True), now]
    insert = f"INSERT INTO events_event (kind, key, data, txid, recorded_at) VALUES {rows} "  # noqa: S608
    await Event.raw(insert + "ON CONFLICT (key) DO NOTHING", *args)
    counter = _recording.get()
    if counter is not None:
        counter.events += len(events)
