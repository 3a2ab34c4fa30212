"""arq worker settings. Start with `portal worker` (which supplies the Redis address)."""

from __future__ import annotations

from typing import Any

from arq import cron

from portal import db
from portal.ops import record_heartbeat


async def startup(ctx: dict[str, Any]) -> None:
    await db.start_pool()
    await record_heartbeat(ctx["redis"])


async def shutdown(ctx: dict[str, Any]) -> None:
    await db.close_pool()


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Tell /healthz this worker is alive."""
    await record_heartbeat(ctx["redis"])


class WorkerSettings:
    functions: list[Any] = []
    cron_jobs = [cron(heartbeat, second={0, 15, 30, 45}, run_at_startup=True, unique=False)]
    on_startup = startup
    on_shutdown = shutdown
    poll_delay = 0.1
    queue_read_limit = 500
    health_check_interval = 30
    handle_signals = True
