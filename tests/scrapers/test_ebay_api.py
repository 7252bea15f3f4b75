"""eBay Browse API: the real answer's facts, synthetic answers, tokens, the daily budget, and calls through the fetcher."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from scout.config import load_settings
from scout.errors import BlockedError, ConfigError, ParseError
from scout.models import Money
from scrapers.base import Page, ScrapeStatus, SearchQuery
from scrapers.ebay.adapter import EbayAdapter
from scrapers.ebay_api.adapter import DailyBudget, EbayApiAdapter
from scrapers.ebay_api.parse import parse_browse_page, parse_search_response, parse_token_response
from scrapers.http import HttpFetcher
from scrapers.registry import build_adapters
from tests.conftest import fixture_path
from tests.fakes.marketplace import FakeMarketplace

PAGES = Path(__file__).parent / "pages"
REAL_ANSWER = "ebay-api/browse-item_summary-search-iphone-bestmatch-2023-07.json"
TOKEN_PATH = "/identity/v1/oauth2/token"
SEARCH_PATH = "/buy/browse/v1/item_summary/search"
CLIENT_ID, CLIENT_SECRET = "DealScou-test-PRD-0123456789", "PRD-s3cr3t-value-42"
MakeFetcher = Callable[..., HttpFetcher]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _token(value: str, expires_in: int = 7200) -> str:
    return json.dumps({"access_token": value, "expires_in": expires_in, "token_type": "Application Access Token"})


# -- the real answer -------------------------------------------------------------------------------------------------


@pytest.mark.fixtures
def test_real_browse_answer_gives_the_readme_facts() -> None:
    page = parse_browse_page(fixture_path(REAL_ANSWER).read_bytes())

    assert page.result.status is ScrapeStatus.SUCCESS
    assert len(page.result.listings) == 100 and page.total == 8532919
    first = page.result.listings[0]
    # itemId "v1|334691749565|543843548440": the item number in the middle is the id the web pages use too.
    assert (first.external_id, first.title, first.price) == (
        "334691749565", "2020 Apple iPhone SE 2nd Gen (Great Condition) Unlocked Verizon ATT TMobile",
        Money(Decimal("189.99"), "USD"))
    assert first.posted_at == datetime(2023, 1, 5, 17, 43, 3, tzinfo=UTC)
    assert (first.url, first.condition, first.seller, first.location) == (
        "https://www.ebay.com/itm/334691749565", "Used", "cocosprinkles", "US")
    assert all(item.posted_at is not None and item.price is not None for item in page.result.listings)


# -- synthetic answers -----------------------------------------------------------------------------------------------


def test_synthetic_answer_reads_prices_bids_hosts_and_drops_variations_and_bad_items() -> None:
    result = parse_search_response((PAGES / "ebay_api_search.json").read_bytes())

    assert [item.external_id for item in result.listings] == ["110000000001", "110000000002"]
    # The variation is the same listing (one row); the item without an item number is a row lost.
    assert (result.status, result.rows, result.rows_lost) == (ScrapeStatus.PARTIAL, 3, 1)
    fixed, auction = result.listings
    assert fixed.title == "Lego Technic 42100 Liebherr"
    assert (fixed.price, fixed.price_text) == (Money(Decimal("250.00"), "USD"), "250.00 USD")
    assert fixed.url == "https://www.ebay.com/itm/110000000001"  # tracking parameters dropped
    assert fixed.location == "Denver, CO, US"
    assert fixed.posted_at == datetime(2026, 11, 28, 9, 15, tzinfo=UTC)
    assert auction.price == Money(Decimal("99.99"), "USD")  # the current bid
    assert auction.url == "https://www.ebay.co.uk/itm/110000000002"  # not the tracking host: its marketplace's site
    assert auction.image_url == "https://i.ebayimg.com/images/g/b/s-l1200.jpg"


def test_no_match_is_empty() -> None:
    page = parse_browse_page((PAGES / "ebay_api_empty.json").read_bytes())
    assert page.result.status is ScrapeStatus.EMPTY and page.total == 0


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"<html>Service Unavailable</html>", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"errors": [{"errorId": 12001, "message": "The call must have a valid q"}]}', "12001"),
        (b'{"total": 5}', "neither itemSummaries"),
        (b'{"total": 1, "itemSummaries": [{"title": "no id"}]}', "none had an id"),
    ],
)
def test_answers_that_no_longer_parse_are_broken(body: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_search_response(body)


def test_token_answer_is_read_and_never_shown() -> None:
    token = parse_token_response(_token("v^1.1#secret-token").encode())
    assert token.value == "v^1.1#secret-token" and token.expires_in_seconds == 7200
    assert "secret-token" not in repr(token)


def test_a_refused_token_names_the_settings_not_the_description() -> None:
    body = b'{"error": "invalid_client", "error_description": "client authentication failed for PRD-s3cr3t"}'
    with pytest.raises(BlockedError, match="invalid_client.*EBAY_CLIENT_ID") as caught:
        parse_token_response(body)
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(ParseError):
        parse_token_response(b'{"token_type": "x"}')


def test_the_html_adapter_parses_a_saved_api_answer_for_dealscout_parse() -> None:
    page = Page("file:///tmp/answer.json", 200, (PAGES / "ebay_api_search.json").read_bytes(), "application/json")
    assert len(EbayAdapter().parse_safely(page).listings) == 2


# -- the daily budget ------------------------------------------------------------------------------------------------


def test_the_daily_budget_is_spent_and_resets_at_midnight_utc() -> None:
    clock = Clock(datetime(2026, 11, 28, 23, 59, tzinfo=UTC))
    budget = DailyBudget(2, clock)

    assert [budget.spend(), budget.spend(), budget.spend()] == [True, True, False]
    assert (budget.used, budget.remaining) == (2, 0)
    assert budget.resets_at == datetime(2026, 11, 29, tzinfo=UTC)
    clock.now += timedelta(minutes=1)
    assert (budget.remaining, budget.spend()) == (2, True)


# -- configuration -------------------------------------------------------------------------------------------------


def test_registry_puts_the_api_adapter_under_the_ebay_key_only_with_credentials() -> None:
    plain = load_settings({}, env_file=None)
    assert type(build_adapters(plain)["ebay"]) is EbayAdapter

    with_keys = load_settings({"EBAY_CLIENT_ID": CLIENT_ID, "EBAY_CLIENT_SECRET": CLIENT_SECRET,
                               "EBAY_MARKETPLACE_ID": "ebay_de", "EBAY_API_DAILY_CALLS": "1440"}, env_file=None)
    adapter = build_adapters(with_keys)["ebay"]
    assert isinstance(adapter, EbayApiAdapter)
    assert (adapter.key, adapter.marketplace_id, adapter.requests_per_minute) == ("ebay", "EBAY_DE", 1.0)
    assert CLIENT_SECRET not in repr(adapter) and CLIENT_SECRET not in repr(with_keys)

    with pytest.raises(ConfigError, match="EBAY_CLIENT_SECRET"):
        build_adapters(replace(plain, ebay_client_id=CLIENT_ID))


def test_an_unknown_marketplace_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="EBAY_MARKETPLACE_ID"):
        EbayApiAdapter(CLIENT_ID, CLIENT_SECRET, marketplace_id="EBAY_XX")


def test_the_search_request_is_pure_and_carries_no_token() -> None:
    request = EbayApiAdapter(CLIENT_ID, CLIENT_SECRET, marketplace_id="EBAY_GB").build_request(
        SearchQuery.build("Lego  Castle"))

    assert request.url == "https://api.ebay.com/buy/browse/v1/item_summary/search"
    assert dict(request.params) == {"q": "lego castle", "sort": "newlyListed", "limit": "100"}
    assert dict(request.headers)["X-EBAY-C-MARKETPLACE-ID"] == "EBAY_GB"
    assert "Authorization" not in dict(request.headers) and request.robots is False


# -- end to end through the fetcher ----------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


@pytest.fixture
def api(fake_market: FakeMarketplace, make_fetcher: MakeFetcher, clock: Clock):  # type: ignore[no-untyped-def]
    """(adapter, fetcher) with the search answer and token endpoint on the fake."""
    fake_market.route(SEARCH_PATH, (PAGES / "ebay_api_search.json").read_bytes(), content_type="application/json")
    fake_market.route(TOKEN_PATH, _token("tok-1"), content_type="application/json")
    adapter = EbayApiAdapter(CLIENT_ID, CLIENT_SECRET, clock=clock, daily_calls=100)
    fetcher = make_fetcher(resolve=fake_market.resolving("api.ebay.com"), max_retries=2)
    fetcher.set_host_rate("api.ebay.com", adapter.requests_per_minute)
    return adapter, fetcher


async def test_a_search_gets_a_token_then_calls_the_api_with_it(fake_market: FakeMarketplace, api) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = api

    result = await adapter.search(SearchQuery.build("lego"), fetcher)

    assert result.ok and len(result.listings) == 2
    assert fake_market.paths == [TOKEN_PATH, SEARCH_PATH]  # no robots.txt for the API
    [token_call] = fake_market.requests_to(TOKEN_PATH)
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_call.method == "POST" and token_call.headers["Authorization"] == f"Basic {basic}"
    assert token_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    [search_call] = fake_market.requests_to(SEARCH_PATH)
    assert search_call.headers["Authorization"] == "Bearer tok-1"
    assert search_call.headers["X-EBAY-C-MARKETPLACE-ID"] == "EBAY_US"
    assert search_call.query == {"q": "lego", "sort": "newlyListed", "limit": "100"}
    assert adapter.budget_remaining == 99


async def test_the_token_is_cached_and_renewed_before_it_expires(
    fake_market: FakeMarketplace, api, clock: Clock  # type: ignore[no-untyped-def]
) -> None:
    adapter, fetcher = api
    fake_market.route(TOKEN_PATH, _token("tok-1"), content_type="application/json", times=1)
    fake_market.route(TOKEN_PATH, _token("tok-2"), content_type="application/json")

    await adapter.search(SearchQuery.build("lego"), fetcher)
    clock.now += timedelta(seconds=7200 - 301)  # still more than the 5-minute margin left
    await adapter.search(SearchQuery.build("lego"), fetcher)
    clock.now += timedelta(seconds=2)  # now inside it
    await adapter.search(SearchQuery.build("lego"), fetcher)

    assert len(fake_market.requests_to(TOKEN_PATH)) == 2
    assert [r.headers["Authorization"] for r in fake_market.requests_to(SEARCH_PATH)] == [
        "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_concurrent_searches_share_one_token_request(fake_market: FakeMarketplace, api) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = api

    results = await asyncio.gather(*(adapter.search(SearchQuery.build(q), fetcher) for q in ("a", "b", "c")))

    assert all(r.ok for r in results)
    assert len(fake_market.requests_to(TOKEN_PATH)) == 1


async def test_a_401_renews_the_token_once_and_retries(fake_market: FakeMarketplace, api) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = api
    fake_market.route(TOKEN_PATH, _token("tok-1"), content_type="application/json", times=1)
    fake_market.route(TOKEN_PATH, _token("tok-2"), content_type="application/json")
    fake_market.fail(SEARCH_PATH, 401, body='{"errors": [{"errorId": 1001, "message": "Invalid access token"}]}')

    result = await adapter.search(SearchQuery.build("lego"), fetcher)

    assert result.ok, result.detail
    assert [r.headers["Authorization"] for r in fake_market.requests_to(SEARCH_PATH)] == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_second_401_is_blocked(fake_market: FakeMarketplace, api) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = api
    fake_market.fail(SEARCH_PATH, 401, times=None)

    result = await adapter.search(SearchQuery.build("lego"), fetcher)

    assert result.status is ScrapeStatus.BLOCKED and "fresh" in result.detail
    assert len(fake_market.requests_to(SEARCH_PATH)) == 2 and len(fake_market.requests_to(TOKEN_PATH)) == 2


async def test_refused_credentials_are_blocked_and_no_secret_leaks(
    fake_market: FakeMarketplace, api, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    adapter, fetcher = api
    fake_market.route(TOKEN_PATH, json.dumps({"error": "invalid_client", "error_description": CLIENT_SECRET}),
                      status=401, content_type="application/json")

    with caplog.at_level(logging.DEBUG):
        result = await adapter.search(SearchQuery.build("lego"), fetcher)

    assert result.status is ScrapeStatus.BLOCKED and "invalid_client" in result.detail
    assert fake_market.requests_to(SEARCH_PATH) == []
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for secret in (CLIENT_SECRET, basic):
        assert secret not in result.detail and secret not in caplog.text


async def test_no_token_or_secret_reaches_the_logs_of_a_normal_search(
    fake_market: FakeMarketplace, api, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    adapter, fetcher = api
    with caplog.at_level(logging.DEBUG):
        await adapter.search(SearchQuery.build("lego"), fetcher)
    assert "tok-1" not in caplog.text and CLIENT_SECRET not in caplog.text
    assert "token issued" in caplog.text


async def test_over_the_daily_budget_is_blocked_until_midnight_utc(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, clock: Clock
) -> None:
    fake_market.route(SEARCH_PATH, (PAGES / "ebay_api_empty.json").read_bytes(), content_type="application/json")
    fake_market.route(TOKEN_PATH, _token("tok-1", expires_in=86400 * 2), content_type="application/json")
    adapter = EbayApiAdapter(CLIENT_ID, CLIENT_SECRET, clock=clock, daily_calls=2)
    fetcher = make_fetcher(resolve=fake_market.resolving("api.ebay.com"))

    results = [await adapter.search(SearchQuery.build("lego"), fetcher) for _ in range(3)]

    assert [r.status for r in results] == [ScrapeStatus.EMPTY, ScrapeStatus.EMPTY, ScrapeStatus.BLOCKED]
    assert "daily API budget spent" in results[2].detail
    assert len(fake_market.requests_to(SEARCH_PATH)) == 2
    assert "2 of 2 calls used today" in adapter.usage()
    clock.now = datetime(2026, 11, 29, 0, 0, 1, tzinfo=UTC)
    assert (await adapter.search(SearchQuery.build("lego"), fetcher)).status is ScrapeStatus.EMPTY


@pytest.mark.parametrize(("status", "expected"), [(429, ScrapeStatus.BLOCKED), (503, ScrapeStatus.FAILED)])
async def test_persistent_429_and_503(
    fake_market: FakeMarketplace, api, status: int, expected: ScrapeStatus  # type: ignore[no-untyped-def]
) -> None:
    adapter, fetcher = api
    fake_market.fail(SEARCH_PATH, status, times=None)

    result = await adapter.search(SearchQuery.build("lego"), fetcher)

    assert result.status is expected and str(status) in result.detail


async def test_token_endpoint_down_is_failed(fake_market: FakeMarketplace, api) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = api
    fake_market.fail(TOKEN_PATH, 503, times=None)

    assert (await adapter.search(SearchQuery.build("lego"), fetcher)).status is ScrapeStatus.FAILED


async def test_truncated_garbage_and_challenge_bodies(fake_market: FakeMarketplace, api) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = api
    answer = (PAGES / "ebay_api_search.json").read_bytes()
    fake_market.truncate(SEARCH_PATH, answer[:300], times=3)
    assert (await adapter.search(SearchQuery.build("lego"), fetcher)).status is ScrapeStatus.FAILED

    fake_market.route(SEARCH_PATH, answer[:300], content_type="application/json")
    assert (await adapter.search(SearchQuery.build("lego"), fetcher)).status is ScrapeStatus.BROKEN

    fake_market.garbage(SEARCH_PATH, seed=9)
    assert (await adapter.search(SearchQuery.build("lego"), fetcher)).status is ScrapeStatus.BROKEN

    fake_market.route(SEARCH_PATH, (PAGES / "ebay_challenge.html").read_bytes())
    assert (await adapter.search(SearchQuery.build("lego"), fetcher)).status is ScrapeStatus.BROKEN


@pytest.mark.fixtures
async def test_real_answer_through_the_fetcher(fake_market: FakeMarketplace, api) -> None:  # type: ignore[no-untyped-def]
    adapter, fetcher = api
    fake_market.route(SEARCH_PATH, fixture_path(REAL_ANSWER).read_bytes(), content_type="application/json")

    result = await adapter.search(SearchQuery.build("iphone"), fetcher)

    assert result.status is ScrapeStatus.SUCCESS and len(result.listings) == 100
