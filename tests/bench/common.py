"""What the benchmarks share: starting and stopping servers, loading them with wrk (or a
Python fallback), and measuring one URL.

Settings from the environment: BENCH_SECONDS (measured seconds per URL, default 8) and
BENCH_LOADGEN=python (use the Python load generator even when wrk is installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "var" / "bench"

SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
WARMUP_SECONDS = 2.0
CONNECTIONS = 64
WRK_THREADS = 2

START_TIMEOUT_S = 60
HEALTHY_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
SETTLE_S = 1.0  # after the first answer, for the other worker processes to finish booting

PORTAL = [sys.executable, "-m", "portal.cli"]
# A bare app (module:attribute appended) served as `portal web` serves the portal.
GRANIAN_ONE_WORKER = [sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop"]
GRANIAN_ONE_WORKER += ["--workers", "1", "--no-access-log"]

# wrk calls done() once at the end: print the figures as one JSON line.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"socket_errors": %d, "status_errors": %d, "timeouts": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write, e.status, e.timeout))
end
"""


@dataclass
class Result:
    server: str  # "baseline", "granian" or "uvicorn"
    workers: int
    path: str
    response_bytes: int
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors, time-outs and answers other than 2xx/3xx


# Processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait for it and its worker processes (its process group, see running()).

    What is still there after STOP_TIMEOUT_S, or at a second Ctrl-C, gets SIGKILL: that
    group only, by its id.
    """
    interrupted = False
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_S)
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        interrupted = True
    if group_alive(process.pid):
        if not interrupted:
            print(
                f"  warning: `{' '.join(process.args[2:])}` (pid {process.pid}) did not stop "
                f"{STOP_TIMEOUT_S} s after SIGTERM; killed (SIGKILL)",
                flush=True,
            )
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if interrupted:
        raise KeyboardInterrupt


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], cwd: Path, log_file: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess writing to log_file, stopped on leaving (error and Ctrl-C included).

    It gets a session (and so a process group) of its own: Ctrl-C reaches only this script,
    which then stops it, and its worker processes can be found and stopped with it.
    """
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop(process)


def fetch(url: str) -> tuple[int, int]:
    """(status, body size) of one GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, len(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, len(exc.read())


def wait_until_answers(url: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped at start-up:\n{tail(log_file)}")
        try:
            fetch(url)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} after {START_TIMEOUT_S} s:\n{tail(log_file)}")


def wait_until_healthy(url: str) -> None:
    """/healthz answers 503 until the worker's first heartbeat is in Redis."""
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    while time.monotonic() < deadline:
        if fetch(url)[0] == 200:
            return
        time.sleep(0.5)
    print(f"  warning: {url} still not 200 after {HEALTHY_TIMEOUT_S} s", flush=True)


def tail(log_file: Path, lines: int = 20) -> str:
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def portal_environment(tmp: Path) -> Iterator[dict[str, str]]:
    """The environment for the portal's processes: migrated, with demo data and a worker."""
    from portal.redis import EmbeddedRedis

    env = dict(os.environ)
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "SMTP_URL"):
        env.pop(name, None)
    env["VAR_DIR"] = str(tmp / "var")
    env["SECRET_KEY"] = "bench-only-secret-key-0123456789abcdefghijklmnop"
    env["BASE_URL"] = "http://127.0.0.1:8000"
    env["DEBUG"] = ""
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite"
    embedded = None
    if not env.get("REDIS_URL"):
        embedded = EmbeddedRedis(tmp)
        env["REDIS_URL"] = embedded.start()
    try:
        for command in ("migrate", "demo"):
            done = subprocess.run(
                [*PORTAL, command], env=env, cwd=tmp, capture_output=True, check=False
            )
            if done.returncode != 0:
                output = (done.stdout + done.stderr).decode(errors="replace")
                raise RuntimeError(f"`portal {command}` failed:\n{output}")
        with running([*PORTAL, "worker"], env, tmp, tmp / "worker.log"):
            yield env
    finally:
        if embedded is not None:
            embedded.stop()


# Load generators


def wrk_path() -> str | None:
    if os.environ.get("BENCH_LOADGEN") == "python":
        return None
    return shutil.which("wrk")


def load_with_wrk(wrk: str, script: Path, url: str, seconds: float) -> dict[str, float]:
    command = [
        wrk,
        f"--threads={WRK_THREADS}",
        f"--connections={CONNECTIONS}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={script}",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH "))
    figures = json.loads(line.removeprefix("BENCH "))
    return {
        "requests": figures["requests"],
        "seconds": figures["duration_us"] / 1e6,
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "errors": figures["socket_errors"] + figures["status_errors"] + figures["timeouts"],
    }


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (Content-Length or chunked body): its status and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines if ": " in line)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        chunks, size = [], -1
        while size != 0:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append((await reader.readexactly(size + 2))[:-2])  # the chunk, its CRLF
        body = b"".join(chunks)
    else:
        raise ValueError("response without Content-Length or chunked encoding")
    return int(status_line.split(" ", 2)[1]), body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response; return its status."""
    status, _body = await read_answer(reader)
    return status


async def python_connection(
    host: str, port: int, path: str, stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    while time.perf_counter() < stop_at:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status >= 400:
                    errors.append(status)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            errors.append(0)
            await asyncio.sleep(0.05)
        finally:
            if writer is not None:
                writer.close()


async def python_load(url: str, seconds: float) -> dict[str, float]:
    parsed = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    stop_at = started + seconds
    connections = [
        python_connection(parsed.hostname, parsed.port, parsed.path, stop_at, latencies, errors)
        for _ in range(CONNECTIONS)
    ]
    await asyncio.wait_for(asyncio.gather(*connections), timeout=seconds + 30)
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "errors": len(errors),
    }


def load(wrk: str | None, script: Path, url: str, seconds: float) -> dict[str, float]:
    if wrk is not None:
        return load_with_wrk(wrk, script, url, seconds)
    return asyncio.run(python_load(url, seconds))


def measure(
    wrk: str | None, script: Path, server: str, workers: int, base_url: str, path: str
) -> Result:
    url = base_url + path
    status, size = fetch(url)
    if status != 200:
        print(f"  warning: {url} answers {status}", flush=True)
    load(wrk, script, url, WARMUP_SECONDS)
    figures = load(wrk, script, url, SECONDS)
    result = Result(
        server=server,
        workers=workers,
        path=path,
        response_bytes=size,
        requests=int(figures["requests"]),
        requests_per_second=round(figures["requests"] / figures["seconds"], 1),
        p50_ms=round(figures["p50_ms"], 2),
        p99_ms=round(figures["p99_ms"], 2),
        errors=int(figures["errors"]),
    )
    print(
        f"  {server:<8} {workers} worker(s) {path:<8} {result.requests_per_second:>9,.0f} req/s"
        f"  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms",
        flush=True,
    )
    return result


def ratio(value: float, base: float) -> float:
    return round(value / base, 3) if base else 0.0


def on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so the servers are stopped as on Ctrl-C


def load_generator_name(wrk: str | None) -> str:
    if wrk is None:
        if os.environ.get("BENCH_LOADGEN") != "python":
            print("wrk is not installed: `apt-get install -y wrk` gives truer figures.")
        return "python fallback (asyncio sockets, shares the CPU with the servers)"
    return f"wrk ({WRK_THREADS} threads)"
