"""The eBay adapter: search URLs for one eBay site and the verdict on what came back."""

from __future__ import annotations

from urllib.parse import quote_plus

from scout.errors import ConfigError
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.base import Adapter, Capabilities, Page, Request, ScrapeResult, SearchQuery
from scrapers.ebay.parse import DOMAIN_CURRENCIES, parse_search_page
from scrapers.ebay_api.parse import parse_search_response
from scrapers.netguard import SiteGuard

# eBay's own sort codes for /sch/i.html: 10 = "Time: newly listed", so new listings come first.
SORT_NEWLY_LISTED = "10"


class EbayAdapter(Adapter):
    """Searches one eBay site's public result pages (newest first) and parses both card layouts."""

    key = "ebay"
    name = MARKETPLACE_NAMES[key]
    # eBay publishes no limit for its HTML pages. Its Browse API, the sanctioned way in, allows 5,000 calls a
    # day per application (developer.ebay.com, "API call limits"): about 3.5 a minute. We stay at that pace
    # and below it per search: a 60-item newest-first page every 5 minutes misses nothing on all but the
    # busiest queries.
    min_interval_minutes = 5
    requests_per_minute = 3.0
    # The result page shows no listing date and its location is free text ("from Germany"), so neither filters.
    capabilities = Capabilities(price_filter=True, location=False, posted_time=False, images=True)

    def __init__(self, domain: str = "www.ebay.com") -> None:
        host = domain.strip().lower()
        # Longest first: www.ebay.com.au belongs to ebay.com.au, not to ebay.com.
        site = next((site for site in sorted(DOMAIN_CURRENCIES, key=len, reverse=True)
                     if host == site or host.endswith("." + site)), None)
        if site is None:
            raise ConfigError(f"{domain!r} is not an eBay site this adapter knows (e.g. www.ebay.co.uk)")
        self.domain = host
        # Sign-in and challenge pages live on the same site; another eBay site would be parsed in the wrong currency.
        self.registered_domains = (site,)

    def build_request(self, query: SearchQuery) -> Request:
        url = f"https://{self.domain}/sch/i.html?_nkw={quote_plus(query.text)}&_sop={SORT_NEWLY_LISTED}"
        return Request(url=url, headers=(("Accept-Language", _ACCEPT_LANGUAGE.get(self.domain, "en")),),
                       url_guard=SiteGuard(self.registered_domains))

    def parse(self, page: Page) -> ScrapeResult:
        if "json" in page.content_type.lower():
            # A saved Browse API answer (`dealscout parse ebay answer.json`): the API adapter shares this key.
            return parse_search_response(page.body)
        return parse_search_page(page.body, domain=self.domain, url=page.url, encoding=page.charset)


# Ask for the site's own language so the localized rows (location, ranges) are the ones the parser knows best.
_ACCEPT_LANGUAGE: dict[str, str] = {
    "www.ebay.de": "de-DE,de;q=0.9", "www.ebay.fr": "fr-FR,fr;q=0.9", "www.ebay.it": "it-IT,it;q=0.9",
    "www.ebay.es": "es-ES,es;q=0.9", "www.ebay.co.uk": "en-GB,en;q=0.9", "www.ebay.com": "en-US,en;q=0.9",
}
