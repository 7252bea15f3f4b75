"""Parse cost of the real marketplace pages, and event-loop lag while the adapters parse them.

Part 1 times `adapter.parse(Page(...))` (eBay, eBay Browse API, Craigslist, Facebook Marketplace, Vinted, Kleinanzeigen,
Kijiji, Reddit, and the RSS/Atom adapter on a real Kijiji feed) on every real page in ../shared/fixtures against the
floors for the same bytes: a bare `lxml.html.fromstring` and a bare lexbor parse (`selectolax`'s LexborHTMLParser)
for HTML, `lxml.etree.fromstring` for feeds, `json.loads` for JSON. ROUNDS rounds each time the floors and the parse
one after the other, on enough calls to last about ROUND_SECONDS each, so that a busy spell of the machine slows a
round's calls alike; a multiple is the median over the rounds of each round's own ratio, and the times shown are
each call's best round. Targets, as multiples of the lxml (or JSON) floor: eBay 0.6x, the other HTML pages 1.0x,
feeds and JSON 2x.

Part 2 runs CONCURRENT parses of the largest pages through `Adapter.search` (which sends big pages to a worker
thread) with a fake fetcher, while a probe task measures how late the event loop wakes it; then the same parses
called inline on the loop, for comparison.

Run from the project root:  .venv/bin/python -m bench.parse
Pages missing from ../shared/fixtures are skipped with a note. Whole run: about 45 s.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import lxml.etree
import lxml.html
from selectolax.lexbor import LexborHTMLParser

from bench.common import LagProbe, print_table
from scout.models import Listing
from scrapers.base import Adapter, Page, Request, ScrapeStatus, SearchQuery
from scrapers.craigslist.adapter import CraigslistAdapter
from scrapers.ebay.adapter import EbayAdapter
from scrapers.ebay_api.adapter import EbayApiAdapter
from scrapers.facebook.adapter import FacebookAdapter
from scrapers.kijiji.adapter import KijijiAdapter
from scrapers.kleinanzeigen.adapter import KleinanzeigenAdapter
from scrapers.reddit.adapter import RedditAdapter
from scrapers.rss.adapter import RssAdapter
from scrapers.vinted.adapter import VintedAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
PAGES = [
    "ebay/srp-2021-01-warhammer-uk-sitem.html",
    "ebay/srp-2025-08-bluray-uk-scard.html",
    "ebay/srp-2025-11-adidas-scard-prettified.html",
    "ebay/srp-2026-02-nike-shoes-scard.html",
    "ebay/srp-2026-07-pokemon-scard.html",
    "craigslist/sfbay-sss-surfing-board-static-2025-10.html",
    "craigslist/sapi-v7-corvallis-sss-macbook-2022-12.json",
    "facebook/marketplace-search-kitchenaid-mixer-logged-out-2025-04.html",
    "ebay-api/browse-item_summary-search-iphone-bestmatch-2023-07.json",
    "vinted/catalog-items-pl-nike-2025-10.json",
    "kleinanzeigen/vip-page-with-10-similar-aditem-cards-2025-05.html",
    "kleinanzeigen/srp-2026-04-lego-nan.html",
    "kleinanzeigen/bot-challenge-page-2021-12.html",
    "kijiji/rss-srp-k0c10l9001-2023-07-15.rss",
    "kijiji/rss-srp-k0c623l9001-2023-07-15.rss",
    "reddit/askreddit-new-limit100-2016-03-praw-cassette.json",
]
# The RSS/Atom adapter reads any feed a user gives and has no site of its own: it is timed on a real Kijiji feed.
FEED_PAGES = ["kijiji/rss-srp-k0c10l9001-2023-07-15.rss"]
# Short rounds, many of them: a noisy neighbour's burst lasts longer than a round, so it slows both halves of a pair.
ROUNDS = 50
ROUND_SECONDS = 0.02
# Targets as multiples of the floor, from the performance goals: eBay pages are the bulk of a scan's parsing.
EBAY_TARGET = 0.6
HTML_TARGET = 1.0
STRUCTURED_TARGET = 2.0  # feeds and JSON, against lxml.etree / json.loads
CONCURRENT = 50
LARGEST = 3  # part 2 cycles through this many of the largest pages
ITEM_HOST = b'href="https://'


@dataclass(frozen=True)
class Case:
    name: str
    adapter: Adapter
    page: Page

    @property
    def is_html(self) -> bool:
        return self.page.content_type.startswith("text/html")

    @property
    def target(self) -> float:
        if not self.is_html:
            return STRUCTURED_TARGET
        return EBAY_TARGET if isinstance(self.adapter, EbayAdapter) else HTML_TARGET

    def floor(self) -> object:
        """The bare parse every parser of this kind of page starts from: lxml for HTML and feeds, json for JSON."""
        if self.page.content_type.startswith("application/json"):
            return json.loads(self.page.body)
        if self.page.content_type.startswith("application/rss+xml"):
            return lxml.etree.fromstring(self.page.body)
        return lxml.html.fromstring(self.page.body)

    def lexbor_floor(self) -> object:
        return LexborHTMLParser(self.page.body)

    def parse(self) -> object:
        return self.adapter.parse(self.page)

    @property
    def is_feed(self) -> bool:
        return self.page.content_type.startswith("application/rss+xml")

    def bare_read(self) -> list[Listing]:
        return bare_feed_read(self.page.body)


def bare_feed_read(body: bytes) -> list[Listing]:
    """The least any reader of an RSS 2.0 feed does: the bare parse, then each item's title, link, guid and
    description texts taken as they stand into a Listing. No date, price, picture, unescaping, whitespace or check:
    a reference for how much of a feed reader's multiple the reading itself leaves."""
    channel = next(lxml.etree.fromstring(body).iterchildren("channel"))
    listings = []
    for item in channel.iterchildren("item"):
        title = link = guid = description = None
        for child in item[:]:
            tag = child.tag
            if tag == "title":
                title = child.text
            elif tag == "link":
                link = child.text
            elif tag == "guid":
                guid = child.text
            elif tag == "description":
                description = child.text
        listings.append(Listing(marketplace="rss", external_id=guid or link or "", title=title or "", url=link or "",
                                description=description))
    return listings


