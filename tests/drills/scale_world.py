"""The scale drill's world: three marketplaces of fake pages that list one more item on every request, the 60
searches that watch them from six Telegram chats, and the alerts each chat should get, counted at the fakes.

Every request to a page is answered with a new version of it: version n (the n-th request for that marketplace
and query) lists INITIAL_ITEMS + n items, so a task's `listings_found` in task_logs names the very request it
committed, and a version committed twice is a fetch group committed twice.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote

from scout.models import Destination
from tests.fakes.craigslist_pages import craigslist_results_page
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.kleinanzeigen_pages import kleinanzeigen_results_page
from tests.fakes.marketplace import Answer, FakeMarketplace, RecordedRequest
from tests.fakes.telegram_api import FakeBotApi

QUERIES = ("lego castle", "nintendo switch", "road bike", "espresso machine", "vinyl records")
CHATS = tuple(4243001 + n for n in range(6))  # private chats: Telegram's only limit there is a message a second
INITIAL_ITEMS = 3
KINDS = ("mint", "broken", "boxed")
MAX_PRICE = Decimal(100)
EXCLUDED = "broken"

Pair = tuple[Destination, str, str]  # destination, marketplace, external id: one alert


@dataclass(frozen=True)
class Market:
    key: str
    host: str  # what the adapter asks for, sent to the fake by DEALSCOUT_DRILL_RESOLVE
    first_id: int
    link: re.Pattern[str]  # a listing's id in the link an alert carries

    def path(self, query: str) -> str:
        if self.key == "kleinanzeigen":
            return f"/s-{quote('-'.join(query.split()), safe='-')}/k0"
        return "/sch/i.html" if self.key == "ebay" else "/search/sss"

    def query_of(self, request: RecordedRequest) -> str | None:
        if self.key == "ebay":
            return request.query.get("_nkw")
        if self.key == "craigslist":
            return request.query.get("query")
        return next((q for q in QUERIES if self.path(q) == request.path), None)

    def render(self, items: Iterable[Item]) -> str:
        rows = [(item.id, item.title, str(item.price)) for item in items]
        if self.key == "ebay":
            return ebay_results_page((n, title, f"{price}.00") for n, title, price in rows)
        if self.key == "craigslist":
            return craigslist_results_page(rows)
        return kleinanzeigen_results_page(rows)


MARKETS = (
    Market("ebay", "www.ebay.com", 300_000_000_000, re.compile(r"www\.ebay\.com/itm/(\d+)")),
    Market("craigslist", "sfbay.craigslist.org", 7_800_000_000, re.compile(r"craigslist\.org/\S*?/(\d+)\.html")),
    Market("kleinanzeigen", "www.kleinanzeigen.de", 2_900_000_000,
           re.compile(r"kleinanzeigen\.de/s-anzeige/[^/\s\"']+/(\d+)-")),
)


@dataclass(frozen=True)
class Item:
    id: int
    title: str
    price: Decimal


@dataclass(frozen=True)
class Watch:
    """One saved search: its page, its filter written out (so the drill knows what to expect) and its chat."""

    market: Market
    query: str
    chat: int
    max_price: Decimal | None = None
    exclude: str | None = None

    @property
    def destination(self) -> Destination:
        return Destination("telegram", str(self.chat))

    def wants(self, item: Item) -> bool:
        return ((self.exclude is None or self.exclude not in item.title.split())
                and (self.max_price is None or item.price <= self.max_price))

    def search_fields(self) -> dict[str, str]:
        """The fields of bot.commands.Commands.add_search that make this search (every minute)."""
        fields = {"query": self.query, "marketplaces": self.market.key, "interval_minutes": "1"}
        if self.max_price is not None:
            fields["max_price"] = str(self.max_price)
        if self.exclude is not None:
            fields["exclude"] = self.exclude
        return fields


def build_watches() -> list[Watch]:
    """Four searches per page, each with another filter and chat: 3 marketplaces x 5 queries x 4 = 60."""
    filters: tuple[tuple[Decimal | None, str | None], ...] = (
        (None, None), (MAX_PRICE, None), (None, EXCLUDED), (MAX_PRICE, EXCLUDED))
    watches = []
    for market in MARKETS:
        for query in QUERIES:
            for max_price, exclude in filters:
                watches.append(Watch(market, query, CHATS[len(watches) % len(CHATS)], max_price, exclude))
    return watches


@dataclass
class Page:
    """One marketplace's answers to one query: item k is listed from version k - INITIAL_ITEMS on."""

    market: Market
    index: int
    query: str
    versions: int = 0  # requests answered so far
    hold_next: asyncio.Event | None = None
    held_versions: list[int] = field(default_factory=list)

    def item(self, k: int) -> Item:
        return Item(self.market.first_id + self.index * 1000 + k, f"{self.query} {KINDS[k % len(KINDS)]} no {k}",
                    Decimal(20 + (k * 37) % 160))

    def items(self, version: int) -> list[Item]:
        return [self.item(k) for k in range(1, INITIAL_ITEMS + version + 1)]

    def answer(self) -> Answer:
        self.versions += 1
        body = self.market.render(reversed(self.items(self.versions))).encode()
        hold, self.hold_next = self.hold_next, None
        if hold is not None:
            self.held_versions.append(self.versions)
        return Answer(body=body, hold=hold)


