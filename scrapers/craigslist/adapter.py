"""The Craigslist adapter: the search URL on one Craigslist site and the verdict on what came back."""

from __future__ import annotations

import re
from urllib.parse import quote

from scout.errors import ConfigError, InputError
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.base import Adapter, Capabilities, Page, Request, ScrapeResult, SearchQuery
from scrapers.craigslist.parse import parse_search_page
from scrapers.netguard import SiteGuard

# Site names are the subdomains listed at https://www.craigslist.org/about/sites ("sfbay", "corvallis").
_SITE = re.compile(r"[a-z]+")


class CraigslistAdapter(Adapter):
    """Searches "for sale" on one Craigslist site, newest first, through the server-rendered result page.

    The static page needs no area id, which the JSON search API (sapi) wants and which we cannot derive from
    the site name without a table; parse() still reads sapi answers, so switching needs only a new URL.
    """

    key = "craigslist"
    name = MARKETPLACE_NAMES[key]
    # Craigslist publishes no limit and blocks an IP that polls quickly ("This IP has been automatically
    # blocked"), so stay well below a person's browsing pace: 2 requests a minute per host, and a search every
    # 10 minutes (listings stay up for days; a 10-minute delay costs no deal).
    min_interval_minutes = 10
    requests_per_minute = 2.0
    # Every city site is one Craigslist to its rate limiter: the budget covers all of *.craigslist.org together.
    rate_limit_domain = "craigslist.org"
    registered_domains = (rate_limit_domain,)
    # The search's location picks the site; the static page shows no posting time (the JSON API does).
    capabilities = Capabilities(price_filter=True, location=True, posted_time=False, images=True)

    def __init__(self, default_site: str = "sfbay") -> None:
        if not _SITE.fullmatch(default_site):
            raise ConfigError(f"Craigslist site {default_site!r} must be a subdomain name such as 'sfbay'")
        self.default_site = default_site

    def site_for(self, query: SearchQuery) -> str:
        """The Craigslist site a search asks; its location, when given, is the site name."""
        site = (query.location or self.default_site).strip().lower()
        if not _SITE.fullmatch(site):
            raise InputError(
                f"Craigslist location {query.location!r} must be a Craigslist site name such as 'sfbay' or "
                "'corvallis' (letters only)",
                field="location",
            )
        return site

    def build_request(self, query: SearchQuery) -> Request:
        site = self.site_for(query)
        return Request(url=f"https://{site}.craigslist.org/search/sss?query={quote(query.text)}&sort=date",
                       url_guard=SiteGuard(self.registered_domains))

    def parse(self, page: Page) -> ScrapeResult:
        return parse_search_page(
            page.body, base_url=page.url, content_type=page.content_type, encoding=page.charset
        )
