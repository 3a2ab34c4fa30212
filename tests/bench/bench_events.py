"""How soon a booking's email leaves the outbox: real `portal web` and `portal worker`
processes, on SQLite and on PostgreSQL, with Redis; BENCH_EVENTS (default 20) bookings
made one at a time through the API, each after the worker has gone idle.

The path measured: the booking request records `booking.created` in its transaction; the
web middleware (portal/web/events.py) queues the worker's `process_events` job; the job's
notify consumer writes the emails and sends them at once (as .eml files under
VAR_DIR/outbox, without SMTP_URL). For each booking: the time from its 201 answer to the
client's email file being written, and to its `sent_at`. Goal: a median under 2 s.

Data: tests/bench/booking_seed.py (an expert with funded API clients). Databases: a new
SQLite file; PostgreSQL in the database BENCH_POSTGRES_DATABASE (default
portal_bench_events; its schema rebuilt) on the server of BENCH_POSTGRES_URL, else of a
PostgreSQL DATABASE_URL, else 127.0.0.1:5432, skipped with a note when unreachable. Redis:
BENCH_REDIS_URL (default redis://127.0.0.1:6379/7, emptied; without it, the whole benchmark
is skipped). Results: stdout and var/bench/events.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
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
import httpx
from redis.exceptions import RedisError

from tests.bench.bench_booking import race_pool
from tests.bench.bench_ledger import fresh_postgres_database, postgres_server_url
from tests.bench.bench_workers import _environment, _flush
from tests.bench.common import (
    PORTAL,
    RESULTS_DIR,
    ROOT,
    free_port,
    on_sigterm,
    running,
    tail,
    wait_until_answers,
)

RESULTS_FILE = RESULTS_DIR / "events.json"
BOOKINGS = int(os.environ.get("BENCH_EVENTS", "20"))
DATABASE = os.environ.get("BENCH_POSTGRES_DATABASE") or "portal_bench_events"
GOAL_S = 2.0
IDLE_S = (1.0, 2.0)  # the pause after an email, before the next booking: the worker idle
EMAIL_TIMEOUT_S = 30


async def _notification(database_url: str, key: str) -> dict[str, Any] | None:
    """The email `key`, once sent: its id and sent_at."""
    query = "SELECT id, sent_at FROM notify_notification WHERE key = {} AND status = 'sent'"
    if database_url.startswith("sqlite:"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
            row = connection.execute(query.format("?"), [key]).fetchone()
        if row is None:
            return None
        return {"id": row[0], "sent_at": datetime.fromisoformat(row[1])}
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(query.format("$1"), key)
    finally:
        await connection.close()
    return dict(row) if row is not None else None


def _email_sent(database_url: str, outbox: Path, key: str) -> tuple[float, float]:
    """Wait for the email `key`: (its file's write time, its sent_at), as epoch seconds."""
    deadline = time.monotonic() + EMAIL_TIMEOUT_S
    while time.monotonic() < deadline:
        found = asyncio.run(_notification(database_url, key))
        if found is not None:
            written = (outbox / f"{found['id']:08d}.eml").stat().st_mtime
            return written, found["sent_at"].timestamp()
        time.sleep(0.02)
    raise RuntimeError(f"the email {key} was not sent within {EMAIL_TIMEOUT_S} s")


def _book(http: httpx.Client, slug: str, token: str, starts: list[str]) -> tuple[int, float]:
    """One booking through the API, at the first of `starts` still free (taken from the
    list): its id and when its answer came (epoch seconds)."""
    while starts:
        response = http.post(
            f"/api/v1/experts/{slug}/bookings",
            json={
                "start": starts.pop(),
                "duration": 15,
                "channel": "call",
                "charter_version": 1,
                "phone": "+33 6 12 34 56 78",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        answered = time.time()
        if response.status_code == 201:
            return response.json()["id"], answered
        if response.json().get("code") != "slot_taken":  # a buffer or the daily cap
            raise RuntimeError(f"booking answered {response.status_code}: {response.text[:200]}")
    raise RuntimeError("no free slot left")


def _round(tmp: Path, server_url: str | None, redis_url: str) -> dict[str, Any]:
    """Bookings one at a time on a fresh database: PostgreSQL on that server, or SQLite."""
    name = "sqlite" if server_url is None else "postgres"
    if server_url is None:
        database_url = f"sqlite:///{tmp}/events.sqlite"
    else:
        database_url = asyncio.run(fresh_postgres_database(server_url, DATABASE))
    asyncio.run(_flush(redis_url))
    env = _environment(tmp / name, database_url, redis_url)
    (tmp / name).mkdir()
    cwd = tmp / name
    subprocess.run([*PORTAL, "migrate"], env=env, cwd=cwd, check=True, capture_output=True)
    out = cwd / "seed.json"
    subprocess.run(
        [sys.executable, "-m", "tests.bench.booking_seed", str(out)], env=env, cwd=cwd, check=True
    )
    seed = json.loads(out.read_text())
    outbox = cwd / "var" / "outbox"
    port = free_port()
    web = [*PORTAL, "web", "--workers", "1", "--port", str(port)]
    with (
        running([*PORTAL, "worker"], env, cwd, cwd / "worker.log"),
        running(web, env, cwd, cwd / "web.log") as process,
    ):
        wait_until_answers(f"http://127.0.0.1:{port}/healthz", process, cwd / "web.log")
        pool = race_pool(port, seed)
        rng = random.Random(11)
        rng.shuffle(pool)
        written: list[float] = []
        sent: list[float] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for n in range(BOOKINGS + 1):
                token = seed["tokens"][n % len(seed["tokens"])]
                booking_id, answered = _book(http, seed["slug"], token, pool)
                try:
                    file_at, sent_at = _email_sent(
                        database_url, outbox, f"client:booking:{booking_id}:booked:0"
                    )
                except RuntimeError as exc:
                    raise RuntimeError(f"{exc}\nworker:\n{tail(cwd / 'worker.log')}") from exc
                if n:  # the first one warms up
                    written.append(file_at - answered)
                    sent.append(sent_at - answered)
                time.sleep(rng.uniform(*IDLE_S))
    return {"database": name, "bookings": len(written), "written_s": written, "sent_s": sent}


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_s": statistics.median(ordered),
        "p90_s": ordered[max(0, int(len(ordered) * 0.9) - 1)],
        "max_s": ordered[-1],
    }


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
        asyncio.run(fresh_postgres_database(server_url, DATABASE))
        servers.append(server_url)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL skipped: it cannot be used ({type(exc).__name__}: {exc})")
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
            rounds = [_round(Path(tmp), server, redis_url) for server in servers]
    except KeyboardInterrupt:
        print("interrupted; servers stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"\n{BOOKINGS} bookings one at a time, the worker idle; from the 201 answer to:")
    header = ("database", "email file: median s", "p90 s", "max s", "sent_at: median s", "p90 s")
    print("{:<10}{:>22}{:>8}{:>8}{:>19}{:>8}".format(*header))
    worst = 0.0
    for r in rounds:
        r["written"], r["sent"] = _summary(r["written_s"]), _summary(r["sent_s"])
        w, s = r["written"], r["sent"]
        worst = max(worst, w["median_s"])
        print(
            f"{r['database']:<10}{w['median_s']:>22.2f}{w['p90_s']:>8.2f}{w['max_s']:>8.2f}"
            f"{s['median_s']:>19.2f}{s['p90_s']:>8.2f}"
        )
    verdict = "meets" if worst < GOAL_S else "misses"
    print(f"slowest median {worst:.2f} s ({verdict} the goal of {GOAL_S:g} s)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps(
            {
                "benchmark": "events",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "rounds": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Written to {RESULTS_FILE.relative_to(ROOT)}")
    return 0
