"""The one-scheduler-per-database lock: a PostgreSQL advisory lock, or a file lock beside an SQLite database.

Whoever holds it (`dealscout run`, or the active `dealscout leader`) is the only process that claims due searches,
drains the outbox and runs the chat gateways. The lock belongs to a connection (PostgreSQL) or an open file
(SQLite), so the operating system or the database frees it the moment its process dies, kill -9 included: no
heartbeat to wait out, and a stale holder can never keep it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from scout.errors import StorageError

# Any 64-bit number no other application on the same PostgreSQL server is likely to use: "dealscout" in ASCII.
ADVISORY_KEY = 0x6465616C73636F75
# The server notices a holder whose machine vanished without closing its connection after about idle + count *
# interval seconds of silence, and frees the lock then (a killed process's connection closes at once).
KEEPALIVE = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}
# PostgreSQL keeps application_name to 63 bytes.
NAME_LIMIT = 63
# How the holder of the PostgreSQL lock names itself in pg_stat_activity, which is where a refused process reads it.
NAME_PREFIX = "dealscout "


def describe_self(role: str) -> str:
    """Who this process is, as a refused process shows it: role, host and pid."""
    return f"{role} on {socket.gethostname()} pid {os.getpid()}"


class LockHeld(StorageError):
    """Another live process holds the scheduler lock of this database."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"another Deal Scout process holds this database: {holder}")
        self.holder = holder


class SchedulerLock:
    """Try to take the lock with `acquire()`; hold it while the process lives, or `release()` it.

    `check()` raises StorageError once the lock can no longer be vouched for (its database connection is gone), so
    a leader that lost it stops leading instead of going on beside the next one.
    """

    def __init__(self, engine: AsyncEngine, database_url: str, *, role: str) -> None:
        self._engine = engine
        self._url = database_url
        self._role = role
        self._me = describe_self(role)
        self._connection: AsyncConnection | None = None
        self._file: IO[str] | None = None
        self._lock_engine: AsyncEngine | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    async def acquire(self) -> bool:
        """Take the lock if it is free; False when another live process holds it (`holder()` says who)."""
        if self.held:
            return True
        if self._engine.dialect.name == "postgresql":
            return await self._acquire_advisory()
        if self.lock_path() is None:  # no other process can open an in-memory database
            return True
        return await asyncio.to_thread(self._acquire_file)

    async def holder(self) -> str:
        """Who holds the lock now, as they describe themselves; 'unknown' when it cannot be told."""
        if self._engine.dialect.name == "postgresql":
            async with self._engine.connect() as connection:
                name = await connection.scalar(sa.text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND ((l.classid::bigint << 32) | l.objid::bigint) = :key"
                ), {"key": ADVISORY_KEY})
            return (name or "").removeprefix(NAME_PREFIX) or "unknown"
        path = self.lock_path()
        try:
            return (path.read_text(encoding="utf-8").strip() if path else "") or "unknown"
        except OSError:
            return "unknown"

    async def check(self) -> None:
        """StorageError when the lock may have been lost (PostgreSQL: its connection no longer answers)."""
        if self._connection is None:
            return
        try:
            await self._connection.execute(sa.text("SELECT 1"))
        except Exception as err:  # noqa: BLE001 - any failure of the lock's connection means the lock is gone
            raise StorageError(f"lost the scheduler lock's database connection: {err}") from err

    async def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            with contextlib.suppress(Exception):
                await connection.close()
        if self._lock_engine is not None:
            engine, self._lock_engine = self._lock_engine, None
            await engine.dispose()
        if self._file is not None:
            handle, self._file = self._file, None
            await asyncio.to_thread(_unlock_file, handle)

    def lock_path(self) -> Path | None:
        """The lock file of an SQLite database: its path plus '.lock'; None for an in-memory database."""
        database = make_url(self._url).database or ""
        if not database or database == ":memory:":
            return None
        return Path(database).expanduser().with_name(Path(database).name + ".lock")

    async def _acquire_advisory(self) -> bool:
        # A connection of its own, outside the pool: a pooled one would go back to the pool still holding the lock.
        if self._lock_engine is None:
            self._lock_engine = create_async_engine(
                self._engine.url, poolclass=NullPool, connect_args={"server_settings": KEEPALIVE})
        connection = await self._lock_engine.connect()
        try:
            # The name is what a refused process reads in pg_stat_activity; set before the lock is taken.
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            name = f"{NAME_PREFIX}{self._me} since {stamp}"[:NAME_LIMIT]
            await connection.execute(sa.text("SELECT set_config('application_name', :name, false)"), {"name": name})
            got = await connection.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY})
            await connection.commit()
        except BaseException:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._connection = connection
        return True

    def _acquire_file(self) -> bool:
        path = self.lock_path()
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
        if not _try_lock(handle):
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{self._me} since {datetime.now(UTC):%Y-%m-%d %H:%M UTC}\n")
        handle.flush()
        self._file = handle
        return True


def _try_lock(handle: IO[Any]) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock_file(handle: IO[Any]) -> None:
    with contextlib.suppress(OSError):
        handle.seek(0)
        handle.truncate()
    handle.close()  # closing the file frees the lock on every platform
