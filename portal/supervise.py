"""How `portal run` keeps its processes running: each in a process group of its own, started
again when it stops, all stopped together, and none outliving `portal run` itself."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("portal")

STOP_TIMEOUT_S = 10  # for each process to end after SIGTERM, before it is killed
BACKOFF_FIRST_S = 1  # a process that stopped starts again after 1 s, 2 s, 4 s...
BACKOFF_MAX_S = 30
HEALTHY_AFTER_S = 60  # ...and after 1 s again once it has run this long
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ProcessInfo(NamedTuple):
    state: str  # "R", "S", ... "Z" for a zombie: ended, waiting to be reaped
    parent: int
    group: int


def process_info(pid: int) -> ProcessInfo | None:
    """What /proc tells of a process (Linux); None once it is gone."""
    try:
        # The name, in parentheses, may hold anything: the fields follow the last ")".
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return ProcessInfo(fields[0], int(fields[1]), int(fields[2]))


def all_pids() -> list[int]:
    """Every process of the machine that /proc lists."""
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def group_running(pgid: int) -> bool:
    """Whether a process of the group still runs (a zombie no longer does)."""
    if not Path("/proc").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    return any(
        info is not None and info.group == pgid and info.state != "Z"
        for info in map(process_info, all_pids())
    )


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def dies_with_this_process() -> Callable[[], None] | None:
    """For `preexec_fn`: the child is sent SIGTERM when this process ends, even killed
    (Linux's PR_SET_PDEATHSIG; elsewhere None). Call it from the thread that starts the
    child, and that lives as long as this process: the signal comes when that thread ends."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def set_death_signal() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # it ended before the call above
            os.kill(os.getpid(), signal.SIGTERM)

    return set_death_signal


def exit_reason(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Child:
    """A process `portal run` keeps running, in a process group of its own (with whatever it
    starts: granian's workers). When it stops, its group is killed and it starts again after
    1 s, then 2, 4... at most 30 s while it keeps failing; from 1 s again after a minute up.

    `ready`, when given, runs after each start, the first one or a restart, and brings the
    process to where it should be (the embedded Redis's append-only file); it raises
    RuntimeError if it cannot, and the process is killed, to start again later."""

    def __init__(
        self,
        name: str,
        start: Callable[[], subprocess.Popen[bytes]],
        ready: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._start = start
        self._ready = ready
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.failures = 0
        self.restart_at: float | None = None

    def launch(self, now: float | None = None) -> subprocess.Popen[bytes]:
        self.process = process = self._start()
        self.started_at = time.monotonic() if now is None else now
        self.restart_at = None
        if self._ready is not None:
            try:
                self._ready()
            except RuntimeError:
                kill_group(process.pid)
                process.wait()
                raise
        return process

    def stopped(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def watch(self, now: float) -> None:
        if self.restart_at is not None:
            if now >= self.restart_at:
                try:
                    log.info("the %s starts again (pid %s)", self.name, self.launch(now).pid)
                except RuntimeError as exc:
                    log.warning("the %s did not start again: %s", self.name, exc)
            return
        if self.process is None or (code := self.process.poll()) is None:
            return
        if group_running(self.process.pid):
            kill_group(self.process.pid)  # what it started goes with it
        if now - self.started_at >= HEALTHY_AFTER_S:
            self.failures = 0
        delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**self.failures)
        self.failures += 1
        self.restart_at = now + delay
        log.warning(
            "the %s stopped (%s); restarting it in %d s", self.name, exit_reason(code), delay
        )


def portal_process(
    command: list[str], env: dict[str, str], **options: Any
) -> subprocess.Popen[bytes]:
    """`portal <command>` as a child: a process group of its own, ended with this one."""
    return subprocess.Popen(  # noqa: S603 (our own command)
        [sys.executable, "-m", "portal.cli", *command],
        env=env,
        start_new_session=True,
        preexec_fn=dies_with_this_process(),  # no other thread runs then
        **options,
    )


def _ended(process: subprocess.Popen[bytes]) -> bool:
    """The process ended, and whatever it started too."""
    return process.poll() is not None and not group_running(process.pid)


def _stop(children: list[Child], timeout_s: float) -> None:
    """SIGTERM each process; after `timeout_s`, SIGKILL every group with a process left."""
    started = {child.name: child.process for child in children if child.process is not None}
    for process in started.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(map(_ended, started.values())):
        time.sleep(0.05)
    for name, process in started.items():
        if not _ended(process):
            log.warning("the %s still runs %d s after SIGTERM: killed", name, timeout_s)
            kill_group(process.pid)
        process.wait()


def _wait_until_up(
    url: str, children: list[Child], timeout_s: float, stopping: Callable[[], bool]
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stopping() or any(child.stopped() for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our own local address)
                return True
        except urllib.error.HTTPError:
            return True  # it answers (503 until the worker's first heartbeat)
        except OSError:
            time.sleep(0.2)
    return False


def supervise(url: str, redis: list[Child], children: list[Child]) -> int:
    """Start Redis (if embedded), then the others; start again any that stops; stop them all
    on Ctrl-C (SIGINT), SIGTERM or SIGHUP. The exit code."""
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # as `nohup` leaves SIGHUP
            signal.signal(signum, on_signal)
    code = 0
    try:
        for child in redis:
            child.launch()
        for child in children:
            child.launch()
        if not _wait_until_up(f"{url}/healthz", redis + children, 60, lambda: stopping):
            if not stopping:
                print("The portal did not start; see the messages above.", file=sys.stderr)
                code = 1
        else:
            print(f"\n  Ready: open {url}  (Ctrl-C stops everything)\n", flush=True)
        while not stopping and code == 0:
            for child in redis + children:
                child.watch(time.monotonic())
            time.sleep(0.2)
    except RuntimeError as exc:  # the embedded Redis did not start
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    finally:
        _stop(children, STOP_TIMEOUT_S)  # first the web server and the worker,
        _stop(redis, STOP_TIMEOUT_S)  # then Redis, which they use until they stop
    return code
