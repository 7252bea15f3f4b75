"""storage.direct reads what the repository reads, as the same domain objects, on SQLite and PostgreSQL; it leaves
databases that are not at the schema's head (or not there at all) to the repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from scout.models import (
    Destination,
    FetchOutcome,
    Listing,
    Money,
    SavedSearch,
    SearchRun,
    SearchSpec,
    SearchStatus,
    SponsoredRule,
)
from storage import db, direct
from storage.decode import json_value, sqlite_datetime, sqlite_decimal, text_list, utc_datetime
from storage.repo import Repository

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _listing(n: int, **kw: object) -> Listing:
    values: dict[str, object] = {
        "marketplace": "ebay", "external_id": str(100 + n), "title": f"Lego castle {n}",
        "url": f"https://example.test/itm/{100 + n}", "price": Money(Decimal("49.99"), "USD"),
    }
    values.update(kw)
    return Listing(**values)  # type: ignore[arg-type]


async def build_world(repo: Repository) -> list[SavedSearch]:
    """Searches with every option the descriptions show, alerts with every listing field, paused marketplaces."""
    full = await repo.save_search(
        owner="alice", destination=Destination("console", "main"), scope=None, now=NOW, first_run_at=NOW,
        spec=SearchSpec(
            query="lego castle", marketplaces=("ebay", "vinted"), check_interval_minutes=15,
            exclude=("broken", "parts"), min_price=Decimal("10"), max_price=Decimal("499.99"), currency="USD",
            location="sfbay", radius_km=25, sponsored=SponsoredRule.EXCLUDE,
            price_drop_share=Decimal("0.15"), exclude_sellers=("scalper", "bob"),
            min_seller_rating=Decimal("98.5"),
        ),
    )
    plain = await repo.save_search(
        owner="bob", destination=Destination("telegram", "-100123"), scope="-100123", now=NOW, first_run_at=NOW,
        spec=SearchSpec(query="bike", marketplaces=("craigslist",), check_interval_minutes=10, min_deal="good",
                        price_drop_share=None),
    )
    apprise = await repo.save_search(
        owner="carol", destination=Destination("apprise", "ntfys://ntfy.sh/secret-topic"), scope=None, now=NOW,
        first_run_at=NOW, spec=SearchSpec(query="switch", marketplaces=("ebay",), check_interval_minutes=5),
    )
    listings = [
        _listing(1, posted_at=NOW - timedelta(hours=2), location="Oakland, CA", seller="alice42",
                 condition="Used", shipping=Money(Decimal("5.50"), "USD"), seller_rating=Decimal("99.1"),
                 image_url="https://example.test/1.jpg"),
        _listing(2, price=None, price_text="Make an offer"),
        _listing(3, price=Money(Decimal("1234.5"), "EUR"), title="  a   very " + "long " * 30 + "title"),
    ]
    ebay = FetchOutcome("ebay", "lego castle", "success", 12, listings=tuple(listings),
                        matches={full.id: tuple(listings), apprise.id: tuple(listings[:1])})
    vinted = FetchOutcome("vinted", "lego castle", "blocked", 30, error="HTTP 403: \n a captcha\tpage",
                          matches={full.id: ()})
    await repo.save_scan(now=NOW, fetches=[ebay, vinted], searches={full.id: full, apprise.id: apprise},
                         runs=[SearchRun(full.id, NOW + timedelta(minutes=15), frozenset({"ebay"}),
                                         frozenset({"vinted"})),
                               SearchRun(apprise.id, NOW + timedelta(minutes=5), frozenset({"ebay"}))],
                         baseline_first_scan=False)
    deliveries = await repo.load_due_deliveries(now=NOW, limit=10, platforms=["console", "apprise"])
    await repo.claim_deliveries([[d.outbox_id] for d in deliveries], now=NOW, until=NOW + timedelta(minutes=5))
    await repo.record_sent([deliveries[0].outbox_id], now=NOW + timedelta(seconds=3))
    await repo.update_search(plain.id, now=NOW, status=SearchStatus.PAUSED, paused_reason="holiday")
    await repo.snooze_search(apprise.id, until=datetime.now(UTC) + timedelta(days=2), now=NOW)
    await repo.set_marketplace_status("ebay", status="paused", reason="blocked us", actor="cli", now=NOW)
    await repo.set_marketplace_status("vinted", status="paused", reason=None, actor="cli", now=NOW)
    await repo.set_marketplace_status("craigslist", status="active", reason=None, actor="cli", now=NOW)
    return await repo.load_searches()


async def test_the_reader_returns_what_the_repository_returns(repo: Repository, database_url: str) -> None:
    searches = await build_world(repo)
    async with direct.open_reader(database_url) as reader:
        assert reader is not None
        assert await reader.count_searches() == await repo.count_searches() == 3
        assert await reader.load_searches(limit=50) == searches
        assert await reader.load_searches(limit=1, offset=1) == await repo.load_searches(limit=1, offset=1)
        assert await reader.load_searches(limit=5, offset=3) == []
        for search in searches:
            assert await reader.load_search(search.id) == search
            assert await reader.load_recent_alerts(search.id, limit=10) == await repo.load_recent_alerts(search.id)
            assert await reader.load_recent_alerts(search.id, limit=2) == await repo.load_recent_alerts(search.id,
                                                                                                       limit=2)
        assert await reader.load_search(999) is None
        states = await repo.load_marketplace_states()
        assert await reader.load_paused_marketplaces() == {
            key: state.reason for key, state in states.items() if state.paused} == {"ebay": "blocked us",
                                                                                   "vinted": None}
    full = searches[0]
    assert full.last_outcomes["vinted"].error == "HTTP 403: \n a captcha\tpage"
    assert full.spec.min_seller_rating == Decimal("98.5") and full.spec.exclude_sellers == ("scalper", "bob")
    alerts = await repo.load_recent_alerts(full.id)
    assert {alert.listing.title for alert in alerts} >= {"Lego castle 1", "Lego castle 2"}


async def test_an_empty_database_at_head_is_read(repo: Repository, database_url: str) -> None:
    async with direct.open_reader(database_url) as reader:
        assert reader is not None
        assert await reader.count_searches() == 0
        assert await reader.load_searches(limit=50) == []
        assert await reader.load_paused_marketplaces() == {}


async def test_a_database_not_at_head_is_left_to_the_repository(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        async with direct.open_reader(database_url) as reader:
            assert reader is None  # no schema yet (on SQLite, no file yet)
        await db.upgrade(engine, "0009")
        async with direct.open_reader(database_url) as reader:
            assert reader is None
        await db.upgrade(engine)
        async with direct.open_reader(database_url) as reader:
            assert reader is not None
    finally:
        await engine.dispose()


@pytest.mark.parametrize("url", [
    "sqlite://", "sqlite:///:memory:", "sqlite:////tmp/with%20escape.db", "sqlite:////tmp/x.db?mode=ro",
    "postgresql://u@h/db?sslmode=require", "mysql://u@h/db", "not a url",
])
async def test_urls_not_read_directly(url: str) -> None:
    async with direct.open_reader(url) as reader:
        assert reader is None


async def test_files_that_are_not_databases_are_left_to_the_repository(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not a database " * 100)
    async with direct.open_reader(f"sqlite:///{damaged}") as reader:
        assert reader is None
    async with direct.open_reader(f"sqlite:///{tmp_path / 'missing.db'}") as reader:
        assert reader is None
    assert not (tmp_path / "missing.db").exists()  # not created: the repository's path creates and migrates it


async def test_an_unreachable_server_is_left_to_the_repository() -> None:
    async with direct.open_reader("postgresql://scout:pw@127.0.0.1:1/deals") as reader:
        assert reader is None


@pytest.mark.parametrize("url", [
    "postgresql://scout:s3cret@127.0.0.1:5432/deals", "postgres://scout@db.example:5432/deals",
    "postgresql+asyncpg://scout:p%40ss@[::1]/deals", "postgresql:///deals", "postgresql://db/deals",
])
def test_a_servers_location_is_masked_as_storage_db_masks_it(url: str) -> None:
    assert make_url(url).render_as_string(hide_password=True) == db.describe_location(url)
    assert direct._masked(url) == db.describe_location(url)


def test_the_decoders_read_what_the_column_types_read() -> None:
    assert sqlite_datetime("2026-11-30 12:00:00") == datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert sqlite_datetime("2026-11-30 12:00:00.250000") == datetime(2026, 11, 30, 12, 0, 0, 250000, tzinfo=UTC)
    assert sqlite_datetime(None) is None
    aware = datetime(2026, 11, 30, 13, tzinfo=UTC).astimezone()
    assert utc_datetime(aware) == aware and utc_datetime(aware).tzinfo is UTC  # type: ignore[union-attr]
    assert str(sqlite_decimal(10, 4)) == "10.0000" and str(sqlite_decimal(0.15, 4)) == "0.1500"
    assert sqlite_decimal(None, 2) is None
    assert json_value('["a", 1]') == ["a", 1] and json_value(None) is None
    assert text_list(None) == [] and text_list(["a", 1]) == ["a", "1"]
