"""`portal run` and `portal web` as real processes: a port already taken, processes that die,
Ctrl-C under load, private files under var/."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import stat
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from redis import Redis, RedisError

from portal.supervise import STOP_TIMEOUT_S
from tests.processes import (
    PORTAL,
    child,
    descendants,
    embedded_redis,
    environment,
    health,
    output,
    portal_run,
    run_env,
    running,
    wait_for,
)

pytestmark = pytest.mark.slow

CLIENT = ("client@example.com", "demo-client-2026")  # seeded by `portal run --demo`


def _start_on_taken_port(folder: Path, command: str, port: int) -> tuple[float, str, int]:
    """`portal <command>` on `port`: (seconds until it stopped, its output, its exit code)."""
    started = time.monotonic()
    done = subprocess.run(
        [*PORTAL, command, "--port", str(port)],
        cwd=folder,
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return time.monotonic() - started, done.stdout + done.stderr, done.returncode


@pytest.mark.parametrize("command", ["run", "web"])
def test_a_port_in_use_stops_the_command_at_once(tmp_path: Path, command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        seconds, said, code = _start_on_taken_port(tmp_path, command, port)
    assert code == 2, said
    assert said.startswith(f"error: port {port} is in use") and said.count("\n") == 1, said
    assert seconds < 20, seconds  # not the 60 s `portal run` gives its processes to start
    print(f"`portal {command}` stopped after {seconds:.2f} s")


def test_a_second_portal_run_on_the_same_port_stops_and_the_first_serves_on(
    tmp_path: Path,
) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with portal_run(tmp_path / "first") as (first, url):
        port = int(url.rsplit(":", 1)[1])
        seconds, said, code = _start_on_taken_port(tmp_path / "second", "run", port)
        assert code == 2, said
        assert f"error: port {port} is in use" in said
        for _ in range(20):
            status, _body = health(url, timeout=10)
            assert status == 200
        assert first.poll() is None
    print(f"the second `portal run` stopped after {seconds:.2f} s")


def test_portal_run_restarts_its_worker_and_web_server_when_they_die(tmp_path: Path) -> None:
    with portal_run(tmp_path) as (run, url):
        worker = child(run.pid, "worker")
        web = child(run.pid, "web")
        assert worker and web, "the worker and the web server are processes of `portal run`"
        for pid in (worker, web):  # the labelled test checkout is on for local runs
            assert environment(pid).get("TEST_CHECKOUT") == "1"
        _status, before = health(url, timeout=10)

        killed = time.monotonic()
        os.kill(worker, signal.SIGKILL)

        def new_worker_beats() -> bool:
            assert child(run.pid, "web") == web, "the web server goes on meanwhile"
            status, body = health(url, timeout=10)
            if status == 0:
                return False  # slow to answer: ask again
            assert status in (200, 503), status
            replaced = child(run.pid, "worker") not in (None, worker)
            return (
                replaced
                and body["worker"]["last_heartbeat"] != (before["worker"]["last_heartbeat"])
            )

        wait_for(new_worker_beats, 60, "a new worker's heartbeat")
        print(f"worker back after {time.monotonic() - killed:.1f} s")
        assert environment(child(run.pid, "worker") or 0).get("TEST_CHECKOUT") == "1"

        granian_workers = descendants(web)
        killed = time.monotonic()
        os.kill(web, signal.SIGKILL)
        wait_for(lambda: not running(granian_workers), 15, "the dead server's workers gone")

        def new_web_answers() -> bool:
            return child(run.pid, "web") not in (None, web) and health(url)[0] == 200

        wait_for(new_web_answers, 60, "a new web server answering")
        print(f"web server back after {time.monotonic() - killed:.1f} s")
        assert run.poll() is None
    said = output(tmp_path)
    assert "the worker stopped (killed by SIGKILL); restarting it in 1 s" in said
    assert "the web server stopped (killed by SIGKILL); restarting it in 1 s" in said


def _logged_in(url: str) -> urllib.request.OpenerDirector:
    """A browser's cookies, logged in as the demo client through the login form."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with browser.open(f"{url}/login", timeout=30) as page:
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.read().decode())
    assert token, "the login page has a CSRF field"
    form = {"email": CLIENT[0], "password": CLIENT[1], "_csrf_token": token.group(1)}
    with browser.open(f"{url}/login", urllib.parse.urlencode(form).encode(), timeout=30) as done:
        assert done.url.endswith("/me"), done.url
    return browser


def _signed_in(browser: urllib.request.OpenerDirector, url: str) -> bool:
    with browser.open(f"{url}/me", timeout=30) as page:
        return page.url.endswith("/me")  # not sent back to the login page


