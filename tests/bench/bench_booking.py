"""Booking through the running portal (`portal web`, default database unless DATABASE_URL
says otherwise), on a busy expert: Europe/Paris, Monday to Friday 09:00-12:30 and
14:00-18:00, a 10-minute buffer, 500 bookings and 200 busy events of an external calendar
over 60 days around the next change of clocks (see booking_seed.py).

1. The whole `GET /api/v1/experts/{slug}/slots` request for those 60 days (database reads,
   slot computation, JSON), one after another on one connection: median and p95 of 50
   requests after warm-up, for 15, 30 and 45 minutes. Goal: a median under 10 ms. Beside
   it, in the same run, `/healthz` (one database and one Redis round trip) the same way.
2. Booking creations per second under contention: 32 clients booking 15-minute calls at
   once for BENCH_SECONDS, each choosing at random among the free slots of the 90 empty
   days after the busy ones (so they collide on slots, buffers and daily caps), on two
   server processes. Every answer must be 201 or 409 `slot_taken`; anything else fails
   the run.

The pure computation alone is bench_slots. Results: stdout and var/bench/booking.json.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.common import (
    PORTAL,
    RESULTS_DIR,
    ROOT,
    SECONDS,
    SETTLE_S,
    free_port,
    on_sigterm,
    portal_environment,
    read_answer,
    running,
    wait_until_answers,
)

RESULTS_FILE = RESULTS_DIR / "booking.json"
GOAL_MS = 10.0
RUNS = 50
WARMUP_RUNS = 10
RACERS = 32
RECONNECT_EVERY = 10


def timed_gets(
    port: int, path: str, runs: int = RUNS, warmup: int = WARMUP_RUNS
) -> tuple[list[float], bytes]:
    """`runs` sequential GETs on one keep-alive connection after `warmup`: ms each."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, body = [], b""
    for n in range(warmup + runs):
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        if n >= warmup:
            times.append(elapsed)
    connection.close()
    return times, body


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered),
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1],
    }


