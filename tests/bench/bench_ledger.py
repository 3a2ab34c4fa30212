"""Hold+capture operations per second through the real ledger (portal.credits.ledger),
against a bare single-row UPDATE transaction through the same engine, measured in the same
run on the same database.

Why: every booking and answer holds then captures credits, and every change to a wallet is
serialized (BEGIN IMMEDIATE under one in-process lock on SQLite, a row lock on PostgreSQL).
This says how many such operations one process gets through, on one hot wallet and spread
across many, and what the ledger's own statements cost over the cheapest write transaction.

For each database: a fresh schema built by `portal migrate`, then tests/bench/ledger_load.py
in a subprocess with that DATABASE_URL (Piccolo picks its engine at import) runs 32 asyncio
tasks per measurement and checks the ledger afterwards. The databases:
- SQLite: a new file in a temporary folder.
- PostgreSQL: the server named by BENCH_POSTGRES_URL, else a postgresql:// DATABASE_URL, else
  postgresql://postgres@127.0.0.1:5432/test; always in a database of its own, portal_bench
  or the one BENCH_POSTGRES_DATABASE names (created when missing, its schema dropped and
  rebuilt at each run), never the one of the URL. Skipped, with a note, when the server
  cannot be reached.

BENCH_SECONDS sets the measured seconds per case (default 4 here: about a minute in all).
Results: a table on stdout and var/bench/ledger.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from tests.bench.common import PORTAL, RESULTS_DIR, ROOT, on_sigterm, ratio

RESULTS_FILE = RESULTS_DIR / "ledger.json"
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_DATABASE = os.environ.get("BENCH_POSTGRES_DATABASE") or "portal_bench"
CONNECT_TIMEOUT_S = 5
SIDES = ("ledger", "bare")


def postgres_server_url() -> str:
    given = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    return given if given.startswith(("postgres://", "postgresql://")) else DEFAULT_POSTGRES_URL


def with_database(url: str, name: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path=f"/{name}").geturl()


async def fresh_postgres_database(server_url: str, name: str = BENCH_DATABASE) -> str:
    """The database `name` on that server, created when missing, with an empty public
    schema."""
    admin = await asyncpg.connect(with_database(server_url, "postgres"), timeout=CONNECT_TIMEOUT_S)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    try:
        await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await connection.close()
    return url


def environment(tmp: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "SMTP_URL"):
        env.pop(name, None)
    env["DATABASE_URL"] = database_url
    env["VAR_DIR"] = str(tmp / "var")
    env["SECRET_KEY"] = "bench-only-secret-key-0123456789abcdefghijklmnop"
    env["BASE_URL"] = "http://127.0.0.1:8000"
    env["DEBUG"] = ""
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def measure_database(tmp: Path, name: str, database_url: str) -> dict[str, Any]:
    """Migrate, then measure in a subprocess that prints as it goes; its figures."""
    print(f"{name}:", flush=True)
    env = environment(tmp, database_url)
    done = subprocess.run([*PORTAL, "migrate"], env=env, cwd=tmp, capture_output=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise RuntimeError(f"`portal migrate` failed on {name}:\n{output}")
    out = tmp / f"ledger-{name}.json"
    command = [sys.executable, "-m", "tests.bench.ledger_load", str(SECONDS), str(out)]
    if subprocess.run(command, env=env, cwd=tmp, check=False).returncode != 0:
        raise RuntimeError(f"the ledger measurement failed on {name} (its error is above)")
    return json.loads(out.read_text())


def run_all(tmp: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The figures of each database measured, and why PostgreSQL was skipped (or None)."""
    results = [measure_database(tmp, "sqlite", f"sqlite:///{tmp}/ledger.sqlite")]
    server_url = postgres_server_url()
    try:
        database_url = asyncio.run(fresh_postgres_database(server_url))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        host = urllib.parse.urlsplit(server_url).netloc.rpartition("@")[2]
        note = f"PostgreSQL skipped: cannot use {host} ({type(exc).__name__}: {exc})"
        print(note, flush=True)
        return results, note
    results.append(measure_database(tmp, "postgres", database_url))
    return results, None


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'database':<10}{'case':<15}{'ledger ops/s':>13}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'bare tx/s':>11}{'ledger/bare':>13}"
    )
    for result in results:
        for case in result["cases"]:
            ops, bare = case["ledger"], case["bare"]
            print(
                f"{result['database']:<10}{case['case']:<15}{ops['per_second']:>13,.0f}"
                f"{ops['p50_ms']:>8.2f}{ops['p99_ms']:>8.2f}{bare['per_second']:>11,.0f}"
                f"{case['ratio']:>13.3f}"
            )


def is_sound(result: dict[str, Any]) -> bool:
    check = result["check"]
    return (
        not check["problems"]
        and check["holds"] == check["holds_captured"]
        and check["wallets_still_holding"] == 0
    )


def print_check(result: dict[str, Any]) -> None:
    check = result["check"]
    failed = sum(sum(case[side]["errors"].values()) for case in result["cases"] for side in SIDES)
    verdict = "sound" if is_sound(result) else "NOT SOUND"
    print(
        f"{result['database']}: ledger {verdict}: wallet_check on {check['wallets_checked']} "
        f"wallets (the hot one included) found {len(check['problems'])} with problems; "
        f"{check['holds_captured']:,} of {check['holds']:,} holds captured; "
        f"{check['wallets_still_holding']} wallet(s) still holding credits; "
        f"{failed} failed operation(s)"
    )
    for wallet_id, problems in check["problems"].items():
        print(f"  wallet {wallet_id}: {'; '.join(problems)}")


def main() -> int:
    print(f"{SECONDS:g} s measured per case, after a short warm-up.", flush=True)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
            results, skipped = run_all(Path(tmp))
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)

    for result in results:
        for case in result["cases"]:
            case["ratio"] = ratio(case["ledger"]["per_second"], case["bare"]["per_second"])
    print_table(results)
    for result in results:
        print_check(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps(
            {
                "benchmark": "ledger",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds_per_case": SECONDS,
                "postgres_skipped": skipped,
                "databases": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Written to {RESULTS_FILE.relative_to(ROOT)}")
    return 0 if all(is_sound(result) for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
