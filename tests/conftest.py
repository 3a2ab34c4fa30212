"""Test set-up: a real database (SQLite by default, PostgreSQL when DATABASE_URL says so)
and a real Redis (embedded by default, a server when REDIS_URL says so).

The environment is prepared at import, before anything reads the settings or asks Piccolo
for its engine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TMP = Path(tempfile.mkdtemp(prefix="portal-tests-"))
ARTIFACTS = ROOT / "test-artifacts"

os.umask(0o077)  # as the `portal` command: what the tests create is private
os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP}/test.sqlite")
os.environ["SECRET_KEY"] = "tests-only-secret-key-0123456789abcdefghijklmnop"
os.environ["VAR_DIR"] = str(TMP / "var")
os.environ.setdefault("BASE_URL", "http://127.0.0.1:8000")
os.environ["TEST_CHECKOUT"] = "1"  # no Stripe key in tests: the labelled test checkout pays
for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "SMTP_URL"):
    os.environ.pop(name, None)

_embedded = None
if not os.environ.get("REDIS_URL"):
    from portal.redis import EmbeddedRedis

    _embedded = EmbeddedRedis(TMP / "var")
    os.environ["REDIS_URL"] = _embedded.start()

from portal.db import close_pool  # noqa: E402
from portal.settings import get_settings  # noqa: E402  (after the environment is set)
from tests.support import reset_database, reset_redis  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _embedded is not None:
        _embedded.stop()


async def _drop_postgres_schema(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await connection.close()


@pytest.fixture(scope="session", autouse=True)
def migrated_database() -> None:
    """A fresh schema, built by the real `portal migrate` command."""
    settings = get_settings()
    if settings.database_engine == "postgres":
        asyncio.run(_drop_postgres_schema(settings.database_url))
    subprocess.run(
        [sys.executable, "-m", "portal.cli", "migrate"],
        check=True,
        cwd=TMP,
        capture_output=True,
    )


@pytest.fixture
async def clean() -> AsyncIterator[None]:
    """Empty tables and Redis before a test, so no test depends on another."""
    await reset_database()
    await reset_redis(get_settings().redis_url or "")
    yield
    await close_pool()  # this test's event loop ends: so do its connections


@pytest.fixture
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    yield ARTIFACTS
