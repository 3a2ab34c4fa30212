from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from litestar import Litestar

from portal.app import create_app
from portal.settings import get_settings
from tests.stripe_stub import stripe_stub  # noqa: F401 (a fixture for these tests)

BASE = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _each_test_starts_empty(clean: None) -> None:
    """Every integration test starts with empty tables and an empty Redis."""


@asynccontextmanager
async def running(app: Litestar, base_url: str = BASE) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (lifespan) in the test's own event loop, with an HTTP client on it.

    The lifespan runs in a task of its own: it must be entered and left by the same task,
    and a fixture's teardown may run in another.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    server = asyncio.create_task(serve())
    await asyncio.wait([server, asyncio.create_task(started.wait())], return_when="FIRST_COMPLETED")
    if server.done():
        server.result()  # start-up failed: raise its error here
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=base_url, follow_redirects=True
        ) as client:
            yield client
    finally:
        stop.set()
        await server


@pytest.fixture
def app() -> Litestar:
    get_settings.cache_clear()
    return create_app(get_settings())


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as test_client:
        yield test_client


@pytest.fixture
async def other_client() -> AsyncIterator[httpx.AsyncClient]:
    """A second app instance on the same database and Redis: another web process, another
    browser."""
    async with running(create_app(get_settings())) as test_client:
        yield test_client
