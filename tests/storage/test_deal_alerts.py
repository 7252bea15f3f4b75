"""The deal part of a scan's save, driven through real scans on SQLite and PostgreSQL: deal facts on new alerts,
deals-only searches, price drops and relists told to those who heard of a listing, snoozes, quiet hours, layouts,
migration 0010, and the cost of scoring a save."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot.commands import Actor, Commands
from scout.deals import comparable_words
from scout.models import (
    Alert,
    AlertKind,
    Destination,
    FetchOutcome,
    Layout,
    Listing,
    Money,
    SavedSearch,
    SearchRun,
    SearchSpec,
)
from scout.scan import Scanner, ScanReport
from storage.db import create_engine, current_revision, downgrade, upgrade
from storage.deals import RELIST_AFTER, SEEN_REFRESH, record_words
from storage.repo import Repository
from storage.tables import ListingRow, ListingWordsRow, SearchMatchRow
from tests.fakes.adapters import TableAdapter
from tests.scout.clock import ManualClock
from tests.storage.test_migrations import seed_first_schema
from tests.storage.test_scan_statements import recorded

DEST = Destination("console", "main")
OTHER = Destination("console", "other")
QUERY = "lego castle"
# Past the fake marketplace's 5 minute interval and its 10% jitter: every search is due again.
STEP = timedelta(minutes=6)
# The seed's 21 totals run from 90 to 110: their median is 100, so a total of N reads as (100 - N)% below it.
SEED_PRICES = [Decimal(90 + n) for n in range(21)]


def item(n: int, price: str | Decimal, *, title: str | None = None, currency: str = "USD",
         shipping: str | None = None, seller: str | None = None) -> Listing:
    return Listing(
        marketplace="fakebay", external_id=str(n), title=title or f"Lego castle set {n}",
        url=f"https://fakebay.test/itm/{n}", price=Money(Decimal(price), currency),
        shipping=Money(Decimal(shipping), currency) if shipping is not None else None, seller=seller,
    )


def seed(first: int = 1, *, currency: str = "USD", shipping: str | None = None) -> list[Listing]:
    """21 comparables whose totals (price and shipping) run from 90 to 110."""
    off = Decimal(shipping or 0)
    return [item(first + n, price - off, currency=currency, shipping=shipping)
            for n, price in enumerate(SEED_PRICES)]


@dataclass
class World:
    """A repository, one fake marketplace, a clock the test moves, the commands and a scanner."""

    repo: Repository
    market: TableAdapter
    clock: ManualClock
    commands: Commands
    scanner: Scanner

    async def add(self, destination: Destination = DEST, **fields: Any) -> SavedSearch:
        fields.setdefault("query", QUERY)
        return await self.commands.add_search(Actor("alice"), destination, **fields)

    async def scan(self, *listings: Listing, query: str = QUERY, after: timedelta = STEP) -> ScanReport:
        """Move the clock on, serve `listings` for `query`, and scan every due search."""
        self.market.serve(query, *listings)
        self.clock.now += after
        return await self.scanner.run_until_idle()

    async def due(self, at: datetime | None = None, platform: str = "console") -> list[Alert]:
        deliveries = await self.repo.load_due_deliveries(now=at or self.clock(), limit=100, platforms=[platform])
        assert all(isinstance(d, Alert) for d in deliveries)
        return deliveries  # type: ignore[return-value]

    async def deliver(self) -> list[Alert]:
        """Everything due now, recorded as sent."""
        alerts = await self.due()
        await self.repo.record_sent([alert.outbox_id for alert in alerts], now=self.clock())
        return alerts

    async def matched(self, search_id: int) -> dict[str, bool]:
        """A search's matches: external id -> whether it was a baseline match."""
        from storage.tables import ListingRow

        async with self.repo._sessions() as session:
            rows = await session.execute(
                sa.select(ListingRow.external_id, SearchMatchRow.baseline)
                .join(ListingRow, ListingRow.id == SearchMatchRow.listing_id)
                .where(SearchMatchRow.search_id == search_id))
            return {external_id: bool(baseline) for external_id, baseline in rows}


@pytest.fixture
def world(repo: Repository) -> World:
    market = TableAdapter()
    clock = ManualClock()
    commands = Commands(repo, {market.key: market}, clock=clock)
    scanner = Scanner(repo, {market.key: market}, fetcher=None, clock=clock, jitter=0.1)  # type: ignore[arg-type]
    return World(repo, market, clock, commands, scanner)


