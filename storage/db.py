"""The database engine and session factory: SQLite in WAL mode by default, PostgreSQL (asyncpg) by URL; migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from scout.errors import ConfigError, StorageError
from storage.direct import HEAD_REVISION, SQLITE_BUSY_TIMEOUT_MS

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# PostgreSQL advisory lock key held while migrating ("dealmigr" in ASCII; the scheduler lock uses another).
MIGRATION_LOCK = 0x6465616C6D696772
# What SQLite's result codes (https://www.sqlite.org/rescode.html) mean to whoever runs the service; extended codes
# (SQLITE_READONLY_DIRECTORY, SQLITE_IOERR_WRITE, ...) start with their primary code.
SQLITE_FAILURES = {
    "SQLITE_CANTOPEN": "cannot be opened (do the file and its folder exist, and may this user read and write them?)",
    "SQLITE_READONLY": "cannot be written (may this user write the file and its folder?)",
    "SQLITE_PERM": "cannot be written (may this user write the file and its folder?)",
    "SQLITE_NOTADB": "is not a SQLite database, or is damaged (restore a backup, or move the file aside to start "
                     "an empty one)",
    "SQLITE_CORRUPT": "is damaged (restore a backup, or move the file aside to start an empty one)",
    "SQLITE_FULL": "cannot grow: its disk is full",
    "SQLITE_IOERR": "cannot be read or written: the disk reported an error",
    "SQLITE_BUSY": "is locked by another process",
    "SQLITE_LOCKED": "is locked by another process",
}

# SQLite has no decimal type; SQLAlchemy rounds the stored value back to the column's scale, which is exact for prices.
warnings.filterwarnings("ignore", message=r"Dialect sqlite\+aiosqlite does \*not\* support Decimal", category=SAWarning)


def normalise_url(url: str) -> str:
    """Accept the URLs people write (postgres://, postgresql://, sqlite:///) and pick the async driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise ConfigError(f"DATABASE_URL is not a database URL: {err}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    raise ConfigError(f"DATABASE_URL must be a sqlite or postgresql URL, not {backend!r}")


def safe_url(url: str) -> str:
    """The URL with any password masked, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def describe_location(url: str) -> str:
    """Where the database is, for a message: the SQLite file's full path, or the URL with its password masked."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "named by DATABASE_URL"
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        return database if database == ":memory:" else str(Path(database).expanduser().resolve())
    return parsed.render_as_string(hide_password=True)


def describe_failure(url: str, err: BaseException) -> str:
    """One line saying which database failed and why (a file it cannot open or write, a damaged file, a server it
    cannot reach), for the CLI and the logs; a password in the driver's text is masked."""
    cause = getattr(err, "orig", None) or err
    text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    code = getattr(cause, "sqlite_errorname", None) or ""
    meaning = next((meaning for prefix, meaning in SQLITE_FAILURES.items() if code.startswith(prefix)), None)
    if meaning is None and isinstance(cause, PermissionError):
        meaning = "cannot be opened: this user may not use its folder"
    elif meaning is None and isinstance(cause, OSError):
        meaning = "cannot be reached (is the server up, and is DATABASE_URL right?)"
    message = f"the database {describe_location(url)} {meaning or 'failed'}: {text}"
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    return message.replace(password, "***") if password else message


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine
    # No ping on checkout: it cost a round trip per transaction. A connection the server dropped fails its first
    # statement instead; SQLAlchemy then discards every pooled connection opened before, and the caller's
    # storage-error retry runs on fresh ones.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision` on the engine's database. A database already at the head costs one query:
    Alembic is loaded only when there is something to do."""
    if revision != "head" or not await _at_head(engine):
        from alembic import command

        await _migrate(engine, lambda config: command.upgrade(config, revision))
    log.info("database schema at %s (%s)", revision, safe_url(str(engine.url)))


async def _at_head(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            versions = (await connection.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars().all()
    except sa.exc.DBAPIError:
        return False  # no schema yet, or a database that refuses: the migration says which, with its error
    return list(versions) == [HEAD_REVISION]


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Undo migrations down to `revision` (an operator rolling back a release)."""
    from alembic import command

    await _migrate(engine, lambda config: command.downgrade(config, revision))
    log.info("database schema back at %s (%s)", revision, safe_url(str(engine.url)))


async def _migrate(engine: AsyncEngine, step: Callable[[Config], None]) -> None:
    # Processes starting together (leaders, workers, a CLI command beside the service) migrate one at a time: the
    # others wait, then find the schema at its head. PostgreSQL: an advisory lock taken in the migration's
    # transaction. SQLite: a lock file beside the database, held while migrating.
    async with _sqlite_migration_lock(engine):
        await _migrate_locked(engine, step)


@contextlib.asynccontextmanager
async def _sqlite_migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate-lock")
    handle = await asyncio.to_thread(_lock_file, path)
    try:
        yield
    finally:
        if handle is not None:
            handle.close()  # closing the file frees the lock


def _lock_file(path: Path) -> IO[bytes] | None:
    try:
        handle = path.open("ab")
    except OSError:  # a folder this user may not write: the migration itself says so, in the database's words
        return None
    try:
        import fcntl
    except ImportError:  # Windows: one process per SQLite database there anyway
        return handle
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    return handle


async def _migrate_locked(engine: AsyncEngine, step: Callable[[Config], None]) -> None:
    config = alembic_config()

    def _run(connection: sa.Connection) -> None:
        config.attributes["connection"] = connection
        step(config)

    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as connection:
        if sqlite:
            # SQLite alters a table by building a new one and dropping the old: with foreign keys enforced, the drop
            # would cascade to every row that points at it. The pragma only takes effect outside a transaction.
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
        try:
            async with connection.begin():
                if not sqlite:  # see _migrate; the lock ends with the transaction
                    await connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                await connection.run_sync(_run)
                if sqlite and (await connection.exec_driver_sql("PRAGMA foreign_key_check")).first():
                    raise StorageError("a migration left rows pointing at rows that do not exist; nothing changed")
        finally:
            if sqlite:
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _read(connection: sa.Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_read)
