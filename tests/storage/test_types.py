"""The column types: timestamps kept in UTC as the text SQLAlchemy's SQLite DATETIME writes, and read back aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from storage.types import UtcDateTime


@pytest.mark.parametrize("when", [
    datetime(2026, 12, 1, 0, 51, 21, tzinfo=UTC),
    datetime(2026, 12, 1, 2, 51, 21, 123, tzinfo=timezone(timedelta(hours=2))),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
])
def test_sqlite_keeps_the_text_sqlalchemy_writes_in_utc(when: datetime) -> None:
    # Rows written before and after must compare as text, so the text is exactly SQLAlchemy's own.
    dialect = sqlite.dialect()
    written = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)(when)
    assert written == sqlite.DATETIME().bind_processor(dialect)(when.astimezone(UTC).replace(tzinfo=None))


def test_a_naive_timestamp_is_refused() -> None:
    dialect = sqlite.dialect()
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().dialect_impl(dialect).bind_processor(dialect)(datetime(2026, 12, 1))


async def test_sqlite_reads_back_what_it_was_given_aware_and_in_utc() -> None:
    table = sa.Table("times", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("at", UtcDateTime))
    engine = create_async_engine("sqlite+aiosqlite://")
    given = datetime(2026, 12, 1, 2, 51, 21, 500, tzinfo=timezone(timedelta(hours=2)))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(table.insert(), [{"at": given}])
            # SQLite compares the stored text: the row is later than a second before it.
            later = await conn.scalar(sa.select(sa.func.count()).where(table.c.at > given - timedelta(seconds=1)))
            read = await conn.scalar(sa.select(table.c.at))
    finally:
        await engine.dispose()
    assert later == 1
    assert read == given and read.tzinfo is UTC
