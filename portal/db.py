"""Database engines and write transactions for SQLite and PostgreSQL.

Every write that checks then changes state goes through `write_transaction()`:
on PostgreSQL a plain transaction, the caller taking row locks where it needs them; on
SQLite `BEGIN IMMEDIATE` on the process's one writer connection, after two locks that
make writers queue instead of sleeping: an in-process lock (the tasks of one process) and
an exclusive lock on a file beside the database (the processes: web workers and the
worker). SQLite's own busy handler, left as the last resort, polls with sleeps of up to
100 ms, which had two web processes spend most of their time asleep under contention.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiosqlite
import asyncpg
from asyncpg.exceptions import UniqueViolationError
from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import (
    SQLiteEngine,
    SQLiteTransaction,
    TransactionType,
    dict_factory,
)

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


class PortalConnection(asyncpg.Connection):
    """A PostgreSQL connection of the pool. The portal keeps no state in a session (no SET,
    LISTEN, cursor or session-level advisory lock: its advisory locks end with their
    transaction), so a connection given back to the pool needs no reset query. asyncpg's
    default one is a round trip on every release, and Piccolo takes a connection from the
    pool for each statement outside a transaction. A transaction left open is still ended
    by asyncpg."""

    def get_reset_query(self) -> str:
        return ""


class PortalSQLiteEngine(SQLiteEngine):
    """SQLite with the pragmas a web app needs, and two long-lived connections per event
    loop: one for statements outside transactions, one for write transactions (used by one
    transaction at a time: `write_transaction` holds the process's write lock).

    Piccolo opens a connection (and its thread) for every query and every transaction; that
    cost dominated every page (3 queries: 64 pages/s) and every write (1.3 ms of a 1.8 ms
    one-row transaction). Other transactions still get a connection of their own.
    """

    def __init__(self, path: str, **connection_kwargs: Any) -> None:
        if sqlite3.sqlite_version_info < (3, 35):
            raise RuntimeError(
                f"SQLite 3.35 or later is needed (RETURNING); {sqlite3.sqlite_version}"
            )
        super().__init__(path=path, **connection_kwargs)
        self._shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiosqlite.Connection] = (
            weakref.WeakKeyDictionary()
        )
        self._writers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiosqlite.Connection
        ] = weakref.WeakKeyDictionary()
        # One file whatever the spelling of the path, so every process finds the same.
        self.writer_lock_path = os.path.realpath(path if path != ":memory:" else "memory")
        self.writer_lock_path += ".writer-lock"
        # One descriptor per event loop (a lock is shared by a descriptor's users), opened
        # again after a fork (an inherited one shares its lock with the parent's).
        self._lock_fds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, int]] = (
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

    async def _run_in_existing_connection(
        self,
        connection: aiosqlite.Connection,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> list[dict[str, Any]]:
        """A statement inside a transaction in one hand-off to the connection's thread.

        Piccolo's own sends `PRAGMA foreign_keys` again, then executes, fetches and closes
        the cursor: four trips to the thread for one statement. The pragma is set when the
        connection opens (`_open`) and stays for its life; SQLite here is >= 3.35, so an
        INSERT returns its key with RETURNING.
        """
        return await connection.execute_fetchall(query, args or [])  # type: ignore[return-value]

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
            # A write outside a transaction: on the writer connection, under the write locks,
            # so that waiting for SQLite's lock never stalls the shared reader.
            async with _sqlite_writing(self):
                connection = await self.writer()
                return await connection.execute_fetchall(query, args or [])  # type: ignore[return-value]
        # Autocommit (isolation_level=None): each statement is its own transaction.
        connection = await self._shared_connection()
        return await connection.execute_fetchall(query, args or [])  # type: ignore[return-value]

    async def close_shared(self) -> None:
        loop = asyncio.get_running_loop()
        shared = self._shared.pop(loop, None)
        if shared is not None:
            await shared.close()
        async with _write_lock():  # not under a transaction still running
            writer = self._writers.pop(loop, None)
            if writer is not None:
                await writer.close()

    def write(self) -> WriterTransaction:
        return WriterTransaction(engine=self)

    async def writer(self) -> aiosqlite.Connection:
        """This loop's writer connection; the caller holds the process's write lock."""
        loop = asyncio.get_running_loop()
        connection = self._writers.get(loop)
        if connection is not None and connection.in_transaction:  # left open: start afresh
            await self.drop_writer()
            connection = None
        if connection is None:
            connection = self._writers[loop] = await self._open()
        return connection

    async def drop_writer(self) -> None:
        """Forget a writer connection left in an unknown state (a failed COMMIT or ROLLBACK)."""
        connection = self._writers.pop(asyncio.get_running_loop(), None)
        if connection is not None:
            with contextlib.suppress(sqlite3.Error, ValueError):  # broken: nothing to close
                await connection.close()

    def _lock_descriptor(self) -> int:
        loop, pid = asyncio.get_running_loop(), os.getpid()
        opened = self._lock_fds.get(loop)
        if opened is None or opened[0] != pid:
            fd = os.open(self.writer_lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
            self._lock_fds[loop] = opened = (pid, fd)
        return opened[1]

    async def lock_processes(self) -> int:
        """Take the exclusive lock shared with the other processes on this database; waiting
        happens in a thread, woken as soon as the holder lets go (a process that dies lets
        go). Returns what to unlock."""
        fd = self._lock_descriptor()
        with contextlib.suppress(BlockingIOError):  # free: taken at once, no thread
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        waiting = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread goes on waiting and will take the lock: let it go at once then,
            # before this task lets go of the process's write lock.
            while not waiting.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(waiting)
            if waiting.exception() is None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            raise
        return fd


class WriterTransaction(SQLiteTransaction):
    """`BEGIN IMMEDIATE` on the loop's writer connection, which stays open afterwards."""

    engine: PortalSQLiteEngine

    def __init__(self, engine: PortalSQLiteEngine) -> None:
        super().__init__(engine=engine, transaction_type=TransactionType.immediate)

    async def get_connection(self) -> aiosqlite.Connection:
        return await self.engine.writer()

    async def __aenter__(self) -> WriterTransaction:
        if self._parent is not None:
            return self._parent  # type: ignore[return-value]
        self.connection = await self.get_connection()
        try:
            await self.begin()
        except BaseException:
            # Cancelled while BEGIN waits its turn in the connection's thread, it still runs
            # there: closing after it ends the transaction it starts.
            await self.engine.drop_writer()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return exception is None
        try:
            if exception is not None:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        except BaseException:
            await self.engine.drop_writer()
            raise
        finally:
            self.engine.current_transaction.reset(self.context)
        return exception is None


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
    assert isinstance(engine, PortalSQLiteEngine)
    async with _sqlite_writing(engine), engine.write() as tx:
        yield tx


@asynccontextmanager
async def _sqlite_writing(engine: PortalSQLiteEngine) -> AsyncIterator[None]:
    """The process's write lock, then the lock shared with the other processes."""
    async with _write_lock():
        fd = await engine.lock_processes()
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


Result = TypeVar("Result")


async def in_writer_thread(fn: Callable[..., Result], *args: Any) -> Result:
    """SQLite, inside `write_transaction()`: `fn(connection, *args)` run in the thread of the
    transaction's connection, so that several statements cost one hand-off instead of one
    each. `fn` gets the plain `sqlite3` connection (rows as dicts, `?` placeholders, the
    same type adapters as Piccolo's) and must not commit."""
    transaction = get_engine().current_transaction.get()
    if not isinstance(transaction, WriterTransaction):
        raise RuntimeError("in_writer_thread() runs inside write_transaction() on SQLite")
    connection = transaction.connection
    # aiosqlite runs each call in its connection's thread through _execute (stable since
    # aiosqlite 0.16; the pin in pyproject.toml keeps it).
    return await connection._execute(fn, connection._conn, *args)


def qmarks(sql: str) -> str:
    """A statement written for Piccolo's `raw()` (`{}` placeholders), for sqlite3 (`?`)."""
    return sql.replace("{}", "?")


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
            await engine.start_connection_pool(
                min_size=1, max_size=POOL_MAX, connection_class=PortalConnection
            )
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
