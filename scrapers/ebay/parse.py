"""eBay search result pages (classic s-item and s-card layouts) -> Listings and a page verdict; pure."""

from __future__ import annotations

import codecs
import enum
import functools
import logging
import re

from selectolax.lexbor import LexborDocumentOptions, LexborHTMLParser, LexborNode

from scout.errors import BlockedError, ParseError
from scout.models import Listing
from scrapers.base import Distinct, ScrapeResult, ScrapeStatus
from scrapers.ebay.rows import read_card_rows
from scrapers.ebay.span import RESULT_LISTS, results_span, results_start, span_was_closed
from scrapers.money import parse_money

log = logging.getLogger(__name__)

MARKETPLACE = "ebay"

# The currency each eBay site prices in when the text alone does not say ("$" on ebay.ca is CAD).
# Source: the site list at https://www.ebay.com/sitemap (one storefront per country).
DOMAIN_CURRENCIES: dict[str, str] = {
    "ebay.com": "USD", "ebay.co.uk": "GBP", "ebay.de": "EUR", "ebay.fr": "EUR", "ebay.it": "EUR",
    "ebay.es": "EUR", "ebay.nl": "EUR", "ebay.be": "EUR", "ebay.ie": "EUR", "ebay.at": "EUR",
    "ebay.ch": "CHF", "ebay.pl": "PLN", "ebay.ca": "CAD", "ebay.com.au": "AUD", "ebay.com.sg": "SGD",
    "ebay.com.hk": "HKD", "ebay.com.my": "MYR", "ebay.ph": "PHP", "ebay.in": "INR",
}

# Listings are the direct children of the results list; carousels elsewhere hold more cards that are no results.
_RESULT_LISTS = RESULT_LISTS
# The results list is read as written: lexbor's DOM mutation events (mirroring a selected <option> into
# <selectedcontent>) only cost time here.
_PARSE_OPTIONS = LexborDocumentOptions.WO_EVENTS
# Modules eBay places among the results (carousels, FAQ, banners, "results matching fewer words"): never listings.
_MODULE_CLASS_PREFIX = "srp-river-answer"


class _Part(enum.Enum):
    """What a class token makes an element of a result card."""

    TITLE = enum.auto()
    PRICE = enum.auto()
    CONDITION = enum.auto()
    ATTRIBUTE_ROW = enum.auto()  # an untyped s-card row: price, shipping, location, seller...
    LOCATION = enum.auto()
    SHIPPING = enum.auto()
    SELLER = enum.auto()


# The class tokens of each layout's typed parts. One css walk per card finds them all (lexbor answers in document
# order); the smaller a layout's selector, the faster the walk, so each layout asks only for its own classes.
_SCARD_PARTS = {"s-card__title": _Part.TITLE, "s-card__price": _Part.PRICE, "s-card__subtitle": _Part.CONDITION,
                "s-card__attribute-row": _Part.ATTRIBUTE_ROW}
_SITEM_PARTS = {"s-item__title": _Part.TITLE, "s-item__price": _Part.PRICE, "SECONDARY_INFO": _Part.CONDITION,
                "s-item__location": _Part.LOCATION, "s-item__shipping": _Part.SHIPPING,
                "s-item__seller-info-text": _Part.SELLER}
# Second names eBay writes on the same elements ("s-item__location s-item__itemLocation", "s-item__shipping
# s-item__logisticsCost"): known when a class list is read, but never asked for, because lexbor returns an element
# once for each selector it matches, and each asked-for class costs the walk of every card.
_SITEM_ALIASES = {"s-item__itemLocation": _Part.LOCATION, "s-item__logisticsCost": _Part.SHIPPING}
_PARTS = {**_SCARD_PARTS, **_SITEM_PARTS, **_SITEM_ALIASES}
# The item link, images, nested cards (a card holding cards is a carousel), then the layout's typed parts.
_COMMON_SELECTOR = 'a[href*="/itm/"], img, li'


