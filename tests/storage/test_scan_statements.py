"""A scan's statements: the same text and parameter count for a page of 3 listings as for 300, each looked up
through an index, so a scan costs the same at a million listings as at a hundred; and the same for the outbox's
claims and outcomes, whatever the batch, which find their rows by primary key whatever the statistics say; and a save
of many fetches reads and writes a marketplace's health row once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from scout.models import (
    Destination,
    FetchOutcome,
    Listing,
    Money,
    NoticeKind,
    SavedSearch,
    SearchRun,
    SearchSpec,
)
from storage.db import create_engine, session_factory, upgrade
from storage.repo import Repository

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DEST = Destination("console", "main")
# Tables a scan reads by key; a plan that scans one of them whole grows with it.
KEYED_TABLES = ("listings", "search_matches", "searches", "alert_outbox")


@dataclass(frozen=True)
class Statement:
    sql: str
    many: bool  # executemany: one statement stepped for many rows
    parameters: int | None  # bound parameters of a single execution (None for executemany)
    sample: Any


@contextmanager
def recorded(repo: Repository) -> Iterator[list[Statement]]:
    """Every statement the repository's engine sends while the block runs."""
    engine = repo._sessions.kw["bind"].sync_engine
    seen: list[Statement] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        count = None if executemany else len(parameters or ())
        seen.append(Statement(statement, executemany, count, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


@asynccontextmanager
async def explained(database_url: str) -> AsyncIterator[tuple[AsyncEngine, list[str]]]:
    """A migrated PostgreSQL database's engine on one connection (so one plan cache), and the plan of every
    statement it runs as it ran, reported by auto_explain."""
    engine = create_engine(database_url, pool_size=1)
    await upgrade(engine)
    plans: list[str] = []

    def explain_every_statement(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_log_listener(lambda _conn, message: plans.append(message.message))
        cursor = dbapi_connection.cursor()
        for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                        "SET auto_explain.log_level = 'notice'"):
            cursor.execute(setting)
        cursor.close()

    await engine.dispose()
    sa.event.listen(engine.sync_engine, "connect", explain_every_statement)
    try:
        yield engine, plans
    finally:
        await engine.dispose()


def page(first: int, count: int, price: str = "100.00") -> list[Listing]:
    return [Listing(marketplace="ebay", external_id=str(n), title=f"Lens {n}", url=f"https://example.test/itm/{n}",
                    price=Money(Decimal(price), "USD")) for n in range(first, first + count)]


async def scan(repo: Repository, search: SavedSearch, listings: list[Listing]) -> None:
    """One fetch of `listings`, all matching `search`, saved as the scan saves it."""
    fetch = FetchOutcome(marketplace="ebay", query="lens", status="success", duration_ms=5,
                         listings=tuple(listings), matches={search.id: tuple(listings)})
    run = SearchRun(search.id, NOW + timedelta(minutes=10), frozenset({"ebay"}), frozenset())
    await repo.save_scan(now=NOW, fetches=[fetch], runs=[run], searches={search.id: search},
                         baseline_first_scan=False)


async def two_scans(repo: Repository, search: SavedSearch, size: int) -> tuple[list[Statement], list[Statement]]:
    """A first scan of a page of `size` new listings, then a second where one is new and one is repriced."""
    first = page(10_000 * size, size)
    second = first[1:-1] + page(10_000 * size + size, 1) + page(10_000 * size + size - 1, 1, price="90.00")

    with recorded(repo) as on_first:
        await scan(repo, search, first)
    with recorded(repo) as on_second:
        await scan(repo, search, second)
    return on_first, on_second


def shape(statements: list[Statement]) -> list[tuple[str, bool, int | None]]:
    return [(s.sql, s.many, s.parameters) for s in statements]


async def test_a_scans_statements_do_not_grow_with_its_page(repo: Repository) -> None:
    """Regression: the known-listing and search_matches lookups were `(a, b) IN (<a pair per listing>)`, a new
    statement for every page size (PostgreSQL planned each one again) that SQLite answered by reading the whole
    table; listings, price changes and outbox rows were written a row per statement."""
    spec = SearchSpec(query="lens", marketplaces=("ebay",), check_interval_minutes=10)
    small_search = await repo.save_search(owner="a", destination=DEST, scope=None, spec=spec, now=NOW,
                                          first_run_at=NOW)
    big_search = await repo.save_search(owner="b", destination=Destination("console", "other"), scope=None,
                                        spec=spec, now=NOW, first_run_at=NOW)
    warm = await repo.save_search(owner="c", destination=DEST, scope=None, spec=spec, now=NOW, first_run_at=NOW)
    await two_scans(repo, warm, 1)  # the marketplace's health row exists from here on, as in a running service
    small = await two_scans(repo, small_search, 3)
    big = await two_scans(repo, big_search, 300)
    assert shape(small[0]) == shape(big[0])
    assert shape(small[1]) == shape(big[1])
    # Writes are one statement per table, however many rows: no write runs twice in a scan.
    for statements in big:
        texts = [s.sql for s in statements if s.sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
        assert len(texts) == len(set(texts)), [t for t in texts if texts.count(t) > 1]


async def test_a_save_of_many_fetches_reads_and_writes_a_marketplaces_health_once(repo: Repository) -> None:
    """Regression: each fetch of a save read its marketplace's health row again (a locking SELECT on PostgreSQL)
    after writing the last fetch's count: two round trips a fetch, half of a repeat-scan save's statements."""
    spec = SearchSpec(query="lens", marketplaces=("ebay",), check_interval_minutes=10)
    search = await repo.save_search(owner="a", destination=DEST, scope=None, spec=spec, now=NOW, first_run_at=NOW)
    await scan(repo, search, page(1, 1))  # the row exists from here on, as in a running service
    outcomes = ("success", "success", "blocked", "empty")
    fetches = [FetchOutcome(marketplace="ebay", query=f"lens {n}", status=status, duration_ms=5,
                            error="captcha" if status == "blocked" else None) for n, status in enumerate(outcomes)]
    with recorded(repo) as statements:
        await repo.save_scan(now=NOW, fetches=fetches, runs=[], searches={}, baseline_first_scan=False)
    assert [s.sql.split()[0].upper() for s in statements if "marketplace_state" in s.sql] == ["SELECT", "UPDATE"]
    async with repo._sessions() as session:
        counts = (await session.execute(sa.text(
            "SELECT total_successes, total_failures, total_blocked, last_status, consecutive_failures, last_error "
            "FROM marketplace_state WHERE marketplace = 'ebay'"))).one()
    assert tuple(counts) == (1 + 3, 1, 1, "empty", 0, "captcha")


async def test_a_scans_lookups_use_an_index(repo: Repository) -> None:
    """Regression: SQLite read the whole listings table for `(marketplace, external_id) IN (...)` (0.8 s a call at a
    million listings). On PostgreSQL sequential scans are switched off, so a plan that still reads a table whole
    has no index to use (tables this small would otherwise be read whole by choice)."""
    spec = SearchSpec(query="lens", marketplaces=("ebay",), check_interval_minutes=10)
    search = await repo.save_search(owner="a", destination=DEST, scope=None, spec=spec, now=NOW, first_run_at=NOW)
    first, second = await two_scans(repo, search, 20)
    reads = [s for s in first + second if not s.many and s.sql.lstrip().upper().startswith(("SELECT", "UPDATE"))]
    assert reads
    engine = repo._sessions.kw["bind"]
    plans = []
    async with engine.connect() as conn:
        if repo.dialect == "postgresql":
            await conn.exec_driver_sql("SET enable_seqscan = off")
        for statement in reads:
            explain = "EXPLAIN " if repo.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
            plan = "\n".join(str(row[-1]) for row in await conn.exec_driver_sql(explain + statement.sql,
                                                                                statement.sample))
            for table in KEYED_TABLES:
                # PostgreSQL says "Seq Scan on listings"; SQLite "SCAN listings" (a search by key is "SEARCH").
                whole = re.compile(rf"(Seq Scan on {table}\b|^\s*SCAN {table}\b)", re.MULTILINE)
                assert not whole.search(plan), (statement.sql, plan)
            plans.append(plan)
    if repo.dialect == "sqlite":
        # Regression: `(platform, target, listing_id) IN (...)` looked up only (platform, target) on SQLite.
        assert any("SEARCH alert_outbox" in plan and "listing_id=?" in plan for plan in plans), plans


async def test_a_lookup_first_planned_on_a_new_database_reads_the_index_at_scale(database_url: str) -> None:
    """Regression: on a new PostgreSQL database the known-listing lookup settled, after five runs, on the generic
    plan made while `listings` was nearly empty (a hash join over the whole table) and kept it for the connection's
    life: 240 ms a call at 12,000 listings. auto_explain reports the plan each run really used."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's plan cache: SQLite plans each statement as it prepares it")
    async with explained(database_url) as (engine, plans):
        repo = Repository(session_factory(engine))
        spec = SearchSpec(query="lens", marketplaces=("ebay",), check_interval_minutes=10)
        search = await repo.save_search(owner="a", destination=DEST, scope=None, spec=spec, now=NOW,
                                        first_run_at=NOW)
        for turn in range(8):  # past the five runs after which a generic plan may be kept
            await scan(repo, search, page(turn * 10, 3))
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO listings (marketplace, external_id, title, url, first_seen_at, last_seen_at) "
                "SELECT 'ebay', 'seeded-' || n, 'Seeded ' || n, 'https://example.test/' || n, now(), now() "
                "FROM generate_series(1, 20000) AS n"))
        plans.clear()
        await scan(repo, search, page(1_000, 3))
    lookups = [plan for plan in plans if "listings.external_id" in plan and "SELECT" in plan.upper()
               and "INSERT" not in plan.upper()]
    assert lookups, plans
    for plan in lookups:
        assert "Seq Scan on listings" not in plan, plan
        assert "Index Scan using uq_listings_marketplace_external_id" in plan, plan


async def test_the_outbox_names_any_batch_of_rows_in_one_statement_shape(repo: Repository) -> None:
    # Claims and outcomes of 2 rows and of 8 send the same statements with as many parameters: the ids go as one
    # list, so each statement is prepared once, whatever the batch.
    await repo.queue_notices([Destination("console", f"chat-{n}") for n in range(16)], "hello",
                             kind=NoticeKind.NOTICE, now=NOW)
    ids = [delivery.outbox_id for delivery in await repo.load_due_deliveries(now=NOW, limit=16, platforms=["console"])]

    async def claim_and_record(batch: list[int], failed: int) -> list[Statement]:
        with recorded(repo) as seen:
            await repo.claim_deliveries([[outbox_id] for outbox_id in batch], now=NOW, until=NOW + timedelta(minutes=1))
            await repo.record_sent(batch[1:], now=NOW)
            await repo.record_dead([failed], reason="gone", released=[])
        return seen

    one = await claim_and_record(ids[:2], ids[0])
    seven = await claim_and_record(ids[2:10], ids[2])
    assert len(ids) == 16 and shape(one) == shape(seven)


async def test_the_outbox_finds_rows_named_by_id_through_the_primary_key_after_a_burst(database_url: str) -> None:
    """Regression: after a burst of new alerts, before PostgreSQL's statistics caught up (they still said nearly
    no row was waiting), each claim and outcome read the whole partial queue index instead of looking its rows up by
    id: 17 ms a batch at 114,800 waiting, and a drain that slowed as the backlog grew. auto_explain reports the plan
    each statement really ran with."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's statistics: SQLite looks rows named by id up by their rowid whatever it knows")
    columns = "kind, platform, target, status, attempts, next_attempt_at, created_at, sent_at"
    async with explained(database_url) as (engine, plans):
        async with engine.begin() as conn:
            # A history of sent notices, and statistics taken when every row had gone out.
            await conn.execute(sa.text(
                f"INSERT INTO alert_outbox ({columns}) SELECT 'notice', 'console', 'old-' || n, 'sent', 1, now(), "
                "now(), now() FROM generate_series(1, 5000) AS n"))
            await conn.execute(sa.text("ANALYZE alert_outbox"))
            # Then a burst, which the statistics know nothing of.
            await conn.execute(sa.text(
                f"INSERT INTO alert_outbox ({columns}) SELECT 'notice', 'console', 'new-' || n, 'pending', 0, "
                ":now, :now, NULL FROM generate_series(1, 20000) AS n"), {"now": NOW})
        repo = Repository(session_factory(engine))
        batches = [[delivery.outbox_id] for delivery in
                   await repo.load_due_deliveries(now=NOW, limit=6, platforms=["console"])]
        plans.clear()
        for turn in range(3):  # a claim, then each outcome
            batch = [batches[turn * 2], batches[turn * 2 + 1]]
            await repo.claim_deliveries(batch, now=NOW, until=NOW + timedelta(minutes=1))
            ids = [outbox_id for rows in batch for outbox_id in rows]
            if turn == 0:
                await repo.record_sent(ids, now=NOW)
            elif turn == 1:
                await repo.record_dead(ids[:1], reason="gone", released=ids[1:])
            else:
                await repo.record_retry(DEST, failed=ids[:1], released=ids[1:], error="down", counted=True,
                                        until=NOW + timedelta(minutes=5))
    updates = [plan for plan in plans if "UPDATE alert_outbox" in plan]
    assert len(updates) >= 7, plans  # three claims, sent, dead, retry, and the claims handed back twice
    for plan in updates:
        assert "ix_alert_outbox_queue" not in plan, plan
        assert "Index Scan using pk_alert_outbox" in plan, plan