def only(alerts: list[Alert], external_id: str) -> Alert:
    [alert] = [alert for alert in alerts if alert.listing.external_id == external_id]
    return alert


# 1. A new alert carries the deal facts.

async def test_a_cheap_new_listing_is_told_as_a_great_deal_among_earlier_pages(world: World) -> None:
    """Comparables gathered over two earlier scans (the baseline and a later page) judge the cheap listing."""
    await world.add()
    page = seed()
    await world.scan(*page[:11])
    await world.scan(*page[11:])
    report = await world.scan(item(100, "50"))
    assert report.alerts_queued == 1
    alert = only(await world.due(), "100")
    assert alert.kind is AlertKind.NEW
    assert alert.facts.deal == "50% below the median of 21 similar listings"
    assert (alert.facts.verdict, alert.facts.low_confidence) == ("great", False)
    assert alert.facts.old_price is None
    # The alert draws the comparables' spread in one line: ten blocks, the lowest and highest price.
    blocks, _, prices = (alert.facts.trend or "").partition(" ")
    assert len(blocks) == 10 and set(blocks) <= set("\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588")
    assert prices.endswith(" USD") and "\u2013" in prices


async def test_a_good_deal_among_fewer_comparables_is_low_confidence(world: World) -> None:
    await world.add()
    await world.scan(*seed()[:10])  # totals 90..99
    await world.scan(item(100, "80"))
    alert = only(await world.due(), "100")
    assert alert.facts.deal == "15% below the median of 10 similar listings (low confidence)"
    assert (alert.facts.verdict, alert.facts.low_confidence) == ("good", True)


async def test_fewer_than_three_comparables_give_no_deal_line(world: World) -> None:
    await world.add()
    await world.scan(item(1, "100"), item(2, "110"))
    await world.scan(item(1, "100"), item(2, "110"), item(3, "20"))
    alert = only(await world.due(), "3")
    assert (alert.facts.deal, alert.facts.verdict) == (None, None)


async def test_comparables_in_another_currency_are_not_used(world: World) -> None:
    await world.add()
    euros = seed(currency="EUR")
    dollars = [item(50, "100"), item(51, "100")]
    await world.scan(*euros, *dollars)
    await world.scan(*euros, *dollars, item(100, "50"), item(101, "50", currency="EUR"))
    alerts = await world.due()
    # Two dollar comparables: too few to say anything of a dollar price.
    assert only(alerts, "100").facts.deal is None
    # The euro listing is judged among the 21 euro listings only: the three dollar listings would have made 24.
    assert only(alerts, "101").facts.deal == "50% below the median of 21 similar listings"


async def test_a_searchs_excluded_words_drop_comparables(world: World) -> None:
    """The broken lots carry the search's words but are what the search leaves out: they would make 60 look dear."""
    careful = await world.add(exclude="broken")
    anything = await world.add(OTHER)
    whole = [item(n, "100") for n in range(1, 6)]
    broken = [item(n, "10", title=f"Lego castle set {n} broken") for n in range(10, 30)]
    await world.scan(*whole, *broken)
    await world.scan(*whole, *broken, item(100, "60"))
    alerts = await world.due()
    mine = [a for a in alerts if a.search_id == careful.id]
    theirs = [a for a in alerts if a.search_id == anything.id]
    assert only(mine, "100").facts.deal == "40% below the median of 5 similar listings (low confidence)"
    assert only(mine, "100").facts.verdict == "good"
    # The same words without the exclusion: every one of the 25 counts, and 60 is far above their median of 10.
    assert only(theirs, "100").facts.deal == "500% above the median of 25 similar listings"
    assert only(theirs, "100").facts.verdict == "above typical"


async def test_a_listing_is_not_its_own_comparable(world: World) -> None:
    """The listing is stored among its words' comparables in the same save that scores it: three others, not four."""
    await world.add()
    three = [item(n, "100") for n in range(1, 4)]
    await world.scan(*three)
    await world.scan(*three, item(100, "50"))
    alert = only(await world.due(), "100")
    assert alert.facts.deal == "50% below the median of 3 similar listings (low confidence)"


