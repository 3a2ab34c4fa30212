"""Confirmations per second by real `portal worker` processes on SQLite and on PostgreSQL
(with Redis), with one and with two workers, beside arq's own rate for a job that does
nothing, measured in the same run; and the lag between an exchange becoming due and its
capture, under a load of BENCH_DUE (default 5,000) bookings due at once.

SQLite: a new file in a temporary folder for each round.

PostgreSQL: a database `portal_bench_workers` or the one BENCH_POSTGRES_DATABASE names (its
schema rebuilt each round) on the server of BENCH_POSTGRES_URL, else of a PostgreSQL
DATABASE_URL, else 127.0.0.1:5432; Redis:
BENCH_REDIS_URL (default redis://127.0.0.1:6379/7, emptied). PostgreSQL is skipped with a note
when it cannot be reached, everything when Redis cannot. Results: stdout and var/bench/workers.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.exceptions import RedisError

from tests.bench.bench_ledger import fresh_postgres_database, postgres_server_url
from tests.bench.common import PORTAL, RESULTS_DIR, ROOT

RESULTS_FILE = RESULTS_DIR / "workers.json"
DUE = int(os.environ.get("BENCH_DUE", "5000"))
NOOP_JOBS = 2000
DATABASE = os.environ.get("BENCH_POSTGRES_DATABASE") or "portal_bench_workers"


async def _fresh_database(server_url: str) -> str:
    return await fresh_postgres_database(server_url, DATABASE)


def _environment(tmp: Path, database_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        VAR_DIR=str(tmp / "var"),
        SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnop",
        BASE_URL="http://127.0.0.1:8000",
        PYTHONPATH=str(ROOT),
    )
    return env


async def _completed(database_url: str) -> tuple[int, list[datetime]]:
    if database_url.startswith("sqlite:"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
            rows = connection.execute(
                "SELECT settled_at FROM booking_booking WHERE status = 'completed'"
            ).fetchall()
        return len(rows), [datetime.fromisoformat(row[0]) for row in rows]
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT settled_at FROM booking_booking WHERE status = 'completed'"
        )
    finally:
        await connection.close()
    return len(rows), [row["settled_at"] for row in rows]


def _round(tmp: Path, server_url: str | None, redis_url: str, workers: int) -> dict[str, Any]:
    """One round on PostgreSQL (that server), or on a new SQLite file (None)."""
    if server_url is None:
        database_url = f"sqlite:///{tmp}/workers-{workers}.sqlite"
    else:
        database_url = asyncio.run(_fresh_database(server_url))
    env = _environment(tmp, database_url, redis_url)
    subprocess.run([*PORTAL, "migrate"], env=env, cwd=tmp, check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-m", "tests.bench.workers_seed", str(DUE)], env=env, cwd=tmp, check=True
    )
    asyncio.run(_flush(redis_url))
    started = datetime.now(UTC)
    clock = time.monotonic()
    processes = [
        subprocess.Popen(
            [*PORTAL, "worker"],
            env=env,
            cwd=tmp,
            stdout=(tmp / f"worker-{workers}-{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for n in range(workers)
    ]
    try:
        while True:
            done, settled = asyncio.run(_completed(database_url))
            if done >= DUE or time.monotonic() - clock > 900:
                break
            time.sleep(0.5)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    elapsed = max(settled) - started if settled else None
    lags = sorted((at - started).total_seconds() for at in settled)
    return {
        "database": "sqlite" if server_url is None else "postgres",
        "workers": workers,
        "confirmed": done,
        "seconds": elapsed.total_seconds() if elapsed else None,
        "per_second": done / elapsed.total_seconds() if elapsed else 0.0,
        "lag_median_s": statistics.median(lags) if lags else None,
        "lag_p95_s": lags[int(len(lags) * 0.95) - 1] if lags else None,
        "lag_max_s": lags[-1] if lags else None,
    }


async def _flush(redis_url: str) -> None:
    from portal.redis import connect

    redis = connect(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def _noop(ctx: dict[str, Any]) -> None:
    return None


async def _noop_rate(redis_url: str) -> float:
    """arq alone: how many jobs that do nothing one worker runs per second."""
    from arq import create_pool

    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings)
    try:
        await pool.flushdb()
        for n in range(NOOP_JOBS):
            await pool.enqueue_job("_noop", _job_id=f"noop:{n}", _queue_name="bench:noop")
    finally:
        await pool.aclose()
    worker = Worker(
        functions=[_noop],
        redis_settings=settings,
        queue_name="bench:noop",
        burst=True,
        handle_signals=False,
        poll_delay=0.1,
        max_jobs=10,
    )
    started = time.monotonic()
    try:
        await worker.async_run()
    finally:
        await worker.close()
    return NOOP_JOBS / (time.monotonic() - started)


def main() -> int:
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    try:
        asyncio.run(_flush(redis_url))
    except (OSError, TimeoutError, RedisError) as exc:
        print(f"skipped: Redis cannot be used ({type(exc).__name__}: {exc})")
        return 0
    servers: list[str | None] = [None]  # SQLite
    server_url = postgres_server_url()
    try:
        asyncio.run(_fresh_database(server_url))
        servers.append(server_url)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL skipped: it cannot be used ({type(exc).__name__}: {exc})")
    noop = asyncio.run(_noop_rate(redis_url))
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        rounds = [
            _round(Path(tmp), server, redis_url, workers)
            for server in servers
            for workers in (1, 2)
        ]
    print(f"\n{DUE} bookings due at once; arq running no-op jobs: {noop:,.0f} jobs/s (1 worker)")
    header = ("database", "workers", "confirmed/s", "vs no-op", "lag median s", "p95 s", "max s")
    print("{:<10}{:<9}{:>12}{:>10}{:>14}{:>8}{:>8}".format(*header))
    for r in rounds:
        if not r["confirmed"]:
            print(f"{r['database']:<10}{r['workers']:<9}: nothing confirmed")
            continue
        print(
            f"{r['database']:<10}{r['workers']:<9}{r['per_second']:>12,.0f}"
            f"{r['per_second'] / noop:>10.2f}{r['lag_median_s']:>14.1f}{r['lag_p95_s']:>8.1f}"
            f"{r['lag_max_s']:>8.1f}"
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps(
            {
                "benchmark": "workers",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "due": DUE,
                "noop_jobs_per_second": noop,
                "rounds": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Written to {RESULTS_FILE.relative_to(ROOT)}")
    return 0
