"""Facebook Marketplace: the real logged-out page's facts, synthetic pages, URLs, and searches through the fetcher."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from yarl import URL

from scout.config import load_settings
from scout.errors import ConfigError, InputError, ParseError
from scout.models import Money
from scrapers.base import Page, ScrapeStatus, SearchQuery
from scrapers.facebook.adapter import FacebookAdapter
from scrapers.facebook.parse import parse_search_page
from scrapers.http import HttpFetcher
from scrapers.registry import build_adapters
from tests.conftest import fixture_path
from tests.fakes.marketplace import FakeMarketplace

PAGES = Path(__file__).parent / "pages"
REAL_PAGE = "facebook/marketplace-search-kitchenaid-mixer-logged-out-2025-04.html"
SEARCH_URL = "https://www.facebook.com/marketplace/saltlakecity/search/?query=mixer"
MakeFetcher = Callable[..., HttpFetcher]


def _parse(name: str, url: str = SEARCH_URL, content_type: str = "text/html; charset=utf-8"):  # type: ignore[no-untyped-def]
    return FacebookAdapter().parse_safely(Page(url, 200, (PAGES / name).read_bytes(), content_type))


# -- the real page -------------------------------------------------------------------------------------------------


@pytest.mark.fixtures
def test_real_logged_out_search_page_gives_the_readme_facts() -> None:
    result = parse_search_page(fixture_path(REAL_PAGE).read_bytes(), url=SEARCH_URL)

    assert result.status is ScrapeStatus.SUCCESS
    assert len(result.listings) == 24
    first, last = result.listings[0], result.listings[-1]
    assert (first.external_id, first.title, first.price, first.location) == (
        "2628435494214464", "Kitchenaid mixer", Money(Decimal("20.00"), "USD"), "Sandy, UT")
    assert (last.external_id, last.title, last.price, last.location) == (
        "657952346933044", "Heavy duty mixer", Money(Decimal("50.00"), "USD"), "Centerville, UT")
    assert first.url == "https://www.facebook.com/marketplace/item/2628435494214464/"
    assert first.price_text == "$20"
    assert all(listing.image_url and listing.image_url.startswith("https://") for listing in result.listings)
    assert len({listing.external_id for listing in result.listings}) == 24
    assert all(listing.posted_at is None for listing in result.listings)  # search results carry no posted time


@pytest.mark.fixtures
def test_real_page_with_a_struck_through_price_keeps_the_current_price() -> None:
    result = parse_search_page(fixture_path(REAL_PAGE).read_bytes(), url=SEARCH_URL)

    bosch = next(item for item in result.listings if item.external_id == "1201172668231784")
    assert bosch.price == Money(Decimal("100.00"), "USD")


# -- synthetic pages -----------------------------------------------------------------------------------------------


def test_synthetic_page_skips_ads_sold_pending_and_duplicates() -> None:
    result = _parse("facebook_search.html")

    assert result.status is ScrapeStatus.SUCCESS
    assert [item.external_id for item in result.listings] == ["1000000000000001", "1000000000000004"]
    bike, free = result.listings
    assert bike.title == "Road bike 56cm"
    # The page's marketplace currency (another blob) names the currency that "CA$250" shows.
    assert bike.price == Money(Decimal("250.00"), "CAD")
    assert bike.location == "Toronto, ON"
    assert bike.image_url == "https://scontent.example/bike.jpg"
    assert free.price == Money(Decimal("0.00"), "CAD") and free.price_text == "Free"


def test_sold_pending_and_repeated_entries_are_not_lost_rows() -> None:
    result = _parse("facebook_search.html")
    assert (result.status, result.rows) == (ScrapeStatus.SUCCESS, 2)


def test_a_listing_entry_without_a_title_makes_the_result_partial() -> None:
    """A feed entry that holds a listing but cannot be read used to vanish without a trace."""
    body = (PAGES / "facebook_search.html").read_bytes().replace(b'"Free kids bike"', b'""')

    result = parse_search_page(body, url=SEARCH_URL)

    assert (result.status, result.rows) == (ScrapeStatus.PARTIAL, 2)
    assert [item.external_id for item in result.listings] == ["1000000000000001"]


def test_without_a_marketplace_currency_the_price_text_decides() -> None:
    body = (PAGES / "facebook_search.html").read_bytes().replace(b'"primary_currency":"CAD"', b"")

    result = parse_search_page(body, url=SEARCH_URL)

    assert result.listings[0].price == Money(Decimal("250.00"), "CAD")  # "CA$" says so


def test_an_empty_feed_is_empty_even_beside_the_header_login_form() -> None:
    result = _parse("facebook_no_results.html")

    assert result.status is ScrapeStatus.EMPTY


def test_a_login_wall_is_blocked_not_empty() -> None:
    result = _parse("facebook_login_wall.html")

    assert result.status is ScrapeStatus.BLOCKED
    assert "log" in result.detail.lower()


def test_a_temporarily_blocked_page_is_blocked() -> None:
    assert _parse("facebook_temporarily_blocked.html").status is ScrapeStatus.BLOCKED


@pytest.mark.parametrize(
    "url",
    [
        "https://www.facebook.com/login/?next=https%3A%2F%2Fwww.facebook.com%2Fmarketplace%2F",
        "https://www.facebook.com/checkpoint/1501092823525282/?next=%2Fmarketplace",
        "https://www.facebook.com/privacy/consent/?flow=marketplace",
    ],
)
def test_being_redirected_to_login_or_checkpoint_is_blocked(url: str) -> None:
    page = Page(url, 200, b"<html><head><title>Facebook</title></head><body><div>x</div></body></html>", "text/html")

    assert FacebookAdapter().parse_safely(page).status is ScrapeStatus.BLOCKED


def test_a_graphql_answer_has_the_same_shape() -> None:
    result = _parse("facebook_graphql.json", content_type="application/json")

    assert [(item.external_id, item.title, item.location) for item in result.listings] == [
        ("2000000000000001", "Stand mixer", "Austin, TX")]
    assert result.listings[0].price == Money(Decimal("45.00"), "USD")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"<html><head><title>Facebook</title></head><body><p>Something new</p></body></html>", "no marketplace_search"),
        (b'<html><body><script type="application/json">{"marketplace_search": {"feed_units": </script></body></html>',
         "does not parse"),
        (b'<html><body><script type="application/json">{"marketplace_search": {"feed": []}}</script></body></html>',
         "feed_units"),
        ((b'<html><body><script type="application/json">{"marketplace_search": {"feed_units": {"edges": ['
         b'{"node": {"listing": {"id": "x", "title": "renamed"}}}]}}}</script></body></html>'), "none had"),
        (b'{"data": ', "JSON"),
    ],
)
def test_pages_that_no_longer_parse_are_broken(body: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_search_page(body, url=SEARCH_URL)


# -- URLs ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "radius", "path", "extra"),
    [
        (None, None, "/marketplace/search/", {}),
        ("nyc", 40, "/marketplace/nyc/search/", {"radius": "40"}),
        ("San Francisco", None, "/marketplace/sanfrancisco/search/", {}),
        ("108424279189115", 10, "/marketplace/108424279189115/search/", {"radius": "10"}),
        ("40.7128,-74.0060", 25, "/marketplace/search/", {"latitude": "40.7128", "longitude": "-74.0060", "radius": "25"}),
    ],
)
def test_search_url_carries_place_radius_and_newest_first(
    location: str | None, radius: int | None, path: str, extra: dict[str, str]
) -> None:
    url = URL(FacebookAdapter().build_request(SearchQuery.build("Stand  Mixer", location, radius)).url)

    assert (url.host, url.path) == ("www.facebook.com", path)
    assert dict(url.query) == {"query": "stand mixer", "sortBy": "creation_time_descend", "exact": "false", **extra}


def test_the_default_place_is_used_when_a_search_names_none() -> None:
    request = FacebookAdapter(default_location="Chicago").build_request(SearchQuery.build("mixer"))
    assert "/marketplace/chicago/search/" in request.url


@pytest.mark.parametrize("location", ["../../login", "a/b", "91,200", "ny?c=1"])
def test_a_location_facebook_cannot_mean_is_an_input_error(location: str) -> None:
    with pytest.raises(InputError):
        FacebookAdapter().build_request(SearchQuery.build("mixer", location))


def test_the_registry_builds_facebook_with_the_configured_place() -> None:
    adapter = build_adapters(load_settings({"FACEBOOK_LOCATION": "nyc"}, env_file=None))["facebook"]
    assert "/marketplace/nyc/search/" in adapter.build_request(SearchQuery.build("mixer")).url


def test_a_bad_default_place_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="FACEBOOK_LOCATION"):
        FacebookAdapter(default_location="not/a place")


# -- end to end through the fetcher ------------------------------------------------------------------------------


async def _search(fake_market: FakeMarketplace, make_fetcher: MakeFetcher, **options: object):  # type: ignore[no-untyped-def]
    fetcher = make_fetcher(resolve=fake_market.resolving("www.facebook.com"), **{"max_retries": 2, **options})
    adapter = FacebookAdapter()
    fetcher.set_host_rate(adapter.rate_limit_domain, adapter.requests_per_minute)
    return await adapter.search(SearchQuery.build("mixer", "saltlakecity"), fetcher)


SEARCH_PATH = "/marketplace/saltlakecity/search/"


async def test_synthetic_page_through_the_fetcher(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route(SEARCH_PATH, (PAGES / "facebook_search.html").read_bytes())

    result = await _search(fake_market, make_fetcher)

    assert result.status is ScrapeStatus.SUCCESS, result.detail
    [sent] = fake_market.requests_to(SEARCH_PATH)
    assert sent.query["query"] == "mixer" and sent.headers["Accept-Language"].startswith("en")


@pytest.mark.fixtures
async def test_real_page_through_the_fetcher(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route(SEARCH_PATH, fixture_path(REAL_PAGE).read_bytes())

    result = await _search(fake_market, make_fetcher)

    assert result.status is ScrapeStatus.SUCCESS and len(result.listings) == 24


async def test_a_redirect_to_the_login_page_is_blocked(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route(SEARCH_PATH, status=302,
                      headers={"Location": "https://www.facebook.com/login/?next=%2Fmarketplace%2F"})
    fake_market.route("/login/", (PAGES / "facebook_login_wall.html").read_bytes())

    result = await _search(fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BLOCKED, result.detail


async def test_robots_txt_that_disallows_everyone_is_blocked(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.robots("User-agent: Googlebot\nAllow: /\n\nUser-agent: *\nDisallow: /\n")
    fake_market.route(SEARCH_PATH, (PAGES / "facebook_search.html").read_bytes())

    result = await _search(fake_market, make_fetcher)

    assert result.status is ScrapeStatus.BLOCKED and "robots.txt" in result.detail
    assert fake_market.requests_to(SEARCH_PATH) == []


@pytest.mark.parametrize(("status", "expected"), [(429, ScrapeStatus.BLOCKED), (503, ScrapeStatus.FAILED)])
async def test_persistent_429_and_503(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, status: int, expected: ScrapeStatus
) -> None:
    fake_market.fail(SEARCH_PATH, status, times=None)

    result = await _search(fake_market, make_fetcher)

    assert result.status is expected and str(status) in result.detail
    assert len(fake_market.requests_to(SEARCH_PATH)) == 3


async def test_challenge_page_with_status_200_is_blocked(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route(SEARCH_PATH, (PAGES / "facebook_temporarily_blocked.html").read_bytes())

    assert (await _search(fake_market, make_fetcher)).status is ScrapeStatus.BLOCKED


async def test_truncated_and_garbage_bodies_are_not_empty(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    page = (PAGES / "facebook_search.html").read_bytes()
    fake_market.truncate(SEARCH_PATH, page[:400], times=3)
    assert (await _search(fake_market, make_fetcher)).status is ScrapeStatus.FAILED

    fake_market.route(SEARCH_PATH, page[: page.index(b'"edges"') + 20])  # complete response, cut document
    assert (await _search(fake_market, make_fetcher)).status is ScrapeStatus.BROKEN

    fake_market.garbage(SEARCH_PATH, size=8192, seed=5)
    assert (await _search(fake_market, make_fetcher)).status is ScrapeStatus.BROKEN
