"""Kijiji search RSS feeds -> Listings (double-escaped titles unescaped, CAD prices, coordinates); pure."""

from __future__ import annotations

import html
import logging
from decimal import Decimal, InvalidOperation

import lxml.etree as etree

from scout.errors import ParseError
from scout.models import Listing, Money
from scrapers.base import ScrapeResult
from scrapers.rss.parse import block_reason, local_name, parse_date, parse_xml

log = logging.getLogger(__name__)

MARKETPLACE = "kijiji"
CURRENCY = "CAD"  # Kijiji is Canada only; g-core:price is a bare number in Canadian dollars
G_CORE = "http://base.google.com/ns/1.0"
GEO = "http://www.w3.org/2003/01/geo/wgs84_pos#"
_PRICE, _LAT, _LONG = f"{{{G_CORE}}}price", f"{{{GEO}}}lat", f"{{{GEO}}}long"


def parse_feed(body: bytes) -> ScrapeResult:
    """Classify and parse a Kijiji RSS search feed: a channel of items, genuinely empty, a block page, or broken."""
    try:
        items = _feed_items(parse_xml(body, what="Kijiji feed"))
    except ParseError:
        # Not a feed: a bot wall's page (well-formed or not) is blocked, anything else is broken.
        blocked = block_reason(body, "Kijiji")
        if blocked:
            return ScrapeResult.blocked(blocked)
        raise
    listings: list[Listing] = []
    seen: set[str] = set()
    for item in items:
        listing = _item_listing(item)
        if listing is not None and listing.external_id not in seen:
            seen.add(listing.external_id)
            listings.append(listing)
    if items and not listings:
        raise ParseError(f"{len(items)} Kijiji feed items but none had an ad link and a title")
    return ScrapeResult.of(listings)


def _feed_items(root: etree._Element) -> list[etree._Element]:
    channel = root.find("channel") if local_name(root) == "rss" else None
    if channel is None:
        raise ParseError(f"not a Kijiji RSS feed: the document element is <{local_name(root)}>")
    return channel.findall("item")


def _item_listing(item: etree._Element) -> Listing | None:
    # One pass over the item's dozen leaf children, reading their text: an lxml find() per field costs more than
    # the rest of the parse.
    texts: dict[str, str] = {}
    image = None
    for child in item:
        if child.tag == "enclosure":
            image = child.get("url")
        elif child.text:
            texts[child.tag] = child.text.strip()
    # Kijiji escapes titles and descriptions twice ("n&amp;#233;gociable"): XML undoes one, html.unescape the other.
    raw_title = texts.get("title")
    title = " ".join(html.unescape(raw_title).split()) if raw_title else None
    link = texts.get("link") or texts.get("guid")
    ad_id = link.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] if link else ""
    if not title or not link or not ad_id.isdigit():
        log.debug("Kijiji item without a title or an ad link: %r", link)
        return None
    price_text = texts.get(_PRICE) or None
    return Listing(
        marketplace=MARKETPLACE,
        external_id=ad_id,
        title=title,
        url=link,
        price=_price(price_text),
        price_text=price_text,
        location=_location(link, texts.get(_LAT) or None, texts.get(_LONG) or None),
        image_url=image,
        posted_at=parse_date(texts.get("pubDate")),
    )


def _price(text: str | None) -> Money | None:
    # Absent on "wanted" ads and on ads with no price ("Please contact", "Swap / Trade").
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        log.debug("unreadable Kijiji price %r", text)
        return None
    return Money(amount, CURRENCY) if amount.is_finite() and amount >= 0 else None


def _location(link: str, lat: str | None, lon: str | None) -> str | None:
    """The place in the ad's address (/v-<category>/<place>/<slug>/<id>) and its coordinates, when given."""
    parts = link.split("://", 1)[-1].split("/")
    place = parts[2].replace("-", " ") if len(parts) >= 5 else None
    where = f"({lat}, {lon})" if lat and lon else None
    return " ".join(part for part in (place, where) if part) or None