async def test_shipping_is_added_to_the_total(world: World) -> None:
    """Comparables at 70-90 plus 20 shipping (totals 90-110), the new one at 60 plus 10: 70 is 30% below 100.
    Leaving out its shipping would say 40%, the comparables' shipping 12.5%."""
    await world.add()
    page = seed(shipping="20")
    await world.scan(*page)
    await world.scan(*page, item(100, "60", shipping="10"))
    alert = only(await world.due(), "100")
    assert alert.facts.deal == "30% below the median of 21 similar listings"
    assert alert.listing.shipping == Money(Decimal(10), "USD")


# 2. Deals only.

async def test_a_deals_only_search_records_a_fair_match_and_queues_a_great_one(world: World) -> None:
    search = await world.add(min_deal="good")
    page = seed()
    await world.scan(*page)
    report = await world.scan(*page, item(100, "100"), item(101, "50"))
    assert report.alerts_queued == 1
    assert [a.listing.external_id for a in await world.due()] == ["101"]
    assert only(await world.due(), "101").facts.verdict == "great"
    matched = await world.matched(search.id)
    assert (matched["100"], matched["101"]) == (False, False)  # both recorded as news, only one told


# 3. Price drops.

async def drop_scene(world: World, **fields: Any) -> SavedSearch:
    """A search, its baseline, then listing 100 at 100 told to DEST and sent."""
    search = await world.add(**fields)
    await world.scan(*seed())
    await world.scan(*seed(), item(100, "100"))
    told = await world.deliver()
    assert [(a.listing.external_id, a.kind) for a in told] == [("100", AlertKind.NEW)]
    return search


async def test_a_price_drop_is_told_once_per_drop_to_the_destination_that_heard(world: World) -> None:
    search = await drop_scene(world)
    # A search of another chat that starts now takes listing 100 into its baseline: it never heard of it.
    await world.add(OTHER)
    assert (await world.scan(*seed(), item(100, "80"))).alerts_queued == 1
    [drop] = await world.deliver()
    assert (drop.kind, drop.destination, drop.search_id) == (AlertKind.DROP, DEST, search.id)
    assert drop.listing.price == Money(Decimal(80), "USD")
    assert drop.facts.old_price == Money(Decimal(100), "USD")
    assert drop.facts.deal == "20% below the median of 21 similar listings"
    assert drop.facts.trend is not None  # two prices seen: 100, then 80

    # The same price again: nothing more to tell.
    assert (await world.scan(*seed(), item(100, "80"))).alerts_queued == 0
    # 5% off is no drop worth telling.
    assert (await world.scan(*seed(), item(100, "76"))).alerts_queued == 0
    assert await world.due() == []
    # A second real drop later is a second alert, from the price the chat saw last.
    assert (await world.scan(*seed(), item(100, "60"))).alerts_queued == 1
    [again] = await world.due()
    assert (again.kind, again.destination) == (AlertKind.DROP, DEST)
    assert again.facts.old_price == Money(Decimal(80), "USD")
    assert again.outbox_id != drop.outbox_id


async def test_a_price_that_climbs_and_falls_back_is_no_drop(world: World) -> None:
    """Regression: a drop was measured from the last price, so a price going 100 -> 120 -> 100 told the chat that
    heard of it at 100 of a drop from 120, and again at every swing."""
    await drop_scene(world)
    assert (await world.scan(*seed(), item(100, "120"))).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "100"))).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "120"))).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "95"))).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "90"))).alerts_queued == 1
    [drop] = await world.due()
    assert drop.facts.old_price == Money(Decimal(100), "USD")


async def test_small_cuts_are_told_once_they_add_up(world: World) -> None:
    await drop_scene(world)
    for price in ("96", "93"):
        assert (await world.scan(*seed(), item(100, price))).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "89"))).alerts_queued == 1
    [drop] = await world.due()
    assert (drop.facts.old_price, drop.listing.price) == (Money(Decimal(100), "USD"), Money(Decimal(89), "USD"))


async def test_a_drop_is_measured_from_the_price_the_alert_went_out_with(world: World) -> None:
    """An alert queued at 100 that goes out after the price became 95 showed 95: a fall to 88 is no 10% drop."""
    await world.add()
    await world.scan(*seed())
    await world.scan(*seed(), item(100, "100"))
    await world.scan(*seed(), item(100, "95"))
    await world.deliver()
    assert (await world.scan(*seed(), item(100, "88"))).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "85"))).alerts_queued == 1