def ebay_domain(body: bytes) -> str:
    """The eBay site the page's item links point at (the adidas page has a Spanish UI but links to www.ebay.com)."""
    hosts = Counter(
        chunk.split(b"/", 1)[0].decode()
        for chunk in body.split(ITEM_HOST)[1:]
        if b"/itm/" in chunk[:80] and chunk.startswith(b"www.ebay.")
    )
    return hosts.most_common(1)[0][0] if hosts else "www.ebay.com"


def load_cases() -> list[Case]:
    cases = []
    for name in PAGES:
        path = FIXTURES / name
        if not path.is_file():
            print(f"note: skipping {name}: not found under {FIXTURES}")
            continue
        body = path.read_bytes()
        if name.startswith("ebay/"):
            domain = ebay_domain(body)
            page = Page(f"https://{domain}/sch/i.html?_nkw=bench", 200, body, "text/html; charset=utf-8")
            cases.append(Case(name, EbayAdapter(domain=domain), page))
        elif name.startswith("facebook/"):
            url = "https://www.facebook.com/marketplace/saltlakecity/search/"
            page = Page(url, 200, body, "text/html; charset=utf-8")
            cases.append(Case(name, FacebookAdapter(), page))
        elif name.startswith("ebay-api/"):
            # Parsing needs no credentials; these only satisfy the constructor.
            page = Page("https://api.ebay.com/buy/browse/v1/item_summary/search", 200, body, "application/json")
            cases.append(Case(name, EbayApiAdapter("bench", "bench"), page))
        elif name.startswith("vinted/"):
            page = Page("https://www.vinted.pl/api/v2/catalog/items", 200, body, "application/json")
            cases.append(Case(name, VintedAdapter("www.vinted.pl"), page))
        elif name.startswith("kleinanzeigen/"):
            page = Page("https://www.kleinanzeigen.de/s-bench/k0", 200, body, "text/html; charset=utf-8")
            cases.append(Case(name, KleinanzeigenAdapter(), page))
        elif name.startswith("kijiji/"):
            page = Page("https://www.kijiji.ca/rss-srp-canada/bench/k0l0", 200, body, "application/rss+xml")
            cases.append(Case(name, KijijiAdapter(), page))
        elif name.startswith("reddit/"):
            page = Page("https://www.reddit.com/r/askreddit/new.json", 200, body, "application/json")
            cases.append(Case(name, RedditAdapter(), page))
        elif name.endswith(".json"):
            page = Page("https://corvallis.craigslist.org/search/sss", 200, body, "application/json")
            cases.append(Case(name, CraigslistAdapter(), page))
        else:
            page = Page("https://sfbay.craigslist.org/search/sss", 200, body, "text/html; charset=utf-8")
            cases.append(Case(name, CraigslistAdapter(), page))
    for name in FEED_PAGES:
        if (FIXTURES / name).is_file():
            page = Page("https://feeds.example/deals.rss", 200, (FIXTURES / name).read_bytes(), "application/rss+xml")
            cases.append(Case(name, RssAdapter(), page))
    return cases


