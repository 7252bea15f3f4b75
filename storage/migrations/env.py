"""Alembic environment: runs migrations on the connection the service hands in, or on DATABASE_URL."""

from __future__ import annotations

import asyncio
import logging
import os

from alembic import context

from storage.tables import Base

target_metadata = Base.metadata


def _migrations_only(record: logging.LogRecord) -> bool:
    """Alembic says how it set itself up on every start ("Context impl SQLiteImpl.", "Will assume non-transactional
    DDL."): nothing an operator needs. The migrations it runs are news, and so is any warning."""
    return record.levelno > logging.INFO or record.getMessage().startswith("Running ")


# Alembic loads this file afresh for every migration command: the filter an earlier load added is replaced.
_log = logging.getLogger("alembic.runtime.migration")
for _old in [f for f in _log.filters if getattr(f, "__name__", None) == _migrations_only.__name__]:
    _log.removeFilter(_old)
_log.addFilter(_migrations_only)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from storage.db import create_engine

    async def _main() -> None:
        engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///data/dealscout.db"))
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(_main())


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `dealscout db upgrade`")
run_migrations_online()
