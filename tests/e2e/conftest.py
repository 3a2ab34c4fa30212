"""A real web server process and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.settings import get_settings
from tests.conftest import TMP
from tests.support import reset_database, reset_redis, run_in_thread, web_server

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    with web_server(TMP, log_name="e2e-web.log") as url:
        yield url


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
    # A French visitor's device (its zone is the pages' default: nothing to detect).
    context = browser.new_context(base_url=live_server, locale="fr-FR", timezone_id="Europe/Paris")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
