"""`portal run` as a real process in a folder of its own, and the processes it starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from portal.settings import get_settings
from portal.supervise import STOP_TIMEOUT_S, all_pids, process_info
from tests.conftest import TMP
from tests.support import free_port

PORTAL = [sys.executable, "-m", "portal.cli"]


def run_env() -> dict[str, str]:
    """The defaults a newcomer gets (SQLite under var/, embedded Redis), unless this suite
    runs against servers, in which case `portal run` uses them too."""
    env = dict(os.environ)
    env.pop("VAR_DIR", None)
    if get_settings().database_engine == "sqlite":
        env.pop("DATABASE_URL", None)
        if env.get("REDIS_URL", "").startswith("unix://"):
            env.pop("REDIS_URL")
    return env


def embedded_redis(env: dict[str, str]) -> bool:
    return not env.get("REDIS_URL")


def get_json(url: str, timeout: float = 2) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def health(url: str, timeout: float = 2) -> tuple[int, dict[str, Any]]:
    """/healthz, or (0, {}) while nothing answers (within `timeout`)."""
    try:
        return get_json(f"{url}/healthz", timeout)
    except OSError:
        return 0, {}


def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll `condition` until it returns something true; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


async def wait_until(
    condition: Callable[[], Awaitable[Any]], seconds: float = 120, what: str = "the worker"
) -> None:
    """Poll the coroutine function `condition` until it returns something true; fail after
    `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not there within {seconds} s")


@contextmanager
def worker(name: str, folder: Path = TMP) -> Iterator[subprocess.Popen[bytes]]:
    """`portal worker` on the test database and Redis, its output in `folder`/`name`.log;
    stopped at the end (SIGTERM, then SIGKILL to its group after 20 s)."""
    log = (folder / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [*PORTAL, "worker"],
        cwd=folder,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def running(pids: set[int]) -> set[int]:
    """The processes among `pids` still running (a zombie has ended: it only waits to be
    reaped)."""
    return {pid for pid in pids if (info := process_info(pid)) is not None and info.state != "Z"}


def descendants(pid: int) -> set[int]:
    """Every running process below `pid`."""
    parents: dict[int, list[int]] = {}
    for found in running(set(all_pids())):
        if (info := process_info(found)) is not None:
            parents.setdefault(info.parent, []).append(found)
    below: set[int] = set()
    todo = [pid]
    while todo:
        for child_pid in parents.get(todo.pop(), []):
            if child_pid not in below:
                below.add(child_pid)
                todo.append(child_pid)
    return below


def children(parent: int, program: str) -> list[int]:
    """The running children of `parent` named `program`, or with `program` as an argument
    (`python -m portal.booking.sandbox`: "portal.booking.sandbox"), oldest first."""
    found = []
    for pid in sorted(running(set(all_pids()))):
        info = process_info(pid)
        if info is None or info.parent != parent:
            continue
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            line = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if name == program or program in line:
            found.append(pid)
    return found


def child(parent: int, program: str) -> int | None:
    """The running child of `parent` named `program`, or with `program` as an argument."""
    return next(iter(children(parent, program)), None)


def processes_in(folder: Path) -> set[int]:
    """Running processes whose working directory is in `folder`."""
    found = set()
    for pid in running(set(all_pids())):
        try:
            cwd = Path(f"/proc/{pid}/cwd").resolve()
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.add(pid)
    return found


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(entry.split("=", 1) for entry in raw.split("\0") if "=" in entry)


@contextmanager
def portal_run(
    folder: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`portal run` in `folder`, answering /healthz 200 with a worker; (process, URL).

    Its output goes to `folder`/run.log. Whatever is left running at the end is killed.
    """
    port = port or free_port()
    log = (folder / "run.log").open("w")
    process = subprocess.Popen(
        [*PORTAL, "run", "--port", str(port), *args],
        cwd=folder,
        env=env or run_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        umask=0o022,  # as a login shell has it: the command must keep var/ private itself
    )
    url = f"http://127.0.0.1:{port}"
    tree: set[int] = set()
    try:

        def ready() -> bool:
            assert process.poll() is None, output(folder)
            tree.update(descendants(process.pid))
            status, body = health(url)
            return status == 200 and body["worker"]["ok"] and "Ready: open" in output(folder)

        wait_for(ready, 120, "portal run ready, /healthz 200")
        yield process, url
    finally:
        tree.update(descendants(process.pid))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=2 * STOP_TIMEOUT_S + 10)
        for pid in running(tree | {process.pid}) | processes_in(folder):
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        log.close()


def output(folder: Path) -> str:
    return (folder / "run.log").read_text()
