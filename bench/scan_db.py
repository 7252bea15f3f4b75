"""bench.scan's database side: seeding N searches and M older listings in bulk SQL, a profile of the statements a
scan sends, and their plans (EXPLAIN on PostgreSQL, EXPLAIN QUERY PLAN on SQLite)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import SearchRow
from storage.types import UtcDateTime

# Seeded listings have the ids SEEDED_ID_BASE + n, below the ids the bench's pages serve.
SEEDED_ID_BASE = 100_000_000_000
# Searches per chat: each chat's searches share its outbox rows, one alert per listing.
SEARCHES_PER_CHAT = 100
# One seeded listing in this many has a sent alert in the outbox.
SENT_ALERT_EVERY = 10
# Five searches per query: (min price, max price, excluded words).
VARIANTS = [(None, "100", ""), (None, "250", "broken parts"), (None, "500", "bundle"), ("50", "300", ""),
            (None, None, "broken")]
SEED_AGE = timedelta(days=30)  # seeded listings were first seen this long ago


def search_rows(queries: Sequence[str], searches: int, now: datetime) -> list[dict[str, Any]]:
    """`searches` searches over `queries` (consecutive ones share a query, with VARIANTS' filters), all due now."""
    rows = []
    per_query = max(1, -(-searches // len(queries)))
    for n in range(searches):
        low, high, exclude = VARIANTS[n % per_query % len(VARIANTS)]
        chat = f"chat-{n // SEARCHES_PER_CHAT}"
        rows.append({
            "owner": f"bench-{n // SEARCHES_PER_CHAT}", "platform": "console", "target": chat, "scope": None,
            "query": queries[n // per_query], "exclude_words": exclude.split(), "min_price": low, "max_price": high,
            "currency": None, "marketplaces": ["ebay"], "check_interval_minutes": 5, "location": None,
            "radius_km": None, "unpriced": "include", "status": "active", "created_at": now, "updated_at": now,
            "next_run_at": now - timedelta(seconds=1), "baselined": [], "last_outcomes": {},
        })
    return rows


def numbers(dialect: str, count: int) -> str:
    """A FROM clause yielding n = 0 .. count-1."""
    if dialect == "postgresql":
        return f"generate_series(0, {count - 1}) AS seq(n)"
    return f"(WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {count - 1}) " \
           "SELECT n FROM seq) AS seq"


async def seed(engine: AsyncEngine, *, queries: Sequence[str], searches: int, listings: int, now: datetime) -> None:
    """The database a service has after months of running, built in a few statements:

    - `searches`: one executemany INSERT of `searches` rows (search_rows), all due;
    - `listings`: one INSERT ... SELECT over generate_series (PostgreSQL) or a recursive CTE (SQLite) of `listings`
      eBay listings with ids SEEDED_ID_BASE + n (none of them on the pages the scan is served);
    - `price_history`: one row per seeded listing; `search_matches`: each seeded listing matched by one search;
    - `alert_outbox`: a sent alert for one seeded listing in SENT_ALERT_EVERY, to its search's chat;
    then, when listings were seeded, ANALYZE on PostgreSQL (as autovacuum would after such growth; a new database
    is left unanalyzed, as a service finds it). SQLite is left as a service leaves it.
    """
    dialect = engine.dialect.name
    seen = sa.bindparam("seen", now - SEED_AGE, type_=UtcDateTime)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(SearchRow), search_rows(queries, searches, now))
        if listings:
            await conn.execute(sa.text(
                "INSERT INTO listings (marketplace, external_id, title, url, price, currency, price_text, "
                "first_seen_at, last_seen_at) "
                f"SELECT 'ebay', CAST({SEEDED_ID_BASE} + n AS VARCHAR(20)), 'Seeded listing number ' || n, "
                f"'https://www.ebay.com/itm/' || ({SEEDED_ID_BASE} + n), (n % 600) + 0.99, 'USD', "
                f"'$' || ((n % 600) + 0.99), :seen, :seen FROM {numbers(dialect, listings)}"
            ).bindparams(seen))
            await conn.execute(sa.text(
                "INSERT INTO price_history (listing_id, price, currency, observed_at) "
                "SELECT id, price, currency, first_seen_at FROM listings"))
            await conn.execute(sa.text(
                "INSERT INTO search_matches (search_id, listing_id, matched_at, baseline) "
                f"SELECT (SELECT min(id) FROM searches) + (id % {searches}), id, first_seen_at, "
                f"{'false' if dialect == 'postgresql' else '0'} FROM listings"))
            await conn.execute(sa.text(
                "INSERT INTO alert_outbox (kind, platform, target, listing_id, search_id, status, attempts, "
                "next_attempt_at, created_at, sent_at) "
                "SELECT 'alert', s.platform, s.target, m.listing_id, m.search_id, 'sent', 1, m.matched_at, "
                "m.matched_at, m.matched_at FROM search_matches m JOIN searches s ON s.id = m.search_id "
                f"WHERE m.listing_id % {SENT_ALERT_EVERY} = 0"))
    if dialect == "postgresql" and listings:
        async with engine.connect() as conn:
            await conn.execute(sa.text("COMMIT"))  # ANALYZE may run outside a transaction block
            await conn.exec_driver_sql("ANALYZE")


async def table_rows(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {table: int((await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("searches", "listings", "search_matches", "price_history", "alert_outbox")}


@dataclass
class StatementStats:
    sql: str
    calls: int = 0
    many: int = 0  # calls that were executemany
    rows: int = 0  # parameter sets sent (rows written by an executemany)
    seconds: float = 0.0
    parameters: set[int] = field(default_factory=set)  # bound parameters per single execution, as seen
    sample: Any = None


class StatementProfile:
    """Every statement the engine sends while recording: calls, parameter counts, and time from send to result."""

    def __init__(self) -> None:
        self.stats: dict[str, StatementStats] = {}

    @contextmanager
    def recording(self, engine: AsyncEngine) -> Iterator[StatementProfile]:
        sync = engine.sync_engine

        def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            seconds = time.perf_counter() - conn.info["bench_started"].pop()
            entry = self.stats.setdefault(statement, StatementStats(statement))
            entry.calls += 1
            entry.seconds += seconds
            if many:
                entry.many += 1
                entry.rows += len(parameters)
                entry.sample = entry.sample if entry.sample is not None else parameters[0]
            else:
                entry.rows += 1
                entry.parameters.add(len(parameters or ()))
                entry.sample = entry.sample if entry.sample is not None else parameters

        sa.event.listen(sync, "before_cursor_execute", before)
        sa.event.listen(sync, "after_cursor_execute", after)
        try:
            yield self
        finally:
            sa.event.remove(sync, "before_cursor_execute", before)
            sa.event.remove(sync, "after_cursor_execute", after)

    def top(self, count: int) -> list[StatementStats]:
        return sorted(self.stats.values(), key=lambda s: s.seconds, reverse=True)[:count]


def short_sql(sql: str, width: int = 110) -> str:
    flat = re.sub(r"\s+", " ", sql).strip()
    flat = re.sub(r"\(SELECT (anon_1\.)?value FROM json_each\(\?\) AS anon_1\)", "(json_each(?))", flat)
    return flat if len(flat) <= width else flat[: width - 3] + "..."


HOT_KINDS = ("SELECT", "INSERT", "UPDATE", "DELETE")


def _literal(value: Any) -> str:
    """A parameter as a PostgreSQL literal, for EXECUTE (which takes no bound parameters); arrays as '{...}'."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        items = ",".join("NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
                         for v in value)
        return _literal("{" + items + "}")
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text.replace("'", "''") + "'"


async def explain(engine: AsyncEngine, statement: StatementStats) -> list[str]:
    """The plan the database picks for a recorded statement with the parameters it was first sent with; nothing is
    executed. PostgreSQL: the generic plan (plan_cache_mode = force_generic_plan on a PREPAREd copy), the one a
    statement prepared once and run many times settles on. SQLite: EXPLAIN QUERY PLAN."""
    if not statement.sql.lstrip().upper().startswith(HOT_KINDS) or statement.sample is None:
        return []
    async with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement.sql, tuple(statement.sample))
            return [str(row[-1]) for row in rows]
        import asyncpg  # only PostgreSQL's plans need it

        raw = (await conn.get_raw_connection()).driver_connection
        name = f"bench_plan_{abs(hash(statement.sql))}"
        values = ", ".join(_literal(value) for value in statement.sample)
        try:
            async with raw.transaction():
                await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                await raw.execute(f"PREPARE {name} AS {statement.sql}")
                rows = await raw.fetch(f"EXPLAIN EXECUTE {name}" + (f"({values})" if values else ""))
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as err:  # reported, not fatal
            return [f"(no plan: {type(err).__name__}: {err})"]
        return [str(row[0]) for row in rows]


async def print_statement_plans(engine: AsyncEngine, profile: StatementProfile, seen: set[str]) -> None:
    """Each recorded statement's plan (see explain), once per statement text across calls sharing `seen`."""
    for statement in profile.top(len(profile.stats)):
        if statement.sql in seen:
            continue
        seen.add(statement.sql)
        lines = await explain(engine, statement)
        if lines:
            print(f"\n  {short_sql(statement.sql, 160)}")
            for line in lines:
                print(f"      {line}")
