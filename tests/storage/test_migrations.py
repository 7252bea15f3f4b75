"""Migrations keep the data they find, up and down, on SQLite and PostgreSQL; a search id is never given twice."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from scout.models import Destination, SearchSpec
from storage.db import (
    HEAD_REVISION,
    alembic_config,
    create_engine,
    current_revision,
    downgrade,
    session_factory,
    upgrade,
)
from storage.repo import Repository

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPEC = SearchSpec(query="lego", marketplaces=("ebay",), check_interval_minutes=5)
# The oldest schema the service can still upgrade: the first one.
FIRST = "0001"
COUNTED = ("searches", "search_matches", "alert_outbox", "listings", "price_history")


def test_the_head_revision_that_commands_check_is_alembics_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]


def test_a_database_at_the_head_is_checked_without_loading_alembic(tmp_path: Path) -> None:
    """A command on a current database pays one query, not Alembic's import and migration environment."""
    script = ("import asyncio, sys\n"
              "from storage import db\n"
              "async def main():\n"
              f"    engine = db.create_engine({f'sqlite:///{tmp_path}/deals.db'!r})\n"
              "    await db.upgrade(engine)\n"
              "    await engine.dispose()\n"
              "asyncio.run(main())\n"
              "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))\n")
    first, second = (subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                    cwd=ROOT).stdout for _ in range(2))
    assert "'alembic.command'" in first
    assert second == "[]\n"


async def seed_first_schema(engine: AsyncEngine) -> None:
    """Two searches that matched one listing, its alert queued; then the newest search is removed."""
    postgres = engine.dialect.name == "postgresql"
    words = "'{ebay}'" if postgres else "'[\"ebay\"]'"
    empty = "'{}'" if postgres else "'[]'"
    at = "'2026-11-30 12:00:00'"
    async with engine.begin() as conn:
        for _ in range(2):
            await conn.execute(sa.text(
                "INSERT INTO searches (owner, platform, target, query, exclude_words, marketplaces, "
                "check_interval_minutes, unpriced, status, created_at, updated_at, next_run_at, baselined) "
                f"VALUES ('u', 'console', 'main', 'lego', {empty}, {words}, 5, 'include', 'active', {at}, {at}, {at}, "
                f"{empty})"))
        await conn.execute(sa.text(
            "INSERT INTO listings (marketplace, external_id, title, url, price, currency, first_seen_at, last_seen_at) "
            f"VALUES ('ebay', '1', 'Lego castle', 'https://www.ebay.com/itm/1', 10, 'USD', {at}, {at})"))
        await conn.execute(sa.text(f"INSERT INTO price_history (listing_id, price, currency, observed_at) "
                                   f"VALUES (1, 10, 'USD', {at})"))
        for search in (1, 2):
            await conn.execute(sa.text(f"INSERT INTO search_matches VALUES ({search}, 1, {at}, false)"))
        await conn.execute(sa.text(
            "INSERT INTO alert_outbox (platform, target, listing_id, search_id, status, attempts, next_attempt_at, "
            f"created_at) VALUES ('console', 'main', 1, 1, 'pending', 0, {at}, {at})"))
        await conn.execute(sa.text("DELETE FROM searches WHERE id = 2"))


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {table: int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())
                for table in COUNTED}


async def test_every_migration_keeps_the_data_up_and_down(database_url: str) -> None:
    """Regression: on SQLite, a migration that rebuilds `searches` dropped it with foreign keys enforced, which
    deleted every search's matches (ON DELETE CASCADE) and unlinked its alerts."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine, FIRST)
        await seed_first_schema(engine)
        seeded = await counts(engine)
        assert seeded == {"searches": 1, "search_matches": 1, "alert_outbox": 1, "listings": 1, "price_history": 1}
        await upgrade(engine)
        assert await counts(engine) == seeded
        await downgrade(engine, FIRST)
        assert (await current_revision(engine), await counts(engine)) == (FIRST, seeded)
        await upgrade(engine)
        assert await counts(engine) == seeded
        async with engine.connect() as conn:
            linked = (await conn.execute(sa.text("SELECT search_id FROM alert_outbox"))).scalar_one()
        assert linked == 1
    finally:
        await engine.dispose()


async def test_a_removed_searchs_id_is_never_given_again(database_url: str) -> None:
    """Regression: on SQLite, removing the newest search and adding another gave the new one the same id, so the
    old search's alert buttons acted on it."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        repo = Repository(session_factory(engine))
        first = await repo.save_search(owner="u", destination=Destination("console", "main"), scope=None, spec=SPEC,
                                       now=NOW, first_run_at=NOW)
        newest = await repo.save_search(owner="u", destination=Destination("console", "main"), scope=None,
                                        spec=SPEC, now=NOW, first_run_at=NOW)
        await repo.delete_search(newest.id)
        again = await repo.save_search(owner="u", destination=Destination("console", "main"), scope=None, spec=SPEC,
                                       now=NOW, first_run_at=NOW)
        assert first.id < newest.id < again.id
    finally:
        await engine.dispose()


def at_limit(length: int, seed: str) -> str:
    """A value exactly `length` characters long, with characters beyond ASCII: PostgreSQL counts characters."""
    return (seed + "\u00e9\u20ac" * length)[:length]


