"""Vinted: the real catalog answer's facts, both price shapes, the session cookie, and searches through the fetcher."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from scout.config import load_settings
from scout.errors import ConfigError, ParseError
from scout.models import Money
from scrapers.base import Page, ScrapeStatus, SearchQuery
from scrapers.http import HttpFetcher
from scrapers.registry import build_adapters
from scrapers.vinted.adapter import VintedAdapter
from scrapers.vinted.parse import parse_catalog, parse_price
from tests.conftest import fixture_path
from tests.fakes.marketplace import FakeMarketplace

PAGES = Path(__file__).parent / "pages"
REAL_ANSWER = "vinted/catalog-items-pl-nike-2025-10.json"
CATALOG = "/api/v2/catalog/items"
JSON = "application/json; charset=utf-8"
MakeFetcher = Callable[..., HttpFetcher]


# -- the real answer -------------------------------------------------------------------------------------------------


@pytest.mark.fixtures
def test_real_catalog_answer_gives_the_readme_facts() -> None:
    result = parse_catalog(fixture_path(REAL_ANSWER).read_bytes(), domain="www.vinted.pl")

    assert result.status is ScrapeStatus.SUCCESS and len(result.listings) == 96
    first = result.listings[0]
    assert (first.external_id, first.title, first.price) == (
        "7292729681", "Spodnie chłopięce NIKE", Money(Decimal("20.0"), "PLN"))
    assert first.url == "https://www.vinted.pl/items/7292729681-spodnie-chlopiece-nike"
    assert (first.condition, first.seller) == ("Bardzo dobry", "susiaxd")
    assert first.image_url and first.image_url.startswith("https://images1.vinted.net/")
    assert all(item.price and item.price.currency == "PLN" for item in result.listings)


@pytest.mark.fixtures
def test_the_real_answer_parses_on_any_country_adapter() -> None:
    # The currency comes with each price, so an adapter set up for vinted.fr still reads PLN.
    page = Page("file:///x.json", 200, fixture_path(REAL_ANSWER).read_bytes(), "application/json")
    result = VintedAdapter("www.vinted.fr").parse_safely(page)
    assert len(result.listings) == 96 and result.listings[0].price == Money(Decimal("20.0"), "PLN")


# -- synthetic answers -----------------------------------------------------------------------------------------------


def test_both_price_shapes_hidden_items_and_duplicates() -> None:
    result = parse_catalog((PAGES / "vinted_catalog.json").read_bytes(), domain="www.vinted.fr")

    assert [item.external_id for item in result.listings] == ["5000000001", "5000000002", "5000000003"]
    shoes, sweat, cap = result.listings
    assert (shoes.price, shoes.condition, shoes.seller) == (Money(Decimal("45.0"), "EUR"), "Très bon état", "marie")
    assert (sweat.price, sweat.price_text, sweat.image_url) == (Money(Decimal("12.5"), "EUR"), "12.5 EUR", None)
    assert cap.price == Money(Decimal("7.00"), "EUR")  # a formatted string, in the site's currency
    assert cap.url == "https://www.vinted.fr/items/5000000003"
    # The hidden item and the repeat are left out on purpose: no row is lost.
    assert (result.status, result.rows_lost) == (ScrapeStatus.SUCCESS, 0)


def test_an_item_that_cannot_be_read_makes_the_fetch_partial() -> None:
    """Regression: an item without an id used to vanish, so a changed format showed only as fewer alerts."""
    items = [{"id": 1, "title": "Sweat"}, {"id": 1, "title": "Sweat"}, {"title": "no id"}, "garbage",
             {"id": 2, "title": "Cap", "is_visible": False}, {"id": 3, "title": "Shoes"}]

    result = parse_catalog(json.dumps({"items": items}).encode(), domain="www.vinted.fr")

    assert result.status is ScrapeStatus.PARTIAL
    assert (result.rows, len(result.listings), result.rows_lost) == (4, 2, 2)
    assert [item.external_id for item in result.listings] == ["1", "3"]


@pytest.mark.parametrize(
    ("price", "currency", "fallback", "expected"),
    [
        ({"amount": "20.0", "currency_code": "PLN"}, None, "EUR", Money(Decimal("20.0"), "PLN")),
        ("15.00", "GBP", "EUR", Money(Decimal("15.00"), "GBP")),
        ("15.00", None, "CZK", Money(Decimal("15.00"), "CZK")),
        ({"amount": "3", "currency_code": None}, "SEK", None, Money(Decimal(3), "SEK")),
        ("15.00", None, None, None),
        (None, "EUR", "EUR", None),
        ({"amount": None}, None, "EUR", None),
    ],
)
def test_parse_price(price: object, currency: object, fallback: str | None, expected: Money | None) -> None:
    assert parse_price(price, currency, fallback)[0] == expected


def test_an_empty_catalog_is_empty() -> None:
    assert parse_catalog((PAGES / "vinted_empty.json").read_bytes()).status is ScrapeStatus.EMPTY


def test_a_challenge_page_is_blocked() -> None:
    result = parse_catalog((PAGES / "vinted_challenge.html").read_bytes(), content_type="text/html")
    assert result.status is ScrapeStatus.BLOCKED


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"<html><body>Welcome to the new Vinted</body></html>", "HTML page"),
        (b'{"items": ', "not JSON"),
        (b'{"code": 106, "message": "Not allowed"}', "106"),
        (b'{"catalog": []}', "no items"),
        (b'{"items": [{"uuid": "x"}]}', "none had"),
    ],
)
def test_answers_that_no_longer_parse_are_broken(body: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_catalog(body)


@pytest.mark.parametrize("domain", ["www.vinted.com.evil.example", "vinted", "www.example.fr", "www.vinted.xx"])
def test_only_vinted_country_sites(domain: str) -> None:
    with pytest.raises(ConfigError, match="VINTED_DOMAIN"):
        VintedAdapter(domain)


def test_the_registry_builds_vinted_for_the_configured_country() -> None:
    adapter = build_adapters(load_settings({"VINTED_DOMAIN": "www.vinted.pl"}, env_file=None))["vinted"]
    assert isinstance(adapter, VintedAdapter) and adapter.domain == "www.vinted.pl"
    assert build_adapters(load_settings({}, env_file=None))["vinted"].domain == "www.vinted.fr"  # type: ignore[attr-defined]


def test_the_catalog_request_asks_for_the_newest() -> None:
    adapter = VintedAdapter("www.vinted.pl")
    request = adapter.build_request(SearchQuery.build("Nike  Air"))
    assert request.url == "https://www.vinted.pl/api/v2/catalog/items"
    assert dict(request.params) == {"search_text": "nike air", "order": "newest_first", "per_page": "96", "page": "1"}
    assert adapter.rate_limit_domain == "vinted.pl" and request.robots is True


# -- end to end through the fetcher ------------------------------------------------------------------------------


@pytest.fixture
def vinted(fake_market: FakeMarketplace, make_fetcher: MakeFetcher):  # type: ignore[no-untyped-def]
    fake_market.route("/", "<html>home</html>", headers={"Set-Cookie": "_vinted_fr_session=s1; Path=/; Secure"})
    fake_market.route(CATALOG, (PAGES / "vinted_catalog.json").read_bytes(), content_type=JSON)
    fetcher = make_fetcher(resolve=fake_market.resolving("www.vinted.fr"), max_retries=2)
    adapter = VintedAdapter("www.vinted.fr")
    fetcher.set_host_rate(adapter.rate_limit_domain, adapter.requests_per_minute)
    return adapter, fetcher


async def test_first_search_bootstraps_the_session_cookie(fake_market: FakeMarketplace, vinted) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = vinted

    first = await adapter.search(SearchQuery.build("nike"), fetcher)
    second = await adapter.search(SearchQuery.build("nike"), fetcher)

    assert first.status is ScrapeStatus.SUCCESS and second.status is ScrapeStatus.SUCCESS
    assert fake_market.paths == ["/robots.txt", "/", CATALOG, CATALOG]  # the home page once
    assert all(r.headers["Cookie"] == "_vinted_fr_session=s1" for r in fake_market.requests_to(CATALOG))
    assert fake_market.requests_to(CATALOG)[0].query["search_text"] == "nike"


async def test_a_401_renews_the_session_once_and_retries(fake_market: FakeMarketplace, vinted) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = vinted
    await adapter.search(SearchQuery.build("nike"), fetcher)
    fake_market.route("/", "<html>home</html>", headers={"Set-Cookie": "_vinted_fr_session=s2; Path=/; Secure"})
    fake_market.fail(CATALOG, 401, body='{"code": 100, "message": "Token is invalid"}')

    result = await adapter.search(SearchQuery.build("nike"), fetcher)

    assert result.status is ScrapeStatus.SUCCESS, result.detail
    assert [r.headers.get("Cookie") for r in fake_market.requests_to(CATALOG)] == [
        "_vinted_fr_session=s1", "_vinted_fr_session=s1", "_vinted_fr_session=s2"]
    assert len(fake_market.requests_to("/")) == 2


async def test_a_second_refusal_is_blocked(fake_market: FakeMarketplace, vinted) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = vinted
    fake_market.fail(CATALOG, 403, times=None)

    result = await adapter.search(SearchQuery.build("nike"), fetcher)

    assert result.status is ScrapeStatus.BLOCKED and "fresh session" in result.detail
    assert len(fake_market.requests_to(CATALOG)) == 2 and len(fake_market.requests_to("/")) == 2


async def test_concurrent_refusals_renew_the_session_once(fake_market: FakeMarketplace, vinted) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = vinted
    await adapter.search(SearchQuery.build("nike"), fetcher)
    fake_market.fail(CATALOG, 401, times=3)

    results = await asyncio.gather(*(adapter.search(SearchQuery.build(q), fetcher) for q in ("a", "b", "c")))

    assert all(r.ok for r in results), [r.detail for r in results]
    assert len(fake_market.requests_to("/")) == 2


async def test_a_blocked_home_page_is_blocked(fake_market: FakeMarketplace, vinted) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = vinted
    fake_market.route("/", (PAGES / "vinted_challenge.html").read_bytes(), status=403)

    result = await adapter.search(SearchQuery.build("nike"), fetcher)

    assert result.status is ScrapeStatus.BLOCKED and "home page" in result.detail
    assert fake_market.requests_to(CATALOG) == []


async def test_a_challenge_page_with_status_200_is_blocked(fake_market: FakeMarketplace, vinted) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = vinted
    fake_market.route(CATALOG, (PAGES / "vinted_challenge.html").read_bytes())

    assert (await adapter.search(SearchQuery.build("nike"), fetcher)).status is ScrapeStatus.BLOCKED


@pytest.mark.parametrize(("status", "expected"), [(429, ScrapeStatus.BLOCKED), (503, ScrapeStatus.FAILED)])
async def test_persistent_429_and_503(
    fake_market: FakeMarketplace, vinted, status: int, expected: ScrapeStatus  # type: ignore[no-untyped-def]
) -> None:
    adapter, fetcher = vinted
    fake_market.fail(CATALOG, status, times=None)

    result = await adapter.search(SearchQuery.build("nike"), fetcher)

    assert result.status is expected and str(status) in result.detail


async def test_robots_txt_disallowing_the_api_is_blocked(fake_market: FakeMarketplace, vinted) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = vinted
    fake_market.robots("User-agent: *\nDisallow: /api/\n")

    result = await adapter.search(SearchQuery.build("nike"), fetcher)

    assert result.status is ScrapeStatus.BLOCKED and "robots.txt" in result.detail
    assert fake_market.requests_to(CATALOG) == []


async def test_truncated_garbage_and_empty_bodies(fake_market: FakeMarketplace, vinted) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = vinted
    answer = (PAGES / "vinted_catalog.json").read_bytes()
    fake_market.truncate(CATALOG, answer[:200], times=3)
    assert (await adapter.search(SearchQuery.build("nike"), fetcher)).status is ScrapeStatus.FAILED

    for body in (answer[:200], b""):
        fake_market.route(CATALOG, body, content_type=JSON)
        assert (await adapter.search(SearchQuery.build("nike"), fetcher)).status is ScrapeStatus.BROKEN

    fake_market.garbage(CATALOG, seed=4)
    assert (await adapter.search(SearchQuery.build("nike"), fetcher)).status is ScrapeStatus.BROKEN

    fake_market.route(CATALOG, (PAGES / "vinted_empty.json").read_bytes(), content_type=JSON)
    assert (await adapter.search(SearchQuery.build("nike"), fetcher)).status is ScrapeStatus.EMPTY


@pytest.mark.fixtures
async def test_real_answer_through_the_fetcher(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/", "home", headers={"Set-Cookie": "access_token_web=t; Path=/"})
    fake_market.route(CATALOG, fixture_path(REAL_ANSWER).read_bytes(), content_type=JSON)
    fetcher = make_fetcher(resolve=fake_market.resolving("www.vinted.pl"))

    result = await VintedAdapter("www.vinted.pl").search(SearchQuery.build("nike"), fetcher)

    assert result.status is ScrapeStatus.SUCCESS and len(result.listings) == 96
