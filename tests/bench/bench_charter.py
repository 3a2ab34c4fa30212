"""The public charter page `/e/{slug}` served by the real portal (default database unless
DATABASE_URL says otherwise), against a bare Litestar + Jinja page of the same size served
the same way, measured in the same run. Goal: at least 0.6 of the bare page's rate.

Both run under granian with one worker; the portal with its worker, migrated and seeded
with the demo expert. Results: a table on stdout and var/bench/charter.json.
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
from pathlib import Path

from tests.bench.common import (
    GRANIAN_ONE_WORKER,
    PORTAL,
    RESULTS_DIR,
    ROOT,
    SECONDS,
    SETTLE_S,
    WRK_SCRIPT,
    Result,
    fetch,
    free_port,
    load_generator_name,
    measure,
    on_sigterm,
    portal_environment,
    ratio,
    running,
    wait_until_answers,
    wrk_path,
)

RESULTS_FILE = RESULTS_DIR / "charter.json"
PATH = "/e/claire-martin"
GOAL = 0.6


def run_all(tmp: Path, wrk: str | None) -> tuple[Result, Result]:
    script = tmp / "report.lua"
    script.write_text(WRK_SCRIPT)
    with portal_environment(tmp) as env:
        port = free_port()
        command = [*PORTAL, "web", "--workers", "1", "--port", str(port)]
        log_file = tmp / "portal.log"
        with running(command, env, tmp, log_file) as process:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_answers(base_url + PATH, process, log_file)
            time.sleep(SETTLE_S)
            page_bytes = fetch(base_url + PATH)[1]
            portal = measure(wrk, script, "portal", 1, base_url, PATH)

    port = free_port()
    command = [*GRANIAN_ONE_WORKER, "--host", "127.0.0.1", "--port", str(port)]
    command.append("tests.bench.bare_jinja_app:app")
    log_file = tmp / "bare.log"
    bare_env = {**os.environ, "BARE_PAGE_BYTES": str(page_bytes)}
    with running(command, bare_env, ROOT, log_file) as process:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_answers(base_url + "/", process, log_file)
        bare = measure(wrk, script, "bare", 1, base_url, "/")
    return bare, portal


def main() -> int:
    wrk = wrk_path()
    load_generator = load_generator_name(wrk)
    print(f"Load: {load_generator}; {SECONDS:g} s measured per server.", flush=True)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
            bare, portal = run_all(Path(tmp), wrk)
    except KeyboardInterrupt:
        print("interrupted; servers stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)

    share = ratio(portal.requests_per_second, bare.requests_per_second)
    print()
    print(f"{'page':<34}{'bytes':>7}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for label, r in (("bare Litestar + Jinja", bare), (f"portal {PATH}", portal)):
        print(
            f"{label:<34}{r.response_bytes:>7}{r.requests_per_second:>9,.0f}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
        )
    verdict = "meets" if share >= GOAL else "misses"
    print(f"portal / bare = {share:.2f} ({verdict} the goal of {GOAL})")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps(
            {
                "benchmark": "charter",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "load_generator": load_generator,
                "database": "postgres"
                if os.environ.get("DATABASE_URL", "").startswith("postgres")
                else "sqlite",
                "bare": asdict(bare),
                "portal": asdict(portal),
                "ratio": share,
                "goal": GOAL,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Written to {RESULTS_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
