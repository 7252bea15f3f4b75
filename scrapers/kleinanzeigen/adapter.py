"""The Kleinanzeigen adapter: the search URL for a query and an optional region, and the verdict on the page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

from scout.errors import InputError
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.base import Adapter, Capabilities, Page, Request, ScrapeResult, SearchQuery
from scrapers.kleinanzeigen.parse import SITE, parse_search_page
from scrapers.netguard import SiteGuard

# The German states and their location ids, as the site's own result pages link them ("/s-berlin/l3331").
STATES: dict[str, int] = {
    "baden-württemberg": 7970, "bayern": 5510, "berlin": 3331, "brandenburg": 7711, "bremen": 1, "hamburg": 9409,
    "hessen": 4279, "mecklenburg-vorpommern": 61, "niedersachsen": 2428, "nordrhein-westfalen": 928,
    "rheinland-pfalz": 4938, "saarland": 285, "sachsen": 3799, "sachsen-anhalt": 2165, "schleswig-holstein": 408,
    "thüringen": 3548,
}
_SPELLINGS = {"baden-wuerttemberg": "baden-württemberg", "thueringen": "thüringen", "bavaria": "bayern",
              "nrw": "nordrhein-westfalen", "hesse": "hessen", "saxony": "sachsen", "lower-saxony": "niedersachsen"}
_WHOLE_COUNTRY = frozenset({"deutschland", "germany", "de"})
# The radius choices of the site's search form ("Ganzer Ort", + 5 km ... + 200 km); others round up to the next.
RADII_KM = (5, 10, 20, 30, 50, 100, 150, 200)
_LOCATION_ID = re.compile(r"l(\d{1,9})")
_SLUG_JUNK = re.compile(r"[^\w]+")


class KleinanzeigenAdapter(Adapter):
    """Searches Kleinanzeigen (all categories, newest first: the site's default order) through its result pages."""

    key = "kleinanzeigen"
    name = MARKETPLACE_NAMES[key]
    # Kleinanzeigen publishes no limit and sits behind a bot wall (the real Reblaze challenge page in the fixtures)
    # that trips on fast polling. 2 requests a minute across the site is a person's browsing pace, and a search every
    # 10 minutes is quick enough for second-hand ads, which stay up for days.
    min_interval_minutes = 10
    requests_per_minute = 2.0
    rate_limit_domain = "kleinanzeigen.de"
    registered_domains = (rate_limit_domain,)
    # Cards show price, place, date ("Heute, 10:15" or a day) and a picture; location = a state or a location id.
    capabilities = Capabilities(price_filter=True, location=True, posted_time=True, images=True)

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))

    def location_code(self, query: SearchQuery) -> str:
        """The "l<id>[r<km>]" part of the search path; empty for all of Germany."""
        if not query.location:
            return ""
        place = "-".join(query.location.strip().lower().split())
        place = _SPELLINGS.get(place, place)
        if place in _WHOLE_COUNTRY:
            return ""
        if place in STATES:
            location_id = STATES[place]
        elif found := _LOCATION_ID.fullmatch(place):
            location_id = int(found.group(1))
        elif place.isdigit() and len(place) == 5:
            raise InputError(
                f"Kleinanzeigen cannot search by postcode ({place}): search the place once on kleinanzeigen.de and "
                "give the 'l' number from the address (…/k0l3518r10 -> l3518).",
                field="location",
            )
        else:
            raise InputError(
                f"Kleinanzeigen location {query.location[:60]!r} must be a German state (Berlin, Bayern, ...) or a "
                "location id from a Kleinanzeigen search address, such as l3331.",
                field="location",
            )
        return f"l{location_id}{self._radius(query.radius_km)}"

    @staticmethod
    def _radius(radius_km: int | None) -> str:
        if radius_km is None:
            return ""
        for choice in RADII_KM:
            if radius_km <= choice:
                return f"r{choice}"
        raise InputError(f"Kleinanzeigen searches at most {RADII_KM[-1]} km around a place.", field="radius")

    def build_request(self, query: SearchQuery) -> Request:
        # The site's own slugs: lower case, words joined by "-", umlauts percent-encoded ("/s-gartenm%C3%B6bel/k0").
        slug = _SLUG_JUNK.sub("-", query.text.lower()).strip("-_")
        if not slug:
            raise InputError("The query needs at least one letter or digit to search Kleinanzeigen for.",
                             field="query")
        url = f"{SITE}/s-{quote(slug, safe='-')}/k0{self.location_code(query)}"
        return Request(url=url, headers=(("Accept-Language", "de-DE,de;q=0.9"),),
                       url_guard=SiteGuard(self.registered_domains))

    def parse(self, page: Page) -> ScrapeResult:
        return parse_search_page(page.body, now=self._clock(), encoding=page.charset)
