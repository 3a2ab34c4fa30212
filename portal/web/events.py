"""Waking the event consumers after a request that recorded events.

Domain services record events in their transactions (portal.events.log) and know nothing
of the worker; this middleware counts what a request recorded and, once the response is
sent, queues the worker's `process_events` job (one per half second at most). A job lost
with Redis costs only delay: the worker's sweep reads the log every few seconds."""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis

from portal.events.log import WAKE_JOB, recording, wake_job_id
from portal.web.jobs import trigger


class WakeConsumers:
    def __init__(self, app: Any, redis: ArqRedis) -> None:
        self.app = app
        self.redis = redis

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with recording() as recorded:
            try:
                await self.app(scope, receive, send)
            finally:  # a request that failed after a commit still wakes them
                if recorded.events:
                    await trigger(self.redis, WAKE_JOB, job_id=wake_job_id())
