"""Craigslist search results (the static HTML page, and the sapi JSON API through sapi.py) -> Listings and a page
verdict; pure."""

from __future__ import annotations

import functools
import html as html_text
import logging
import re
from typing import Any
from urllib.parse import urljoin

import msgspec
from selectolax.lexbor import LexborHTMLParser, LexborNode

from scout.errors import ParseError
from scout.models import Listing, Money
from scrapers.base import Distinct, ScrapeResult
from scrapers.craigslist.sapi import DEFAULT_CURRENCY, MARKETPLACE, parse_sapi
from scrapers.money import parse_money

log = logging.getLogger(__name__)

_RESULTS_LIST = "ol.cl-static-search-results"
_RESULT_ROWS = "ol.cl-static-search-results > li.cl-static-search-result"
_OTHER_ROWS = "ol.cl-static-search-results > li:not(.cl-static-hub-links)"
# The list as the server writes it: where the rows start in the bytes, so that only they need parsing.
_RESULTS_LIST_OPEN = b'<ol class="cl-static-search-results"'
_RESULTS_LIST_CLOSE = b"</ol>"
_LD_RESULTS_ID = b'id="ld_searchpage_results"'
_SCRIPT_END_STEPS = 64
# Posting links: ".../<slug>/<numeric id>.html", or the newer "https://www.craigslist.org/view/d/<slug>/<token>",
# whose opaque token is the posting's only id.
_POSTING_ID = re.compile(r"/(\d+)\.html(?:[?#]|$)")
_POSTING_TOKEN = re.compile(r"/view/d/[^/?#]+/([A-Za-z0-9]{8,40})/?(?:[?#]|$)")
# A row's fields by the class tokens of the div or span holding them; a node with several is the first named here.
_ROW_FIELDS = ("title", "price", "location")
_TITLE, _PRICE, _LOCATION = range(len(_ROW_FIELDS))
_EXACT_FIELDS = {name: field for field, name in enumerate(_ROW_FIELDS)}
# The result list exactly as the server writes it, read with expressions instead of a tree: a tree of the list costs
# as much as a bare lxml parse of the whole page, and the row fields through it twice that. Any byte of the list
# that is not in these shapes (another tag, attribute or order, a comment, a nested list) sends the page to the tree
# parse, so what the expressions read is exactly what lexbor would. HTML's whitespace may stand between the tags,
# as in the prettified copy of a real page.
_GAP = "[ \t\n\f\r]*"
_SERVER_LIST_OPEN = re.compile('<ol class="cl-static-search-results">' + _GAP)
# The "see also" row the server writes first: text in plain div elements, which the row's end closes in any case.
_SERVER_HUB_ROW = re.compile('<li class="cl-static-hub-links">(?:[^<]|</?div>)*</li>' + _GAP)
# A result row: its link (no "&" or space, which attribute parsing would change), the title, then an optional price
# and location, each plain text.
_SERVER_ROW = re.compile(
    "<li class=\"cl-static-search-result\" title=(?:\"[^\"]*\"|'[^']*')>" + _GAP
    + '<a href="([^"<&\t\n\f\r ]+)">' + _GAP
    + '<div class="title">([^<]*)</div>' + _GAP
    + '<div class="details">' + _GAP
    + '(?:<div class="price">([^<]*)</div>' + _GAP + ")?"
    + '(?:<div class="location">([^<]*)</div>' + _GAP + ")?"
    + "</div>" + _GAP + "</a>" + _GAP + "</li>" + _GAP
)
_SERVER_LIST_CLOSE = "</ol>"
# What Craigslist answers a client it has rate limited, and the interstitials of the CDNs in front of it.
_BLOCK_MARKERS = ("this ip has been automatically blocked", "your ip has been blocked", "access denied",
                  "just a moment...", "attention required", "captcha")


class _LdOffer(msgspec.Struct):
    price: Any = None
    priceCurrency: Any = None
    # Raw JSON too: the place (an address and coordinates) is read only for a row that shows no location.
    availableAtOrFrom: msgspec.Raw = msgspec.Raw()


class _LdItem(msgspec.Struct):
    name: Any = None
    image: Any = None
    offers: _LdOffer | None = None


class _LdElement(msgspec.Struct):
    item: _LdItem | None = None


class _LdList(msgspec.Struct):
    itemListElement: list[_LdElement] | None = None


class _LdBareItem(msgspec.Struct):
    """An item whose offers do not fit _LdOffer: its name and pictures are still merged."""

    name: Any = None
    image: Any = None


class _LdBareElement(msgspec.Struct):
    item: _LdBareItem | None = None


class _LdRawList(msgspec.Struct):
    itemListElement: list[msgspec.Raw] | None = None


