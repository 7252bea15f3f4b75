"""Statements that carry any number of values in a fixed number of parameters, so their text never changes.

A statement whose text grows with its values (`IN (?, ?, ...)`, a VALUES row per listing) is a new statement for every
count: PostgreSQL plans it again (asyncpg prepares each distinct text), SQLite compiles it again, and a tuple
`IN` list can keep either from its index. Here a list travels as ONE parameter instead: a typed array read with
`= ANY(...)` or `unnest(...)` on PostgreSQL, a JSON array read with `json_each(...)` on SQLite; rows to insert travel
as one JSON text on both (`json_to_recordset(...)`, `json_each(...)`). Each statement is then prepared once per
connection and looked up through the index its columns name.

The statements a save runs every time are built once, their values bound at execution by name (`json_insert` with
`json_rows`, `any_of` with `listed`, `select_by_keys` and `unnest_keys` with `keyed`); `one_of` binds its values
into a statement built for one use.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.types import UtcDateTime, sqlite_text

POSTGRESQL = "postgresql"
# Rows and lists as JSON: on PostgreSQL decimals as strings, read back exactly by its numeric columns, aware times
# with their offset; SQLite keeps decimals as numbers (what SQLAlchemy binds for them there).
_POSTGRESQL_JSON = msgspec.json.Encoder(decimal_format="string")
_SQLITE_JSON = msgspec.json.Encoder(decimal_format="number")


# The parameters select_by_keys' and unnest_keys' statements read their rows of keys from (see `keyed`).
KEYS = "keys"


def _array(name: str | None, item_type: sa.types.TypeEngine[Any], values: Sequence[Any] | None = None) -> Any:
    """One parameter holding a PostgreSQL array, cast so the server knows its type before it sees it: bound here
    when `values` are given, else at execution as `name`."""
    array_type = sa.ARRAY(item_type)
    param = (sa.bindparam(name, type_=array_type) if values is None
             else sa.bindparam(None, list(values), type_=array_type))
    return sa.cast(param, array_type)


def _json_each(name: str | None, values: Sequence[Any] | None = None) -> Any:
    """SQLite's `json_each` over one JSON array, bound here when `values` are given, else at execution as `name`;
    its rows' `value` column holds the items."""
    param = (sa.bindparam(name, type_=sa.String()) if values is None
             else sa.bindparam(None, _SQLITE_JSON.encode(list(values)).decode(), type_=sa.String()))
    return sa.func.json_each(param).table_valued("value")


def one_of(dialect: str, column: sa.ColumnElement[Any], values: Sequence[int | str]) -> ColumnElement[bool]:
    """`column` equals one of `values` (ints or strings), with one parameter however many values there are.

    PostgreSQL: `column = ANY(CAST($1 AS <type>[]))`. SQLite: `column IN (SELECT value FROM json_each(?))`; both
    look each value up through an index on `column`. A statement run often is better built once, with `any_of`.
    """
    if dialect == POSTGRESQL:
        return column == sa.any_(_array(None, column.type, values))
    return column.in_(sa.select(_json_each(None, values).c.value))


