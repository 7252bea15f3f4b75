"""Migrations keep the data they find, up and down, on SQLite and PostgreSQL; a search id is never given twice."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from scout.models import Destination, SearchSpec
from storage.db import create_engine, current_revision, downgrade, session_factory, upgrade
from storage.repo import Repository

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPEC = SearchSpec(query="lego", marketplaces=("ebay",), check_interval_minutes=5)
# The oldest schema the service can still upgrade: the first one.
FIRST = "0001"
COUNTED = ("searches", "search_matches", "alert_outbox", "listings", "price_history")


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
