"""Kijiji search RSS feeds -> Listings (double-escaped titles unescaped, CAD prices, coordinates); pure."""

from __future__ import annotations

import functools
import html
import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from scout.errors import ParseError
from scout.models import Listing, Money
from scrapers.base import Distinct, ScrapeResult
from scrapers.rss.parse import block_reason, local_name, parse_date, parse_xml

log = logging.getLogger(__name__)

MARKETPLACE = "kijiji"
CURRENCY = "CAD"  # Kijiji is Canada only; g-core:price is a bare number in Canadian dollars
G_CORE = "http://base.google.com/ns/1.0"
GEO = "http://www.w3.org/2003/01/geo/wgs84_pos#"
DC = "http://purl.org/dc/elements/1.1/"
_PRICE, _LAT, _LONG, _DC_DATE = f"{{{G_CORE}}}price", f"{{{GEO}}}lat", f"{{{GEO}}}long", f"{{{DC}}}date"
# An ad's address split at "/": "https:", "", host, "v-<category>", place, slug, ad id.
_AD_PATH_PARTS = 7


def parse_feed(body: bytes) -> ScrapeResult:
    """Classify and parse a Kijiji RSS search feed: a channel of items, genuinely empty, a block page, or broken.

    Every item counts as a result row (an item repeating an earlier ad id, once), so an item that cannot be read
    makes the fetch partial.
    """
    try:
        items = _feed_items(parse_xml(body, what="Kijiji feed", blank_text=False))
    except ParseError:
        # Not a feed: a bot wall's page (well-formed or not) is blocked, anything else is broken.
        blocked = block_reason(body, "Kijiji")
        if blocked:
            return ScrapeResult.blocked(blocked)
        raise
    found = Distinct()
    for item in items:
        listing = _item_listing(item)
        if listing is not None:
            found.add(listing)
    if items and not found.listings:
        raise ParseError(f"{len(items)} Kijiji feed items but none had an ad link and a title")
    return ScrapeResult.of(found.listings, rows=len(items) - found.repeats)


def _feed_items(root: etree._Element) -> list[etree._Element]:
    # iterchildren matches names as find() and findall() do, without their path machinery.
    channel = next(root.iterchildren("channel"), None) if local_name(root) == "rss" else None
    if channel is None:
        raise ParseError(f"not a Kijiji RSS feed: the document element is <{local_name(root)}>")
    return list(channel.iterchildren("item"))


# A description longer than this is cut: its first words say what the ad is about.
MAX_DESCRIPTION = 4000


def _item_listing(item: etree._Element) -> Listing | None:
    # One pass over the item's dozen leaf children, reading only the texts used: an lxml find() per field, or
    # the text of every child (the description is the longest), costs more than the rest of the parse. The guid
    # and pubDate are read only when the link or dc:date is missing.
    title = link = guid = price_text = lat = lon = pub_date = dc_date = image = description = None
    # A slice lists the children in one call, faster than stepping the element's own iterator.
    for child in item[:]:
        tag = child.tag
        if tag == "title":
            title = child.text
        elif tag == "link":
            link = child.text
        elif tag == "enclosure":
            image = child.get("url")
        elif tag == "description":
            description = child.text
        elif tag == "pubDate":
            pub_date = child
        elif tag == "guid":
            guid = child
        elif tag == _DC_DATE:
            dc_date = child.text
        elif tag == _PRICE:
            price_text = child.text
        elif tag == _LAT:
            lat = child.text
        elif tag == _LONG:
            lon = child.text
    # Kijiji escapes titles and descriptions twice ("n&amp;#233;gociable"): XML undoes one, html.unescape the other.
    if title and "&" in title:
        title = html.unescape(title)
    title = " ".join(title.split()) if title else None
    link = (link.strip() if link else "") or ((guid.text or "").strip() if guid is not None else "")
    # https://www.kijiji.ca/v-<category>/<place>/<slug>/<ad id>, perhaps with a query or a trailing slash.
    parts = link.rstrip("/").split("/")
    ad_id = parts[-1].split("?", 1)[0]
    if not title or not ad_id.isdigit():
        log.debug("Kijiji item without a title or an ad link: %r", link)
        return None
    price_text = price_text.strip() or None if price_text else None
    return Listing(
        marketplace=MARKETPLACE,
        external_id=ad_id,
        title=title,
        url=link,
        price=_price(price_text) if price_text else None,
        price_text=price_text,
        location=_location(parts[4] if len(parts) >= _AD_PATH_PARTS else None, lat, lon),
        image_url=image,
        posted_at=_posted(dc_date, pub_date),
        # As the feed has it (still escaped once): only words to exclude read it, and they unescape it then
        # (scout.matching.plain_text), so the parse pays nothing for the searches that exclude no word.
        description=description[:MAX_DESCRIPTION] if description else None,
    )


def _posted(dc_date: str | None, pub_date: etree._Element | None) -> datetime | None:
    # dc:date is the same time as pubDate, in ISO 8601, which reads at a quarter of the cost; Kijiji writes it with
    # its zone ("2023-07-15T02:29:12Z"), which the standard reader takes as it is.
    if dc_date:
        try:
            when = datetime.fromisoformat(dc_date)
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            return when
    return parse_date(dc_date) or parse_date(pub_date.text if pub_date is not None else None)


@functools.lru_cache(maxsize=1024)  # pure, and a feed polled again shows the same ads, priced the same
def _price(text: str) -> Money | None:
    # g-core:price is absent on "wanted" ads and on ads with no price ("Please contact", "Swap / Trade").
    try:
        amount = Decimal(text)
    except InvalidOperation:
        log.debug("unreadable Kijiji price %r", text)
        return None
    return Money(amount, CURRENCY) if amount.is_finite() and amount >= 0 else None


@functools.lru_cache(maxsize=1024)  # pure, and a feed's ads come from a few places
def _location(place: str | None, lat: str | None, lon: str | None) -> str | None:
    """The place named in the ad's address ("city-of-toronto") and its coordinates, when given."""
    lat, lon = (lat.strip(), lon.strip()) if lat and lon else (None, None)
    where = f"({lat}, {lon})" if lat and lon else None
    if place and where:
        return f"{place.replace('-', ' ')} {where}"
    return place.replace("-", " ") if place else where
