"""`portal run` as a real process in a folder of its own, and the processes it starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from portal.settings import get_settings
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


def health(url: str) -> tuple[int, dict[str, Any]]:
    """/healthz, or (0, {}) while nothing answers."""
    try:
        return get_json(f"{url}/healthz")
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


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent) of a process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def running(pids: set[int]) -> set[int]:
    """The processes among `pids` still running (a zombie has ended: it only waits to be
    reaped)."""
    return {pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"}


def descendants(pid: int) -> set[int]:
    """Every running process below `pid`."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[0] != "Z":
            parents.setdefault(stat[1], []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def child(parent: int, program: str) -> int | None:
    """The running child of `parent` named `program`, or with `program` as an argument."""
    for pid in sorted(descendants(parent)):
        stat = _stat(pid)
        if stat is None or stat[1] != parent:
            continue
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            line = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if name == program or program in line:
            return pid
    return None


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

        wait_for(ready, 60, "portal run ready, /healthz 200")
        yield process, url
    finally:
        tree.update(descendants(process.pid))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        for pid in running(tree | {process.pid}):
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        log.close()


def output(folder: Path) -> str:
    return (folder / "run.log").read_text()