def _selector(classes: dict[str, _Part]) -> str:
    return ", ".join([_COMMON_SELECTOR, *(f".{name}" for name in classes)])


_SCARD_SELECTOR = _selector(_SCARD_PARTS)
_SITEM_SELECTOR = _selector(_SITEM_PARTS)
_ANY_SELECTOR = _selector(_PARTS)  # a row known only by its data-listingid
# "clipped" spans are screen-reader text ("Opens in a new window or tab", in the page's language). The "New
# listing" badge is a span of its own, in whatever language the page is in: s-card__new-listing on s-cards,
# LIGHT_HIGHLIGHT at the start of old s-item titles.
_TITLE_HIDDEN = frozenset({"clipped", "s-card__new-listing", "s-item__new-listing", "LIGHT_HIGHLIGHT"})
_CLIPPED = frozenset({"clipped"})
# How a struck-through price is marked: eBay's classes, or the HTML elements that mean it.
_STRUCK_CLASSES = frozenset({"strikethrough", "STRIKETHROUGH"})
_STRUCK_TAGS = frozenset({"s", "del", "strike"})
_TEXT_NODE = "-text"
# Joins text pieces so that splitting finds them again; no page text holds this control character.
_PIECE = "\x1f"

_NULL_SEARCH = ".srp-save-null-search"
_COUNT_HEADING = ".srp-controls__count-heading"
_CHALLENGE_ELEMENTS = (
    'form[action*="splashui"], form[action*="captcha"], form#signin-form, script[src*="splashui"],'
    ' script[src*="captcha"], iframe[src*="captcha"], [id*="captcha"], [class*="captcha"]'
)

_LINK_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://([^/?#:@]+)", re.IGNORECASE)
_ITEM_ID = re.compile(r"/itm/(?:[^?#]*/)?(\d{6,})(?=[/?#]|$)")
# Page <title> text of eBay's bot challenge ("Pardon Our Interruption..."), the Akamai wall and the sign-in page.
_BLOCKED_TITLES = ("pardon our interruption", "security measure", "access denied", "sign in", "captcha")
_BLOCKED_URL_PARTS = ("/splashui/", "signin.ebay.", "/captcha")
# Hidden placeholder cards that eBay's templates render with a fake item.
_TEMPLATE_TITLES = frozenset({"shop on ebay"})
_PLACEHOLDER_IMAGE_PARTS = ("s_1x2.gif", "data:")


def currency_for_domain(domain: str) -> str:
    """The default currency of an eBay site, e.g. "www.ebay.co.uk" -> "GBP"; USD when unknown."""
    host = domain.lower().split(":")[0]
    for suffix in sorted(DOMAIN_CURRENCIES, key=len, reverse=True):
        if host == suffix or host.endswith("." + suffix):
            return DOMAIN_CURRENCIES[suffix]
    return "USD"


def parse_search_page(
    body: bytes | str, *, domain: str = "www.ebay.com", url: str = "", encoding: str | None = None
) -> ScrapeResult:
    """Classify and parse one search page: listings, genuinely no results, or blocked. Raises ParseError otherwise."""
    if any(part in url for part in _BLOCKED_URL_PARTS):
        return ScrapeResult.blocked(f"redirected to a challenge or sign-in page: {url}")
    text = _decode(body, encoding)
    listed = _parse_results_only(text, domain)
    if listed is not None:
        return ScrapeResult.of(listed[0], rows=len(listed[0]) + listed[1])
    doc = LexborHTMLParser(text)
    listings, lost = _parse_results(doc, domain)
    if listings:
        return ScrapeResult.of(listings, rows=len(listings) + lost)
    if lost:
        raise ParseError(f"{lost} eBay result rows but none had an item link and id: the layout changed")
    # No-results first: a challenge page never carries eBay's no-results box, while a search page's <title>
    # repeats the query, which may well say "sign in" or "captcha".
    if _is_zero_results(doc):
        return ScrapeResult.of([])
    blocked = _blocked_reason(doc)
    if blocked:
        return ScrapeResult.blocked(blocked)
    if doc.css_first(_RESULT_LISTS) is not None:
        raise ParseError("eBay results list is empty and the page does not say there are no results")
    raise ParseError("no eBay results list and no recognisable no-results or challenge page")


