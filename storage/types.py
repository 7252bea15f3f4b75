"""Column types that behave the same on SQLite and PostgreSQL: aware UTC timestamps and text lists (their decoding is
storage.decode's, which reads that go straight through a driver share)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from storage.decode import PRICE_SCALE, utc_datetime


class _SqliteText(sqlite.DATETIME):
    """SQLite's DATETIME column, bound as the text UtcDateTime has already written."""

    def bind_processor(self, dialect: sa.Dialect) -> None:
        return None


def sqlite_text(value: datetime) -> str:
    """An aware time as SQLite keeps it: the text SQLAlchemy's SQLite DATETIME writes, in UTC ("2026-12-01
    00:51:21.000000", the offset "+00:00" cut off), at under half its cost: a scan writes several timestamps for every
    listing it saves. Rows compare as this text, so every writer must use it."""
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[datetime]:
        return dialect.type_descriptor(_SqliteText() if dialect.name == "sqlite" else self.impl)

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return sqlite_text(value) if dialect.name == "sqlite" else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return utc_datetime(value)


# A list of strings: a real text[] on PostgreSQL (the runbook queries `'ebay' = ANY(marketplaces)`), JSON elsewhere.
# The generic ARRAY is PostgreSQL's own there, and keeps its dialect unloaded where SQLite is used.
TextList = sa.JSON().with_variant(sa.ARRAY(sa.Text()), "postgresql")

# Prices: exact decimals. 18 digits with 4 places covers IDR-sized amounts and three-decimal currencies.
Price = sa.Numeric(18, PRICE_SCALE, asdecimal=True)
