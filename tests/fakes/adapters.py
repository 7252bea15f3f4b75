"""An in-memory marketplace adapter for engine tests: answers each query from a table the test controls."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from scout.models import Listing, Money
from scrapers.base import Adapter, Capabilities, Fetcher, Page, Request, ScrapeResult, SearchQuery


def make_listing(n: int, title: str, price: str | None = "100", marketplace: str = "fakebay",
                 currency: str = "USD") -> Listing:
    return Listing(
        marketplace=marketplace, external_id=str(n), title=title, url=f"https://fakebay.test/itm/{n}",
        price=Money(Decimal(price), currency) if price is not None else None,
    )


@dataclass
class TableAdapter(Adapter):
    """Returns `results[query.text]` (default: empty) and counts the calls per query."""

    key: str = "fakebay"
    name: str = "FakeBay"
    min_interval_minutes: int = 5
    requests_per_minute: float = 60.0
    capabilities: Capabilities = Capabilities(location=True)
    results: dict[str, ScrapeResult] = field(default_factory=dict)
    calls: list[SearchQuery] = field(default_factory=list)

    def build_request(self, query: SearchQuery) -> Request:
        return Request(f"https://{self.key}.test/search?q={query.text}")

    def parse(self, page: Page) -> ScrapeResult:
        raise NotImplementedError

    async def search(self, query: SearchQuery, fetcher: Fetcher) -> ScrapeResult:
        self.calls.append(query)
        return self.results.get(query.text, ScrapeResult.of([]))

    def serve(self, query: str, *listings: Listing) -> None:
        self.results[query] = ScrapeResult.of(list(listings))