def parse_listings(body: bytes | str, *, domain: str = "www.ebay.com", encoding: str | None = None) -> list[Listing]:
    """The listings on one search page; [] only for a real no-results page. Raises BlockedError or ParseError."""
    result = parse_search_page(body, domain=domain, encoding=encoding)
    if result.status is ScrapeStatus.BLOCKED:
        raise BlockedError(result.detail)
    return list(result.listings)


def _decode(body: bytes | str, encoding: str | None) -> bytes | str:
    """The page as lexbor should read it: bytes when they are UTF-8 (as eBay serves), else text decoded by its label."""
    if not body or body.isspace():
        raise ParseError("empty eBay page")
    if isinstance(body, bytes) and not _is_utf8(encoding):
        return body.decode(encoding or "utf-8", errors="replace")
    return body


def _parse_results_only(page: bytes | str, domain: str) -> tuple[list[Listing], int] | None:
    """The listings and lost rows of the page's results list, parsed without the rest of the page; None when that
    cannot be done or finds no listing (the whole page is then parsed, to tell why).

    Rows depend on nothing outside their list, and the head, header, filters and the scripts after the list are
    most of a page's bytes: the list alone parses in a fraction of the time."""
    start = results_start(page)
    if start <= 0:
        return None
    span = results_span(page, start)
    if span is not None:
        doc = LexborHTMLParser(span, options=_PARSE_OPTIONS)
        if span_was_closed(doc):
            listed = _parse_results(doc, domain)
            return listed if listed[0] else None
    listed = _parse_results(LexborHTMLParser(page[start:], options=_PARSE_OPTIONS), domain)
    return listed if listed[0] else None


def _parse_results(doc: LexborHTMLParser, domain: str) -> tuple[list[Listing], int]:
    """The listings in the document's results lists, and how many result rows did not become one."""
    return _parse_cards([row for ul in doc.css(_RESULT_LISTS) for row in ul.iter()], domain)


def _is_utf8(encoding: str | None) -> bool:
    """True when bytes in this charset are read as UTF-8: no label, UTF-8 itself, or a label Python does not know."""
    if not encoding:
        return True
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return True


def _card_selector(row: LexborNode) -> str | None:
    """The selector for a result card's parts by its layout; None for what is no card: a module (carousel, banner,
    divider, FAQ), a comment, anything but a list item."""
    if row.tag != "li":
        return None
    attrs = row.attrs
    classes = (attrs.get("class") or "").split()
    if any(name.startswith(_MODULE_CLASS_PREFIX) for name in classes):
        return None
    if "s-card" in classes:
        return _SCARD_SELECTOR
    if "s-item" in classes:
        return _SITEM_SELECTOR
    return _ANY_SELECTOR if "data-listingid" in attrs else None


def _parse_cards(rows: list[LexborNode], domain: str) -> tuple[list[Listing], int]:
    """The listings among a results list's children, once each, and how many result rows could not be read.
    Modules, carousels and eBay's hidden template cards are no result rows."""
    currency = currency_for_domain(domain)
    found = Distinct()
    lost = 0
    for row in rows:
        selector = _card_selector(row)
        if selector is None:
            continue
        fields = _Fields(row, selector)
        if fields.holds_cards or fields.is_template():
            continue
        listing = fields.listing(domain, currency)
        if listing is None:
            lost += 1
        else:
            found.add(listing)
    if lost:
        log.debug("%d eBay result rows without an item link, id or title", lost)
    return found.listings, lost


