"""The Facebook Marketplace adapter: the logged-out search URL for a place and radius, and the verdict on the page."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from scout.errors import ConfigError, InputError
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.base import Adapter, Capabilities, Page, Request, ScrapeResult, SearchQuery
from scrapers.facebook.parse import parse_search_page
from scrapers.netguard import SiteGuard

# A place is the part of a Marketplace URL after /marketplace/: a city's vanity name ("nyc", "sanfrancisco") or
# Facebook's numeric location id ("108424279189115"); both are what the site itself puts there.
_PLACE = re.compile(r"[a-z0-9][a-z0-9.\-]{0,63}")
# ...or coordinates, "lat,lon" in decimal degrees.
_COORDINATES = re.compile(r"\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*")
# The site sorts by "creation_time_descend" when a visitor picks "Date listed: newest first".
SORT_NEWEST = "creation_time_descend"


class FacebookAdapter(Adapter):
    """Searches Facebook Marketplace as a logged-out visitor and reads the results from the page's embedded JSON.

    Location: a search's location is a place (vanity name or numeric location id) put in the path, as
    https://www.facebook.com/marketplace/<place>/search/?query=...; or "lat,lon", sent as `latitude` and
    `longitude` on /marketplace/search/. Radius: `radius`, in kilometres. Without a location the adapter's default
    place is used, and without that Facebook picks one from the visitor's IP address (the server's, not yours).

    Sold, pending and hidden listings are skipped (see parse.py). Search results show no posted time.

    Facebook's robots.txt disallows every crawler it has not named, so with RESPECT_ROBOTS_TXT=true (the default)
    every search ends as BLOCKED "robots.txt disallows", which is the honest answer; an operator who turns robots.txt
    off takes responsibility for Facebook's terms. A login wall or checkpoint is reported as BLOCKED as well.
    """

    key = "facebook"
    name = MARKETPLACE_NAMES[key]
    # Facebook publishes no limit for logged-out browsing and soon answers a fast visitor with a login wall or a
    # "You're temporarily blocked" page that lasts hours. One page a minute across all searches, and a search at
    # most every 15 minutes, keeps us at the pace of a person refreshing a search now and then; local listings
    # stay up for days, so 15 minutes costs no deal.
    min_interval_minutes = 15
    requests_per_minute = 1.0
    # www., m. and web. share one reputation at Facebook: one budget for all of facebook.com.
    rate_limit_domain = "facebook.com"
    registered_domains = (rate_limit_domain,)
    capabilities = Capabilities(price_filter=True, location=True, posted_time=False, images=True)

    def __init__(self, default_location: str | None = None) -> None:
        self.default_location = (default_location or "").strip().lower() or None
        if self.default_location is not None:
            try:
                self._place(self.default_location, None)
            except InputError as err:
                raise ConfigError(f"FACEBOOK_LOCATION: {err}") from err

    def build_request(self, query: SearchQuery) -> Request:
        params: list[tuple[str, str]] = [("query", query.text), ("sortBy", SORT_NEWEST), ("exact", "false")]
        path, place_params = self._place(query.location or self.default_location, query.radius_km)
        url = f"https://www.facebook.com/marketplace/{path}?{urlencode(params + place_params)}"
        # English pages, so the challenge texts the parser knows are the ones we get.
        return Request(url=url, headers=(("Accept-Language", "en-US,en;q=0.9"),),
                       url_guard=SiteGuard(self.registered_domains))

    def _place(self, location: str | None, radius_km: int | None) -> tuple[str, list[tuple[str, str]]]:
        radius = [("radius", str(radius_km))] if radius_km else []
        if not location:
            return "search/", radius
        coordinates = _COORDINATES.fullmatch(location)
        if coordinates:
            lat, lon = float(coordinates.group(1)), float(coordinates.group(2))
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise InputError(f"Coordinates {location!r} are out of range (latitude -90..90, longitude -180..180).",
                                 field="location")
            return "search/", [("latitude", coordinates.group(1)), ("longitude", coordinates.group(2)), *radius]
        place = location.replace(" ", "")
        if not _PLACE.fullmatch(place):
            raise InputError(
                f"Facebook location {location[:40]!r} must be a Marketplace place name such as 'nyc' or "
                "'sanfrancisco', a numeric location id, or coordinates like '40.71,-74.00'.",
                field="location",
            )
        return f"{place}/search/", radius

    def parse(self, page: Page) -> ScrapeResult:
        return parse_search_page(page.body, url=page.url, content_type=page.content_type)
