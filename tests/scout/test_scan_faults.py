"""A scan against a fake site that really hangs: a slow marketplace holds back no other's alerts, and a fetch's
time is capped without counting its wait for its host's turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.commands import Actor, Commands
from scout.models import Destination, Listing
from scout.scan import Scanner
from scrapers.base import Adapter, Capabilities, Page, Request, ScrapeResult, SearchQuery
from scrapers.http import HttpFetcher
from storage.repo import Repository
from tests.fakes.marketplace import TEST_USER_AGENT, FakeMarketplace
from tests.scout.clock import ManualClock

DEST = Destination("console", "main")


class LinesAdapter(Adapter):
    """A marketplace served by the fake site at /<key>: each line of the page, "id|title", is a listing."""

    min_interval_minutes = 5
    requests_per_minute = 600.0
    capabilities = Capabilities()

    def __init__(self, key: str) -> None:
        self.key = self.name = key

    def build_request(self, query: SearchQuery) -> Request:
        return Request(f"http://{self.key}.test/{self.key}", params=(("q", query.text),))

    def parse(self, page: Page) -> ScrapeResult:
        rows = [line.split("|", 1) for line in page.text.splitlines() if "|" in line]
        return ScrapeResult.of([Listing(self.key, ident, title, f"http://{self.key}.test/{ident}")
                                for ident, title in rows])


@pytest.fixture
async def market() -> AsyncIterator[FakeMarketplace]:
    async with FakeMarketplace() as market:
        yield market


@pytest.fixture
async def fetcher(market: FakeMarketplace) -> AsyncIterator[HttpFetcher]:
    async with HttpFetcher(user_agent=TEST_USER_AGENT, respect_robots=False, default_rate_per_minute=float("inf"),
                           resolve=market.resolving("fastbay.test", "slowbay.test")) as fetcher:
        yield fetcher


ADAPTERS = {key: LinesAdapter(key) for key in ("fastbay", "slowbay")}


async def test_a_hanging_marketplace_holds_back_no_other_marketplaces_alert(
    repo: Repository, market: FakeMarketplace, fetcher: HttpFetcher
) -> None:
    """Regression: a scan saved its fetches in one transaction once the last was done, so a Craigslist alert waited
    201 s for an eBay that hung."""
    clock = ManualClock()
    market.route("/fastbay", "1|lego castle\n")
    release = market.hold("/slowbay", "2|lego ship\n")
    await Commands(repo, ADAPTERS, clock=clock).add_search(Actor("a"), DEST, query="lego",
                                                           marketplaces="fastbay,slowbay")
    queued = asyncio.Event()
    scanner = Scanner(repo, ADAPTERS, fetcher, clock=clock, baseline_first_scan=False, on_alerts_queued=queued.set)
    clock.advance(seconds=10)

    scan = asyncio.create_task(scanner.run_until_idle())
    await market.wait_for_requests("/slowbay")
    await asyncio.wait_for(queued.wait(), timeout=10)

    [alert] = await repo.load_due_deliveries(now=clock(), limit=10, platforms=["console"])
    assert alert.listing.external_id == "1"
    assert not scan.done()  # slowbay still hangs
    release.set()
    report = await scan
    assert (report.fetches, report.alerts_queued, report.failed_fetches) == (2, 2, 0)


async def test_a_fetch_that_hangs_fails_within_its_share_of_the_lease(
    repo: Repository, market: FakeMarketplace, fetcher: HttpFetcher
) -> None:
    """Regression: a fetch had no cap of its own beyond its requests' timeouts and retries, which together could
    outlast the search's lease."""
    clock = ManualClock()
    market.route("/fastbay", "1|lego castle\n")
    market.hold("/slowbay")  # released only when the fake site closes
    search = await Commands(repo, ADAPTERS, clock=clock).add_search(Actor("a"), DEST, query="lego",
                                                                    marketplaces="fastbay,slowbay")
    scanner = Scanner(repo, ADAPTERS, fetcher, clock=clock, lease_seconds=0.3)  # a fetch may take 0.1 s
    clock.advance(seconds=10)

    report = await asyncio.wait_for(scanner.run_until_idle(), timeout=10)

    assert (report.fetches, report.failed_fetches) == (2, 1)
    outcomes = (await repo.load_search(search.id)).last_outcomes
    assert outcomes["fastbay"].status == "success"
    assert (outcomes["slowbay"].status, outcomes["slowbay"].error) == (
        "failed", "no result within 0.1 s, retries included")
    saved = await repo.load_search(search.id)
    assert saved.next_run_at >= clock() + timedelta(minutes=5)


async def test_waiting_for_the_hosts_turn_does_not_count_against_a_fetchs_time(
    repo: Repository, market: FakeMarketplace, fetcher: HttpFetcher
) -> None:
    clock = ManualClock()
    market.route("/fastbay", "1|lego castle\n")
    fetcher.set_host_rate("fastbay.test", 300)  # 0.2 s between requests, twice a fetch's 0.1 s
    commands = Commands(repo, ADAPTERS, clock=clock)
    for query in ("lego", "duplo"):
        await commands.add_search(Actor("a"), DEST, query=query, marketplaces="fastbay")
    scanner = Scanner(repo, ADAPTERS, fetcher, clock=clock, lease_seconds=0.3)
    clock.advance(seconds=10)

    report = await asyncio.wait_for(scanner.run_until_idle(), timeout=10)

    assert (report.fetches, report.failed_fetches) == (2, 0)