class _Fields:
    """The typed parts of one result card, found in one walk and told apart by their tags and class tokens."""

    def __init__(self, card: LexborNode, selector: str) -> None:
        self.card = card
        self.href: str | None = None
        self.title_el: LexborNode | None = None
        self.condition_el: LexborNode | None = None
        self.price_els: list[LexborNode] = []
        self.rows: dict[int, LexborNode] = {}  # attribute rows by lexbor's node id
        self.location_els: list[LexborNode] = []
        self.shipping_el: LexborNode | None = None  # s-item only: s-cards say it in an attribute row
        self.seller_el: LexborNode | None = None  # s-item only
        self.price_rows: set[int] = set()  # the attribute rows that hold a price: no other part is read from them
        self.images: list[LexborNode] = []
        self.holds_cards = False
        self._title: str | None = None
        card_id = card.mem_id
        for element in card.css(selector):
            tag = element.tag
            if tag == "img":
                self.images.append(element)
                continue
            if tag == "li":
                # lexbor's answer includes the card itself; a card that holds cards is a carousel, not a result.
                self.holds_cards = self.holds_cards or (element.mem_id != card_id and _card_selector(element) is not None)
                continue
            attrs = element.attrs
            if tag == "a" and self.href is None:
                self.href = attrs.get("href") or None
            names = attrs.get("class")
            if names:
                # Most parts carry their class alone ("s-card__attribute-row"): one lookup before the split.
                part = _PARTS.get(names) or next(filter(None, map(_PARTS.get, names.split())), None)
                if part is not None:
                    self._add(part, element)

    def _add(self, part: _Part, element: LexborNode) -> None:
        if part is _Part.ATTRIBUTE_ROW:
            self.rows[element.mem_id] = element
            self.location_els.append(element)
        elif part is _Part.PRICE:
            self.price_els.append(element)
        elif part is _Part.TITLE:
            self.title_el = self.title_el or element
        elif part is _Part.CONDITION:
            self.condition_el = self.condition_el or element
        elif part is _Part.SHIPPING:
            self.shipping_el = self.shipping_el or element
        elif part is _Part.SELLER:
            self.seller_el = self.seller_el or element
        else:
            self.location_els.append(element)

    def listing(self, domain: str, currency: str) -> Listing | None:
        if self.href is None:
            return None
        item_id = self.card.attrs.get("data-listingid")
        if not item_id:
            link_id = _ITEM_ID.search(self.href)
            item_id = link_id.group(1) if link_id else None
        if not item_id or not item_id.isdigit():
            return None
        title = self.title()
        if not title:
            return None
        price_text, sold = self.price()
        price = parse_money(price_text, currency) if price_text else None
        # Delivery is charged in the currency the page prices in ("S/." on a Spanish-language ebay.com page).
        location, shipping, seller, seller_rating = read_card_rows(
            self.location_els, self.rows, self.price_rows, price.currency if price is not None else currency,
            shipping_el=self.shipping_el, seller_el=self.seller_el)
        return Listing(
            marketplace=MARKETPLACE,
            external_id=item_id,
            title=title,
            url=f"https://{_host(self.href, domain)}/itm/{item_id}",
            price=price,
            price_text=price_text,
            location=location,
            image_url=self.image(),
            condition=self.condition(),
            seller=seller,
            sold=sold,
            shipping=shipping,
            seller_rating=seller_rating,
        )

    def is_template(self) -> bool:
        return self.title().casefold() in _TEMPLATE_TITLES

    def title(self) -> str:
        if self._title is None:
            self._title = self._read_title()
        return self._title

    def _read_title(self) -> str:
        if self.title_el is not None:
            text = _clean(_visible_text(self.title_el, _TITLE_HIDDEN, strike=False))
            if text:
                return text
        for image in self.images:
            alt = _clean(image.attrs.get("alt") or "")
            if alt:
                return alt
        return ""

    def price(self) -> tuple[str | None, bool]:
        """The current price and whether the card is sold: a card whose only price is struck through has ended
        (sold, "Best offer accepted") and keeps that price; beside a current price, a struck one is the old price."""
        struck: str | None = None
        for elements in self._price_groups():
            current = "".join(_visible_text(element, _CLIPPED, strike=True)
                              for element in elements if not _is_struck(element))
            if current.strip():
                return _clean(current), False
            struck = struck or _clean("".join(_visible_text(element, _CLIPPED, strike=False)
                                              for element in elements)) or None
        return struck, struck is not None

    def _price_groups(self) -> list[list[LexborNode]]:
        """The card's price elements by the attribute row that holds them: an s-card row shows one price, a range
        being several spans ("£0.99", " to ", "£1.99"), and its other spans are labels ("20% off"). An element in no
        row (s-item) holds a whole price by itself."""
        groups: dict[int, list[LexborNode]] = {}
        for element in self.price_els:
            row = self._attribute_row(element)
            if row is not None:
                self.price_rows.add(row.mem_id)
            groups.setdefault(element.mem_id if row is None else row.mem_id, []).append(element)
        return list(groups.values())

    def _attribute_row(self, element: LexborNode) -> LexborNode | None:
        if not self.rows:
            return None
        card_id = self.card.mem_id
        ancestor = element.parent
        while ancestor is not None and ancestor.mem_id != card_id:
            row = self.rows.get(ancestor.mem_id)
            if row is not None:
                return row
            ancestor = ancestor.parent
        return None

    def condition(self) -> str | None:
        # The subtitle row reads "Brand New · Size US M 13 + more": the condition is its first piece.
        if self.condition_el is not None:
            for piece in self.condition_el.text(separator=_PIECE).split(_PIECE):
                text = _clean(piece).strip("· ")
                if text:
                    return text
        return None

    def image(self) -> str | None:
        for image in self.images:
            attrs = image.attrs
            for attribute in ("data-src", "src"):
                src = (attrs.get(attribute) or "").strip()
                if src.startswith(("https://", "http://")) and not any(p in src for p in _PLACEHOLDER_IMAGE_PARTS):
                    return src
        return None