# Typed decoding reads only the fields above and skips the rest (geo, descriptions) without building them:
# a tenth of the cost of json.loads on the 60 KB block of a full page.
_LD_DECODER = msgspec.json.Decoder(_LdList)
_LD_RAW_DECODER = msgspec.json.Decoder(_LdRawList)
_LD_ELEMENT_DECODER = msgspec.json.Decoder(_LdElement)
_LD_BARE_DECODER = msgspec.json.Decoder(_LdBareElement)
_JSON = msgspec.json.Decoder()
_NO_ITEM = _LdItem()
# A result row's link, title, price text and location, as shown; None where the row shows none.
_Row = tuple[str | None, str | None, str | None, str | None]


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
    ld_span = _ld_results_span(html)
    # The server writes the list after the ld+json block (in the head): the search starts past the block.
    rows_at = html.find(_RESULTS_LIST_OPEN, ld_span[3]) if ld_span is not None else -1
    if rows_at >= 0 and ld_span is not None:
        # Only the result list is read: the head, scripts and styles before it are two thirds of the rest of the
        # page, and none of them is read when there are rows. The list runs to the page's last "</ol>" (to its
        # end on a page cut short), so a list nested in a row stays inside it.
        rows_end = html.rfind(_RESULTS_LIST_CLOSE, rows_at)
        fragment = html[rows_at : rows_end + len(_RESULTS_LIST_CLOSE)] if rows_end >= 0 else html[rows_at:]
        rows = _server_rows(fragment)
        if rows is None:
            rows = [_tree_row(row) for row in LexborHTMLParser(fragment).css(_RESULT_ROWS)]
        if rows:
            return _rows_result(rows, _ld_items(html[ld_span[1] : ld_span[2]]), base_url)
    # No rows in the list, or no list or ld+json block where the server writes them: the whole page decides
    # between results, no results, a block and a changed layout.
    return _parse_whole_page(html, ld_span, base_url)


def _parse_whole_page(html: bytes, ld_span: tuple[int, int, int, int] | None, base_url: str) -> ScrapeResult:
    ld_text = None
    if ld_span is not None:
        # The ld+json list is 60% of a full page and no element of it is needed from the tree: it is read straight
        # from the bytes and left out of the HTML parse.
        start, open_end, close, close_end = ld_span
        ld_text = html[open_end:close]
        html = html[:start] + html[close_end:]
    tree = LexborHTMLParser(html)
    if ld_text is None:
        script = tree.css_first("script#ld_searchpage_results")
        ld_text = script.text().encode() if script is not None else None
    ld_items = _ld_items(ld_text) if ld_text is not None else None
    rows = tree.css(_RESULT_ROWS)
    if rows:
        return _rows_result([_tree_row(row) for row in rows], ld_items, base_url)
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


def _rows_result(rows: list[_Row], ld_items: list[_LdItem] | None, base_url: str) -> ScrapeResult:
    """The rows' listings, each merged with the ld+json item in its place; a row without a posting link or a
    title is a lost row."""
    found = Distinct()
    add = found.add
    items = ld_items or ()
    # Each row is merged in the loop itself: a helper call per row cost a tenth of the page's parse.
    for index, (href, title, price_text, location) in enumerate(rows):
        posting_id = _posting_id(href) if href else None
        if not title or posting_id is None or href is None:
            continue
        # The ld+json list is in page order; the name check guards against the two lists ever drifting apart.
        ld = items[index] if index < len(items) else _NO_ITEM
        name = ld.name
        if name != title and ld is not _NO_ITEM and " ".join(str(name or "").split()).casefold() != title.casefold():
            log.debug("Craigslist ld+json item %d is %r, not %r: not merged", index, name, title)
            ld = _NO_ITEM
        offers = ld.offers
        currency = offers.priceCurrency if offers is not None else None
        if type(currency) is not str or not currency:
            currency = DEFAULT_CURRENCY
        images = ld.image
        add(Listing(
            marketplace=MARKETPLACE,
            external_id=posting_id,
            title=title,
            url=href if href.startswith("https://") else urljoin(base_url, href),
            price=parse_money(price_text, currency) if price_text else _ld_price(offers, currency),
            price_text=price_text,
            location=location or _ld_locality(offers),
            image_url=_first_image(images) if images else None,
        ))
    if not found.listings:
        raise ParseError(f"{len(rows)} Craigslist result rows but none had a posting link and title")
    return ScrapeResult.of(found.listings, rows=len(rows) - found.repeats)


def _server_rows(fragment: bytes) -> list[_Row] | None:
    """The rows of a result list written exactly as the server writes it (see _SERVER_ROW); None when any part of
    it is written otherwise, for the tree to read."""
    try:
        text = fragment.decode()
    except UnicodeDecodeError:
        return None  # lexbor mends broken bytes its own way
    opened = _SERVER_LIST_OPEN.match(text)
    if opened is None or "\0" in text:
        return None  # lexbor drops NUL characters from text
    at = opened.end()
    hub = _SERVER_HUB_ROW.match(text, at)
    if hub is not None:
        at = hub.end()
    rows: list[_Row] = []
    next_row = _SERVER_ROW.match
    unescape = html_text.unescape
    while (row := next_row(text, at)) is not None:
        href, title, price, location = row.groups()
        # The fields as lexbor's text would give them: references decoded (HTML's rules, which html.unescape
        # follows), whitespace collapsed.
        if "&" in title:
            title = unescape(title)
        if price and "&" in price:
            price = unescape(price)
        if location and "&" in location:
            location = unescape(location)
        title = " ".join(title.split())
        if not title:
            return None  # the tree reads the row's title attribute instead
        rows.append((
            href,
            title,
            " ".join(price.split()) or None if price else None,
            " ".join(location.split()) or None if location else None,
        ))
        at = row.end()
    # Every byte up to the list's end is a row as the server writes it, and nothing follows the list.
    if at + len(_SERVER_LIST_CLOSE) != len(text) or not text.startswith(_SERVER_LIST_CLOSE, at):
        return None
    return rows


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


