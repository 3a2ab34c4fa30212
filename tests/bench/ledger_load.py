"""The measuring side of bench_ledger, run as `python -m tests.bench.ledger_load SECONDS OUT`
in a subprocess whose environment names a migrated database (DATABASE_URL): Piccolo picks
its engine from piccolo_conf at import, so one process measures one database.

It creates the accounts and wallets through the portal's services, grants every wallet
plenty of credits, then measures, each for SECONDS after a short warm-up, with TASKS asyncio
tasks: hold+capture through portal.credits.ledger on one hot wallet and across WALLETS
wallets, and beside each a bare single-row UPDATE transaction through the same engine and
the same `write_transaction()` on one row and across WALLETS rows. Last, it checks the
ledger. Figures are printed and written as JSON to OUT.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from piccolo.columns import Integer
from piccolo.table import Table

from portal.accounts.services import expert_create, user_create
from portal.credits import ledger
from portal.credits.tables import Hold, HoldStatus, Wallet
from portal.db import close_pool, is_postgres, start_pool, write_transaction

TASKS = 32
CLIENTS, EXPERTS = 40, 25  # one wallet per (client, expert)
WALLETS = CLIENTS * EXPERTS
SETUP_TASKS = 16
GRANT_CREDITS = 1_000_000
HOLD_CREDITS = 10
WARMUP_SECONDS = 0.5
CHECK_SAMPLE = 50  # wallets given to ledger.wallet_check, the hot one included
PASSWORD = "bench-only-password"


class BenchCounter(Table, tablename="bench_counter"):
    """The bare baseline's rows: not part of the portal's schema, created here."""

    n = Integer(default=0, null=False)


@dataclass
class Measured:
    operations: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]  # "ExceptionName: message" -> count


async def bounded(jobs: list[Callable[[], Awaitable[object]]], tasks: int) -> list[object]:
    """Run the jobs with at most `tasks` at a time, results in order."""
    gate = asyncio.Semaphore(tasks)

    async def one(job: Callable[[], Awaitable[object]]) -> object:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


async def create_wallets() -> list[int]:
    """WALLETS wallets, each granted GRANT_CREDITS valid ten years."""
    clients = await asyncio.gather(
        *(
            user_create(email=f"client{i}@bench.example.org", password=PASSWORD, name=f"C {i}")
            for i in range(CLIENTS)
        )
    )
    experts = await asyncio.gather(
        *(
            expert_create(
                email=f"expert{i}@bench.example.org",
                password=PASSWORD,
                slug=f"bench-expert-{i}",
                name=f"Expert {i}",
            )
            for i in range(EXPERTS)
        )
    )
    pairs = [(c.id, e.id) for c in clients for e in experts]
    wallets = await bounded(
        [lambda c=c, e=e: ledger.wallet_for(client_id=c, expert_id=e) for c, e in pairs],
        SETUP_TASKS,
    )
    wallet_ids = [w.id for w in wallets]
    expires_at = datetime.now(UTC) + timedelta(days=3650)
    await bounded(
        [
            lambda w=w: ledger.grant(
                wallet_id=w,
                credits=GRANT_CREDITS,
                expires_at=expires_at,
                reference=f"bench:grant:{w}",
                key=f"bench:grant:{w}",
            )
            for w in wallet_ids
        ],
        SETUP_TASKS,
    )
    return wallet_ids


async def create_counters() -> list[int]:
    await BenchCounter.create_table(if_not_exists=True)
    rows = await BenchCounter.insert(*(BenchCounter(n=0) for _ in range(WALLETS)))
    return [row["id"] for row in rows]


_references = itertools.count()


async def hold_capture(wallet_id: int) -> None:
    """One operation: hold credits, then capture that hold, as a booking would."""
    reference = f"bench:{next(_references)}"
    held = await ledger.hold(wallet_id=wallet_id, amount=HOLD_CREDITS, reference=reference)
    await ledger.capture(wallet_id=wallet_id, hold_id=held.id)


async def bare_update(counter_id: int) -> None:
    async with write_transaction():
        await BenchCounter.update({BenchCounter.n: BenchCounter.n + 1}).where(
            BenchCounter.id == counter_id
        )


async def load(
    operation: Callable[[int], Awaitable[None]], targets: list[int], seconds: float
) -> Measured:
    """TASKS tasks calling `operation` until `seconds` have passed; targets taken in turn."""
    cursor = itertools.count()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    stop_at = time.perf_counter() + seconds

    async def task() -> None:
        while time.perf_counter() < stop_at:
            target = targets[next(cursor) % len(targets)]
            started = time.perf_counter()
            try:
                await operation(target)
            except Exception as exc:  # counted and reported: a failed operation is a finding
                errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            else:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    elapsed = time.perf_counter() - started  # the last operations end after stop_at
    latencies.sort()

    def percentile(p: float) -> float:
        if not latencies:
            return 0.0
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000, 2)

    return Measured(
        operations=len(latencies),
        seconds=round(elapsed, 3),
        per_second=round(len(latencies) / elapsed, 1),
        p50_ms=percentile(50),
        p99_ms=percentile(99),
        errors=dict(errors),
    )


async def measure(
    label: str, operation: Callable[[int], Awaitable[None]], targets: list[int], seconds: float
) -> Measured:
    await load(operation, targets, WARMUP_SECONDS)
    result = await load(operation, targets, seconds)
    print(
        f"  {label:<34}{result.per_second:>9,.0f} /s  p50 {result.p50_ms:.2f} ms"
        f"  p99 {result.p99_ms:.2f} ms",
        flush=True,
    )
    for error, count in result.errors.items():
        print(f"    {count} failed: {error}", flush=True)
    return result


async def check(wallet_ids: list[int], hot: int) -> dict[str, object]:
    """wallet_check on a sample (the hot wallet and random others), and no hold left open."""
    started = time.perf_counter()
    others = random.Random(0).sample(wallet_ids[1:], CHECK_SAMPLE - 1)
    problems = {}
    for wallet_id in [hot, *others]:
        found = await ledger.wallet_check(wallet_id=wallet_id)
        if found:
            problems[wallet_id] = found
    holds = await Hold.count()
    captured = await Hold.count().where(Hold.status == HoldStatus.captured.value)
    held = await Wallet.select(Wallet.held).where(Wallet.held != 0)
    return {
        "wallets_checked": CHECK_SAMPLE,
        "problems": {str(k): v for k, v in problems.items()},
        "holds": holds,
        "holds_captured": captured,
        "wallets_still_holding": len(held),
        "seconds": round(time.perf_counter() - started, 2),
    }


async def run(seconds: float) -> dict[str, object]:
    await start_pool()
    try:
        started = time.perf_counter()
        wallet_ids = await create_wallets()
        counter_ids = await create_counters()
        setup_seconds = round(time.perf_counter() - started, 2)
        print(
            f"  {len(wallet_ids):,} wallets granted in {setup_seconds:.1f} s; {TASKS} tasks",
            flush=True,
        )
        cases = []
        for case, rows, wallets, counters in (
            ("1 hot wallet", "1 hot row", wallet_ids[:1], counter_ids[:1]),
            (f"{WALLETS:,} wallets", f"{WALLETS:,} rows", wallet_ids, counter_ids),
        ):
            bare = await measure(f"bare UPDATE tx, {rows}", bare_update, counters, seconds)
            ops = await measure(f"hold+capture, {case}", hold_capture, wallets, seconds)
            cases.append({"case": case, "ledger": asdict(ops), "bare": asdict(bare)})
        return {
            "database": "postgres" if is_postgres() else "sqlite",
            "tasks": TASKS,
            "setup_seconds": setup_seconds,
            "cases": cases,
            "check": await check(wallet_ids, hot=wallet_ids[0]),
        }
    finally:
        await close_pool()


def main(argv: list[str]) -> int:
    seconds, out = float(argv[0]), Path(argv[1])
    out.write_text(json.dumps(asyncio.run(run(seconds)), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
