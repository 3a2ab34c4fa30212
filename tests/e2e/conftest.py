"""A real web server process and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.settings import get_settings
from tests.conftest import TMP
from tests.support import reset_database, reset_redis, run_in_thread

CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    port = _free_port()
    log = (TMP / "e2e-web.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "web", "--port", str(port)],
        cwd=TMP,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, (TMP / "e2e-web.log").read_text()
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers (503 without a worker is fine here)
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


async def _reset() -> None:
    await reset_database()
    await reset_redis(get_settings().redis_url or "")


@pytest.fixture
def clean_sync() -> None:
    run_in_thread(_reset())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API holds an event loop in this thread while it runs,
    which async tests collected afterwards could not share."""
    if not CHROMIUM.exists():
        message = "Chromium is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI. {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_server: str, clean_sync: None) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
