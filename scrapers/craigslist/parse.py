"""Craigslist search results (the static HTML page and the sapi JSON API) -> Listings and a page verdict; pure."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

import msgspec
from selectolax.lexbor import LexborHTMLParser, LexborNode

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

_RESULTS_LIST = "ol.cl-static-search-results"
_RESULT_ROWS = "ol.cl-static-search-results > li.cl-static-search-result"
_OTHER_ROWS = "ol.cl-static-search-results > li:not(.cl-static-hub-links)"
_LD_RESULTS_ID = b'id="ld_searchpage_results"'
# Posting links: ".../<slug>/<numeric id>.html", or the newer "https://www.craigslist.org/view/d/<slug>/<token>",
# whose opaque token is the posting's only id.
_POSTING_ID = re.compile(r"/(\d+)\.html(?:[?#]|$)")
_POSTING_TOKEN = re.compile(r"/view/d/[^/?#]+/([A-Za-z0-9]{8,40})/?(?:[?#]|$)")
# What Craigslist answers a client it has rate limited, and the interstitials of the CDNs in front of it.
_BLOCK_MARKERS = ("this ip has been automatically blocked", "your ip has been blocked", "access denied",
                  "just a moment...", "attention required", "captcha")


class _LdOffer(msgspec.Struct):
    price: Any = None
    priceCurrency: Any = None
    availableAtOrFrom: Any = None


class _LdItem(msgspec.Struct):
    name: Any = None
    image: Any = None
    offers: _LdOffer | None = None


class _LdElement(msgspec.Struct):
    item: _LdItem | None = None


class _LdList(msgspec.Struct):
    itemListElement: list[_LdElement] | None = None


# Typed decoding reads only the fields above and skips the rest (geo, descriptions) without building them:
# a fifth of the cost of json.loads on the 60 KB block of a full page.
_LD_DECODER = msgspec.json.Decoder(_LdList)
_NO_ITEM = _LdItem()


def parse_search_page(
    body: bytes | str, *, base_url: str = "", content_type: str = "", encoding: str | None = None
) -> ScrapeResult:
    """Classify and parse either Craigslist format: JSON when the content type or the first byte says so."""
    head = body[:64].lstrip() if isinstance(body, bytes) else body[:64].lstrip().encode()
    if "json" in content_type.lower() or head.startswith(b"{"):
        return parse_sapi(body)
    return parse_static_page(body, base_url=base_url, encoding=encoding)


def parse_static_page(body: bytes | str, *, base_url: str = "", encoding: str | None = None) -> ScrapeResult:
    """The server-rendered search page: li.cl-static-search-result rows merged with the ld+json result list.

    Every row counts as a result row, so one that cannot be read (no link or title) makes the fetch partial.
    """
    html = _utf8(body, encoding)
    if not html or html.isspace():
        raise ParseError("empty Craigslist page")
    html, ld_text = _cut_ld_results(html)
    tree = LexborHTMLParser(html)
    if ld_text is None:
        script = tree.css_first("script#ld_searchpage_results")
        ld_text = script.text().encode() if script is not None else None
    ld_items = _ld_items(ld_text) if ld_text is not None else None
    rows = tree.css(_RESULT_ROWS)
    listings: list[Listing] = []
    seen: set[str] = set()
    repeats = 0
    for index, row in enumerate(rows):
        listing = _parse_static_row(row, ld_items, index, base_url)
        if listing is None:
            continue
        if listing.external_id in seen:
            repeats += 1
        else:
            seen.add(listing.external_id)
            listings.append(listing)
    if listings:
        return ScrapeResult.of(listings, rows=len(rows) - repeats)
    if rows:
        raise ParseError(f"{len(rows)} Craigslist result rows but none had a posting link and title")
    # No-results first: the page repeats the query, which may say "blocked". With nothing found the static page
    # keeps its list, holding only the "see also" links, and an empty ld+json list; a page cut short has no
    # ld+json block at all, so it cannot pass for empty.
    lists = tree.css(_RESULTS_LIST)
    if lists and tree.css_first(_OTHER_ROWS) is None and ld_items is not None and not ld_items:
        return ScrapeResult.of([])
    blocked = _blocked_reason(tree)
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


def _utf8(body: bytes | str, encoding: str | None) -> bytes:
    """The page as UTF-8 bytes, which is what lexbor reads; a page in another declared charset is decoded first."""
    if isinstance(body, str):
        return body.encode("utf-8", errors="replace")
    if not encoding or encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        return body
    try:
        return body.decode(encoding, errors="replace").encode("utf-8")
    except LookupError:
        return body


def _cut_ld_results(html: bytes) -> tuple[bytes, bytes | None]:
    """The page without its ld+json result list, and the list's JSON text (None when it is not found).

    The list is 60% of a full page and no element of it is needed from the tree: it is read straight from the
    bytes (a script ends at the first "</script", as HTML says) and left out of the HTML parse.
    """
    at = html.find(_LD_RESULTS_ID)
    if at < 0:
        return html, None
    start = html.rfind(b"<script", 0, at)
    open_end = html.find(b">", at)
    if start < 0 or open_end < 0 or html.find(b">", start, at) >= 0:
        return html, None
    close = html.find(b"</script", open_end)
    close_end = html.find(b">", close) if close >= 0 else -1
    if close_end < 0:
        return html, None
    return html[:start] + html[close_end + 1 :], html[open_end + 1 : close]


def _dedupe(candidates: Any) -> list[Listing]:
    listings: list[Listing] = []
    seen: set[str] = set()
    for listing in candidates:
        if listing is not None and listing.external_id not in seen:
            seen.add(listing.external_id)
            listings.append(listing)
    return listings


def _ld_items(text: bytes) -> list[_LdItem] | None:
    """The ld+json result items in page order, or None when the block is unreadable."""
    try:
        elements = _LD_DECODER.decode(text).itemListElement
    except msgspec.ValidationError:
        elements = _tolerant_ld_elements(text)
    except msgspec.DecodeError:
        log.warning("unreadable ld_searchpage_results block on a Craigslist page")
        return None
    if elements is None:
        return None
    return [element.item or _NO_ITEM for element in elements]


def _tolerant_ld_elements(text: bytes) -> list[_LdElement] | None:
    """The elements of a block that does not fit the schema everywhere: each odd element becomes an empty one."""
    elements = msgspec.json.decode(text)
    elements = elements.get("itemListElement") if isinstance(elements, dict) else None
    if not isinstance(elements, list):
        return None
    found = []
    for element in elements:
        try:
            found.append(msgspec.convert(element, _LdElement))
        except msgspec.ValidationError:
            item = element.get("item") if isinstance(element, dict) else None
            found.append(_LdElement(_LdItem(name=item.get("name"), image=item.get("image")))
                         if isinstance(item, dict) else _LdElement())
    return found


def _parse_static_row(row: LexborNode, ld_items: list[_LdItem] | None, index: int, base_url: str) -> Listing | None:
    # A row is a dozen elements: one walk over them costs a third of a selector query per field.
    title = price_text = location = href = None
    for node in row.traverse():
        tag = node.tag
        if tag == "a":
            if href is None:
                href = node.attrs.get("href")
        elif tag == "div" or tag == "span":
            classes = node.attrs.get("class")
            if not classes:
                continue
            if title is None and classes == "title":
                title = _text(node)
            elif price_text is None and classes == "price":
                price_text = _text(node)
            elif location is None and classes == "location":
                location = _text(node)
            elif "title" in classes.split():
                title = title or _text(node)
            elif "price" in classes.split():
                price_text = price_text or _text(node)
            elif "location" in classes.split():
                location = location or _text(node)
    title = title or " ".join((row.attrs.get("title") or "").split())
    posting_id = _posting_id(href) if href else None
    if not title or posting_id is None or href is None:
        return None
    ld = _matching_ld_item(ld_items, index, title)
    offers = ld.offers
    currency = (offers.priceCurrency if offers and isinstance(offers.priceCurrency, str) else None) or DEFAULT_CURRENCY
    images = ld.image or []
    if isinstance(images, str):
        images = [images]
    image = images[0] if isinstance(images, list) and images and isinstance(images[0], str) else None
    return Listing(
        marketplace=MARKETPLACE,
        external_id=posting_id,
        title=title,
        url=href if href.startswith("https://") else urljoin(base_url, href),
        price=parse_money(price_text, currency) if price_text else _ld_price(offers, currency),
        price_text=price_text,
        location=location or _ld_locality(offers),
        image_url=image,
    )


def _posting_id(href: str) -> str | None:
    """The posting id of a link: the number of ".../<id>.html", or the token of ".../view/d/<slug>/<token>"."""
    found = _POSTING_ID.search(href) or _POSTING_TOKEN.search(href)
    return found.group(1) if found else None


def _text(node: LexborNode) -> str | None:
    return " ".join(node.text().split()) or None


def _matching_ld_item(ld_items: list[_LdItem] | None, index: int, title: str) -> _LdItem:
    # The ld+json list is in page order; the name check guards against the two lists ever drifting apart.
    if not ld_items or index >= len(ld_items):
        return _NO_ITEM
    item = ld_items[index]
    name = item.name
    if name != title and " ".join(str(name or "").split()).casefold() != title.casefold():
        log.debug("Craigslist ld+json item %d is %r, not %r: not merged", index, name, title)
        return _NO_ITEM
    return item


def _ld_price(offers: _LdOffer | None, currency: str) -> Money | None:
    price = offers.price if offers else None
    if price in (None, "") or isinstance(price, (dict, list, bool)):
        return None
    return parse_money(str(price), currency)


def _ld_locality(offers: _LdOffer | None) -> str | None:
    place = offers.availableAtOrFrom if offers else None
    address = place.get("address") if isinstance(place, dict) else None
    locality = address.get("addressLocality") if isinstance(address, dict) else None
    return locality if isinstance(locality, str) and locality else None


def _blocked_reason(tree: LexborHTMLParser) -> str | None:
    tree.strip_tags(["script", "style", "noscript"])
    text = " ".join(tree.text().split()).casefold()
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
