"""Operational state: the worker's heartbeat and the health report behind /healthz."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from portal import db
from portal.consumers import CONSUMERS
from portal.events.consume import consumers_state

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "portal:worker:heartbeat"
HEARTBEAT_EVERY_S = 15
HEARTBEAT_STALE_S = 90  # a worker is "down" after missing several beats
QUEUE_KEY = "arq:queue"
CHECK_TIMEOUT_S = 3


async def record_heartbeat(redis: Redis) -> None:
    beat = {"at": datetime.now(UTC).isoformat()}
    await redis.set(HEARTBEAT_KEY, json.dumps(beat), ex=24 * 3600)


SWEEP_KEY = "portal:worker:sweep"


async def record_sweep(redis: Redis) -> None:
    """The last time a worker went through what was due (bookings to confirm...)."""
    await redis.set(SWEEP_KEY, datetime.now(UTC).isoformat(), ex=7 * 24 * 3600)


async def worker_state(redis: Redis) -> dict[str, Any]:
    """What the expert dashboard shows of the workers: last heartbeat and sweep, queue."""
    beat, sweep = await redis.get(HEARTBEAT_KEY), await redis.get(SWEEP_KEY)
    last = datetime.fromisoformat(json.loads(beat)["at"]) if beat else None
    age = (datetime.now(UTC) - last).total_seconds() if last else None
    return {
        "last_heartbeat": last,
        "ok": age is not None and age <= HEARTBEAT_STALE_S,
        "last_sweep": datetime.fromisoformat(sweep.decode() if isinstance(sweep, bytes) else sweep)
        if sweep
        else None,
        "queued_jobs": await redis.zcard(QUEUE_KEY),
    }


async def _check(coro: Any) -> tuple[bool, str | None]:
    try:
        await asyncio.wait_for(coro, CHECK_TIMEOUT_S)
    except Exception as exc:  # a health check reports any failure instead of raising it
        # The kind of failure only: messages can name hosts and ports (see the logs).
        log.warning("health check failed: %s: %s", type(exc).__name__, exc)
        return False, type(exc).__name__
    return True, None


async def _into(target: dict[str, Any], coro: Any) -> None:
    target.update(await coro)


async def health_report(redis: Redis) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): healthy when the database, Redis and a worker all answer."""
    db_ok, db_error = await _check(db.ping())
    redis_ok, redis_error = await _check(redis.ping())
    worker: dict[str, Any] = {"ok": False, "last_heartbeat": None, "age_seconds": None}
    if redis_ok:
        raw = await redis.get(HEARTBEAT_KEY)
        worker["queued_jobs"] = await redis.zcard(QUEUE_KEY)
        if raw:
            beat = json.loads(raw)
            age = (datetime.now(UTC) - datetime.fromisoformat(beat["at"])).total_seconds()
            worker.update(
                last_heartbeat=beat["at"],
                age_seconds=round(age, 1),
                ok=age <= HEARTBEAT_STALE_S,
            )
    healthy = db_ok and redis_ok and worker["ok"]
    events: dict[str, Any] = {}
    if db_ok:
        names = [consumer.name for consumer in CONSUMERS]
        await _check(_into(events, consumers_state(names)))
    report = {
        "status": "ok" if healthy else "unavailable",
        "database": {"ok": db_ok, "engine": db.get_engine().engine_type, "error": db_error},
        "redis": {"ok": redis_ok, "error": redis_error},
        "worker": worker,
        "events": events,  # per consumer: waiting, oldest_waiting_s, failed
    }
    return healthy, report
