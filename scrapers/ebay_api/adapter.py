"""The eBay Browse API adapter: an OAuth application token kept fresh, a daily call budget, newest listings first."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

from scout.errors import BlockedError, ConfigError, FetchError, ParseError
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.base import Adapter, Capabilities, Fetcher, Page, Request, ScrapeResult, SearchQuery
from scrapers.ebay_api.parse import MARKETPLACE_DOMAINS, AccessToken, parse_search_response, parse_token_response
from scrapers.netguard import SiteGuard

log = logging.getLogger(__name__)

API_BASE = "https://api.ebay.com"
SEARCH_PATH = "/buy/browse/v1/item_summary/search"
TOKEN_PATH = "/identity/v1/oauth2/token"
# The client-credentials grant gives an application token for this one public scope (developer.ebay.com, "Client
# credentials grant type"); it is all item_summary/search needs.
PUBLIC_SCOPE = "https://api.ebay.com/oauth/api_scope"
# Browse API: at most 200 items a call. 100 of the newest covers a 5-minute gap on all but the broadest queries.
PAGE_SIZE = 100
# Application tokens live 7200 s; renew 5 minutes early so a token never expires between check and use.
TOKEN_RENEW_MARGIN = timedelta(minutes=5)
# eBay's default for an application's Browse API calls ("API call limits" on developer.ebay.com).
DEFAULT_DAILY_CALLS = 5000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class DailyBudget:
    """Calls allowed per UTC day, as eBay counts its quota; resets at midnight UTC. In memory: a restart resets it."""

    def __init__(self, limit: int, clock: Clock) -> None:
        if limit < 1:
            raise ConfigError("EBAY_API_DAILY_CALLS must be at least 1")
        self.limit = limit
        self._clock = clock
        self._day = clock().astimezone(UTC).date()
        self._used = 0

    def _roll(self) -> None:
        today = self._clock().astimezone(UTC).date()
        if today != self._day:
            self._day, self._used = today, 0

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def resets_at(self) -> datetime:
        self._roll()
        return datetime.combine(self._day + timedelta(days=1), time(0), tzinfo=UTC)

    def spend(self) -> bool:
        """Take one call from today's budget; False (and nothing taken) when it is spent."""
        self._roll()
        if self._used >= self.limit:
            return False
        self._used += 1
        return True


