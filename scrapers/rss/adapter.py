"""The RSS/Atom adapter: the feed URL a search gives (checked: public http(s) only) and the verdict on the feed."""

from __future__ import annotations

import logging

from yarl import URL

from scout.errors import BlockedError, FetchError, InputError
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.base import Adapter, Capabilities, Page, Request, ScrapeResult, SearchQuery, UrlGuard
from scrapers.netguard import UrlGuard as NetworkGuard
from scrapers.netguard import check_url
from scrapers.rss.parse import parse_feed

log = logging.getLogger(__name__)

_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
_PRODUCTION_GUARD = object()


class RssAdapter(Adapter):
    """Reads one RSS 2.0, RSS 1.0 or Atom feed per search: the feed URL is the search's location.

    The feed is the same whatever the query, so the query's words filter its items (the scan's matcher does that),
    and the price comes from the item title when the title shows one ("... - $499").

    The URL is a user's, so it is checked twice: its syntax when the search is saved (build_request is pure and
    raises InputError: http(s) only, no internal names or literal internal addresses) and, at every fetch and every
    redirect hop, the addresses its host resolves to (scrapers.netguard.UrlGuard, passed to the fetcher as the
    request's url_guard). Production always guards; only tests, whose fake sites live on 127.0.0.1, pass another
    guard or url_guard=None.

    Feed hosts are the users' choice, so the scan keeps a circuit per feed host (circuit_host), and asks before each
    fetch whether the feed's address may be fetched at all (check_address): one that leads to an internal address
    pauses the searches that gave it, and counts against no host's circuit.
    """

    key = "rss"
    name = MARKETPLACE_NAMES[key]
    # Feeds tell readers how often to poll: RSS <ttl> values and common practice are 15-60 minutes, and deal feeds
    # (Slickdeals' frontpage feed among them) are built to be polled about that often. 15 minutes is the floor.
    min_interval_minutes = 15
    # Meant per feed host: a feed is one small file, and 2 requests a minute to one host is far below any limit.
    # Feeds live on any host, so there is no domain to register this budget for: feed hosts get the fetcher's
    # default per-host rate (build_request refuses the composition root's probe, which has no feed URL).
    requests_per_minute = 2.0
    # location = the feed URL; titles carry a price only sometimes, so no price filter is promised.
    capabilities = Capabilities(price_filter=False, location=True, posted_time=True, images=True)

    def __init__(self, *, url_guard: UrlGuard | None | object = _PRODUCTION_GUARD) -> None:
        if url_guard is _PRODUCTION_GUARD:
            self._guard: UrlGuard | None = NetworkGuard()
        else:
            if url_guard is None:
                log.warning("RSS adapter built without a URL guard: feeds may reach internal addresses (tests only)")
            self._guard = url_guard  # type: ignore[assignment]

    def build_request(self, query: SearchQuery) -> Request:
        if not query.location:
            raise InputError(
                "The RSS/Atom feed marketplace needs the feed's address as the search's location "
                "(e.g. https://slickdeals.net/newsearch.php?mode=frontpage&searcharea=deals&searchin=first&rss=1).",
                field="location",
            )
        url = check_url(query.location)
        return Request(url=str(url), headers=(("Accept", _ACCEPT),), url_guard=self._guard)

    def parse(self, page: Page) -> ScrapeResult:
        return parse_feed(page.body, feed_url=page.url)

    def circuit_host(self, query: SearchQuery) -> str:
        """The feed's host: its circuit is its own, so one user's dead feed stops nobody else's."""
        return URL(self.build_request(query).url).host or ""

    async def check_address(self, query: SearchQuery) -> None:
        """Raise InputError, saying why, when the network guard refuses the feed's address (it leads to an internal
        host): the search's own address is at fault, not the feed host. A name that does not resolve is left to the
        fetch, which reports it against the feed host. The fetch checks again, every hop and every connection."""
        if self._guard is None:
            return
        try:
            await self._guard(URL(self.build_request(query).url))
        except BlockedError as err:
            raise InputError(str(err), field="location") from err
        except FetchError:
            return