async def test_no_drop_alert_for_a_search_with_drops_off(world: World) -> None:
    await drop_scene(world, price_drop="off")
    assert (await world.scan(*seed(), item(100, "50"))).alerts_queued == 0
    assert await world.due() == []


async def test_a_drop_below_the_searchs_own_share_is_not_told(world: World) -> None:
    await drop_scene(world, price_drop="30%")
    assert (await world.scan(*seed(), item(100, "80"))).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "56"))).alerts_queued == 1


# 4. Relists.

async def test_a_listing_back_after_a_day_is_told_as_a_relist(world: World) -> None:
    await world.add()
    await world.scan(*seed())
    await world.scan(*seed(), item(100, "100"))
    await world.deliver()
    # Listing 100 is gone for more than RELIST_AFTER while the seed stays on sale.
    half = RELIST_AFTER / 2 + timedelta(hours=1)
    assert (await world.scan(*seed(), after=half)).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "100"), after=half)).alerts_queued == 1
    [relist] = await world.due()
    assert (relist.listing.external_id, relist.kind, relist.destination) == ("100", AlertKind.RELIST, DEST)
    # Back again on the next scan (seen a minute ago): nothing more.
    assert (await world.scan(*seed(), item(100, "100"))).alerts_queued == 0


async def test_a_listing_back_for_less_is_one_relist_with_the_price_before(world: World) -> None:
    """Regression: a listing back after a day at a lower price was told twice at once, as a relist and as a drop."""
    await drop_scene(world)
    half = RELIST_AFTER / 2 + timedelta(hours=1)
    await world.scan(*seed(), after=half)
    assert (await world.scan(*seed(), item(100, "70"), after=half)).alerts_queued == 1
    [relist] = await world.due()
    assert (relist.kind, relist.destination) == (AlertKind.RELIST, DEST)
    assert relist.facts.old_price == Money(Decimal(100), "USD")
    assert relist.facts.trend is not None


async def test_a_listing_missing_for_less_than_a_day_is_no_relist(world: World) -> None:
    await world.add()
    await world.scan(*seed())
    await world.scan(*seed(), item(100, "100"))
    await world.deliver()
    await world.scan(*seed(), after=timedelta(hours=10))
    assert (await world.scan(*seed(), item(100, "100"), after=timedelta(hours=10))).alerts_queued == 0


async def test_a_new_id_for_a_sellers_item_gone_for_a_day_is_a_relist(world: World) -> None:
    await world.add()
    first_seen = world.clock() + STEP
    gone = item(70, "120", title="Lego castle 10305 sealed", seller="brickdealer")
    recent = item(72, "95", title="Lego castle 10276 boxed", seller="brickdealer")
    await world.scan(*seed(), gone)
    half = RELIST_AFTER / 2 + timedelta(hours=1)
    await world.scan(*seed(), recent, after=half)
    again = item(71, "110", title="Lego castle 10305 sealed", seller="brickdealer")
    # 72 was seen 13 hours ago: its seller's new id for the same title is plain news.
    again_soon = item(73, "90", title="Lego castle 10276 boxed", seller="brickdealer")
    stranger = item(74, "120", title="Lego castle 10305 sealed", seller="someone else")
    report = await world.scan(*seed(), again, again_soon, stranger, after=half)
    assert report.alerts_queued == 3
    alerts = await world.due()
    relist = only(alerts, "71")
    assert relist.kind is AlertKind.RELIST
    assert relist.facts.first_seen_at == first_seen
    assert relist.facts.old_price == Money(Decimal(120), "USD")
    assert (only(alerts, "73").kind, only(alerts, "74").kind) == (AlertKind.NEW, AlertKind.NEW)
    assert only(alerts, "73").facts.old_price is None


# 5. Snoozes.

async def test_a_snoozed_searchs_matches_are_recorded_and_never_told_late(world: World) -> None:
    search = await world.add()
    await world.scan(*seed())
    snoozed = await world.commands.snooze_search(Actor("alice"), search.id, "2h")
    assert snoozed.snoozed_until == world.clock() + timedelta(hours=2)
    assert (await world.scan(*seed(), item(100, "50"))).alerts_queued == 0
    assert (await world.matched(search.id))["100"] is False
    assert await world.due() == []
    # The snooze is over: what it found meanwhile stays untold, what is new now is told.
    assert (await world.scan(*seed(), item(100, "50"), after=timedelta(hours=3))).alerts_queued == 0
    assert (await world.scan(*seed(), item(100, "50"), item(101, "60"))).alerts_queued == 1
    assert [a.listing.external_id for a in await world.due()] == ["101"]


