"""Scans of RSS feeds, whose hosts are the users' choice: one user's broken or refused feed stops nobody else's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.commands import Actor, Commands
from scout.circuit import CircuitPolicy, CircuitState, Transition
from scout.models import Destination, SearchStatus
from scout.scan import Scanner
from scrapers.http import HttpFetcher
from scrapers.netguard import UrlGuard
from scrapers.rss.adapter import RssAdapter
from storage.repo import Repository
from tests.fakes.marketplace import TEST_USER_AGENT, FakeMarketplace
from tests.scout.clock import ManualClock
from tests.scrapers.test_rss import PUBLIC, fake_dns, page

DEST = Destination("console", "main")
GOOD_FEED = "https://good.example/rss"
DEAD_FEED = "https://dead.example/dead"
PRIVATE = "10.0.0.5"
REFUSED_FEEDS = [f"https://feed{n}.lan-party.example/rss" for n in range(6)]


@pytest.fixture
async def market() -> AsyncIterator[FakeMarketplace]:
    async with FakeMarketplace() as market:
        market.route("/rss", page("rss_deals.xml"), content_type="application/rss+xml")
        market.fail("/dead", 503, times=None)
        yield market


@pytest.fixture
async def fetcher(market: FakeMarketplace) -> AsyncIterator[HttpFetcher]:
    hosts = ["good.example", "dead.example", *(f"feed{n}.lan-party.example" for n in range(6))]
    async with HttpFetcher(user_agent=TEST_USER_AGENT, max_retries=0, default_rate_per_minute=float("inf"),
                           resolve=market.resolving(*hosts)) as fetcher:
        yield fetcher


@pytest.fixture
def adapters() -> dict[str, RssAdapter]:
    dns = {"good.example": [PUBLIC], "dead.example": [PUBLIC],
           **{f"feed{n}.lan-party.example": [PRIVATE] for n in range(6)}}
    return {"rss": RssAdapter(url_guard=UrlGuard(fake_dns(dns)))}


async def add_feed(commands: Commands, owner: str, feed: str):  # type: ignore[no-untyped-def]
    return await commands.add_search(Actor(owner), DEST, query="deal", marketplaces="rss", location=feed)


async def test_a_feed_the_network_guard_refuses_pauses_its_search_and_counts_against_nobody(
    repo: Repository, market: FakeMarketplace, fetcher: HttpFetcher, adapters: dict[str, RssAdapter]
) -> None:
    """Regression: six feeds resolving to a private address opened the `rss` circuit for all users and sent a
    CRITICAL ops alert."""
    clock = ManualClock()
    commands = Commands(repo, adapters, clock=clock)
    refused = [await add_feed(commands, f"user{n}", feed) for n, feed in enumerate(REFUSED_FEEDS)]
    good = await add_feed(commands, "someone", GOOD_FEED)
    told: list[Transition] = []

    async def tell_ops(transitions: list[Transition]) -> None:
        told.extend(transitions)

    scanner = Scanner(repo, adapters, fetcher, clock=clock, circuit_policy=CircuitPolicy(failure_threshold=5),
                      on_circuit_change=tell_ops)
    clock.advance(seconds=10)
    await scanner.run_until_idle()

    for search in refused:
        saved = await repo.load_search(search.id)
        assert saved.status is SearchStatus.PAUSED
        assert f"resolves to {PRIVATE}, a private address" in (saved.paused_reason or "")
        assert saved.last_outcomes["rss"].status == "blocked"
    assert (await repo.load_search(good.id)).last_outcomes["rss"].status == "success"
    assert told == []
    states = await repo.load_marketplace_states()
    assert all(state.circuit.state is CircuitState.CLOSED for state in states.values())
    assert states["rss"].consecutive_failures == 0
    assert {request.host.split(":")[0] for request in market.requests} == {"127.0.0.1"}
    assert len(market.requests_to("/rss")) == 1  # the good feed only; no refused one was asked


async def test_a_dead_feed_opens_the_circuit_of_its_own_host_only(
    repo: Repository, market: FakeMarketplace, fetcher: HttpFetcher, adapters: dict[str, RssAdapter]
) -> None:
    """Regression: circuits were kept per marketplace, so one user's dead feed opened the `rss` circuit and held
    back every feed of every user."""
    clock = ManualClock()
    commands = Commands(repo, adapters, clock=clock)
    await add_feed(commands, "a", DEAD_FEED)
    good = await add_feed(commands, "b", GOOD_FEED)
    told: list[Transition] = []

    async def tell_ops(transitions: list[Transition]) -> None:
        told.extend(transitions)

    scanner = Scanner(repo, adapters, fetcher, clock=clock, on_circuit_change=tell_ops,
                      circuit_policy=CircuitPolicy(failure_threshold=2, base_wait=timedelta(hours=1)))
    for _ in range(2):
        clock.advance(minutes=17)
        await scanner.run_until_idle()
    states = await repo.load_marketplace_states()
    assert states["rss:dead.example"].circuit.state is CircuitState.OPEN
    assert states["rss"].circuit.state is CircuitState.CLOSED
    assert states["rss"].last_error == "HTTP 503"  # the marketplace's row still tells what its fetches did

    clock.advance(minutes=17)
    report = await scanner.run_until_idle()

    assert (report.fetches, report.held_searches) == (1, 1)
    assert len(market.requests_to("/rss")) == 3 and len(market.requests_to("/dead")) == 2
    assert (await repo.load_search(good.id)).last_outcomes["rss"].status == "success"
    assert told == []  # one user's feed is not an outage to page the operators about
    circuit_logs = [log for log in await repo.load_task_logs(since=clock() - timedelta(hours=2))
                    if log.query and log.query.startswith("circuit")]
    assert [(log.marketplace, log.query) for log in circuit_logs] == [
        ("rss", "circuit closed -> open for dead.example")]