class Catalogue:
    """Every page of every marketplace, served by one fake per marketplace host."""

    def __init__(self, fakes: dict[str, FakeMarketplace]) -> None:
        self.fakes = fakes
        self._holds: list[asyncio.Event] = []
        self.pages = {(market.key, query): Page(market, n, query)
                      for market in MARKETS for n, query in enumerate(QUERIES)}
        for market in MARKETS:
            for path in {market.path(query) for query in QUERIES}:
                fakes[market.key].respond(path, self._responder(market))

    def _responder(self, market: Market) -> Callable[[RecordedRequest], Answer | None]:
        def respond(request: RecordedRequest) -> Answer | None:
            query = market.query_of(request)
            page = self.pages.get((market.key, query or ""))
            return page.answer() if page is not None else None
        return respond

    def hold(self, marketplace: str, query: str) -> asyncio.Event:
        """Hold the answer to the next request for this page until the event is set (release_all sets them all)."""
        release = asyncio.Event()
        self.pages[marketplace, query].hold_next = release
        self._holds.append(release)
        return release

    def release_all(self) -> None:
        for release in self._holds:
            release.set()

    def page_of(self, marketplace: str, query: str) -> Page:
        return self.pages[marketplace, query]

    def version_of(self, listings_found: int) -> int:
        return listings_found - INITIAL_ITEMS

    def expected(self, watches: Iterable[Watch], committed: dict[tuple[str, str], int]) -> set[Pair]:
        """The alerts of the versions committed: every listing up to each page's newest committed version, to
        every chat one of whose searches on that page wants it."""
        pairs = set()
        for watch in watches:
            newest = committed.get((watch.market.key, watch.query), 0)
            for item in self.pages[watch.market.key, watch.query].items(newest) if newest else ():
                if watch.wants(item):
                    pairs.add((watch.destination, watch.market.key, str(item.id)))
        return pairs


class Arrivals:
    """The alerts that reached each chat, read from the fake Bot API's accepted sends (each listing once per
    message; a digest names several)."""

    def __init__(self, telegram: FakeBotApi) -> None:
        self._telegram = telegram
        self._read = 0
        self.counts: Counter[Pair] = Counter()
        self.messages = 0
        self.digests = 0

    def update(self) -> Counter[Pair]:
        for call in self._telegram.sent[self._read:]:
            if call.method.lower() not in ("sendmessage", "sendphoto"):
                continue
            text = call.text + str(call.params.get("reply_markup") or "")
            found = {(market.key, listing) for market in MARKETS for listing in market.link.findall(text)}
            self.messages += 1
            self.digests += len(found) > 1
            self.counts.update((Destination("telegram", str(call.chat_id)), key, listing) for key, listing in found)
        self._read = len(self._telegram.sent)
        return self.counts