async def contention(port: int, seed: dict[str, Any], pool: list[str]) -> dict[str, Any]:
    """RACERS clients, each on its own keep-alive connection, booking until SECONDS have
    passed. Requests are written and answers read with asyncio streams: a general-purpose
    client (httpx) spent about half a core here, taken from the servers it measures."""
    rng = random.Random(7)
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + SECONDS
    path = f"/api/v1/experts/{seed['slug']}/bookings"

    async def racer(token: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for n in itertools.count(1):
                if time.monotonic() >= deadline:
                    break
                if n % RECONNECT_EVERY == 0:  # as clients come and go: spread over processes
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                body = json.dumps(
                    {
                        "start": rng.choice(pool),
                        "duration": 15,
                        "channel": "call",
                        "charter_version": 1,
                        "phone": "+33 6 12 34 56 78",
                    }
                ).encode()
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                status, answer = await read_answer(reader)
                code = json.loads(answer).get("code", "") if status != 201 else ""
                answers[f"{status} {code}".strip()] += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.wait_for(
        asyncio.gather(*(racer(token) for token in seed["tokens"][:RACERS])),
        timeout=SECONDS + 60,
    )
    elapsed = time.monotonic() - started
    created = answers.get("201", 0)
    return {
        "seconds": elapsed,
        "answers": dict(answers),
        "created_per_second": created / elapsed,
        "answers_per_second": sum(answers.values()) / elapsed,
        "unexpected": {k: v for k, v in answers.items() if k not in ("201", "409 slot_taken")},
    }


def race_pool(port: int, seed: dict[str, Any]) -> list[str]:
    """The free 15-minute slots of the empty weeks after the busy ones (the API gives 62
    days at most per request)."""
    first = date.fromisoformat(seed["race_first"])
    last = date.fromisoformat(seed["race_last"])
    pool: list[str] = []
    while first <= last:
        end = min(last, first + timedelta(days=59))
        path = (
            f"/api/v1/experts/{seed['slug']}/slots?start={first}&end={end}"
            "&duration=15&channel=call&tz=Europe/Paris"
        )
        _times, body = timed_gets(port, path, runs=1, warmup=0)
        pool += [slot["start"] for slot in json.loads(body)["slots"]]
        first = end + timedelta(days=1)
    return pool


def run_all(tmp: Path) -> dict[str, Any]:
    with portal_environment(tmp) as env:
        out = tmp / "seed.json"
        env = {**env, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-m", "tests.bench.booking_seed", str(out)],
            env=env,
            cwd=tmp,
            check=True,
        )
        seed = json.loads(out.read_text())
        print(
            f"expert {seed['slug']}: {seed['bookings']} bookings, {seed['busy']} busy events, "
            f"{seed['first']} to {seed['last']}",
            flush=True,
        )
        requests: dict[str, Any] = {}
        port = free_port()
        command = [*PORTAL, "web", "--workers", "1", "--port", str(port)]
        with running(command, env, tmp, tmp / "web-1.log") as process:
            wait_until_answers(f"http://127.0.0.1:{port}/healthz", process, tmp / "web-1.log")
            time.sleep(SETTLE_S)
            healthz, _body = timed_gets(port, "/healthz")
            requests["healthz"] = summary(healthz)
            for minutes in (15, 30, 45):
                path = (
                    f"/api/v1/experts/{seed['slug']}/slots?start={seed['first']}&end={seed['last']}"
                    f"&duration={minutes}&channel=call&tz=Europe/Paris"
                )
                times, body = timed_gets(port, path)
                requests[f"slots_{minutes}"] = {
                    **summary(times),
                    "slots": len(json.loads(body)["slots"]),
                    "bytes": len(body),
                }
            pool = race_pool(port, seed)
        port = free_port()
        command = [*PORTAL, "web", "--workers", "2", "--port", str(port)]
        with running(command, env, tmp, tmp / "web-2.log") as process:
            wait_until_answers(f"http://127.0.0.1:{port}/healthz", process, tmp / "web-2.log")
            time.sleep(SETTLE_S)
            raced = asyncio.run(contention(port, seed, pool))
    return {
        "seed": {k: v for k, v in seed.items() if k != "tokens"},
        "requests": requests,
        "contention": raced,
        "pool": len(pool),
    }


def main() -> int:
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
            result = run_all(Path(tmp))
    except KeyboardInterrupt:
        print("interrupted; servers stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    requests = result["requests"]
    print()
    print(f"{'whole request (1 connection)':<34}{'median ms':>10}{'p95 ms':>9}{'slots':>7}")
    rows = [("/healthz", requests["healthz"])]
    rows += [(f"slots, 60 days, {m} min", requests[f"slots_{m}"]) for m in (15, 30, 45)]
    for label, r in rows:
        slots = f"{r['slots']:>7}" if "slots" in r else ""
        print(f"{label:<34}{r['median_ms']:>10.2f}{r['p95_ms']:>9.2f}{slots}")
    worst = max(requests[f"slots_{m}"]["median_ms"] for m in (15, 30, 45))
    verdict = "meets" if worst < GOAL_MS else "misses"
    print(f"slowest median {worst:.2f} ms ({verdict} the goal of {GOAL_MS:g} ms)")
    raced = result["contention"]
    print(
        f"contention ({RACERS} clients, {result['pool']} slots, 2 server processes, "
        f"{raced['seconds']:.1f} s): {raced['created_per_second']:.1f} bookings created/s, "
        f"{raced['answers_per_second']:.0f} answers/s; {raced['answers']}"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps(
            {
                "benchmark": "booking",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **result,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Written to {RESULTS_FILE.relative_to(ROOT)}")
    if raced["unexpected"]:
        print(
            f"error: answers other than 201 and 409 slot_taken: {raced['unexpected']}",
            file=sys.stderr,
        )
        return 1
    return 0
