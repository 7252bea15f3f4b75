"""Adapters end to end: adapter -> real HttpFetcher -> local fake marketplace -> ScrapeResult (eBay and Craigslist in
depth; every fixed-host adapter for the redirects it may follow)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from scrapers.base import Adapter, ScrapeResult, ScrapeStatus, SearchQuery
from scrapers.craigslist.adapter import CraigslistAdapter
from scrapers.ebay.adapter import EbayAdapter
from scrapers.ebay_api.adapter import TOKEN_PATH, EbayApiAdapter
from scrapers.facebook.adapter import FacebookAdapter
from scrapers.http import HttpFetcher
from scrapers.kijiji.adapter import KijijiAdapter
from scrapers.kleinanzeigen.adapter import KleinanzeigenAdapter
from scrapers.netguard import SiteGuard
from scrapers.reddit.adapter import RedditAdapter
from scrapers.vinted.adapter import VintedAdapter
from tests.conftest import fixture_path
from tests.fakes.marketplace import TEST_USER_AGENT, FakeMarketplace, FakeTime

MakeFetcher = Callable[..., HttpFetcher]

# -- synthetic pages, written for these tests to mimic each site's structure --------------------------------------

EBAY_SCARD = """<!DOCTYPE html><html><head><title>lego for sale | eBay</title></head><body>
<h1 class="srp-controls__count-heading">2 results for lego</h1>
<ul class="srp-results srp-list">
<li class="s-card s-card--horizontal" data-listingid="100000000001">
  <a class="s-card__link" href="https://www.ebay.com/itm/100000000001?hash=item1">
    <div class="s-card__title"><span>Lego Technic 42100</span><span class="clipped">Opens in a new window or tab</span></div>
  </a>
  <div class="s-card__attribute-row"><span class="s-card__price">$250.00</span></div>
  <div class="s-card__attribute-row">Located in United States</div>
</li>
<li class="s-card" data-listingid="100000000002">
  <a href="https://www.ebay.com/itm/100000000002"><div class="s-card__title">Lego Star Wars 75192</div></a>
  <div class="s-card__attribute-row"><span class="s-card__price">$1,234.56</span></div>
</li>
</ul></body></html>"""

EBAY_SITEM = """<html><head><title>lego | eBay</title></head><body><ul class="srp-results">
<li class="s-item"><a class="s-item__link" href="https://www.ebay.com/itm/Brick-lot/264900000001?hash=1">
  <h3 class="s-item__title">Brick lot 2kg</h3></a><span class="s-item__price">$3.95</span>
  <span class="s-item__location s-item__itemLocation">From United Kingdom</span></li>
<li class="s-item"><a class="s-item__link" href="https://www.ebay.com/itm/264900000002">
  <h3 class="s-item__title">Minifigure bundle</h3></a><span class="s-item__price">$10.07</span></li>
<li class="s-item"><a class="s-item__link" href="https://www.ebay.com/itm/264900000003">
  <h3 class="s-item__title">Baseplate green</h3></a><span class="s-item__price">$1.00</span></li>
</ul></body></html>"""

EBAY_EMPTY = """<html><head><title>lego | eBay</title></head><body>
<h1 class="srp-controls__count-heading">0 results for qwxzlego</h1>
<div class="srp-save-null-search">No exact matches found</div><ul class="srp-results srp-list"></ul></body></html>"""

EBAY_CHALLENGE = """<html><head><title>Pardon Our Interruption...</title></head><body>
<p>As you were browsing something about your browser made us think you were a bot.</p>
<form action="/splashui/captcha_submit" method="post"><div id="captcha_loading"></div></form></body></html>"""

CRAIGSLIST_STATIC = """<html><head><title>sfbay for sale "lego" - craigslist</title></head><body>
<ol class="cl-static-search-results">
<li class="cl-static-search-result" title="Lego castle 10305">
  <a href="https://sfbay.craigslist.org/sfc/tag/d/san-francisco-lego-castle/7800000001.html">
  <div class="title">Lego castle 10305</div>
  <div class="details"><div class="price">$300</div><div class="location">outer sunset</div></div></a></li>
