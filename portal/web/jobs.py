"""Queueing a job after a write. A job is only a trigger: the worker's sweeps find anything
due that a lost job missed. So once the write is committed, Redis being unreachable costs a
little delay and a warning in the log, never an error answer for what was saved."""

from __future__ import annotations

import logging
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


async def trigger(redis: ArqRedis, function: str, *args: Any, job_id: str) -> None:
    """Queue `function(*args)` once per `job_id`, or log why it could not be queued."""
    try:
        await redis.enqueue_job(function, *args, _job_id=job_id)
    except REDIS_DOWN as exc:
        log.warning(
            "job %s (%s) not queued, the worker's sweep will do it: %s: %s",
            function,
            job_id,
            type(exc).__name__,
            exc,
        )