def _ld_results_span(html: bytes) -> tuple[int, int, int, int] | None:
    """Where the ld+json result list's script is in the bytes: (its start, the JSON's start, the JSON's end, its
    end), or None when it is not found."""
    at = html.find(_LD_RESULTS_ID)
    if at < 0:
        return None
    start = html.rfind(b"<script", 0, at)
    open_end = html.find(b">", at)
    if start < 0 or open_end < 0 or html.find(b">", start, at) >= 0:
        return None
    close = _script_end(html, open_end)
    close_end = html.find(b">", close) if close >= 0 else -1
    if close_end < 0:
        return None
    return start, open_end + 1, close, close_end + 1


def _script_end(html: bytes, start: int) -> int:
    """Where the script's text ends: at the first "</script", as HTML says; -1 when it never does.

    JSON holds few "<": stepping from one to the next (a one-byte search) scans the 60 KB block at a fortieth of
    the cost of a search for the whole word, whose letters are everywhere in it. A block full of "<" is searched
    for the word after a few steps.
    """
    at = html.find(b"<", start)
    for _ in range(_SCRIPT_END_STEPS):
        if at < 0 or html.startswith(b"</script", at):
            return at
        at = html.find(b"<", at + 1)
    return html.find(b"</script", at)


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
    try:
        raw_elements = _LD_RAW_DECODER.decode(text).itemListElement
    except msgspec.ValidationError:
        return None
    if raw_elements is None:
        return None
    found = []
    for raw in raw_elements:
        try:
            found.append(_LD_ELEMENT_DECODER.decode(raw))
        except msgspec.ValidationError:
            try:
                bare = _LD_BARE_DECODER.decode(raw).item
            except msgspec.ValidationError:
                bare = None
            found.append(_LdElement(_LdItem(name=bare.name, image=bare.image)) if bare else _LdElement())
    return found


def _tree_row(row: LexborNode) -> _Row:
    """A row's fields read from lexbor's tree: any markup the server might write."""
    # A row is a dozen elements: one walk over them costs a third of a selector query per field.
    title = price_text = location = href = None
    for node in row.traverse():
        tag = node.tag
        if tag == "a":
            if href is None:
                href = node.attrs.get("href")
        elif tag == "div" or tag == "span":
            classes = node.attrs.get("class")
            # The server writes each field's class alone: compared whole, it needs no splitting into tokens.
            field = _EXACT_FIELDS.get(classes) if classes else None
            if field is None and classes:
                field = _row_field(classes)
            if field == _TITLE:
                title = title or _text(node)
            elif field == _PRICE:
                price_text = price_text or _text(node)
            elif field == _LOCATION:
                location = location or _text(node)
    title = title or " ".join((row.attrs.get("title") or "").split()) or None
    return href, title, price_text, location


def _text(node: LexborNode) -> str | None:
    # lexbor's own textContent: the same text as node.text(), read in half the time.
    return " ".join(node.text_lexbor().split()) or None


@functools.lru_cache(maxsize=256)  # a page's rows share a handful of class attributes
def _row_field(classes: str | None) -> int | None:
    """Which of a row's fields a div or span of these classes holds, or None."""
    tokens = classes.split() if classes else ()
    return next((field for field, name in enumerate(_ROW_FIELDS) if name in tokens), None)


def _posting_id(href: str) -> str | None:
    """The posting id of a link: the number of ".../<id>.html", or the token of ".../view/d/<slug>/<token>"."""
    if href.endswith(".html") and "?" not in href and "#" not in href:
        # Nearly every link: read by position at a fraction of the expressions' cost (\d is what isdecimal tells).
        number = href[href.rfind("/") + 1 : -len(".html")]
        if number.isdecimal():
            return number
    found = _POSTING_ID.search(href) or _POSTING_TOKEN.search(href)
    return found.group(1) if found else None


def _first_image(images: Any) -> str | None:
    """The first picture of an item's "image": one address or a list of them."""
    if isinstance(images, str):
        return images or None
    return images[0] if isinstance(images, list) and images and isinstance(images[0], str) else None


def _ld_price(offers: _LdOffer | None, currency: str) -> Money | None:
    price = offers.price if offers else None
    if price in (None, "") or isinstance(price, (dict, list, bool)):
        return None
    return parse_money(str(price), currency)


def _ld_locality(offers: _LdOffer | None) -> str | None:
    place = _JSON.decode(offers.availableAtOrFrom) if offers and offers.availableAtOrFrom else None
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
