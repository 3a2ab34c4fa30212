"""Database engines and write transactions for SQLite and PostgreSQL.

Every write that checks then changes state goes through `write_transaction()`:
on SQLite it takes `BEGIN IMMEDIATE` (and an in-process lock, so the connections of
one process queue instead of sleeping on the file lock); on PostgreSQL a plain
transaction, the caller taking row locks where it needs them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from asyncpg.exceptions import UniqueViolationError
from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType, dict_factory

APPS = [
    "portal.accounts.piccolo_app",
    "portal.charter.piccolo_app",
    "portal.credits.piccolo_app",
    "portal.booking.piccolo_app",
    "portal.questions.piccolo_app",
    "portal.notify.piccolo_app",
    "portal.events.piccolo_app",
]

SQLITE_BUSY_TIMEOUT_S = 15
POOL_MAX = 20


class PortalSQLiteEngine(SQLiteEngine):
    """SQLite with the pragmas a web app needs, and one long-lived connection per event loop
    for statements outside transactions.

    Piccolo opens a connection (and its thread) for every query; that cost dominated every
    page (3 queries: 64 pages/s). Transactions still get a connection of their own.
    """

    def __init__(self, path: str, **connection_kwargs: Any) -> None:
        super().__init__(path=path, **connection_kwargs)
        self._shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiosqlite.Connection] = (
            weakref.WeakKeyDictionary()
        )

    async def _open(self) -> aiosqlite.Connection:
        connection = aiosqlite.connect(**self.connection_kwargs)
        # Never keep the interpreter alive for a connection someone forgot to close.
        connection._thread.daemon = True
        await connection
        connection.row_factory = dict_factory  # type: ignore[assignment]
        await connection.execute("PRAGMA foreign_keys = 1")
        await connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    async def get_connection(self) -> aiosqlite.Connection:
        return await self._open()

    async def _shared_connection(self) -> aiosqlite.Connection:
        loop = asyncio.get_running_loop()
        connection = self._shared.get(loop)
        if connection is None:
            connection = await self._open()
            if loop in self._shared:  # another task opened one meanwhile: use that one
                await connection.close()
            else:
                self._shared[loop] = connection
        return self._shared[loop]

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> list[dict[str, Any]]:
        if not query.lstrip()[:6].upper().startswith(("SELECT", "WITH")):
            # A write outside a transaction: on a connection of its own, under the write
            # lock, so that waiting for SQLite's lock never stalls the shared reader.
            async with _write_lock():
                connection = await self._open()
                try:
                    async with connection.execute(query, args or []) as cursor:
                        return await cursor.fetchall()  # type: ignore[return-value]
                finally:
                    await connection.close()
        # Autocommit (isolation_level=None): each statement is its own transaction.
        connection = await self._shared_connection()
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()  # type: ignore[return-value]

    async def close_shared(self) -> None:
        connection = self._shared.pop(asyncio.get_running_loop(), None)
        if connection is not None:
            await connection.close()


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
    if (current := engine.current_transaction.get()) is not None:
        yield current  # already inside one: it is the same unit of work
        return
    if is_postgres(engine):
        async with engine.transaction() as transaction:
            yield transaction
        return
    async with _write_lock(), engine.transaction(transaction_type=TransactionType.immediate) as tx:
        yield tx


def is_unique_violation(exc: BaseException) -> bool:
    """A unique constraint refused a row (two writers raced to create the same thing)."""
    if isinstance(exc, UniqueViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


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
    """Close this event loop's connections: the PostgreSQL pool, or SQLite's shared one."""
    global _pool_users
    engine = get_engine()
    if isinstance(engine, PortalSQLiteEngine):
        await engine.close_shared()
    if isinstance(engine, PostgresEngine) and _pool_users > 0:
        _pool_users -= 1
        if _pool_users == 0:
            await engine.close_connection_pool()
