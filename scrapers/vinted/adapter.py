"""The Vinted adapter: a session cookie from the country site's home page, then its catalog API, newest first."""

from __future__ import annotations

import asyncio
import logging
import re
import weakref

from scout.errors import BlockedError, ConfigError, FetchError, InputError
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.base import Adapter, Capabilities, Fetcher, Page, Request, ScrapeResult, SearchQuery
from scrapers.netguard import SiteGuard
from scrapers.vinted.parse import DOMAIN_CURRENCIES, parse_catalog

log = logging.getLogger(__name__)

CATALOG_PATH = "/api/v2/catalog/items"
# The catalog's own page size on the web site; one page of the newest covers a 5-minute gap.
PAGE_SIZE = 96
# What the site's front end sends; the catalog refuses requests that do not ask for JSON.
_API_ACCEPT = "application/json, text/plain, */*"
_HOST = re.compile(r"(?:www\.)?vinted\.[a-z]{2,3}(?:\.[a-z]{2})?")
# Statuses that mean "no valid session": the session cookie expired, or was never set.
_SESSION_REFUSED = (401, 403)


class VintedAdapter(Adapter):
    """Searches one Vinted country site (www.vinted.fr, www.vinted.pl, ...) through the catalog API its pages use.

    The API answers only with the session cookie the home page sets, so the first search through a fetcher fetches
    the home page first (the fetcher's cookie jar keeps the cookie). A 401 or 403 from the API means the session
    expired: the adapter drops the site's cookies, fetches the home page once more and retries once; a second
    refusal is BLOCKED. robots.txt applies to the API as to any page (it is the site's own front end, not a public
    API we hold a key for), so where the site disallows it, searches report BLOCKED.
    """

    key = "vinted"
    name = MARKETPLACE_NAMES[key]
    # Vinted publishes no limit; its catalog API starts answering 429 (and its bot wall a challenge) to one
    # address that polls fast. Four requests a minute per country site, a search at most every 5 minutes:
    # a person's browsing pace, and new items stay listed for days.
    min_interval_minutes = 5
    requests_per_minute = 4.0
    # The catalog shows no place (only the country site) and no listing date; condition and seller it does.
    capabilities = Capabilities(price_filter=True, location=False, posted_time=False, images=True)

    def __init__(self, domain: str = "www.vinted.fr") -> None:
        host = domain.strip().lower()
        bare = host.removeprefix("www.")
        if not _HOST.fullmatch(host) or bare not in DOMAIN_CURRENCIES:
            raise ConfigError(f"VINTED_DOMAIN={domain[:40]!r} is not a Vinted country site (e.g. www.vinted.fr)")
        self.domain = host
        # One budget for the country site, whichever subdomain the API or the images live on.
        self.rate_limit_domain = bare
        self.registered_domains = (bare,)
        # Per fetcher (each has its own cookie jar): how many sessions it was given; a search that saw an older
        # one being refused knows another search has already renewed it.
        self._sessions: weakref.WeakKeyDictionary[Fetcher, int] = weakref.WeakKeyDictionary()
        self._session_lock = asyncio.Lock()

    def build_request(self, query: SearchQuery) -> Request:
        params = (("search_text", query.text), ("order", "newest_first"), ("per_page", str(PAGE_SIZE)), ("page", "1"))
        return Request(url=f"https://{self.domain}{CATALOG_PATH}", params=params, headers=(("Accept", _API_ACCEPT),),
                       url_guard=SiteGuard(self.registered_domains))

    def build_session_request(self) -> Request:
        return Request(url=f"https://{self.domain}/", headers=(("Accept", "text/html,application/xhtml+xml"),),
                       url_guard=SiteGuard(self.registered_domains))

    def parse(self, page: Page) -> ScrapeResult:
        return parse_catalog(page.body, domain=self.domain, content_type=page.content_type)

    async def search(self, query: SearchQuery, fetcher: Fetcher) -> ScrapeResult:
        request = self.build_request(query)
        try:
            generation = await self._session(fetcher, renew_after=None)
            page = await fetcher.fetch(request)
            if page.status in _SESSION_REFUSED:
                log.info("Vinted %s answered %d; renewing the session once", self.domain, page.status)
                await self._session(fetcher, renew_after=generation)
                page = await fetcher.fetch(request)
                if page.status in _SESSION_REFUSED:
                    return ScrapeResult.blocked(
                        f"Vinted refused the catalog API with a fresh session too (HTTP {page.status})")
        except (BlockedError, InputError) as err:
            return ScrapeResult.blocked(str(err))
        except FetchError as err:
            return ScrapeResult.failed(str(err))
        early = self.classify_status(page)
        if early is not None:
            return early
        return await self.parse_off_loop(page)

    async def _session(self, fetcher: Fetcher, *, renew_after: int | None) -> int:
        """Make sure `fetcher` holds a session; with renew_after, replace session number renew_after if still current."""
        async with self._session_lock:
            current = self._sessions.get(fetcher)
            if current is not None and (renew_after is None or current != renew_after):
                return current
            if current is not None:
                # Start clean: a stale cookie sent back could keep the site from issuing a fresh one.
                clear = getattr(fetcher, "clear_cookies", None)
                if clear is not None:
                    clear(self.rate_limit_domain)
            page = await fetcher.fetch(self.build_session_request())
            if page.status in (*_SESSION_REFUSED, 429):
                raise BlockedError(f"Vinted home page answered HTTP {page.status} while starting a session")
            if page.status >= 400:
                raise FetchError(f"Vinted home page answered HTTP {page.status} while starting a session")
            number = (current or 0) + 1
            self._sessions[fetcher] = number
            return number
