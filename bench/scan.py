"""A scan of 1,000 saved searches over 200 distinct queries against a local fake eBay, through the database and outbox.

Builds the real service (`scout.app.build_service`) on a fresh SQLite file in a temp folder (or `--database-url`, which
must point at an empty database), adds 1,000 searches through `Commands.add_search` (5 per query, with different
price ranges and excluded words), and serves a distinct 50-listing eBay result page per query from the fake
marketplace, which runs on its own thread and event loop so its serving work is not charged to the scan's loop.

Measured: the first scan (`scanner.run_until_idle()`, all 1,000 due at once, BASELINE_FIRST_SCAN=false so matches
reach the outbox) with event-loop lag from a 10 ms probe and peak RSS; draining the outbox with a notifier that
counts and discards; and a second scan once every search is due again (all listings known: the steady state).
Targets: >= 50 searches/s, loop lag p99 < 100 ms.

Run from the project root:  .venv/bin/python -m bench.scan [--database-url postgresql://postgres@127.0.0.1/<empty db>]
Takes about 60 s on SQLite (a third of it draining the outbox), 90 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psutil
import sqlalchemy as sa

from bench.common import LagProbe, print_table
from bot.commands import MAX_SEARCHES_PER_OWNER, Actor
from scout.app import Service, build_service
from scout.config import load_settings
from scout.delivery import DeliveryResult
from scout.models import Alert, Destination, Notice
from scout.scan import ScanReport
from scrapers.base import SearchQuery
from storage.db import safe_url
from storage.tables import SearchRow
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.marketplace import FakeMarketplace

EBAY_HOST = "www.ebay.com"
BRANDS = ["sony", "nikon", "canon", "lego", "nintendo", "apple", "dell", "bose", "fender", "gibson",
          "yamaha", "dyson", "garmin", "kitchenaid", "makita", "dewalt", "lenovo", "samsung", "omega", "seiko"]
PRODUCTS = ["camera", "lens", "console", "laptop", "headphones", "guitar", "watch", "drill", "speaker", "monitor"]
QUERIES = [f"{brand} {product}" for brand in BRANDS for product in PRODUCTS]  # 200 distinct queries
NOTES = ["new", "used", "mint", "boxed", "sealed", "bundle", "broken", "for parts", "refurbished", "vintage"]
LISTINGS_PER_PAGE = 50
# Five searches per query: (min price, max price, excluded words).
VARIANTS = [(None, "100", ""), (None, "250", "broken parts"), (None, "500", "bundle"), ("50", "300", ""),
            (None, None, "broken")]
TARGET_SEARCHES_PER_S = 50.0
TARGET_LAG_P99_MS = 100.0


class CountingNotifier:
    """The console platform's notifier, replaced: counts alerts and sends nothing."""

    platform = "console"

    def __init__(self) -> None:
        self.alerts = 0

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult:
        self.alerts += 1
        return DeliveryResult.ok()

    async def send_notice(self, destination: Destination, notice: Notice) -> DeliveryResult:
        return DeliveryResult.ok()


def result_page(query_index: int, query: str, rng: random.Random) -> str:
    base = 300_000_000_000 + query_index * 1000
    items = [(base + n, f"{query.title()} {' '.join(rng.sample(NOTES, 2))} #{n}", f"{rng.uniform(5, 600):.2f}")
             for n in range(LISTINGS_PER_PAGE)]
    return ebay_results_page(items)