def adapter_site(adapter: Adapter) -> str:
    if isinstance(adapter, (EbayAdapter, VintedAdapter)):
        return adapter.domain
    if isinstance(adapter, EbayApiAdapter):
        return f"api {adapter.marketplace_id}"
    return adapter.key


def calls_per_round(call: Callable[[], object]) -> int:
    """How many calls last about ROUND_SECONDS (timeit's method), from one timed call."""
    started = time.perf_counter()
    call()
    return max(1, round(ROUND_SECONDS / max(time.perf_counter() - started, 1e-6)))


@dataclass(frozen=True)
class Timing:
    rounds: list[list[float]]  # per call, its per-call seconds in each round

    def best_ms(self, call: int) -> float:
        return min(self.rounds[call]) * 1000

    def ratio(self, call: int, against: int) -> float:
        """The median over the rounds of the call's time against another's in the same round."""
        return statistics.median(t / u for t, u in zip(self.rounds[call], self.rounds[against]))


def time_paired(calls: list[Callable[[], object]]) -> Timing:
    """Time the calls in ROUNDS rounds, each round running every call in turn."""
    numbers = [calls_per_round(call) for call in calls]
    rounds: list[list[float]] = [[] for _ in calls]
    for _ in range(ROUNDS):
        for times, call, number in zip(rounds, calls, numbers):
            started = time.perf_counter()
            for _ in range(number):
                call()
            times.append((time.perf_counter() - started) / number)
    return Timing(rounds)