async def test_a_snoozed_search_hears_of_no_drop(world: World) -> None:
    search = await drop_scene(world)
    await world.commands.snooze_search(Actor("alice"), search.id, "1h")
    assert (await world.scan(*seed(), item(100, "50"))).alerts_queued == 0


# 6. Quiet hours.

async def test_quiet_hours_hold_a_chats_alerts_in_its_own_time_zone(world: World) -> None:
    await world.add()
    await world.add(OTHER)
    await world.scan(*seed())
    await world.scan(*seed(), item(100, "50"))
    settings = await world.commands.set_quiet_hours(DEST, "22:00-07:00", "Europe/Berlin")
    assert settings.quiet_hours is not None
    day = datetime(2026, 11, 28, tzinfo=UTC)  # Berlin is UTC+1 in November

    async def told(hour: int, minute: int, days: int = 0) -> set[Destination]:
        return {a.destination for a in await world.due(day + timedelta(days=days, hours=hour, minutes=minute))}

    assert await told(13, 0) == {DEST, OTHER}  # 14:00 in Berlin
    assert await told(21, 30) == {OTHER}  # 22:30 in Berlin, still before 22:00 in UTC
    assert await told(23, 0) == {OTHER}
    assert await told(5, 30, days=1) == {OTHER}  # 06:30 in Berlin
    assert await told(6, 30, days=1) == {DEST, OTHER}  # 07:30 in Berlin, still before 07:00 in UTC
    await world.commands.set_quiet_hours(DEST, "off")
    assert await told(23, 0) == {DEST, OTHER}


# 7. Layout.

async def test_a_chats_layout_reaches_its_alerts(world: World) -> None:
    await world.add()
    await world.add(OTHER)
    await world.scan(*seed())
    await world.scan(*seed(), item(100, "50"))
    await world.commands.set_layout(DEST, "compact")
    layouts = {a.destination: a.layout for a in await world.due()}
    assert layouts == {DEST: Layout.COMPACT, OTHER: Layout.FULL}
    await world.commands.set_layout(DEST, "full")
    assert {a.layout for a in await world.due()} == {Layout.FULL}


# 9. Migration 0010.

async def test_migration_0010_keeps_the_outbox_and_lets_a_drop_sit_beside_its_alert(database_url: str) -> None:
    engine = create_engine(database_url)
    insert = sa.text(
        "INSERT INTO alert_outbox (platform, target, listing_id, search_id, status, attempts, next_attempt_at, "
        "created_at, occasion) VALUES ('console', 'main', 1, 1, 'pending', 0, '2026-12-01 00:00:00', "
        "'2026-12-01 00:00:00', :occasion)")
    try:
        await upgrade(engine, "0001")
        await seed_first_schema(engine)
        await upgrade(engine, "0009")
        await upgrade(engine, "0010")
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT listing_id, status, occasion, detail FROM alert_outbox"))).all()
        assert [tuple(row) for row in rows] == [(1, "pending", "", None)]
        async with engine.begin() as conn:
            await conn.execute(insert, {"occasion": "drop:20261201T000000"})
        with pytest.raises(IntegrityError):  # still one alert per destination, listing and occasion
            async with engine.begin() as conn:
                await conn.execute(insert, {"occasion": ""})
        await downgrade(engine, "0009")
        assert await current_revision(engine) == "0009"
        async with engine.connect() as conn:
            kept = (await conn.execute(sa.text("SELECT listing_id, status FROM alert_outbox"))).all()
        assert [tuple(row) for row in kept] == [(1, "pending")]  # the original alert, not the drop its key refuses
        await upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM alert_outbox"))).scalar_one() == 1
    finally:
        await engine.dispose()


# 10. The cost of scoring a save.

def lens(first: int, count: int, words: str) -> list[Listing]:
    return [Listing(marketplace="ebay", external_id=f"{words}-{n}", title=f"{words} lens {n}",
                    url=f"https://example.test/itm/{words}-{n}", price=Money(Decimal(100 + n % 7), "USD"))
            for n in range(first, first + count)]


