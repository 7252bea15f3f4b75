"""The repository's shared floor: the session factory, the dialect, the inserts every aggregate uses, and the one
error type (StorageError, in the database's own words) a failing database reaches the layers above as."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scout.deals import DealPolicy
from scout.errors import StorageError
from storage.bulk import json_insert, json_rows

# A database's refusal, as a task log, a search's last outcome and the scan log show it.
DATABASE_ERROR_LENGTH = 300

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type)


def describe_database_error(err: SQLAlchemyError) -> str:
    """The driver's own words for a refused statement ("DataError: numeric field overflow"), without the SQL and
    parameters SQLAlchemy adds (they can hold a whole page of listings)."""
    cause = getattr(err, "orig", None) or err
    words = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {words[0] if words else 'no detail'}"[:DATABASE_ERROR_LENGTH]


def raise_storage_errors(cls: C) -> C:
    """Make every public coroutine method of `cls`, its own or its bases', raise StorageError where SQLAlchemy raises:
    the core catches one error type for a failing database and imports no storage engine to do it. OSError (a
    connection that cannot be opened) passes as it is, as does a StorageError a method raises in words of its own."""
    for name in dir(cls):
        method = inspect.getattr_static(cls, name)
        if not name.startswith("_") and inspect.iscoroutinefunction(method):
            setattr(cls, name, _storage_errors(method))
    return cls


def _storage_errors(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except SQLAlchemyError as err:
            raise StorageError(describe_database_error(err)) from err

    return translated


@functools.cache
def _rows_insert(dialect: str, table: sa.Table, names: tuple[str, ...], skip_conflicts: bool) -> Any:
    """Queries._insert_rows' statement, built once per table and columns."""
    stmt = json_insert(dialect, table, names)
    return stmt.on_conflict_do_nothing() if skip_conflicts else stmt


class Queries:
    """What every aggregate of storage.repo.Repository works with; each public method is one transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, deal_policy: DealPolicy | None = None) -> None:
        self._sessions = sessions
        # How deals are judged (the window of comparables, the count a verdict needs): DEAL_* settings.
        self.deal_policy = deal_policy or DealPolicy()
        bind = sessions.kw["bind"]
        self.dialect: str = bind.dialect.name

    def _insert(self, table: type[Any]) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert  # loaded only where it is used

            return pg_insert(table)
        return sqlite_insert(table)

    async def _insert_rows(self, session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]], *,
                           skip_conflicts: bool = False) -> None:
        """Insert many rows (each naming the same columns) in one statement of fixed text, an INSERT ... SELECT
        from one JSON text of the rows (storage.bulk.json_insert), executed once."""
        await session.execute(_rows_insert(self.dialect, table, tuple(rows[0]), skip_conflicts),
                              json_rows(self.dialect, table, rows))

    async def ping(self) -> None:
        try:
            async with self._sessions() as session:
                await session.execute(sa.text("SELECT 1"))
        except (SQLAlchemyError, OSError) as err:
            raise StorageError(f"database unreachable: {type(err).__name__}") from err
