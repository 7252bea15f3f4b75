"""Craigslist search results (the static HTML page and the sapi JSON API) -> Listings and a page verdict; pure."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

import lxml.etree as etree

from scout.errors import ParseError
from scout.models import Listing, Money
from scrapers.base import ScrapeResult
from scrapers.money import parse_money

log = logging.getLogger(__name__)

MARKETPLACE = "craigslist"
DEFAULT_CURRENCY = "USD"

# sapi category ids of the "for sale" (sss) section -> the abbreviation in posting URLs, owner and dealer
# variants. Source: the category table in Craigslist's own search front end (sapi v7, 2022).
SSS_CATEGORIES: dict[int, str] = {
    5: "for", 7: "sys", 20: "wan", 42: "bar", 44: "tix", 68: "bik", 69: "mcy", 73: "gms", 92: "bks", 93: "spo",
    94: "clo", 95: "clt", 96: "ele", 97: "hsh", 98: "msg", 101: "zip", 107: "bab", 117: "emd", 118: "tls",
    119: "boa", 120: "jwl", 122: "pts", 124: "rvs", 132: "tag", 133: "grd", 134: "bfs", 135: "art", 136: "mat",
    137: "pho", 141: "fuo", 142: "fud", 145: "cto", 146: "ctd", 149: "app", 150: "atq", 151: "vgm", 152: "hab",
    153: "mob", 160: "mcd", 161: "tid", 162: "ppd", 163: "ptd", 164: "bod", 165: "mod", 166: "syd", 167: "eld",
    168: "rvd", 169: "atd", 170: "ard", 171: "bad", 172: "bid", 173: "bkd", 174: "bfd", 175: "emq", 176: "cld",
    177: "cbd", 178: "grq", 179: "fod", 180: "had", 181: "hsd", 182: "jwd", 183: "mad", 184: "msd", 185: "phd",
    186: "sgd", 187: "tld", 188: "tad", 189: "vgd", 190: "wad", 191: "snw", 192: "snd", 193: "hvo", 194: "hvd",
    195: "mpo", 196: "mpd", 197: "bop", 198: "bdp", 199: "sop", 200: "sdp", 201: "bpo", 202: "bpd", 203: "wto",
    204: "wtd", 205: "tro", 206: "trb", 208: "avo", 209: "avd",
}
# sapi image ids become thumbnails at this size, as the site's own result list shows them.
SAPI_IMAGE_URL = "https://images.craigslist.org/{image_id}_300x300.jpg"
# sapi items: [id offset, posted offset, category, price, "loc:desc[:hood]~lat~lon", tagged extras..., title].
_SAPI_IMAGES_TAG = 4
_SAPI_NO_PRICE = -1

_RESULTS_LIST = etree.XPath('//ol[contains(@class, "cl-static-search-results")]')
_RESULT_ROWS = etree.XPath('./li[contains(@class, "cl-static-search-result")]')
_OTHER_ROWS = etree.XPath('./li[not(contains(@class, "cl-static-hub-links"))]')
_LD_RESULTS = etree.XPath('//script[@id="ld_searchpage_results"]/text()')
_VISIBLE_TEXT = etree.XPath("//title//text() | //body//text()[not(ancestor::script or ancestor::style)]")
_POSTING_ID = re.compile(r"/(\d+)\.html(?:[?#]|$)")
# What Craigslist answers a client it has rate limited, and the interstitials of the CDNs in front of it.
_BLOCK_MARKERS = ("this ip has been automatically blocked", "your ip has been blocked", "access denied",
                  "just a moment...", "attention required", "captcha")


def parse_search_page(
    body: bytes | str, *, base_url: str = "", content_type: str = "", encoding: str | None = None
) -> ScrapeResult:
    """Classify and parse either Craigslist format: JSON when the content type or the first byte says so."""
    head = body[:64].lstrip() if isinstance(body, bytes) else body[:64].lstrip().encode()
    if "json" in content_type.lower() or head.startswith(b"{"):
        return parse_sapi(body)
    return parse_static_page(body, base_url=base_url, encoding=encoding)


def parse_static_page(body: bytes | str, *, base_url: str = "", encoding: str | None = None) -> ScrapeResult:
    """The server-rendered search page: li.cl-static-search-result rows merged with the ld+json result list."""
    if not body.strip():
        raise ParseError("empty Craigslist page")
    # A plain etree parser: lxml.html's element classes cost a lookup per element, a third of this parse.
    try:
        parser = etree.HTMLParser(encoding=encoding or "utf-8") if isinstance(body, bytes) else etree.HTMLParser()
    except LookupError:
        parser = etree.HTMLParser(encoding="utf-8")
    try:
        doc = etree.fromstring(body, parser=parser)
        if doc is None:
            raise ValueError("no document")
    except (etree.ParserError, ValueError) as err:
        raise ParseError(f"Craigslist page is not HTML: {err}") from err
    lists = _RESULTS_LIST(doc)
    rows = [row for ol in lists for row in _RESULT_ROWS(ol)]
    ld_items = _ld_items(doc)
    listings = _dedupe(_parse_static_row(row, ld_items, i, base_url) for i, row in enumerate(rows))
    if listings:
        return ScrapeResult.of(listings)
    if rows:
        raise ParseError(f"{len(rows)} Craigslist result rows but none had a posting link and title")
    # No-results first: the page repeats the query, which may say "blocked". With nothing found the static page
    # keeps its list, holding only the "see also" links, and an empty ld+json list; a page cut short has no
    # ld+json block at all, so it cannot pass for empty.
    if lists and not any(_OTHER_ROWS(ol) for ol in lists) and ld_items is not None and not ld_items:
        return ScrapeResult.of([])
    blocked = _blocked_reason(doc)
    if blocked:
        return ScrapeResult.blocked(blocked)
    if lists:
        raise ParseError("Craigslist results list holds rows of an unknown kind: the layout changed")
    raise ParseError("no Craigslist results list and no recognisable no-results or block page")


def parse_sapi(data: bytes | str | dict[str, Any], *, currency: str = DEFAULT_CURRENCY) -> ScrapeResult:
    """The JSON search API (sapi v7/v8): positional item arrays decoded against data.decode."""
    if isinstance(data, dict):
        payload = data
    else:
        try:
            payload = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise ParseError(f"Craigslist search API answer is not JSON: {err}") from err
    try:
        result = payload["data"]
        items = result["items"]
        decode = result["decode"]
    except (KeyError, TypeError) as err:
        errors = payload.get("errors") if isinstance(payload, dict) else None
        raise ParseError(f"Craigslist search API answer has no data.items/decode (errors: {errors!r})") from err
    if not isinstance(items, list):
        raise ParseError("Craigslist search API data.items is not a list")
    places: dict[str, tuple[str, str, str | None]] = {}  # items repeat a handful of locations
    listings = _dedupe(_parse_sapi_item(item, decode, currency, places) for item in items)
    if items and not listings:
        raise ParseError(f"{len(items)} Craigslist API items but none decoded: the format changed")
    return ScrapeResult.of(listings)


def _dedupe(candidates: Any) -> list[Listing]:
    listings: list[Listing] = []
    seen: set[str] = set()
    for listing in candidates:
        if listing is not None and listing.external_id not in seen:
            seen.add(listing.external_id)
            listings.append(listing)
    return listings


def _ld_items(doc: etree._Element) -> list[dict[str, Any]] | None:
    """The ld+json result items in page order, or None when the block is absent or unreadable."""
    for text in _LD_RESULTS(doc):
        try:
            elements = json.loads(text).get("itemListElement")
        except (ValueError, AttributeError):
            log.warning("unreadable ld_searchpage_results block on a Craigslist page")
            return None
        if isinstance(elements, list):
            items = [e.get("item") if isinstance(e, dict) else None for e in elements]
            return [item if isinstance(item, dict) else {} for item in items]
    return None


def _parse_static_row(
    row: etree._Element, ld_items: list[dict[str, Any]] | None, index: int, base_url: str
) -> Listing | None:
    # A row is a dozen elements: one Python pass over them is cheaper than an XPath per field.
    title = price_text = location = href = None
    for element in row.iter("a", "div", "span"):
        if href is None and element.tag == "a":
            href = element.get("href")
        classes = (element.get("class") or "").split()
        if not classes:
            continue
        if title is None and "title" in classes:
            title = _text(element)
        elif price_text is None and "price" in classes:
            price_text = _text(element)
        elif location is None and "location" in classes:
            location = _text(element)
    title = title or " ".join((row.get("title") or "").split())
    posting = _POSTING_ID.search(href) if href else None
    if not title or posting is None or href is None:
        return None
    ld = _matching_ld_item(ld_items, index, title)
    offers = ld.get("offers")
    if not isinstance(offers, dict):
        offers = {}
    currency = offers.get("priceCurrency") or DEFAULT_CURRENCY
    images = ld.get("image") or []
    if isinstance(images, str):
        images = [images]
    return Listing(
        marketplace=MARKETPLACE,
        external_id=posting.group(1),
        title=title,
        url=href if href.startswith("https://") else urljoin(base_url, href),
        price=parse_money(price_text, currency) if price_text else _ld_price(offers, currency),
        price_text=price_text,
        location=location or _ld_locality(offers),
        image_url=images[0] if images else None,
    )


def _text(element: etree._Element) -> str | None:
    # The fields are leaf divs; reading .text spares lxml's slower text walk.
    raw = element.text if len(element) == 0 else "".join(element.itertext())
    return " ".join((raw or "").split()) or None


def _matching_ld_item(ld_items: list[dict[str, Any]] | None, index: int, title: str) -> dict[str, Any]:
    # The ld+json list is in page order; the name check guards against the two lists ever drifting apart.
    if not ld_items or index >= len(ld_items):
        return {}
    item = ld_items[index]
    if " ".join(str(item.get("name") or "").split()).casefold() != title.casefold():
        log.debug("Craigslist ld+json item %d is %r, not %r: not merged", index, item.get("name"), title)
        return {}
    return item


def _ld_price(offers: dict[str, Any], currency: str) -> Money | None:
    price = offers.get("price")
    if price in (None, ""):
        return None
    return parse_money(str(price), currency)


def _ld_locality(offers: dict[str, Any]) -> str | None:
    place = offers.get("availableAtOrFrom")
    address = place.get("address") if isinstance(place, dict) else None
    return (address.get("addressLocality") or None) if isinstance(address, dict) else None


def _blocked_reason(doc: etree._Element) -> str | None:
    text = " ".join(" ".join(_VISIBLE_TEXT(doc)).split()).casefold()
    for marker in _BLOCK_MARKERS:
        if marker in text:
            return f"Craigslist refused the request ({marker!r})"
    return None


def _parse_sapi_item(item: Any, decode: dict[str, Any], currency: str,
                     places: dict[str, tuple[str, str, str | None]]) -> Listing | None:
    try:
        posting_id = int(decode["minPostingId"]) + int(item[0])
        posted = int(decode["minPostedDate"]) + int(item[1])
        category = item[2]
        price = item[3]
        where = str(item[4])
    except (KeyError, IndexError, TypeError, ValueError):
        log.debug("undecodable Craigslist API item %r", item)
        return None
    title = None
    image_id: str | None = None
    for extra in item[5:]:
        if isinstance(extra, str):
            title = extra
        elif isinstance(extra, list) and len(extra) > 1 and extra[0] == _SAPI_IMAGES_TAG:
            image_id = str(extra[1]).split(":", 1)[-1].strip()  # only the first picture is shown
    if not title:
        return None
    place_key = where.split("~", 1)[0]
    place = places.get(place_key)
    if place is None:
        place = places[place_key] = _sapi_location(place_key, decode)
    hostname, subarea, description = place
    path = "/".join(p for p in (subarea, SSS_CATEGORIES.get(category, "sss"), f"{posting_id}.html") if p)
    has_price = isinstance(price, int) and price != _SAPI_NO_PRICE
    return Listing(
        marketplace=MARKETPLACE,
        external_id=str(posting_id),
        title=title,
        url=f"https://{hostname}.craigslist.org/{path}",
        price=Money(Decimal(price), currency) if has_price else None,
        location=description,
        image_url=SAPI_IMAGE_URL.format(image_id=image_id) if image_id else None,
        posted_at=datetime.fromtimestamp(posted, tz=UTC),
    )


def _sapi_location(where: str, decode: dict[str, Any]) -> tuple[str, str, str | None]:
    """(hostname, subarea, description) from "locIdx:descIdx[:hoodIdx]~lat~lon" and the decode tables."""
    indexes = [part.strip() for part in where.split("~")[0].split(":")]
    locations = decode.get("locations") or []
    descriptions = decode.get("locationDescriptions") or []
    hostname, subarea, description = "www", "", None
    try:
        area = locations[int(indexes[0])]
        if isinstance(area, list) and len(area) >= 2:
            hostname = str(area[1])
            subarea = str(area[2]) if len(area) > 2 else ""
        if len(indexes) > 1:
            found = descriptions[int(indexes[1])]
            description = found if isinstance(found, str) and found else None
    except (IndexError, ValueError):
        log.debug("Craigslist API location %r is outside the decode tables", where)
    return hostname, subarea, description or (hostname if hostname != "www" else None)
