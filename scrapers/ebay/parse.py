"""eBay search result pages (classic s-item and s-card layouts) -> Listings and a page verdict; pure."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import lxml.etree as etree
import lxml.html

from scout.errors import BlockedError, ParseError
from scout.models import Listing
from scrapers.base import ScrapeResult, ScrapeStatus
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


# Substring tests are cheap in libxml2; exact class tokens are checked in Python on the few elements they return.
# Each runs once per page or once per result row, so the parse walks the tree about twice in all.
_RESULT_LISTS = etree.XPath('//ul[contains(@class, "srp-results")]')
_ROWS = etree.XPath('./li[contains(@class, "s-item") or contains(@class, "s-card") or @data-listingid]')
_ITEM_LINKS = etree.XPath('.//a[contains(@href, "/itm/")]/@href')
_IMAGES = etree.XPath(".//img")
_FIELDS = etree.XPath(
    './/*[contains(@class, "__title") or contains(@class, "__price") or contains(@class, "__attribute-row")'
    ' or contains(@class, "__location") or contains(@class, "__itemLocation") or contains(@class, "__subtitle")'
    ' or contains(@class, "SECONDARY_INFO")]'
)
_ROW_CLASSES = frozenset({"s-item", "s-card"})
_TITLE_CLASSES = frozenset({"s-card__title", "s-item__title"})
_PRICE_CLASSES = frozenset({"s-card__price", "s-item__price"})
_LOCATION_CLASSES = frozenset({"s-item__location", "s-item__itemLocation"})
_ATTRIBUTE_ROW_CLASS = "s-card__attribute-row"
_CONDITION_CLASSES = frozenset({"s-card__subtitle", "SECONDARY_INFO"})
# "clipped" spans are screen-reader text ("Opens in a new window or tab", in the page's language);
# LIGHT_HIGHLIGHT is the "New listing" flag that old s-item titles start with.
_TITLE_HIDDEN = frozenset({"clipped", "LIGHT_HIGHLIGHT"})
# The struck-through "was" price shares the row with the current price and must not join its text.
_PRICE_HIDDEN = frozenset({"clipped", "strikethrough", "STRIKETHROUGH"})
_NULL_SEARCH = etree.XPath('//*[contains(@class, "srp-save-null-search")]')
_COUNT_HEADING = etree.XPath('//*[contains(@class, "srp-controls__count-heading")]')
_CHALLENGE_ELEMENTS = etree.XPath(
    '//form[contains(@action, "splashui") or contains(@action, "captcha") or @id="signin-form"]'
    ' | //script[contains(@src, "splashui") or contains(@src, "captcha")]'
    ' | //iframe[contains(@src, "captcha")]'
    ' | //*[contains(@id, "captcha") or contains(@class, "captcha")]'
)

_ITEM_ID = re.compile(r"/itm/(?:[^?#]*/)?(\d{6,})(?=[/?#]|$)")
# Location rows start with a localized "located in" / "from": en, de, es/fr/pt, it, nl.
_LOCATION_PREFIX = re.compile(
    r"^(?:located in|from|aus|de|desde|en provenance de|da|uit|ubicado en)\s+\D+$", re.IGNORECASE
)
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
    doc = _parse_html(body, encoding)
    lists = [ul for ul in _RESULT_LISTS(doc) if "srp-results" in (ul.get("class") or "").split()]
    rows = [row for ul in lists for row in _ROWS(ul) if _is_result_row(row)]
    listings = _parse_rows(rows, domain)
    if listings:
        return ScrapeResult.of(listings)
    if rows:
        raise ParseError(f"{len(rows)} eBay result rows but none had an item link and id: the layout changed")
    # No-results first: a challenge page never carries eBay's no-results box, while a search page's <title>
    # repeats the query, which may well say "sign in" or "captcha".
    if _is_zero_results(doc):
        return ScrapeResult.of([])
    blocked = _blocked_reason(doc)
    if blocked:
        return ScrapeResult.blocked(blocked)
    if lists:
        raise ParseError("eBay results list is empty and the page does not say there are no results")
    raise ParseError("no eBay results list and no recognisable no-results or challenge page")


def parse_listings(body: bytes | str, *, domain: str = "www.ebay.com", encoding: str | None = None) -> list[Listing]:
    """The listings on one search page; [] only for a real no-results page. Raises BlockedError or ParseError."""
    result = parse_search_page(body, domain=domain, encoding=encoding)
    if result.status is ScrapeStatus.BLOCKED:
        raise BlockedError(result.detail)
    return list(result.listings)


def _parse_html(body: bytes | str, encoding: str | None) -> lxml.html.HtmlElement:
    if not body.strip():
        raise ParseError("empty eBay page")
    if isinstance(body, bytes):
        # eBay serves UTF-8; without a declared charset libxml2 would read the bytes as Latin-1.
        try:
            parser = lxml.html.HTMLParser(encoding=encoding or "utf-8")
        except LookupError:
            parser = lxml.html.HTMLParser(encoding="utf-8")
    else:
        parser = lxml.html.HTMLParser()
    try:
        return lxml.html.document_fromstring(body, parser=parser)
    except (etree.ParserError, ValueError) as err:
        raise ParseError(f"eBay page is not HTML: {err}") from err


def _parse_rows(rows: list[lxml.html.HtmlElement], domain: str) -> list[Listing]:
    currency = currency_for_domain(domain)
    listings: list[Listing] = []
    seen: set[str] = set()
    skipped = 0
    for row in rows:
        listing = _parse_row(row, domain, currency)
        if listing is None:
            skipped += 1
        elif listing.external_id not in seen:
            seen.add(listing.external_id)
            listings.append(listing)
    if skipped:
        log.debug("skipped %d eBay rows without an item link, id or title", skipped)
    return listings


def _is_result_row(row: lxml.html.HtmlElement) -> bool:
    return row.get("data-listingid") is not None or not _ROW_CLASSES.isdisjoint(_classes(row))


def _parse_row(row: lxml.html.HtmlElement, domain: str, currency: str) -> Listing | None:
    hrefs = _ITEM_LINKS(row)
    if not hrefs:
        return None
    href = str(hrefs[0])
    link_id = _ITEM_ID.search(href)
    item_id = row.get("data-listingid") or (link_id.group(1) if link_id else None)
    if not item_id or not item_id.isdigit():
        return None
    fields = _Fields(row)
    title = fields.title()
    if not title or title.casefold() in _TEMPLATE_TITLES:
        return None
    price_text = fields.price_text()
    return Listing(
        marketplace=MARKETPLACE,
        external_id=item_id,
        title=title,
        url=f"https://{_host(href, domain)}/itm/{item_id}",
        price=parse_money(price_text, currency) if price_text else None,
        price_text=price_text,
        location=fields.location(),
        image_url=_image(row),
        condition=fields.condition(),
    )


class _Fields:
    """The typed parts of one result row, found in one pass and told apart by their class tokens."""

    def __init__(self, row: lxml.html.HtmlElement) -> None:
        self.row = row
        self.title_el: lxml.html.HtmlElement | None = None
        self.price_el: lxml.html.HtmlElement | None = None
        self.condition_el: lxml.html.HtmlElement | None = None
        self.location_els: list[lxml.html.HtmlElement] = []
        for element in _FIELDS(row):
            classes = _classes(element)
            if self.title_el is None and not _TITLE_CLASSES.isdisjoint(classes):
                self.title_el = element
            elif self.price_el is None and not _PRICE_CLASSES.isdisjoint(classes):
                self.price_el = element
            elif self.condition_el is None and not _CONDITION_CLASSES.isdisjoint(classes):
                self.condition_el = element
            if _ATTRIBUTE_ROW_CLASS in classes or not _LOCATION_CLASSES.isdisjoint(classes):
                self.location_els.append(element)

    def title(self) -> str:
        if self.title_el is not None:
            text = _clean(_visible_text(self.title_el, _TITLE_HIDDEN))
            if text:
                return text
        for image in _IMAGES(self.row):
            alt = _clean(image.get("alt") or "")
            if alt:
                return alt
        return ""

    def price_text(self) -> str | None:
        if self.price_el is None:
            return None
        # A range ("£0.99 to £1.99") spans several price spans, so read the whole attribute row.
        container = self.price_el
        for ancestor in self.price_el.iterancestors():
            if ancestor is self.row:
                break
            if _ATTRIBUTE_ROW_CLASS in _classes(ancestor):
                container = ancestor
                break
        return _clean(_visible_text(container, _PRICE_HIDDEN)) or None

    def location(self) -> str | None:
        for element in self.location_els:
            text = _clean(element.text_content())
            if text and (not _LOCATION_CLASSES.isdisjoint(_classes(element)) or _LOCATION_PREFIX.match(text)):
                return text
        return None

    def condition(self) -> str | None:
        # The subtitle row reads "Brand New · Size US M 13 + more": the condition is its first piece.
        if self.condition_el is not None:
            for piece in self.condition_el.itertext():
                text = _clean(piece).strip("· ")
                if text:
                    return text
        return None


def _classes(element: lxml.html.HtmlElement) -> list[str]:
    return (element.get("class") or "").split()


def _visible_text(element: lxml.html.HtmlElement, hidden: frozenset[str]) -> str:
    """The text a reader sees: skips elements with a hidden class (their tails still show) and comments."""
    parts: list[str] = []
    if element.text and isinstance(element.tag, str):
        parts.append(element.text)
    for child in element:
        if isinstance(child.tag, str) and hidden.isdisjoint(_classes(child)):
            parts.append(_visible_text(child, hidden))
        if child.tail:
            parts.append(child.tail)
    return "".join(parts)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _image(row: lxml.html.HtmlElement) -> str | None:
    for image in _IMAGES(row):
        for attribute in ("data-src", "src"):
            src = (image.get(attribute) or "").strip()
            if src.startswith(("https://", "http://")) and not any(p in src for p in _PLACEHOLDER_IMAGE_PARTS):
                return src
    return None


def _host(href: str, domain: str) -> str:
    host = (urlsplit(href).hostname or "").lower()
    is_ebay = any(host == site or host.endswith("." + site) for site in DOMAIN_CURRENCIES)
    return host if is_ebay else domain


def _blocked_reason(doc: lxml.html.HtmlElement) -> str | None:
    title = _clean(doc.findtext(".//title") or "").casefold()
    for marker in _BLOCKED_TITLES:
        if marker in title:
            return f"eBay challenge or sign-in page (title {title[:80]!r})"
    if _CHALLENGE_ELEMENTS(doc):
        return "eBay challenge page (captcha form or script)"
    return None


def _is_zero_results(doc: lxml.html.HtmlElement) -> bool:
    if _NULL_SEARCH(doc):
        return True
    # The heading is unreliable when results exist ("0 results" above 60 items), but with no rows it agrees.
    return any(_clean(h.text_content()).startswith("0 ") for h in _COUNT_HEADING(doc))