def any_of(dialect: str, column: sa.ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """one_of with the values bound at execution, as `{name: listed(dialect, values)}`: the statement can be built
    once. Built anew for every save, the statements and SQLAlchemy's cache keys of them cost a save more of the
    event loop than its values do."""
    if dialect == POSTGRESQL:
        return column == sa.any_(_array(name, column.type))
    return column.in_(sa.select(_json_each(name).c.value))


def listed(dialect: str, values: Sequence[int | str]) -> Any:
    """The value of an any_of parameter: an array on PostgreSQL, a JSON array on SQLite."""
    return list(values) if dialect == POSTGRESQL else _SQLITE_JSON.encode(list(values)).decode()


def select_by_keys(dialect: str, columns: Sequence[sa.ColumnElement[Any]],
                   keys: Sequence[sa.ColumnElement[Any]]) -> sa.Select[Any]:
    """SELECT `columns` of the stored rows whose `keys` equal one of the rows bound at execution (`keyed(dialect,
    rows)`): the list is joined to the table, one index lookup per row through an index led by `keys`, with one
    parameter per key column (PostgreSQL: arrays through `unnest`) or one in all (SQLite: a JSON array of rows
    through `json_each`).

    A row-value `(a, b, c) IN (SELECT ...)` would say the same, but SQLite then looks up only the first two columns.
    """
    table = keys[0].table
    if dialect == POSTGRESQL:
        source: Any = unnest_keys(keys)
        parts = list(source.c)
    else:
        source = _json_each(KEYS)
        parts = [sa.func.json_extract(source.c.value, f"$[{index}]") for index in range(len(keys))]
    joined = sa.and_(*(key == part for key, part in zip(keys, parts, strict=True)))
    return sa.select(*columns).select_from(source).join(table, joined)


def unnest_keys(keys: Sequence[sa.ColumnElement[Any]]) -> Any:
    """PostgreSQL only: `unnest($1, $2, ...) AS wanted(k0, k1, ...)` of the rows bound at execution (`keyed`), one
    array per key column, each typed as its column."""
    names = [f"k{index}" for index in range(len(keys))]
    arrays = [_array(f"{KEYS}{index}", key.type) for index, key in enumerate(keys)]
    return sa.func.unnest(*arrays).table_valued(*names).render_derived(name="wanted")


def keyed(dialect: str, rows: Sequence[Sequence[int | str]]) -> dict[str, Any]:
    """The parameters of a select_by_keys or unnest_keys statement for `rows` (at least one, of one width)."""
    if dialect == POSTGRESQL:
        return {f"{KEYS}{index}": [row[index] for row in rows] for index in range(len(rows[0]))}
    return {KEYS: _SQLITE_JSON.encode(rows).decode()}


@asynccontextmanager
async def planned_for_now(session: AsyncSession) -> AsyncIterator[None]:
    """PostgreSQL only: the statements run inside are planned for the tables as they are now.

    A prepared statement settles on a generic plan after five runs and keeps it while the connection lives. Made
    while a table was nearly empty, as on a new database, a join of an array of keys to it is a hash join over a
    sequential scan, still run when the table holds millions of rows (on a fresh database that lookup took 240 ms
    a call at 12,000 listings: `python -m bench.scan --database-url ...`). The setting is the transaction's and
    is put back after, so the foreign-key checks of the writes that follow keep their cheaper cached plans. A
    failed statement ends the transaction, and the setting with it.
    """
    await session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
    yield
    await session.execute(sa.text("SET LOCAL plan_cache_mode TO DEFAULT"))


# The parameter json_insert's statements read their rows from.
ROWS = "rows"


@functools.cache
def json_insert(dialect: str, table: sa.Table, names: tuple[str, ...]) -> Any:
    """`INSERT INTO table (names) SELECT ...` of rows bound at execution as one JSON text (`json_rows`), so many rows
    go in one statement whose text depends on the columns alone: PostgreSQL reads them with
    `json_to_recordset($1) AS v(col type, ...)`, SQLite with `json_extract` over `json_each(?)`. Returns the
    dialect's Insert, to which ON CONFLICT and RETURNING can be added.

    Built once per table and columns, as the callers' statements around it should be: made anew for every save, the
    statements and SQLAlchemy's cache keys of them cost more of the event loop than encoding the rows.
    """
    if dialect == POSTGRESQL:
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # loaded only where PostgreSQL is used

        payload = sa.cast(sa.bindparam(ROWS, type_=sa.Text()), sa.JSON())
        source = sa.func.json_to_recordset(payload).table_valued(
            *(sa.column(name, table.c[name].type) for name in names)).render_derived(name="v", with_types=True)
        return pg_insert(table).from_select(names, sa.select(*source.c))
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    values = sa.func.json_each(sa.bindparam(ROWS, type_=sa.String())).table_valued("value")
    # WHERE: without one, SQLite would read an ON CONFLICT clause that follows as part of the SELECT's join.
    return sqlite_insert(table).from_select(names, sa.select(
        *(sa.func.json_extract(values.c.value, f"$.{name}") for name in names)).where(sa.true()))


def json_rows(dialect: str, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """json_insert's parameters for `rows` (each naming the same columns): {ROWS: the rows as one JSON text}.

    One JSON text costs the client a fraction of binding each value: asyncpg encodes and checks each array element
    in turn (4-6 ms against 1.2-1.4 ms of CPU for 400 listings of 16 columns), and an executemany on SQLite runs
    SQLAlchemy's processing for every value of every row. The databases read it no slower. Values are stored as
    binding them would store them: a JSON column's value as JSON (None as NULL), decimals exactly on PostgreSQL and
    as SQLite's numbers there, times in UTC (as SQLite's text there); a naive time is refused, as UtcDateTime does.
    """
    times = [name for name in rows[0] if isinstance(table.c[name].type, UtcDateTime)]
    for name in times:
        if any(row[name] is not None and row[name].tzinfo is None for row in rows):
            # Refused as a bound value would be: a statement the database layer could not send, nothing written.
            refusal = ValueError(f"naive datetime given to the UTC column {table.name}.{name}")
            raise sa.exc.StatementError(str(refusal), f"INSERT INTO {table.name}", None, refusal)
    if dialect == POSTGRESQL:
        return {ROWS: _POSTGRESQL_JSON.encode(rows).decode()}
    if times:
        # A save's rows share a few times (its own "now" above all): each is written out once.
        texts: dict[datetime | None, str | None] = {None: None}
        converted = []
        for row in rows:
            row = dict(row)
            for name in times:
                value = row[name]
                text = texts.get(value)
                if text is None and value is not None:
                    text = texts[value] = sqlite_text(value)
                row[name] = text
            converted.append(row)
        rows = converted
    return {ROWS: _SQLITE_JSON.encode(rows).decode()}
