"""Database engines and write transactions for SQLite and PostgreSQL.

Every write that checks then changes state goes through `write_transaction()`:
on SQLite it takes `BEGIN IMMEDIATE` (and an in-process lock, so the connections of
one process queue instead of sleeping on the file lock); on PostgreSQL a plain
transaction, the caller taking row locks where it needs them.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

APPS = ["portal.accounts.piccolo_app", "portal.charter.piccolo_app"]

SQLITE_BUSY_TIMEOUT_S = 15
POOL_MAX = 20


class PortalSQLiteEngine(SQLiteEngine):
    """SQLite with the pragmas a web app needs on every connection."""

    async def get_connection(self) -> aiosqlite.Connection:
        connection = await super().get_connection()
        await connection.execute("PRAGMA synchronous = NORMAL")
        return connection


def engine_from_url(url: str) -> Engine:
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresEngine(config={"dsn": url})
    path = url.removeprefix("sqlite:///")
    return PortalSQLiteEngine(path=path, timeout=SQLITE_BUSY_TIMEOUT_S)


def get_engine() -> Engine:
    engine = engine_finder()
    if engine is None:
        raise RuntimeError("piccolo_conf.DB is not defined")
    return engine


def is_postgres(engine: Engine | None = None) -> bool:
    return (engine or get_engine()).engine_type == "postgres"


_write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _write_lock() -> asyncio.Lock:
    """One lock per event loop (a lock may not be shared across loops)."""
    loop = asyncio.get_running_loop()
    lock = _write_locks.get(loop)
    if lock is None:
        lock = _write_locks[loop] = asyncio.Lock()
    return lock


@asynccontextmanager
async def write_transaction() -> AsyncIterator[Any]:
    engine = get_engine()
    if is_postgres(engine):
        async with engine.transaction() as transaction:
            yield transaction
        return
    async with _write_lock(), engine.transaction(transaction_type=TransactionType.immediate) as tx:
        yield tx


async def prepare_sqlite(engine: Engine) -> None:
    """WAL lets readers work while one writer writes; the mode is stored in the file."""
    if isinstance(engine, SQLiteEngine):
        await engine.run_ddl("PRAGMA journal_mode = WAL")


async def ping() -> None:
    await get_engine().run_ddl("SELECT 1")


_pool_users = 0  # apps sharing the engine's pool in this process (one in production)


async def start_pool() -> None:
    """PostgreSQL: open the connection pool (SQLite has none: a connection per query)."""
    global _pool_users
    engine = get_engine()
    if isinstance(engine, PostgresEngine):
        if _pool_users == 0:
            await engine.start_connection_pool(min_size=1, max_size=POOL_MAX)
        _pool_users += 1


async def close_pool() -> None:
    global _pool_users
    engine = get_engine()
    if isinstance(engine, PostgresEngine) and _pool_users > 0:
        _pool_users -= 1
        if _pool_users == 0:
            await engine.close_connection_pool()
