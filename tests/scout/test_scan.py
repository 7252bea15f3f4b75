"""A scan pass: due searches, shared fetches, baseline, paused searches and marketplaces, task logs."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import msgspec
import pytest

from bot.commands import Actor, Commands
from scout.circuit import CircuitPolicy
from scout.models import Destination, MarketplaceOutcome
from scout.scan import Scanner, next_run
from scrapers.base import ScrapeResult
from storage.repo import Repository
from tests.fakes.adapters import TableAdapter, make_listing
from tests.scout.clock import ManualClock

DEST = Destination("console", "main")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def market() -> TableAdapter:
    return TableAdapter()


@pytest.fixture
def commands(repo: Repository, market: TableAdapter, clock: ManualClock) -> Commands:
    return Commands(repo, {market.key: market}, clock=clock)


@pytest.fixture
def scanner(repo: Repository, market: TableAdapter, clock: ManualClock) -> Scanner:
    return Scanner(repo, {market.key: market}, fetcher=None, clock=clock,  # type: ignore[arg-type]
                   jitter=0.1)


async def test_searches_asking_the_same_thing_share_one_fetch(
    commands: Commands, scanner: Scanner, market: TableAdapter, clock: ManualClock, repo: Repository
) -> None:
    cheap = await commands.add_search(Actor("a"), DEST, query="RTX  3080", max_price="400")
    dear = await commands.add_search(Actor("b"), Destination("console", "other"), query="rtx 3080",
                                     min_price="401")
    other = await commands.add_search(Actor("c"), DEST, query="lego")
    market.serve("rtx 3080", make_listing(1, "RTX 3080", "350"))
    clock.advance(seconds=10)
    report = await scanner.run_until_idle()
    assert (report.searches, report.fetches) == (3, 2)
    assert sorted(q.text for q in market.calls) == ["lego", "rtx 3080"]
    # Next time round, a new listing is matched by each search's own filters.
    market.serve("rtx 3080", make_listing(1, "RTX 3080", "350"), make_listing(2, "RTX 3080", "300"),
                 make_listing(3, "RTX 3080 OC", "450"))
    clock.advance(minutes=6)
    report = await scanner.run_until_idle()
    assert report.alerts_queued == 2
    alerts = await repo.load_due_deliveries(now=clock(), limit=10, platforms=["console"])
    assert sorted((a.search_id, a.listing.external_id) for a in alerts) == [(cheap.id, "2"), (dear.id, "3")]
    assert other.id not in {a.search_id for a in alerts}


async def test_nothing_runs_before_it_is_due(commands: Commands, scanner: Scanner, market: TableAdapter,
                                             clock: ManualClock, repo: Repository) -> None:
    search = await commands.add_search(Actor("a"), DEST, query="lego", interval_minutes="10")
    clock.advance(seconds=10)
    await scanner.run_until_idle()
    saved = await repo.load_search(search.id)
    # The next run is the interval plus at most 10% jitter away.
    assert clock() + timedelta(minutes=10) <= saved.next_run_at <= clock() + timedelta(minutes=11)
    clock.advance(minutes=9)
    assert (await scanner.run_until_idle()).searches == 0
    assert len(market.calls) == 1


async def test_paused_searches_and_marketplaces_are_skipped(
    commands: Commands, scanner: Scanner, market: TableAdapter, clock: ManualClock, repo: Repository
) -> None:
    paused = await commands.add_search(Actor("a"), DEST, query="lego")
    await commands.pause_search(Actor("a"), paused.id)
    await commands.add_search(Actor("a"), DEST, query="duplo")
    await repo.set_marketplace_status("fakebay", status="paused", reason="blocked us", actor="ops", now=clock())
    clock.advance(seconds=10)
    report = await scanner.run_until_idle()
    assert report.searches == 1 and report.fetches == 0
    assert market.calls == []
    await repo.set_marketplace_status("fakebay", status="active", reason=None, actor="ops", now=clock())
    clock.advance(minutes=6)
    await scanner.run_until_idle()
    assert [q.text for q in market.calls] == ["duplo"]


async def test_blocked_is_logged_and_does_not_count_as_baseline(
    commands: Commands, scanner: Scanner, market: TableAdapter, clock: ManualClock, repo: Repository
) -> None:
    search = await commands.add_search(Actor("a"), DEST, query="lego")
    market.results["lego"] = ScrapeResult.blocked("HTTP 429")
    clock.advance(seconds=10)
    await scanner.run_until_idle()
    market.results["lego"] = ScrapeResult.broken("no results list")
    clock.advance(minutes=6)
    await scanner.run_until_idle()
    logs = await repo.load_task_logs(since=clock() - timedelta(hours=1))
    assert [(log.status, log.error) for log in logs] == [
        ("failed", "layout changed: no results list"), ("blocked", "HTTP 429")]
    # The first good scan is still the baseline: nothing already listed is announced.
    market.serve("lego", make_listing(1, "lego castle"))
    clock.advance(minutes=6)
    assert (await scanner.run_until_idle()).alerts_queued == 0
    market.serve("lego", make_listing(1, "lego castle"), make_listing(2, "lego ship"))
    clock.advance(minutes=6)
    assert (await scanner.run_until_idle()).alerts_queued == 1
    assert (await repo.load_search(search.id)).last_success_at == clock()


async def test_an_adapter_that_raises_fails_its_fetch_only(
    commands: Commands, repo: Repository, market: TableAdapter, clock: ManualClock
) -> None:
    class Exploding(TableAdapter):
        async def search(self, query, fetcher):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug in adapter")

    boom = Exploding(key="boom")
    scanner = Scanner(repo, {market.key: market, "boom": boom}, fetcher=None, clock=clock)  # type: ignore[arg-type]
    commands = Commands(repo, {market.key: market, "boom": boom}, clock=clock)
    await commands.add_search(Actor("a"), DEST, query="lego")
    market.serve("lego", make_listing(1, "lego"))
    clock.advance(seconds=10)
    report = await scanner.run_until_idle()
    assert (report.fetches, report.failed_fetches) == (2, 1)
    statuses = {log.marketplace: (log.status, log.error) for log in
                await repo.load_task_logs(since=clock() - timedelta(hours=1))}
    assert statuses == {"fakebay": ("success", None), "boom": ("failed", "RuntimeError: bug in adapter")}


async def test_result_rows_a_parser_could_not_read_are_logged_never_dropped_silently(
    commands: Commands, scanner: Scanner, market: TableAdapter, clock: ManualClock, repo: Repository
) -> None:
    """A page of 10 result rows of which a parser read 8 used to look like a page of 8 listings: fewer alerts and
    no sign of a layout change. Now it is partial (listings kept, count logged), and broken past half lost."""
    search = await commands.add_search(Actor("a"), DEST, query="lego")
    rows = [make_listing(n, f"lego set {n}") for n in range(1, 11)]
    market.results["lego"] = ScrapeResult.of(rows[:8], rows=10)
    clock.advance(seconds=10)
    report = await scanner.run_until_idle()
    assert (report.fetches, report.failed_fetches) == (1, 0)
    market.results["lego"] = ScrapeResult.of(rows[:4], rows=10)
    clock.advance(minutes=6)
    assert (await scanner.run_until_idle()).failed_fetches == 1
    logs = await repo.load_task_logs(since=clock() - timedelta(hours=1))
    assert [(log.status, log.error, log.listings_found) for log in logs] == [
        ("failed", "layout changed: 6 of 10 result rows could not be read", 4),
        ("partial", "2 of 10 result rows could not be read", 8)]
    assert (await repo.load_search(search.id)).last_outcomes["fakebay"].status == "failed"


def test_a_page_whose_rows_all_became_listings_is_a_plain_success() -> None:
    assert ScrapeResult.of([make_listing(1, "lego")], rows=1).status.value == "success"
    assert ScrapeResult.of([], rows=0).status.value == "empty"
    assert ScrapeResult.of([], rows=3).status.value == "broken"
    assert ScrapeResult.of([make_listing(1, "lego")]).rows_lost == 0


def test_next_run_spreads_within_the_jitter() -> None:
    now = ManualClock()()
    assert next_run(now, 10, 0.1, 0.0) == now + timedelta(minutes=10)
    assert next_run(now, 10, 0.1, 0.999) < now + timedelta(minutes=11)


async def test_the_circuit_opens_on_repeated_blocks_probes_and_closes(
    repo: Repository, market: TableAdapter, clock: ManualClock, commands: Commands
) -> None:
    from scout.circuit import CircuitPolicy, CircuitState

    heard: list[tuple[str, str, str]] = []

    async def on_change(transitions):  # type: ignore[no-untyped-def]
        heard.extend((t.marketplace, t.after.value, t.reason) for t in transitions)

    scanner = Scanner(repo, {market.key: market}, fetcher=None, clock=clock,  # type: ignore[arg-type]
                      circuit_policy=CircuitPolicy(failure_threshold=2, base_wait=timedelta(minutes=30)),
                      on_circuit_change=on_change)
    await commands.add_search(Actor("a"), DEST, query="lego")
    await commands.add_search(Actor("a"), DEST, query="duplo")
    market.results["lego"] = market.results["duplo"] = ScrapeResult.blocked("HTTP 429")
    clock.advance(seconds=10)
    await scanner.run_until_idle()
    assert heard == [("fakebay", "open", "circuit open for 30 min after 2 failed fetches: HTTP 429")]
    state = (await repo.load_marketplace_states())["fakebay"]
    assert state.circuit.state is CircuitState.OPEN

    # While open, due searches are not fetched at all.
    calls = len(market.calls)
    clock.advance(minutes=6)
    await scanner.run_until_idle()
    assert len(market.calls) == calls

    # After the wait one probe goes out; it succeeds and the circuit closes.
    market.serve("lego", make_listing(1, "lego"))
    market.serve("duplo", make_listing(2, "duplo"))
    clock.advance(minutes=30)
    await scanner.run_until_idle()
    assert len(market.calls) == calls + 1
    assert heard[-1] == ("fakebay", "closed", "circuit closed: a fetch succeeded")
    assert (await repo.load_marketplace_states())["fakebay"].circuit.state is CircuitState.CLOSED
    logs = [log for log in await repo.load_task_logs(since=clock() - timedelta(hours=2)) if log.query
            and log.query.startswith("circuit")]
    assert [(log.status, log.query) for log in logs] == [
        ("success", "circuit open -> closed"), ("failed", "circuit closed -> open")]


async def test_an_operator_resume_lets_the_probe_through_at_once(
    repo: Repository, market: TableAdapter, clock: ManualClock, commands: Commands
) -> None:
    from scout.circuit import CircuitPolicy

    scanner = Scanner(repo, {market.key: market}, fetcher=None, clock=clock,  # type: ignore[arg-type]
                      circuit_policy=CircuitPolicy(failure_threshold=1, base_wait=timedelta(hours=1)))
    await commands.add_search(Actor("a"), DEST, query="lego", interval_minutes="5")
    market.results["lego"] = ScrapeResult.blocked("captcha")
    clock.advance(seconds=10)
    await scanner.run_until_idle()
    await repo.set_marketplace_status("fakebay", status="active", reason=None, actor="op", now=clock())
    market.serve("lego", make_listing(1, "lego"))
    clock.advance(minutes=6)
    await scanner.run_until_idle()
    assert len(market.calls) == 2


async def test_searches_that_share_a_fetch_stay_due_together(
    commands: Commands, scanner: Scanner, market: TableAdapter, clock: ManualClock, repo: Repository
) -> None:
    """Regression: a random jitter per search split same-query searches apart after one scan, so they stopped
    sharing their fetch."""
    first = await commands.add_search(Actor("a"), DEST, query="Lego Castle", interval_minutes="10")
    clock.advance(seconds=7)
    second = await commands.add_search(Actor("b"), DEST, query="lego  castle", interval_minutes="10")
    other = await commands.add_search(Actor("c"), DEST, query="duplo", interval_minutes="10")
    clock.advance(seconds=10)
    await scanner.run_until_idle()
    a, b, c = [await repo.load_search(s.id) for s in (first, second, other)]
    assert a.next_run_at == b.next_run_at
    assert c.next_run_at != a.next_run_at


async def test_searches_whose_requests_are_the_same_share_a_fetch(
    repo: Repository, clock: ManualClock
) -> None:
    """A feed is fetched once for every search that reads it, whatever words each one looks for."""

    class FeedLike(TableAdapter):
        def build_request(self, query):  # type: ignore[no-untyped-def]
            from scrapers.base import Request

            return Request(f"https://feeds.test/{query.location}")

    feed = FeedLike(key="feed")
    feed.results["lego"] = ScrapeResult.of([make_listing(1, "lego castle"), make_listing(2, "duplo farm")])
    commands = Commands(repo, {"feed": feed}, clock=clock)
    scanner = Scanner(repo, {"feed": feed}, fetcher=None, clock=clock)  # type: ignore[arg-type]
    await commands.add_search(Actor("a"), DEST, query="lego", location="deals")
    await commands.add_search(Actor("b"), DEST, query="duplo", location="deals")
    await commands.add_search(Actor("c"), DEST, query="lego", location="other")
    clock.advance(seconds=10)
    report = await scanner.run_until_idle()
    assert (report.searches, report.fetches) == (3, 2)


async def test_a_fetch_whose_results_cannot_be_written_fails_alone(repo: Repository, clock: ManualClock) -> None:
    """Regression: one listing the database refused (a price overflowing Numeric(18, 4) on PostgreSQL) aborted the
    scan's single transaction: no fetch of the batch was saved and its searches stayed leased."""
    good, bad = TableAdapter(key="fakebay"), TableAdapter(key="badbay")
    adapters = {"fakebay": good, "badbay": bad}
    commands = Commands(repo, adapters, clock=clock)
    both = await commands.add_search(Actor("a"), DEST, query="lego", marketplaces="fakebay,badbay")
    other = await commands.add_search(Actor("b"), DEST, query="duplo", marketplaces="fakebay")
    good.serve("lego", make_listing(1, "lego castle"))
    good.serve("duplo", make_listing(2, "duplo farm"))
    # A naive timestamp: every database refuses it, as PostgreSQL refuses an amount beyond the price column.
    bad.serve("lego", msgspec.structs.replace(make_listing(3, "lego ship", marketplace="badbay"), posted_at=datetime(2026, 1, 1)))
    scanner = Scanner(repo, adapters, fetcher=None, clock=clock, baseline_first_scan=False)  # type: ignore[arg-type]
    clock.advance(seconds=10)

    report = await scanner.run_until_idle()

    assert (report.fetches, report.failed_fetches, report.alerts_queued) == (3, 1, 2)
    alerts = await repo.load_due_deliveries(now=clock(), limit=10, platforms=["console"])
    assert sorted(a.listing.external_id for a in alerts) == ["1", "2"]
    logs = {(log.marketplace, log.query): (log.status, log.error) for log in
            await repo.load_task_logs(since=clock() - timedelta(hours=1))}
    status, error = logs[("badbay", "lego")]
    assert status == "failed" and "naive datetime" in (error or "")
    saved = await repo.load_search(both.id)
    assert saved.last_outcomes["fakebay"] == MarketplaceOutcome("success", clock(), None, 1)
    assert saved.last_outcomes["badbay"].status == "failed"
    assert "naive datetime" in (saved.last_outcomes["badbay"].error or "")
    # Both searches are rescheduled and free again.
    for search in (saved, await repo.load_search(other.id)):
        assert search.next_run_at > clock() and search.last_run_at == clock()
    assert await repo.claim_due_searches(now=clock() + timedelta(minutes=11), lease_until=clock(), limit=10)