@contextmanager
def market_on_own_thread() -> Iterator[FakeMarketplace]:
    """A FakeMarketplace serving from a second thread's event loop, as a remote site would."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-market", daemon=True)
    thread.start()
    market = asyncio.run_coroutine_threadsafe(FakeMarketplace().start(), loop).result()
    try:
        yield market
    finally:
        asyncio.run_coroutine_threadsafe(market.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def add_searches(service: Service) -> None:
    destination = Destination("console", "main")
    n = 0
    for query in QUERIES:
        for low, high, exclude in VARIANTS:
            # Commands caps searches per owner, so the 1,000 belong to 10 owners.
            actor = Actor(f"bench-{n // MAX_SEARCHES_PER_OWNER}")
            await service.commands.add_search(actor, destination, query=query, marketplaces="ebay",
                                              min_price=low, max_price=high, exclude=exclude)
            n += 1


async def make_all_due(service: Service) -> None:
    """Every search due now, as if its interval had passed (no command does this, so plain SQL)."""
    async with service.store.engine.begin() as conn:
        await conn.execute(sa.update(SearchRow).values(next_run_at=datetime.now(UTC) - timedelta(seconds=1)))


@dataclass
class ScanPass:
    label: str
    report: ScanReport
    seconds: float
    lag_ms: tuple[float, float, float]  # p50, p99, max
    samples: int
    requests: int = 0  # HTTP requests the fake site saw

    def row(self) -> tuple[object, ...]:
        r = self.report
        return (self.label, r.searches, f"{self.seconds:.2f}", f"{r.searches / self.seconds:.0f}", r.fetches,
                self.requests, r.new_listings, r.alerts_queued, r.failed_fetches, *(f"{x:.1f}" for x in self.lag_ms),
                self.samples)


PASS_HEADERS = ("pass", "searches", "seconds", "searches/s", "fetches", "HTTP requests", "listings stored",
                "alerts queued", "failed", "lag p50 ms", "lag p99 ms", "lag max ms", "probe samples")


async def timed_scan(label: str, service: Service, market: FakeMarketplace) -> ScanPass:
    before = len(market.requests_to("/sch/i.html"))
    async with LagProbe() as probe:
        started = time.perf_counter()
        report = await service.scanner.run_until_idle()
        seconds = time.perf_counter() - started
    requests = len(market.requests_to("/sch/i.html")) - before
    return ScanPass(label, report, seconds, probe.summary_ms(), len(probe.lags), requests)


async def run(database_url: str | None) -> None:
    counter = CountingNotifier()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="dealscout-bench-") as data_dir, market_on_own_thread() as market:
        for i, query in enumerate(QUERIES):
            market.route("/sch/i.html", result_page(i, query, rng), query={"_nkw": SearchQuery.build(query).text})
        env = {"DEALSCOUT_DATA_DIR": data_dir, "BASELINE_FIRST_SCAN": "false", "DATABASE_URL": database_url or ""}
        settings = load_settings(env, env_file=None)
        where = safe_url(settings.resolved_database_url)
        async with build_service(settings, resolve=market.resolving(EBAY_HOST),
                                 notifiers={"console": counter}) as service:
            if await service.store.repo.count_searches():
                raise SystemExit(f"{where} already holds searches: give an empty database")
            service.fetcher.set_host_rate(EBAY_HOST, float("inf"))  # the fake site does not mind; eBay's is 3/min
            started = time.perf_counter()
            await add_searches(service)
            print(f"\ndatabase: {where}")
            print(f"{await service.store.repo.count_searches()} searches over {len(QUERIES)} queries added in "
                  f"{time.perf_counter() - started:.1f} s; {LISTINGS_PER_PAGE} listings per result page; "
                  f"scan batch {settings.scan_batch_size}, concurrency {settings.scan_concurrency}; "
                  f"RSS {rss_mb():.0f} MB\n")

            first = await timed_scan("first scan (new listings)", service, market)
            first_peak = peak_rss_mb()
            started = time.perf_counter()
            drained = await service.dispatcher.drain()
            drain_s = time.perf_counter() - started
            await make_all_due(service)
            second = await timed_scan("second scan (all known)", service, market)

    print_table(PASS_HEADERS, [first.row(), second.row()])
    print(f"\noutbox drain: {drained.sent} alerts sent ({counter.alerts} counted, {drained.retried} retried, "
          f"{drained.dead} dead) in {drain_s:.2f} s = {drained.sent / drain_s:.0f} alerts/s")
    print(f"peak RSS: {first_peak:.0f} MB after the first scan, {peak_rss_mb():.0f} MB at the end "
          f"(one process: the fake site's pages and server included)")
    rate, p99 = first.report.searches / first.seconds, first.lag_ms[1]
    print(f"\ntargets (first scan): {rate:.0f} searches/s (>= {TARGET_SEARCHES_PER_S:g}: "
          f"{'met' if rate >= TARGET_SEARCHES_PER_S else 'MISSED'}); loop lag p99 {p99:.1f} ms "
          f"(< {TARGET_LAG_P99_MS:g}: {'met' if p99 < TARGET_LAG_P99_MS else 'MISSED'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY database to use instead of a temp SQLite file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("scrapers.http").setLevel(logging.INFO)  # so any retry shows, with its reason
    asyncio.run(run(args.database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
