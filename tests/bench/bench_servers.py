"""granian versus uvicorn serving the real portal, against a bare-app baseline.

Each server runs `portal web --server X --workers N` as a subprocess on a free 127.0.0.1
port, with a throwaway environment (a temporary SQLite database and an embedded Redis,
unless DATABASE_URL / REDIS_URL are already set) and a `portal worker` so /healthz is
healthy. The load comes from `wrk` (64 connections); without it, from a small Python
load generator that competes with the servers for the CPU, so its figures are lower.

The baseline is a bare Litestar app returning a constant text, served by granian with one
worker, measured in the same run: every portal figure is also given as a ratio against it.
Results: a table on stdout and the same figures in var/bench/servers.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from tests.bench.common import (
    CONNECTIONS,
    GRANIAN_ONE_WORKER,
    PORTAL,
    RESULTS_DIR,
    ROOT,
    SECONDS,
    SETTLE_S,
    WARMUP_SECONDS,
    WRK_SCRIPT,
    Result,
    free_port,
    load_generator_name,
    measure,
    on_sigterm,
    portal_environment,
    ratio,
    running,
    wait_until_answers,
    wait_until_healthy,
    wrk_path,
)

RESULTS_FILE = RESULTS_DIR / "servers.json"
SERVERS = ("granian", "uvicorn")
WORKER_COUNTS = (1, 2)
PATHS = ("/healthz", "/")
BASELINE = [*GRANIAN_ONE_WORKER, "tests.bench.baseline_app:app"]


def run_all(tmp: Path, wrk: str | None) -> tuple[Result, list[Result]]:
    script = tmp / "report.lua"
    script.write_text(WRK_SCRIPT)

    port = free_port()
    command = [*BASELINE, "--host", "127.0.0.1", "--port", str(port)]
    log_file = tmp / "baseline.log"
    with running(command, dict(os.environ), ROOT, log_file) as process:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_answers(base_url + "/", process, log_file)
        baseline = measure(wrk, script, "baseline", 1, base_url, "/")

    results = []
    with portal_environment(tmp) as env:
        for workers in WORKER_COUNTS:
            for server in SERVERS:
                port = free_port()
                command = [*PORTAL, "web", "--server", server, "--workers", str(workers)]
                command += ["--port", str(port)]
                log_file = tmp / f"{server}-{workers}.log"
                with running(command, env, tmp, log_file) as process:
                    base_url = f"http://127.0.0.1:{port}"
                    wait_until_answers(base_url + "/healthz", process, log_file)
                    wait_until_healthy(base_url + "/healthz")
                    time.sleep(SETTLE_S)
                    for path in PATHS:
                        results.append(measure(wrk, script, server, workers, base_url, path))
    return baseline, results


def table(baseline: Result, results: list[Result]) -> str:
    header = (
        f"{'server':<9}{'workers':>7}  {'url':<9}{'bytes':>6}{'req/s':>10}{'vs base':>9}"
        f"{'p50 ms':>9}{'vs base':>9}{'p99 ms':>9}{'vs base':>9}{'errors':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in [baseline, *results]:
        lines.append(
            f"{r.server:<9}{r.workers:>7}  {r.path:<9}{r.response_bytes:>6}"
            f"{r.requests_per_second:>10,.0f}"
            f"{ratio(r.requests_per_second, baseline.requests_per_second):>8.3f}x"
            f"{r.p50_ms:>9.2f}{ratio(r.p50_ms, baseline.p50_ms):>8.1f}x"
            f"{r.p99_ms:>9.2f}{ratio(r.p99_ms, baseline.p99_ms):>8.1f}x"
            f"{r.errors:>8}"
        )
    return "\n".join(lines)


def write_json(baseline: Result, results: list[Result], load_generator: str) -> None:
    def with_ratios(r: Result) -> dict[str, object]:
        return {
            **asdict(r),
            "vs_baseline": {
                "requests_per_second": ratio(r.requests_per_second, baseline.requests_per_second),
                "p50_ms": ratio(r.p50_ms, baseline.p50_ms),
                "p99_ms": ratio(r.p99_ms, baseline.p99_ms),
            },
        }

    report = {
        "benchmark": "servers",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_generator": load_generator,
        "connections": CONNECTIONS,
        "seconds": SECONDS,
        "warmup_seconds": WARMUP_SECONDS,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "versions": {name: version(name) for name in ("granian", "uvicorn", "litestar")},
        "database": "postgres"
        if os.environ.get("DATABASE_URL", "").startswith("postgres")
        else "sqlite",
        "redis": "server" if os.environ.get("REDIS_URL") else "embedded",
        "baseline": asdict(baseline),
        "results": [with_ratios(r) for r in results],
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, indent=2) + "\n")


def main() -> int:
    wrk = wrk_path()
    load_generator = load_generator_name(wrk)
    print(
        f"Load: {load_generator}, {CONNECTIONS} connections, {WARMUP_SECONDS:g} s warm-up, "
        f"{SECONDS:g} s measured per URL; {os.cpu_count()} CPUs.",
        flush=True,
    )
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
            baseline, results = run_all(Path(tmp), wrk)
    except KeyboardInterrupt:
        print("interrupted; servers stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)

    print()
    print(f"Load generator: {load_generator}")
    print(table(baseline, results))
    print("vs base: req/s as a fraction of the baseline's; latencies as multiples of its.")
    write_json(baseline, results, load_generator)
    print(f"Written to {RESULTS_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