def page_fetch(search: SavedSearch, listings: list[Listing]) -> FetchOutcome:
    """A fetch as the scanner gives it: every listing matches the search and carries its words."""
    return FetchOutcome(marketplace="ebay", query=search.query, status="success", duration_ms=5,
                        listings=tuple(listings), matches={search.id: tuple(listings)},
                        carrying={comparable_words(search.query): tuple(listings)})


async def save_page(repo: Repository, search: SavedSearch, listings: list[Listing], now: datetime) -> None:
    fetch = page_fetch(search, listings)
    run = SearchRun(search.id, now + timedelta(minutes=10), frozenset({"ebay"}), frozenset())
    await repo.save_scan(now=now, fetches=[fetch], runs=[run], searches={search.id: search})


def words_selects(statements: list[Any]) -> int:
    return sum(1 for s in statements if s.sql.lstrip().upper().startswith("SELECT") and "listing_words" in s.sql)


async def test_scoring_a_save_reads_the_comparables_once_however_many_alerts(repo: Repository) -> None:
    """A fetch of 60 listings with 1 new one and with 5: one read of listing_words each, and the same statements."""
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    shapes = {}
    for alerts, words in ((1, "alpha"), (5, "beta")):
        spec = SearchSpec(query=f"{words} lens", marketplaces=("ebay",), check_interval_minutes=10)
        search = await repo.save_search(owner="u", destination=DEST, scope=None, spec=spec, now=now,
                                        first_run_at=now)
        await save_page(repo, search, lens(0, 60 - alerts, words), now)
        search = await repo.load_search(search.id)
        with recorded(repo) as statements:
            await save_page(repo, search, lens(0, 60, words), now + timedelta(minutes=10))
        alerted = await repo.load_recent_alerts(search.id, limit=100)
        assert len(alerted) == alerts
        assert words_selects(statements) == 1
        shapes[alerts] = len(statements)
    assert shapes[1] == shapes[5]


async def test_a_save_of_two_fetch_groups_reads_both_ranges_of_comparables(repo: Repository) -> None:
    """PostgreSQL reads both groups' ranges of comparables in one statement, SQLite one statement each."""
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    searches = []
    for words in ("gamma", "delta"):
        spec = SearchSpec(query=f"{words} lens", marketplaces=("ebay",), check_interval_minutes=10)
        search = await repo.save_search(owner="u", destination=DEST, scope=None, spec=spec, now=now,
                                        first_run_at=now)
        await save_page(repo, search, lens(0, 30, words), now)
        searches.append(await repo.load_search(search.id))
    fetches = [page_fetch(search, lens(0, 33, words)) for search, words in zip(searches, ("gamma", "delta"),
                                                                                 strict=True)]
    runs = [SearchRun(search.id, now + timedelta(minutes=20), frozenset({"ebay"}), frozenset()) for search in searches]
    with recorded(repo) as statements:
        saved = await repo.save_scan(now=now + timedelta(minutes=10), fetches=fetches, runs=runs,
                                     searches={search.id: search for search in searches})
    assert saved.alerts_queued == 6
    assert words_selects(statements) == (1 if repo.dialect == "postgresql" else 2)


async def test_a_comparable_seen_again_is_written_anew_only_once_its_sighting_is_a_day_old(repo: Repository) -> None:
    start = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    seen = Listing(marketplace="ebay", external_id="1", title="lego castle", url="https://www.ebay.com/itm/1")
    fetch = FetchOutcome("ebay", "lego castle", "success", 1, (seen,), carrying={"castle lego": (seen,)})
    dialect = repo.dialect

    async def sighting(now: datetime) -> datetime:
        async with repo._sessions.begin() as session:
            listing_id = await session.scalar(sa.select(ListingRow.id).where(ListingRow.external_id == "1"))
            await record_words(session, dialect, [fetch], {seen.key: listing_id}, now)
        async with repo._sessions() as session:
            return await session.scalar(sa.select(ListingWordsRow.seen_at))

    async with repo._sessions.begin() as session:
        session.add(ListingRow(marketplace="ebay", external_id="1", title="lego castle", url=seen.url,
                               first_seen_at=start, last_seen_at=start))
    assert await sighting(start) == start
    assert await sighting(start + SEEN_REFRESH - timedelta(minutes=1)) == start
    assert await sighting(start + SEEN_REFRESH + timedelta(minutes=1)) == start + SEEN_REFRESH + timedelta(minutes=1)
