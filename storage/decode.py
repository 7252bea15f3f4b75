"""Column values as the database drivers return them, decoded as storage.types' column types read them: pure
functions shared by those types and the reads that go straight through a driver (storage.direct)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# Decimal places of a price column (storage.types.Price): 4 covers three-decimal currencies.
PRICE_SCALE = 4


def utc_datetime(value: datetime | None) -> datetime | None:
    """A stored timestamp, timezone-aware in UTC: SQLite keeps none of its own, so a naive one is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_datetime(value: str | None) -> datetime | None:
    """A timestamp as SQLite keeps it (ISO 8601 text, written in UTC without a zone), as SQLAlchemy reads it."""
    return None if value is None else utc_datetime(datetime.fromisoformat(value))


def sqlite_decimal(value: float | int | None, scale: int) -> Decimal | None:
    """A Numeric column's value as SQLite keeps it (a REAL or INTEGER), rounded back to the column's scale as
    SQLAlchemy's Numeric(asdecimal=True) does: exact for the prices and shares the columns hold."""
    return None if value is None else Decimal(f"%.{scale}f" % value)


def json_value(value: str | None) -> Any:
    """A JSON column as the driver returns it (text from sqlite3 and asyncpg), as the JSON type reads it."""
    return None if value is None else json.loads(value)


def text_list(value: Any) -> list[str]:
    """A list column (JSON on SQLite, text[] on PostgreSQL) as strings; NULL is the empty list."""
    return [str(item) for item in value or ()]