def _classes(element: LexborNode) -> list[str]:
    return (element.attrs.get("class") or "").split()


def _is_struck(element: LexborNode) -> bool:
    return element.tag in _STRUCK_TAGS or not _STRUCK_CLASSES.isdisjoint(_classes(element))


def _visible_text(element: LexborNode, hidden: frozenset[str], *, strike: bool) -> str:
    """The text a reader sees: skips elements with a hidden class, and struck-through ones when `strike` is set."""
    parts: list[str] = []
    for child in element.iter(include_text=True):
        tag = child.tag
        if tag == _TEXT_NODE:
            parts.append(child.text_content or "")
        elif (tag and not tag.startswith("-") and hidden.isdisjoint(_classes(child))
              and not (strike and _is_struck(child))):
            parts.append(_visible_text(child, hidden, strike=strike))
    return "".join(parts)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _host(href: str, domain: str) -> str:
    """The eBay site an item link points at, else the adapter's own (relative or foreign links)."""
    match = _LINK_HOST.match(href)
    host = match.group(1).lower() if match else ""
    return host if host and _is_ebay_host(host) else domain


@functools.lru_cache(maxsize=256)
def _is_ebay_host(host: str) -> bool:
    return any(host == site or host.endswith("." + site) for site in DOMAIN_CURRENCIES)


def _blocked_reason(doc: LexborHTMLParser) -> str | None:
    title_el = doc.css_first("title")
    title = _clean(title_el.text() if title_el is not None else "").casefold()
    for marker in _BLOCKED_TITLES:
        if marker in title:
            return f"eBay challenge or sign-in page (title {title[:80]!r})"
    if doc.css_first(_CHALLENGE_ELEMENTS) is not None:
        return "eBay challenge page (captcha form or script)"
    return None


def _is_zero_results(doc: LexborHTMLParser) -> bool:
    if doc.css_first(_NULL_SEARCH) is not None:
        return True
    # The heading is unreliable when results exist ("0 results" above 60 items), but with no rows it agrees.
    return any(_clean(heading.text()).startswith("0 ") for heading in doc.css(_COUNT_HEADING))