<li class="cl-static-search-result" title="Lego bulk bin">
  <a href="/pen/tag/d/pacifica-lego-bulk-bin/7800000002.html"><div class="title">Lego bulk bin</div>
  <div class="details"><div class="price">$80</div><div class="location">pacifica</div></div></a></li>
</ol>
<script id="ld_searchpage_results" type="application/ld+json">{"@type": "ItemList", "itemListElement": [
 {"@type": "ListItem", "position": 0, "item": {"@type": "Product", "name": "Lego castle 10305",
  "offers": {"price": "300.00", "priceCurrency": "USD"}}},
 {"@type": "ListItem", "position": 1, "item": {"@type": "Product", "name": "Lego bulk bin",
  "offers": {"price": "80.00", "priceCurrency": "USD"}}}]}</script>
</body></html>"""

CRAIGSLIST_EMPTY = """<html><head><title>sfbay for sale "qwxz" - craigslist</title></head><body>
<ol class="cl-static-search-results"></ol>
<script id="ld_searchpage_results" type="application/ld+json">{"@type": "ItemList", "itemListElement": []}</script>
</body></html>"""

CRAIGSLIST_BLOCKED = """<html><head><title>blocked</title></head><body>
<p>This IP has been automatically blocked. If you have questions, please email: blocks@craigslist.org</p>
</body></html>"""


@dataclass(frozen=True)
class Market:
    name: str
    build: Callable[[], Adapter]
    host: str
    path: str
    query_param: str
    page: str
    ids: tuple[str, ...]
    empty: str
    challenge: str
    robots_disallow: str

    @property
    def cut_page(self) -> str:
        """A complete response holding a document that stops right after the results list opens."""
        marker = '<ul class="srp-results' if self.name == "ebay" else '<ol class="cl-static-search-results">'
        return self.page[: self.page.index(marker) + 60]


EBAY = Market(
    name="ebay",
    build=lambda: EbayAdapter(domain="www.ebay.com"),
    host="www.ebay.com",
    path="/sch/i.html",
    query_param="_nkw",
    page=EBAY_SCARD,
    ids=("100000000001", "100000000002"),
    empty=EBAY_EMPTY,
    challenge=EBAY_CHALLENGE,
    robots_disallow="User-agent: *\nDisallow: /sch/\n",
)
CRAIGSLIST = Market(
    name="craigslist",
    build=lambda: CraigslistAdapter(default_site="sfbay"),
    host="sfbay.craigslist.org",
    path="/search/sss",
    query_param="query",
    page=CRAIGSLIST_STATIC,
    ids=("7800000001", "7800000002"),
    empty=CRAIGSLIST_EMPTY,
    challenge=CRAIGSLIST_BLOCKED,
    robots_disallow="User-agent: *\nDisallow: /search\n",
)


@pytest.fixture(params=[EBAY, CRAIGSLIST], ids=lambda m: m.name)
def market(request: pytest.FixtureRequest) -> Market:
    return request.param


async def run_search(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher, **fetcher_options: object
) -> ScrapeResult:
    """One search as the scanner runs it: the adapter's budget registered on a fetcher that resolves to the fake."""
    options: dict[str, object] = {"resolve": fake_market.resolving(market.host), "max_retries": 2}
    options.update(fetcher_options)
    fetcher = make_fetcher(**options)
    adapter = market.build()
    fetcher.set_host_rate(market.host, adapter.requests_per_minute)
    return await adapter.search(SearchQuery.build("Lego"), fetcher)


# -- the site answers ------------------------------------------------------------------------------------------