def bench_cost(cases: list[Case]) -> bool:
    print(f"\nParse cost: {ROUNDS} rounds of ~{ROUND_SECONDS * 1000:.0f} ms per call kind; x lxml = parse / floor "
          f"(lxml.html, or lxml.etree / json.loads), x lexbor = parse / bare lexbor parse of the same HTML, each the "
          f"median of the rounds' ratios; ms: the best round\n")
    rows = []
    bare: list[tuple[str, str, str, str, str]] = []
    ok = True
    for case in cases:
        result = case.adapter.parse(case.page)
        lexbor_ms = lexbor_ratio = None
        if case.is_html:
            timing = time_paired([case.floor, case.parse, case.lexbor_floor])
            lexbor_ms, lexbor_ratio = timing.best_ms(2), timing.ratio(1, 2)
        elif case.is_feed:
            timing = time_paired([case.floor, case.parse, case.bare_read])
            bare.append((case.name, case.adapter.key, f"{timing.best_ms(2):.2f}", f"{timing.ratio(2, 0):.2f}x",
                         f"{timing.ratio(1, 0):.2f}x"))
        else:
            timing = time_paired([case.floor, case.parse])
        floor_ms, parse_ms, ratio = timing.best_ms(0), timing.best_ms(1), timing.ratio(1, 0)
        met = ratio <= case.target
        ok = ok and met
        rows.append((case.name, adapter_site(case.adapter), f"{len(case.page.body):,}", len(result.listings),
                     f"{floor_ms:.2f}", "-" if lexbor_ms is None else f"{lexbor_ms:.2f}", f"{parse_ms:.2f}",
                     f"{ratio:.2f}x", "-" if lexbor_ratio is None else f"{lexbor_ratio:.2f}x",
                     f"<= {case.target:g}x", "ok" if met else "MISSED"))
    print_table(("page", "adapter site", "bytes", "listings", "floor ms", "lexbor ms", "parse ms", "x lxml",
                 "x lexbor", "target", ""), rows)
    if bare:
        print("\nFeeds against a bare read (bench.parse.bare_feed_read: the parse, then four child texts of each item "
              "into a Listing, nothing more), in the same rounds; x lxml as above\n")
        print_table(("page", "adapter", "bare read ms", "bare read x lxml", "parse x lxml"), bare)
    return ok


class PageFetcher:
    """A Fetcher that answers every request with one page, after yielding once as a real fetch would."""

    def __init__(self, page: Page) -> None:
        self.page = page

    async def fetch(self, request: Request) -> Page:
        await asyncio.sleep(0)
        return self.page


async def via_search(case: Case) -> int:
    result = await case.adapter.search(SearchQuery.build("bench"), PageFetcher(case.page))
    assert result.status is ScrapeStatus.SUCCESS, result.detail
    return len(result.listings)


async def inline(case: Case) -> int:
    page = await PageFetcher(case.page).fetch(Request(case.page.url))
    return len(case.adapter.parse(page).listings)


async def lag_during(
    parse: Callable[[Case], Awaitable[int]], cases: list[Case]
) -> tuple[float, int, tuple[float, float, float], int]:
    async with LagProbe() as probe:
        await asyncio.sleep(0.05)  # a few idle samples first, as a running service would have
        started = time.perf_counter()
        counts = await asyncio.gather(*(parse(cases[i % len(cases)]) for i in range(CONCURRENT)))
        wall = time.perf_counter() - started
        await asyncio.sleep(0.05)
    return wall, sum(counts), probe.summary_ms(), len(probe.lags)


async def bench_lag(cases: list[Case]) -> None:
    largest = sorted(cases, key=lambda c: len(c.page.body), reverse=True)[:LARGEST]
    names = ", ".join(Path(c.name).name for c in largest)
    print(f"\nEvent-loop lag during {CONCURRENT} concurrent parses of the {len(largest)} largest pages ({names});")
    print("probe wakes every 10 ms; lag = how late it woke (a blocked loop also means fewer samples)\n")
    rows = []
    for label, parse in (("Adapter.search (worker thread)", via_search), ("adapter.parse inline on the loop", inline)):
        wall, listings, (p50, p99, worst), samples = await lag_during(parse, largest)
        rows.append((label, f"{wall * 1000:.0f}", listings, f"{p50:.1f}", f"{p99:.1f}", f"{worst:.1f}", samples))
    print_table(("parsing via", "wall ms", "listings", "lag p50 ms", "lag p99 ms", "lag max ms", "probe samples"),
                rows)


def main() -> int:
    cases = load_cases()
    if not cases:
        print(f"no fixture pages found under {FIXTURES}: nothing to measure")
        return 0
    met = bench_cost(cases)
    asyncio.run(bench_lag(cases))
    print(f"\nparse cost targets: {'met on every page' if met else 'MISSED on some page'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