async def test_the_searches_of_a_scan_that_failed_are_free_at_once(
    commands: Commands, scanner: Scanner, market: TableAdapter, clock: ManualClock, repo: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: when a scan could not write its results, its searches stayed leased for SCAN_LEASE_SECONDS, and no
    scan took them again until then."""
    search = await commands.add_search(Actor("a"), DEST, query="lego")
    market.serve("lego", make_listing(1, "lego castle"))

    async def database_gone(**kwargs: object) -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(repo, "save_scan", database_gone)
    clock.advance(seconds=10)
    with pytest.raises(OSError, match="disk I/O error"):
        await scanner.run_until_idle()
    monkeypatch.undo()

    [again] = await repo.claim_due_searches(now=clock(), lease_until=clock() + timedelta(minutes=5), limit=10)
    assert again.id == search.id


async def test_each_search_keeps_its_last_outcome_per_marketplace(
    commands: Commands, scanner: Scanner, market: TableAdapter, clock: ManualClock, repo: Repository
) -> None:
    search = await commands.add_search(Actor("a"), DEST, query="lego")
    market.serve("lego", make_listing(1, "lego castle"), make_listing(2, "duplo farm"))
    clock.advance(seconds=10)
    await scanner.run_until_idle()
    first = clock()
    assert (await repo.load_search(search.id)).last_outcomes == {
        "fakebay": MarketplaceOutcome("success", first, None, 2)}

    market.results["lego"] = ScrapeResult.blocked("HTTP 429")
    clock.advance(minutes=6)
    await scanner.run_until_idle()
    assert (await repo.load_search(search.id)).last_outcomes == {
        "fakebay": MarketplaceOutcome("blocked", clock(), "HTTP 429", 0)}


async def test_the_scan_says_how_many_searches_an_open_circuit_held_back(
    repo: Repository, market: TableAdapter, clock: ManualClock, commands: Commands, caplog: pytest.LogCaptureFixture
) -> None:
    scanner = Scanner(repo, {market.key: market}, fetcher=None, clock=clock,  # type: ignore[arg-type]
                      circuit_policy=CircuitPolicy(failure_threshold=1, base_wait=timedelta(hours=1)))
    for query in ("lego", "duplo", "lego"):
        await commands.add_search(Actor("a"), DEST, query=query)
    market.results["lego"] = market.results["duplo"] = ScrapeResult.blocked("captcha")
    clock.advance(seconds=10)
    await scanner.run_until_idle()

    clock.advance(minutes=6)
    with caplog.at_level(logging.INFO, logger="scout.scan"):
        report = await scanner.run_until_idle()

    assert (report.searches, report.fetches, report.held_searches) == (3, 0, 3)
    assert "3 searches held back by an open circuit" in caplog.text
