"""Rows inserted as one JSON text come back as binding them would have stored them: on both databases times as the
same instants, JSON values, NULLs and awkward text, decimals to the last place (SQLite keeps them as its numbers), and
SQLite's times as the very text SQLAlchemy writes; a naive time is refused before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.bulk import json_insert, json_rows
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
NAMES = tuple(ROWS[0])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_database(request.param, tmp_path) as url:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(TABLE.metadata.create_all)
        try:
            yield engine
        finally:
            await engine.dispose()


async def test_rows_come_back_as_bound_rows_would(engine: AsyncEngine) -> None:
    dialect = engine.dialect.name
    async with engine.begin() as conn:
        inserted = (await conn.execute(json_insert(dialect, TABLE, NAMES).returning(TABLE.c.name),
                                       json_rows(dialect, TABLE, ROWS))).scalars().all()
        # The same rows bound one by one, as SQLAlchemy stores them, under other names.
        await conn.execute(TABLE.insert(), [{**row, "name": f"bound {row['name']}"} for row in ROWS])
        read = {row.name: row._asdict() for row in await conn.execute(sa.select(TABLE))}
        stored = dict((await conn.execute(sa.select(TABLE.c.name, sa.cast(TABLE.c.at, sa.Text)))).all())
    assert sorted(inserted) == ["awkward", "empty", "plain"]
    for given in ROWS:
        got, bound = read[given["name"]], read[f"bound {given['name']}"]
        compared = [name for name in given if name not in ("name", "detail")]
        assert {name: got[name] for name in compared} == {name: bound[name] for name in compared}
        assert got["detail"] == given["detail"]  # a JSON null is stored as NULL, as on PostgreSQL
        assert got["at"] == given["at"] and stored[given["name"]] == stored[f"bound {given['name']}"]
    assert read["awkward"]["at"] == datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert read["plain"]["price"] == Decimal("12.34") and read["awkward"]["price"] == read["bound awkward"]["price"]
    if dialect == "postgresql":
        for given in ROWS:
            assert {name: read[given["name"]][name] for name in given} == given
        assert str(read["plain"]["price"]) == "12.3400"


async def test_conflicts_are_skipped_and_the_rest_inserted(engine: AsyncEngine) -> None:
    dialect = engine.dialect.name
    async with engine.begin() as conn:
        await conn.execute(TABLE.insert().values(name="plain"))
        inserted = (await conn.execute(json_insert(dialect, TABLE, NAMES).on_conflict_do_nothing(
            index_elements=["name"]).returning(TABLE.c.name), json_rows(dialect, TABLE, ROWS))).scalars().all()
    assert sorted(inserted) == ["awkward", "empty"]


async def test_one_statement_inserts_whatever_rows_it_is_given(engine: AsyncEngine) -> None:
    dialect = engine.dialect.name
    assert json_insert(dialect, TABLE, ("name", "count")) is json_insert(dialect, TABLE, ("name", "count"))
    stmt = json_insert(dialect, TABLE, ("name", "count")).returning(TABLE.c.name, TABLE.c.count)
    async with engine.begin() as conn:
        first = (await conn.execute(stmt, json_rows(dialect, TABLE, [{"name": "one", "count": 1}]))).all()
        second = (await conn.execute(stmt, json_rows(dialect, TABLE, [{"name": "two", "count": 2},
                                                                      {"name": "three", "count": None}]))).all()
    assert first == [("one", 1)] and sorted(second) == [("three", None), ("two", 2)]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_naive_time_is_refused_before_anything_is_sent(dialect: str) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime given to the UTC column bulk_rows.at"):
        json_rows(dialect, TABLE, [{**ROWS[0], "at": datetime(2026, 12, 1, 8, 0)}])
