"""Read-only answers for `dealscout search list` and `search show` straight through the database driver: the standard
library's sqlite3, or asyncpg. A quick command would otherwise spend most of its start-up importing SQLAlchemy.

Only a database already at the schema's head is read here; any other (none yet, an older schema, a URL form this
module does not read, a driver error) is left to storage.repo, which migrates it and words its failures. The rows
become the same domain objects the repository returns, through storage.convert and storage.decode.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from scout.models import SavedSearch, StoredAlert
from storage.convert import listing_from_row, search_from_row
from storage.decode import PRICE_SCALE, json_value, sqlite_datetime, sqlite_decimal, utc_datetime

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

# The newest migration, so that a command can see the schema is current without loading Alembic (storage.db reads
# it from here). tests/storage/test_migrations.py holds it to Alembic's own reading of the scripts.
HEAD_REVISION = "0010"
# Decimal places of searches.price_drop_share and of the seller ratings (storage.tables: Numeric(5, 4), (5, 2)).
SHARE_SCALE = 4
RATING_SCALE = 2
# How long a SQLite reader or writer waits for another writer's lock before giving up (storage.db reads it from here).
SQLITE_BUSY_TIMEOUT_MS = 15_000

# The URL forms read here. SQLite: a file path without percent-escapes or query (storage.db.normalise_url's
# SQLAlchemy URL would unquote and read options from those). PostgreSQL: no query, whose options SQLAlchemy and asyncpg
# read differently.
_SQLITE_URL = re.compile(r"sqlite(?:\+\w+)?:///(?P<database>[^?%]+)")
_POSTGRES_URL = re.compile(r"postgres(?:ql)?(?:\+asyncpg)?://(?P<rest>[^?]*)")

SEARCH_COLUMNS = (
    "id", "owner", "platform", "target", "scope", "query", "exclude_words", "min_price", "max_price", "currency",
    "marketplaces", "check_interval_minutes", "location", "radius_km", "unpriced", "sponsored", "min_deal",
    "price_drop_share", "exclude_sellers", "min_seller_rating", "snoozed_until", "status", "paused_reason",
    "created_at", "next_run_at", "last_run_at", "last_success_at", "baselined", "last_outcomes",
)
LISTING_COLUMNS = (
    "marketplace", "external_id", "title", "url", "price", "currency", "price_text", "location", "image_url",
    "posted_at", "condition", "seller", "shipping", "seller_rating",
)
ALERT_COLUMNS = ("id", "status", "created_at", "sent_at")

_SELECT_SEARCHES = f"SELECT {', '.join(SEARCH_COLUMNS)} FROM searches"
# A search's newest alerts, newest first, as storage.outbox.recent_alert_rows reads them: the (search_id, id) index.
_SELECT_ALERTS = (
    f"SELECT {', '.join('o.' + c for c in ALERT_COLUMNS)}, {', '.join('l.' + c for c in LISTING_COLUMNS)}"
    " FROM alert_outbox AS o JOIN listings AS l ON l.id = o.listing_id"
    " WHERE o.search_id = ? ORDER BY o.id DESC LIMIT ?"
)

Decoders = dict[str, Callable[[Any], Any]]


def _scaled(scale: int) -> Callable[[Any], Any]:
    return lambda value: sqlite_decimal(value, scale)


# The timestamp columns read here (UtcDateTime).
_TIMESTAMPS = ("snoozed_until", "created_at", "next_run_at", "last_run_at", "last_success_at", "posted_at", "sent_at")
# What each driver returns that the column types would have decoded; columns not named come back as they are.
SQLITE_DECODERS: Decoders = {
    **dict.fromkeys(("exclude_words", "marketplaces", "exclude_sellers", "baselined", "last_outcomes"), json_value),
    **dict.fromkeys(("min_price", "max_price", "price", "shipping"), _scaled(PRICE_SCALE)),
    "price_drop_share": _scaled(SHARE_SCALE),
    **dict.fromkeys(("min_seller_rating", "seller_rating"), _scaled(RATING_SCALE)),
    **dict.fromkeys(_TIMESTAMPS, sqlite_datetime),
}
# asyncpg: text[] as lists and numeric as Decimal already; json as text.
POSTGRES_DECODERS: Decoders = {
    "last_outcomes": json_value,
    **dict.fromkeys(_TIMESTAMPS, utc_datetime),
}


class DirectReadError(Exception):
    """The driver failed a read; the caller answers through the repository instead, which reports the failure."""


class DirectReader:
    """The reads of `search list` and `search show` on a database at the head revision."""

    def __init__(self, location: str, decoders: Decoders) -> None:
        self.location = location  # as storage.db.describe_location words it
        self._decoders = decoders

    async def _rows(self, sql: str, *params: Any) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def _decode(self, names: Sequence[str], values: Sequence[Any]) -> SimpleNamespace:
        decoders = self._decoders
        return SimpleNamespace(**{name: decoders[name](value) if name in decoders else value
                                  for name, value in zip(names, values, strict=True)})

    async def count_searches(self) -> int:
        return int((await self._rows("SELECT count(*) FROM searches"))[0][0])

    async def load_searches(self, *, limit: int, offset: int = 0) -> list[SavedSearch]:
        rows = await self._rows(f"{_SELECT_SEARCHES} ORDER BY id LIMIT ? OFFSET ?", limit, offset)
        return [search_from_row(self._decode(SEARCH_COLUMNS, row)) for row in rows]

    async def load_search(self, search_id: int) -> SavedSearch | None:
        rows = await self._rows(f"{_SELECT_SEARCHES} WHERE id = ?", search_id)
        return search_from_row(self._decode(SEARCH_COLUMNS, rows[0])) if rows else None

    async def load_recent_alerts(self, search_id: int, *, limit: int = 10) -> list[StoredAlert]:
        alerts = []
        for row in await self._rows(_SELECT_ALERTS, search_id, limit):
            outbox = self._decode(ALERT_COLUMNS, row[: len(ALERT_COLUMNS)])
            listing = listing_from_row(self._decode(LISTING_COLUMNS, row[len(ALERT_COLUMNS) :]))
            alerts.append(StoredAlert(outbox.id, listing, outbox.status, outbox.created_at, outbox.sent_at))
        return alerts

    async def load_paused_marketplaces(self) -> dict[str, str | None]:
        """Marketplaces an operator paused: key -> the reason given (None when none was)."""
        rows = await self._rows("SELECT marketplace, reason FROM marketplace_state WHERE status = 'paused'")
        return {key: reason for key, reason in rows}


class _SqliteReader(DirectReader):
    def __init__(self, connection: sqlite3.Connection, location: str) -> None:
        super().__init__(location, SQLITE_DECODERS)
        self._connection = connection

    async def _rows(self, sql: str, *params: Any) -> Sequence[Sequence[Any]]:
        try:
            return self._connection.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise DirectReadError(str(err)) from err


class _PostgresReader(DirectReader):
    def __init__(self, connection: asyncpg.Connection, location: str, errors: tuple[type[BaseException], ...]) -> None:
        super().__init__(location, POSTGRES_DECODERS)
        self._connection = connection
        self._errors = errors

    async def _rows(self, sql: str, *params: Any) -> Sequence[Sequence[Any]]:
        numbered = iter(range(1, len(params) + 1))
        try:
            rows = await self._connection.fetch(re.sub(r"\?", lambda _: f"${next(numbered)}", sql), *params)
        except self._errors as err:
            raise DirectReadError(str(err)) from err
        return [tuple(row) for row in rows]


@contextlib.asynccontextmanager
async def open_reader(url: str) -> AsyncIterator[DirectReader | None]:
    """A reader of the database at `url`, or None when it is to be read through the repository: a URL form not read
    here, no database yet, a schema not at its head, or a driver that fails to open it. Reads that fail raise
    DirectReadError."""
    if (sqlite := _SQLITE_URL.fullmatch(url)) is not None:
        async with _open_sqlite(sqlite["database"]) as reader:
            yield reader
    elif (postgres := _POSTGRES_URL.fullmatch(url)) is not None:
        async with _open_postgres(f"postgresql://{postgres['rest']}", url) as reader:
            yield reader
    else:
        yield None


@contextlib.asynccontextmanager
async def _open_sqlite(database: str) -> AsyncIterator[DirectReader | None]:
    # The path as the repository's driver opens it; a file that is not there yet is the repository's to create.
    if database == ":memory:" or not Path(database).is_file():
        yield None
        return
    try:
        connection = sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error:
        yield None
        return
    try:
        reader = _SqliteReader(connection, str(Path(database).expanduser().resolve()))
        yield reader if await _at_head(reader) else None
    finally:
        connection.close()


@contextlib.asynccontextmanager
async def _open_postgres(dsn: str, url: str) -> AsyncIterator[DirectReader | None]:
    import asyncpg

    errors = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
    try:
        connection = await asyncpg.connect(dsn)
    except errors:
        yield None
        return
    try:
        reader = _PostgresReader(connection, _masked(url), errors)
        yield reader if await _at_head(reader) else None
    finally:
        await connection.close()


async def _at_head(reader: DirectReader) -> bool:
    """Whether the schema is at HEAD_REVISION, read as storage.db reads it without Alembic."""
    try:
        versions = [row[0] for row in await reader._rows("SELECT version_num FROM alembic_version")]
    except DirectReadError:
        return False  # no schema yet, or a database that refuses: the repository's path says which
    if versions != [HEAD_REVISION]:
        return False
    log.info("database schema at head %s, read directly (%s)", HEAD_REVISION, reader.location)
    return True


def _masked(url: str) -> str:
    """The URL with its password masked, as storage.db.describe_location shows a server's URL."""
    return re.sub(r"^([^:/]+://[^:@/]*):[^@/]*@", r"\1:***@", url)