async def test_synthetic_page_gives_its_listings(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route(market.path, market.page)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.SUCCESS, result.detail
    assert tuple(listing.external_id for listing in result.listings) == market.ids
    # Page.url keeps the real host, so links resolved against it point at the site, not at the fake.
    assert all(listing.url.startswith(f"https://{market.host}/") for listing in result.listings)
    [sent] = fake_market.requests_to(market.path)
    assert sent.query[market.query_param] == "lego"
    assert sent.user_agent == TEST_USER_AGENT


async def test_ebay_classic_s_item_page_gives_its_listings(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route(EBAY.path, EBAY_SITEM)

    result = await run_search(EBAY, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.SUCCESS, result.detail
    assert [listing.external_id for listing in result.listings] == ["264900000001", "264900000002", "264900000003"]


async def test_a_real_no_results_page_is_empty(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route(market.path, market.empty)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.EMPTY, result.detail


async def test_searches_keep_to_the_adapter_budget(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.route(market.path, market.page)
    fetcher = make_fetcher(resolve=fake_market.resolving(market.host))
    adapter = market.build()
    fetcher.set_host_rate(market.host, adapter.requests_per_minute)

    for _ in range(2):
        assert (await adapter.search(SearchQuery.build("lego"), fetcher)).ok

    # robots.txt, then two searches: each request one budget interval after the one before.
    assert fake_time.sleeps == [pytest.approx(60 / adapter.requests_per_minute)] * 2


# -- the site refuses --------------------------------------------------------------------------------------------


async def test_429_after_retries_is_blocked(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.fail(market.path, 429, retry_after=5, times=None)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BLOCKED
    assert "429" in result.detail
    assert len(fake_market.requests_to(market.path)) == 3


async def test_403_is_blocked(market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.fail(market.path, 403, times=None)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BLOCKED
    assert len(fake_market.requests_to(market.path)) == 1


async def test_challenge_page_with_status_200_is_blocked_not_empty(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route(market.path, market.challenge)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BLOCKED, result.detail


async def test_robots_disallow_is_blocked_without_asking_for_the_page(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.robots(market.robots_disallow)
    fake_market.route(market.path, market.page)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BLOCKED
    assert "robots.txt" in result.detail
    assert fake_market.requests_to(market.path) == []


# -- the site fails ----------------------------------------------------------------------------------------------


async def test_persistent_503_is_failed(market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.fail(market.path, 503, times=None)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.FAILED
    assert "503" in result.detail
    assert len(fake_market.requests_to(market.path)) == 3


async def test_one_503_then_the_page_succeeds(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.fail(market.path, 503, times=1)
    fake_market.route(market.path, market.page)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.SUCCESS, result.detail
    assert len(result.listings) == len(market.ids)


async def test_connection_cut_mid_body_is_failed(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.truncate(market.path, market.page[:200])

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.FAILED
    assert "cut short" in result.detail


async def test_slow_response_past_the_timeout_is_failed(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.hold(market.path)  # never released during the test; the 50 ms timeout ends each attempt

    result = await run_search(market, fake_market, make_fetcher, timeout_seconds=0.05, max_retries=1)

    assert result.status is ScrapeStatus.FAILED
    assert "timed out" in result.detail


# -- the page no longer parses -----------------------------------------------------------------------------------


async def test_a_document_cut_before_any_listing_is_broken_not_empty(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route(market.path, market.cut_page)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BROKEN, result.detail


async def test_garbage_bytes_are_broken_not_empty(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.garbage(market.path, size=8192, seed=3)

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BROKEN, result.detail


async def test_an_empty_body_is_broken_not_empty(
    market: Market, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route(market.path, b"")

    result = await run_search(market, fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BROKEN, result.detail


# -- redirects: only within the adapter's own registered domains ------------------------------------------------

# Every fixed-host adapter: how to build it, its registered domain, the host and path of its first request.
FIXED_HOSTS = {
    "ebay": (EbayAdapter, "ebay.com", "www.ebay.com", "/sch/i.html"),
    "ebay-api": (lambda: EbayApiAdapter("client", "secret"), "api.ebay.com", "api.ebay.com", TOKEN_PATH),
    "craigslist": (CraigslistAdapter, "craigslist.org", "sfbay.craigslist.org", "/search/sss"),
    "facebook": (FacebookAdapter, "facebook.com", "www.facebook.com", "/marketplace/search/"),
    "vinted": (VintedAdapter, "vinted.fr", "www.vinted.fr", "/"),  # the home page, for the session cookie
    "kleinanzeigen": (KleinanzeigenAdapter, "kleinanzeigen.de", "www.kleinanzeigen.de", "/s-lego/k0"),
    "kijiji": (KijijiAdapter, "kijiji.ca", "www.kijiji.ca", "/rss-srp-canada/lego/k0l0"),
    "reddit": (RedditAdapter, "reddit.com", "www.reddit.com", "/r/buildapcsales+gamedeals/new.json"),
}


@pytest.mark.parametrize("key", FIXED_HOSTS)
def test_every_fixed_host_request_carries_its_site_guard(key: str) -> None:
    build, domain, *_ = FIXED_HOSTS[key]
    adapter = build()
    request = adapter.build_request(SearchQuery.build("lego"))

    assert adapter.registered_domains == (domain,)
    assert request.url_guard == SiteGuard((domain,))


@pytest.mark.parametrize("key", FIXED_HOSTS)
async def test_a_redirect_to_another_host_is_refused_and_blocked(
    key: str, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    """Pins the bug: an eBay 302 to another host was followed and that host's page accepted as eBay listings."""
    build, domain, host, path = FIXED_HOSTS[key]
    fake_market.route(path, status=302, headers={"Location": "https://shop.example/lure"})
    fake_market.route("/lure", EBAY_SCARD)
    fetcher = make_fetcher(resolve=fake_market.resolving(host, "shop.example"))

    result = await build().search(SearchQuery.build("lego"), fetcher)

    assert result.status is ScrapeStatus.BLOCKED, result.detail
    assert f"shop.example is outside {domain}" in result.detail
    assert fake_market.requests_to("/lure") == []


@pytest.mark.parametrize("key", FIXED_HOSTS)
async def test_a_redirect_within_the_registered_domain_is_followed(
    key: str, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    build, domain, host, path = FIXED_HOSTS[key]
    fake_market.route(path, status=302, headers={"Location": f"https://moved.{domain}/lure"})
    fake_market.route("/lure", EBAY_SCARD)
    fetcher = make_fetcher(resolve=fake_market.resolving(host, f"moved.{domain}"))

    result = await build().search(SearchQuery.build("lego"), fetcher)

    assert "outside" not in result.detail
    assert fake_market.requests_to("/lure")


# -- real pages from ../shared/fixtures (skipped when absent) ----------------------------------------------------


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("relative", "domain", "count", "first_id", "last_id"),
    [
        ("ebay/srp-2021-01-warhammer-uk-sitem.html", "www.ebay.co.uk", 61, "264901451112", "174541467482"),
        ("ebay/srp-2025-08-bluray-uk-scard.html", "www.ebay.co.uk", 60, "357137470627", "115923750041"),
        ("ebay/srp-2025-11-adidas-scard-prettified.html", "www.ebay.com", 60, "306582883481", "236268591379"),
        ("ebay/srp-2026-02-nike-shoes-scard.html", "www.ebay.com", 60, "225272243923", "277716924443"),
        ("ebay/srp-2026-07-pokemon-scard.html", "www.ebay.com", 60, "307063707616", "407082509193"),
    ],
)
async def test_real_ebay_pages_through_the_fetcher(
    fake_market: FakeMarketplace,
    make_fetcher: MakeFetcher,
    relative: str,
    domain: str,
    count: int,
    first_id: str,
    last_id: str,
) -> None:
    fake_market.route("/sch/i.html", fixture_path(relative).read_bytes())
    fetcher = make_fetcher(resolve=fake_market.resolving(domain))

    result = await EbayAdapter(domain=domain).search(SearchQuery.build("anything"), fetcher)

    assert result.status is ScrapeStatus.SUCCESS, result.detail
    assert len(result.listings) == count
    assert (result.listings[0].external_id, result.listings[-1].external_id) == (first_id, last_id)


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("relative", "content_type", "count", "first_id"),
    [
        ("craigslist/sfbay-sss-surfing-board-static-2025-10.html", "text/html; charset=utf-8", 65, "7888520643"),
        ("craigslist/sapi-v7-corvallis-sss-macbook-2022-12.json", "application/json", 61, "7566610755"),
    ],
)
async def test_real_craigslist_pages_through_the_fetcher(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, relative: str, content_type: str, count: int, first_id: str
) -> None:
    fake_market.route("/search/sss", fixture_path(relative).read_bytes(), content_type=content_type)
    fetcher = make_fetcher(resolve=fake_market.resolving("sfbay.craigslist.org"))

    result = await CraigslistAdapter(default_site="sfbay").search(SearchQuery.build("surfboard"), fetcher)

    assert result.status is ScrapeStatus.SUCCESS, result.detail
    assert len(result.listings) == count
    assert result.listings[0].external_id == first_id