class EbayApiAdapter(Adapter):
    """Searches eBay through its official Browse API, newest listings first; used when API credentials are set.

    Its key is "ebay", like the HTML adapter it replaces, so saved searches and stored listings carry over (both
    name a listing by eBay's item number). What is pushed to the API: the query, sort=newlyListed, limit=100 and
    the marketplace id. Per-search price and condition filters are not: searches that ask the same text share one
    call, so they run on the shared listings in memory instead (scout.matching), as for every marketplace.
    """

    key = "ebay"
    name = MARKETPLACE_NAMES[key]
    # Listings come newest first with their creation time, so a search every 5 minutes misses nothing; each
    # search costs one call of the daily budget.
    min_interval_minutes = 5
    capabilities = Capabilities(price_filter=True, location=False, posted_time=True, images=True)

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        marketplace_id: str = "EBAY_US",
        daily_calls: int = DEFAULT_DAILY_CALLS,
        clock: Clock = utc_now,
        api_base: str = API_BASE,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigError("the eBay API needs both EBAY_CLIENT_ID and EBAY_CLIENT_SECRET")
        if marketplace_id not in MARKETPLACE_DOMAINS:
            raise ConfigError(f"EBAY_MARKETPLACE_ID={marketplace_id[:20]!r} is not one of: "
                              f"{', '.join(sorted(MARKETPLACE_DOMAINS))}")
        self.marketplace_id = marketplace_id
        self._api_base = api_base.rstrip("/")
        # The API lives on one host, and nothing it answers should send us to another.
        self.registered_domains = (urlsplit(self._api_base).hostname or "",)
        self._basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        self._clock = clock
        self.budget = DailyBudget(daily_calls, clock)
        # The budget spread evenly over the day is the fetcher's pace for api.ebay.com: steady scanning cannot
        # spend it before midnight, and the budget check below catches the rest (restarts, token renewals).
        self.requests_per_minute = daily_calls / (24 * 60)
        self._token: AccessToken | None = None
        self._token_renew_at: datetime | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"EbayApiAdapter(marketplace_id={self.marketplace_id!r}, credentials=***)"

    @property
    def budget_remaining(self) -> int:
        return self.budget.remaining

    def usage(self) -> str:
        return (f"API budget: {self.budget.used} of {self.budget.limit} calls used today in this process, "
                f"resets {self.budget.resets_at:%H:%M} UTC")

    def build_request(self, query: SearchQuery) -> Request:
        """The search call without its token (search() adds the Authorization header): pure, as the contract wants."""
        return Request(
            url=f"{self._api_base}{SEARCH_PATH}",
            params=(("q", query.text), ("sort", "newlyListed"), ("limit", str(PAGE_SIZE))),
            headers=(("X-EBAY-C-MARKETPLACE-ID", self.marketplace_id), ("Accept", "application/json")),
            robots=False,  # an official API called with our own key, under eBay's API terms, not a crawled page
            url_guard=SiteGuard(self.registered_domains),
        )

    def build_token_request(self) -> Request:
        return Request(
            url=f"{self._api_base}{TOKEN_PATH}",
            method="POST",
            data=(("grant_type", "client_credentials"), ("scope", PUBLIC_SCOPE)),
            headers=(("Authorization", f"Basic {self._basic}"), ("Accept", "application/json")),
            robots=False,
            url_guard=SiteGuard(self.registered_domains),
        )

    def parse(self, page: Page) -> ScrapeResult:
        return parse_search_response(page.body)

    async def search(self, query: SearchQuery, fetcher: Fetcher) -> ScrapeResult:
        request = self.build_request(query)
        try:
            token = await self._valid_token(fetcher)
            page = await self._call(request, token, fetcher)
            if page.status == 401:
                # The token was revoked or expired early: one fresh token, one more try.
                log.info("eBay API answered 401; renewing the application token once")
                self._forget(token)
                page = await self._call(request, await self._valid_token(fetcher), fetcher)
                if page.status == 401:
                    return ScrapeResult.blocked("eBay API rejected a freshly issued token (HTTP 401)")
        except BlockedError as err:
            return ScrapeResult.blocked(str(err))
        except FetchError as err:
            return ScrapeResult.failed(str(err))
        except ParseError as err:
            return ScrapeResult.broken(str(err))
        early = self.classify_status(page)
        if early is not None:
            return early
        return await self.parse_off_loop(page)

    async def _call(self, request: Request, token: AccessToken, fetcher: Fetcher) -> Page:
        if not self.budget.spend():
            raise BlockedError(f"daily API budget spent ({self.budget.limit} calls); "
                               f"resets {self.budget.resets_at:%Y-%m-%d %H:%M} UTC")
        authorised = dataclasses.replace(request, headers=(*request.headers, ("Authorization", f"Bearer {token.value}")))
        return await fetcher.fetch(authorised)

    async def _valid_token(self, fetcher: Fetcher) -> AccessToken:
        # One renewal at a time: concurrent searches wait for it and share the new token.
        async with self._token_lock:
            if self._token is not None and self._token_renew_at is not None and self._clock() < self._token_renew_at:
                return self._token
            page = await fetcher.fetch(self.build_token_request())
            if page.status >= 500:
                raise FetchError(f"eBay OAuth token endpoint answered HTTP {page.status}")
            if page.status == 429:
                raise BlockedError("eBay OAuth token endpoint answered HTTP 429 (token request limit)")
            token = parse_token_response(page.body)
            if page.status != 200:
                raise BlockedError(f"eBay OAuth token endpoint answered HTTP {page.status}")
            self._token = token
            lifetime = timedelta(seconds=token.expires_in_seconds)
            self._token_renew_at = self._clock() + max(lifetime - TOKEN_RENEW_MARGIN, lifetime / 2)
            log.info("eBay API application token issued, valid for %d s", token.expires_in_seconds)
            return token

    def _forget(self, token: AccessToken) -> None:
        if self._token is token:
            self._token = self._token_renew_at = None