def test_portal_run_restarts_its_embedded_redis_and_keeps_its_data(tmp_path: Path) -> None:
    if not embedded_redis(run_env()):
        pytest.skip("REDIS_URL names a server: `portal run` starts no Redis of its own")
    with portal_run(tmp_path, "--demo") as (run, url):
        browser = _logged_in(url)
        redis = child(run.pid, "redis-server")
        assert redis, "the embedded Redis is a process of `portal run`"
        _status, before = health(url, timeout=10)
        killed = time.monotonic()
        os.kill(redis, signal.SIGKILL)
        wait_for(lambda: child(run.pid, "redis-server") not in (None, redis), 60, "a new Redis")

        def healthy_with_a_new_heartbeat() -> bool:
            status, body = health(url)
            beat = body.get("worker", {}).get("last_heartbeat")
            return status == 200 and beat != before["worker"]["last_heartbeat"]

        wait_for(healthy_with_a_new_heartbeat, 60, "/healthz healthy, the worker beating again")
        print(f"Redis and the worker back after {time.monotonic() - killed:.1f} s")
        assert child(run.pid, "redis-server") not in (None, redis)
        assert _signed_in(browser, url), "the session survived the restart"
        assert _signed_in(_logged_in(url), url)
    assert "the embedded Redis stopped (killed by SIGKILL)" in output(tmp_path)


def _appendonly(folder: Path) -> str | None:
    """The embedded Redis's `appendonly` setting, None while it does not answer."""
    client = Redis(unix_socket_path=str(folder / "var/redis/run/redis.sock"), socket_timeout=5)
    try:
        return str(client.config_get("appendonly").get("appendonly"))
    except RedisError:
        return None
    finally:
        client.close()


def test_a_restarted_embedded_redis_logs_every_write_again(tmp_path: Path) -> None:
    if not embedded_redis(run_env()):
        pytest.skip("REDIS_URL names a server: `portal run` starts no Redis of its own")
    with portal_run(tmp_path) as (run, _url):
        aof = tmp_path / "var/redis/portal.aof"
        wait_for(aof.is_file, 60, "the append-only file written")
        assert _appendonly(tmp_path) == "yes"
        first = child(run.pid, "redis-server")
        assert first
        aof.unlink()  # as when Redis stops before its first append-only file is written
        os.kill(first, signal.SIGKILL)

        def restarted() -> bool:
            return child(run.pid, "redis-server") not in (None, first)

        wait_for(restarted, 60, "a new Redis")
        wait_for(lambda: _appendonly(tmp_path) == "yes", 30, "the new Redis logging writes")
        wait_for(aof.is_file, 30, "a new append-only file")


def _load(port: int, requests: int, slow: int) -> list[socket.socket]:
    """`requests` requests in flight and `slow` clients still sending their headers."""
    connections = []
    for n in range(requests + slow):
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        head = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        connection.sendall((head if n < slow else head + "\r\n").encode())
        connections.append(connection)
    return connections


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_stopping_under_load_ends_every_process(tmp_path: Path, how: str) -> None:
    with portal_run(tmp_path) as (run, url):
        port = int(url.rsplit(":", 1)[1])
        connections = _load(port, requests=180, slow=20)
        tree = descendants(run.pid) | {run.pid}
        asked = time.monotonic()
        if how == "ctrl-c":
            os.killpg(run.pid, signal.SIGINT)  # what a terminal does
        else:
            run.send_signal(signal.SIGTERM)  # what a service manager does
        # At worst, the web server and the worker are killed after STOP_TIMEOUT_S, then Redis.
        budget = 2 * STOP_TIMEOUT_S + 10
        wait_for(lambda: not running(tree), budget, f"every process ended ({len(tree)})")
        seconds = time.monotonic() - asked
        assert run.wait(timeout=10) == 0
        assert _port_free(port)
        for connection in connections:
            connection.close()
    assert "The portal has stopped." in output(tmp_path)
    print(f"{len(tree)} processes ended {seconds:.1f} s after {how}")


def test_a_killed_portal_run_takes_its_processes_with_it(tmp_path: Path) -> None:
    with portal_run(tmp_path) as (run, url):
        port = int(url.rsplit(":", 1)[1])
        tree = descendants(run.pid)
        assert len(tree) >= 3, "Redis or not, a web server and a worker"
        killed = time.monotonic()
        os.kill(run.pid, signal.SIGKILL)  # no chance to stop anything itself
        run.wait()
        wait_for(lambda: not running(tree), 20, f"its {len(tree)} processes ended")
        seconds = time.monotonic() - killed
        wait_for(lambda: _port_free(port), 10, f"port {port} free")
    with portal_run(tmp_path, port=port):  # the next start finds nothing in its way
        pass
    print(f"{len(tree)} processes ended {seconds:.1f} s after `portal run` was killed")


def test_files_under_var_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "outbox").mkdir(parents=True)
    (var / "outbox" / "earlier.eml").write_text("From: earlier run\n")
    for path, mode in ((var, 0o755), (var / "outbox", 0o755), (var / "outbox/earlier.eml", 0o644)):
        path.chmod(mode)
    env = run_env()
    env.pop("SECRET_KEY")  # generated into var/ then
    with portal_run(tmp_path, "--demo", env=env):
        pass
    found = {
        path.relative_to(var).as_posix(): stat.S_IMODE(path.lstat().st_mode)
        for path in [var, *var.rglob("*")]
    }
    assert "secret_key" in found and "outbox/earlier.eml" in found
    if "DATABASE_URL" not in env:
        assert "portal.sqlite" in found
    if embedded_redis(env):
        assert "redis/portal.aof" in found
    open_to_others = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert open_to_others == {}
