"""Rows inserted as one JSON text on PostgreSQL come back exactly as given: decimals to the last place, times as the
same instants, JSON values, NULLs and awkward text; a naive time is refused before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.bulk import json_insert
from storage.db import create_engine
from storage.types import Price, TextList, UtcDateTime
from tests.db import fresh_database

TABLE = sa.Table(
    "bulk_rows", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("price", Price),
    sa.Column("at", UtcDateTime),
    sa.Column("detail", sa.JSON),
    sa.Column("tags", TextList),
    sa.Column("count", sa.Integer),
    sa.Column("flag", sa.Boolean),
    sa.UniqueConstraint("name"),
)
ROWS = [
    {"name": "plain", "note": "mint, boxed", "price": Decimal("12.3400"), "at": datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
     "detail": {"deal": "31% below", "also": [["ebay", "1"]]}, "tags": ["a", "b"], "count": 3, "flag": True},
    {"name": "awkward", "note": 'quotes " and \\ back\nslash, tab\t, ünïcødé 🎮, <b>&amp;</b>',
     "price": Decimal("99999999999999.9999"), "at": datetime(2026, 12, 1, 10, 0, 0, 123456,
                                                              tzinfo=timezone(timedelta(hours=2))),
     "detail": None, "tags": [], "count": -2_000_000_000, "flag": False},
    {"name": "empty", "note": None, "price": None, "at": None, "detail": {}, "tags": None, "count": None, "flag": None},
]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_database("postgres", tmp_path) as url:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(TABLE.metadata.create_all)
        try:
            yield engine
        finally:
            await engine.dispose()


@pytest.mark.postgres
async def test_rows_come_back_exactly_as_given(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = (await conn.execute(json_insert(TABLE, ROWS).returning(TABLE.c.name))).scalars().all()
        read = {row.name: row._asdict() for row in await conn.execute(sa.select(TABLE))}
    assert inserted == ["plain", "awkward", "empty"]
    for given in ROWS:
        got = read[given["name"]]
        assert {name: got[name] for name in given} == given
    assert read["awkward"]["at"] == datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert str(read["plain"]["price"]) == "12.3400"


@pytest.mark.postgres
async def test_conflicts_are_skipped_and_the_rest_inserted(engine: AsyncEngine) -> None:
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    async with engine.begin() as conn:
        await conn.execute(pg_insert(TABLE).values(name="plain"))
        inserted = (await conn.execute(json_insert(TABLE, ROWS).on_conflict_do_nothing(index_elements=["name"])
                                       .returning(TABLE.c.name))).scalars().all()
    assert sorted(inserted) == ["awkward", "empty"]


def test_a_naive_time_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="naive datetime given to the UTC column bulk_rows.at"):
        json_insert(TABLE, [{**ROWS[0], "at": datetime(2026, 12, 1, 8, 0)}])
