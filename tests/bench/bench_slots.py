"""The pure slot computation (portal.booking.slots: open_spans then free_slots) on a busy
expert, against a plain sweep over the same intervals measured in the same run.
Goal: a median under 2 ms.

The expert: Europe/Paris, Monday to Friday 09:00-12:30 and 14:00-18:00, a 10-minute buffer,
a 60-day horizon that crosses the change to summer time (2026-03-29), 500 bookings and
200 busy calendar events spread over the working hours (seeded, so every run computes the
same thing), and a daily cap that some dates reach. The baseline sorts the 700 busy spans
and bookings, widened by the buffer, and joins them in one pass: the least any sweep over
these intervals does. Results: a table on stdout and var/bench/slots.json.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from portal.booking.slots import GRID, Frame, Span, free_slots, open_spans
from tests.bench.common import RESULTS_DIR, ROOT, ratio

RESULTS_FILE = RESULTS_DIR / "slots.json"
GOAL_MS = 2.0
RUNS = 50
WARMUP_RUNS = 10
SEED = 20260316

TZ = "Europe/Paris"
NOW = datetime(2026, 3, 16, 7, 0, tzinfo=UTC)  # a Monday; summer time starts on the 29th
FRAME = Frame(
    min_notice=timedelta(hours=12),
    horizon=timedelta(days=60),
    buffer=timedelta(minutes=10),
    daily_cap=14,
)
WEEKLY = {day: [(9 * 60, 12 * 60 + 30), (14 * 60, 18 * 60)] for day in range(5)}
BOOKINGS = 500
BUSY = 200
DURATIONS = (15, 30, 45)


def scenario() -> tuple[list[Span], list[Span]]:
    """500 bookings that do not overlap and 200 busy events, all in working hours."""
    rng = random.Random(SEED)
    first, last = NOW.date(), (NOW + FRAME.horizon).date()
    working = open_spans(WEEKLY, {}, TZ, first, last)
    starts = [
        (start + i * GRID, end) for start, end in working for i in range((end - start) // GRID)
    ]
    taken: set[datetime] = set()
    bookings: list[Span] = []
    for start, span_end in rng.sample(starts, len(starts)):
        length = timedelta(minutes=rng.choice(DURATIONS))
        cells = {start + i * GRID for i in range(length // GRID)}
        if start + length <= span_end and not cells & taken:
            taken |= cells
            bookings.append((start, start + length))
            if len(bookings) == BOOKINGS:
                break
    busy: list[Span] = []
    for _ in range(BUSY):
        span_start, span_end = rng.choice(working)
        minutes = (span_end - span_start) // timedelta(minutes=5)
        start = span_start + timedelta(minutes=5 * rng.randrange(minutes))
        busy.append((start, start + timedelta(minutes=rng.randrange(15, 121, 5))))
    return bookings, busy


def compute(bookings: list[Span], busy: list[Span], duration: int) -> list[datetime]:
    """What the booking service asks for: working time, then the free slots in it."""
    first, last = NOW.date(), (NOW + FRAME.horizon).date()
    return free_slots(
        open=open_spans(WEEKLY, {}, TZ, first, last),
        busy=busy,
        bookings=bookings,
        duration=timedelta(minutes=duration),
        now=NOW,
        frame=FRAME,
        tz=TZ,
    )


def plain_sweep(bookings: list[Span], busy: list[Span]) -> list[Span]:
    """The baseline: sort the widened spans and join them in one pass."""
    buffer = FRAME.buffer
    joined: list[Span] = []
    for start, end in sorted(((s - buffer, e + buffer) for s, e in (*busy, *bookings))):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((start, end))
    return joined


def timings_ms(work: Callable[[], object]) -> list[float]:
    for _ in range(WARMUP_RUNS):
        work()
    gc.collect()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter_ns()
        work()
        times.append((time.perf_counter_ns() - started) / 1e6)
    return times


def figures(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(statistics.quantiles(times, n=20)[-1], 3),
    }


def main() -> int:
    bookings, busy = scenario()
    print(
        f"{TZ}, {FRAME.horizon.days} days from {NOW:%Y-%m-%d} (summer time on 2026-03-29), "
        f"{len(bookings)} bookings, {len(busy)} busy events, buffer "
        f"{FRAME.buffer.seconds // 60} min, daily cap {FRAME.daily_cap}; "
        f"{RUNS} runs after {WARMUP_RUNS} to warm up.",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    for duration in DURATIONS:
        computation = figures(timings_ms(lambda d=duration: compute(bookings, busy, d)))
        sweep = figures(timings_ms(lambda: plain_sweep(bookings, busy)))
        results.append(
            {
                "duration": duration,
                "slots": len(compute(bookings, busy, duration)),
                "computation": computation,
                "plain_sweep": sweep,
                "ratio": ratio(computation["median_ms"], sweep["median_ms"]),
            }
        )

    print()
    print(f"{'duration':<10}{'slots':>7}{'median ms':>11}{'p95 ms':>9}{'sweep ms':>10}{'ratio':>8}")
    for result in results:
        computation, sweep = result["computation"], result["plain_sweep"]
        print(
            f"{result['duration']:>2} min    {result['slots']:>7}"
            f"{computation['median_ms']:>11.3f}{computation['p95_ms']:>9.3f}"
            f"{sweep['median_ms']:>10.3f}{result['ratio']:>8.2f}"
        )
    worst = max(result["computation"]["median_ms"] for result in results)
    verdict = "meets" if worst < GOAL_MS else "misses"
    print(f"slowest median {worst:.3f} ms ({verdict} the goal of {GOAL_MS:g} ms)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps(
            {
                "benchmark": "slots",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "runs": RUNS,
                "bookings": len(bookings),
                "busy": len(busy),
                "results": results,
                "goal_median_ms": GOAL_MS,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Written to {RESULTS_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