# Every text column of the first schema that has a limit, filled to it (enumerations keep a valid value).
FIRST_SCHEMA_AT_LIMITS: dict[str, dict[str, str]] = {
    "searches": {"owner": at_limit(128, "owner"), "platform": at_limit(32, "platform"),
                 "target": at_limit(128, "target"), "scope": at_limit(128, "scope"), "query": at_limit(200, "query"),
                 "currency": "EUR", "location": at_limit(100, "location"), "unpriced": "include", "status": "paused",
                 "paused_reason": at_limit(300, "reason")},
    "listings": {"marketplace": at_limit(32, "market"), "external_id": at_limit(128, "id"),
                 "title": at_limit(5000, "title"), "url": "https://example.com/" + "a" * 3000, "currency": "EUR",
                 "price_text": at_limit(200, "price"), "location": at_limit(200, "place"),
                 "condition": at_limit(100, "condition"), "seller": at_limit(200, "seller")},
    "alert_outbox": {"platform": at_limit(32, "platform"), "target": at_limit(128, "target"), "status": "pending",
                     "last_error": at_limit(2000, "error")},
    "task_logs": {"task_name": at_limit(64, "task"), "marketplace": at_limit(32, "market"),
                  "status": at_limit(16, "status"), "error": at_limit(2000, "error"), "query": at_limit(200, "query")},
    "marketplace_state": {"marketplace": at_limit(32, "market"), "status": "paused", "reason": at_limit(300, "why"),
                          "changed_by": at_limit(128, "op"), "last_status": at_limit(16, "status"),
                          "last_error": at_limit(2000, "error")},
    "audit_log": {"actor": at_limit(128, "actor"), "action": at_limit(64, "action"),
                  "target": at_limit(128, "target"), "detail": at_limit(2000, "detail")},
}
# The largest price Numeric(18, 4) holds.
LARGEST_PRICE = "99999999999999.9999"
# A feed search's location at the limit of the current schema (0003 widened searches.location to 500).
LONG_LOCATION = "https://feeds.example.com/" + "f" * (500 - len("https://feeds.example.com/"))


async def seed_at_limits(engine: AsyncEngine) -> None:
    """One row per table of the first schema, every limited column at its limit."""
    postgres = engine.dialect.name == "postgresql"
    words = "'{ebay}'" if postgres else "'[\"ebay\"]'"
    at = "'2026-11-30 12:00:00'"
    other = {  # the columns without a length limit, as SQL literals
        "searches": {"exclude_words": words, "marketplaces": words, "baselined": words, "min_price": LARGEST_PRICE,
                     "max_price": LARGEST_PRICE, "check_interval_minutes": "2147483647", "radius_km": "2147483647",
                     "created_at": at, "updated_at": at, "next_run_at": at},
        "listings": {"price": LARGEST_PRICE, "first_seen_at": at, "last_seen_at": at},
        "alert_outbox": {"listing_id": "1", "search_id": "1", "attempts": "0", "next_attempt_at": at,
                         "created_at": at},
        "task_logs": {"searches": "0", "listings_found": "0", "new_listings": "0", "alerts_queued": "0",
                      "created_at": at},
        "marketplace_state": {"consecutive_failures": "0", "total_successes": "0", "total_failures": "0",
                              "total_blocked": "0"},
        "audit_log": {"created_at": at},
    }
    async with engine.begin() as conn:
        for table in ("searches", "listings", "alert_outbox", "task_logs", "marketplace_state", "audit_log"):
            texts = FIRST_SCHEMA_AT_LIMITS[table]
            columns = [*texts, *other[table]]
            values = [f":{column}" for column in texts] + list(other[table].values())
            await conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)})"),
                               texts)


async def read_limited(engine: AsyncEngine) -> dict[str, tuple[object, ...]]:
    """The first schema's limited columns, and the prices, as the database gives them back."""
    read = {table: list(columns) for table, columns in FIRST_SCHEMA_AT_LIMITS.items()}
    read["searches"] += ["min_price", "max_price"]
    read["listings"].append("price")
    async with engine.connect() as conn:
        return {table: tuple((await conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table}"))).one())
                for table, columns in read.items()}


async def test_values_at_the_columns_limits_survive_every_migration_up_and_down(
        database_url: str) -> None:
    """Every migration, up and down, with every limited column filled to its limit: nothing is cut or refused.

    Regression: on PostgreSQL, rolling back past 0003 narrowed searches.location to 100 characters and failed on a
    feed search's address (up to 500)."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine, FIRST)
        await seed_at_limits(engine)
        seeded = await read_limited(engine)
        assert seeded["searches"][:3] == tuple(FIRST_SCHEMA_AT_LIMITS["searches"].values())[:3]
        await upgrade(engine)
        assert await read_limited(engine) == seeded
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE searches SET location = :location"), {"location": LONG_LOCATION})
        await downgrade(engine, FIRST)
        assert await current_revision(engine) == FIRST
        await upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT location FROM searches"))).scalar_one() == LONG_LOCATION
            await conn.execute(sa.text("UPDATE searches SET location = :location"),
                               {"location": FIRST_SCHEMA_AT_LIMITS["searches"]["location"]})
            await conn.commit()
        assert await read_limited(engine) == seeded
    finally:
        await engine.dispose()


def test_the_storage_modules_leave_postgresql_unloaded() -> None:
    """A SQLite user's every command would pay for importing PostgreSQL's dialect and its drivers."""
    script = ("import sys, storage.repo, storage.db, storage.outbox\n"
              "print(sorted(name for name in sys.modules if 'postgresql' in name or name.startswith('asyncpg')))\n")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout == "[]\n"


async def test_processes_starting_together_migrate_one_at_a_time(database_url: str) -> None:
    """Regression: leaders and workers starting together on a fresh PostgreSQL database ran the migrations at once
    and hung on each other's locks; now each waits for the one migrating, then finds the schema at its head."""
    import asyncio

    engines = [create_engine(database_url) for _ in range(4)]
    try:
        await asyncio.wait_for(asyncio.gather(*(upgrade(engine) for engine in engines)), 120)
        assert await current_revision(engines[0]) == HEAD_REVISION
    finally:
        for engine in engines:
            await engine.dispose()
