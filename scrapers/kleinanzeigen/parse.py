"""Kleinanzeigen result pages (article.aditem cards) -> Listings, or none, a challenge, or broken; pure."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import lxml.etree as etree

from scout.errors import ParseError
from scout.models import Listing
from scrapers.base import ScrapeResult
from scrapers.money import parse_money

log = logging.getLogger(__name__)

MARKETPLACE = "kleinanzeigen"
SITE = "https://www.kleinanzeigen.de"
CURRENCY = "EUR"
# The site prints times in German local time ("Heute, 10:15"), whatever the reader's zone.
try:
    BERLIN: ZoneInfo | None = ZoneInfo("Europe/Berlin")
except ZoneInfoNotFoundError:  # a system without tz data (and no tzdata package): relative dates stay unknown
    BERLIN = None

_CARDS = etree.XPath(
    '//article[contains(concat(" ", normalize-space(@class), " "), " aditem ")][@data-adid][@data-href]'
)
# The zero-results page: "Es wurden leider keine Ergebnisse für „…“ gefunden." inside the result column.
_ZERO_RESULTS = etree.XPath(
    '//*[@id="srchrslt-results"]//*[@id="saved-search-empty-result" or contains(@class, "j-zsrp-error-message")]'
)
_VISIBLE_TEXT = etree.XPath("//title//text() | //body//text()[not(ancestor::script or ancestor::style)]")
# Bot walls: Reblaze's JavaScript challenge (the real one in the fixtures sets window.rbzns and has an empty body),
# and the words of the captcha and "access denied" pages in front of the site.
_SCRIPT_MARKERS = (b"window.rbzns", b"rbzid", b"winsocks()", b"/_sec/cp_challenge", b"geo.captcha-delivery.com")
_TEXT_MARKERS = ("captcha", "zugriff verweigert", "access denied", "ungewöhnliche aktivitäten", "unusual activity",
                 "bist du ein mensch", "are you a human", "sicherheitsüberprüfung")
# Zero-width characters the site puts into long place names ("Duisburg-\u200bSüd") as line-break hints.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_WHEN = re.compile(r"(?:(heute)|(gestern)|(\d{1,2})\.(\d{1,2})\.(\d{4}))(?:\s*,\s*(\d{1,2}):(\d{2}))?", re.IGNORECASE)


def parse_search_page(body: bytes, *, now: datetime, encoding: str | None = None) -> ScrapeResult:
    """Classify and parse a result page (or any page with aditem cards); `now` (aware) anchors "Heute"/"Gestern"."""
    if not body.strip():
        raise ParseError("empty Kleinanzeigen page")
    # A plain etree parser: lxml.html's element classes cost a lookup per element, for nothing used here.
    try:
        parser = etree.HTMLParser(encoding=encoding or "utf-8")
    except LookupError:
        parser = etree.HTMLParser(encoding="utf-8")
    try:
        doc = etree.fromstring(body, parser=parser)
        if doc is None:
            raise ValueError("no document")
    except (etree.ParserError, ValueError) as err:
        raise ParseError(f"Kleinanzeigen page is not HTML: {err}") from err
    cards = _CARDS(doc)
    today = _berlin_now(now)
    listings: list[Listing] = []
    seen: set[str] = set()
    for card in cards:
        listing = _card_listing(card, today)
        # Paid "TOP" ads repeat a card of the same list; the ad id is the listing.
        if listing is not None and listing.external_id not in seen:
            seen.add(listing.external_id)
            listings.append(listing)
    if listings:
        return ScrapeResult.of(listings)
    if cards:
        raise ParseError(f"{len(cards)} Kleinanzeigen cards but none had an ad id and a title")
    if _ZERO_RESULTS(doc):
        return ScrapeResult.of([])
    blocked = _blocked_reason(body, doc)
    if blocked:
        return ScrapeResult.blocked(blocked)
    raise ParseError("no Kleinanzeigen ad cards and no recognisable no-results or challenge page")


def _card_listing(card: etree._Element, today: datetime | None) -> Listing | None:
    ad_id = (card.get("data-adid") or "").strip()
    href = (card.get("data-href") or "").strip()
    # One pass over the card's elements instead of an XPath per field.
    title = price_text = location = when = image = None
    for element in card.iter("a", "p", "div", "img"):
        classes = (element.get("class") or "").split()
        if element.tag == "img":
            if image is None and _inside(element, "aditem-image"):
                # Lazy-loaded pictures keep a data: placeholder in src and the real address in data-src.
                sources = (element.get("src"), element.get("data-src"), element.get("data-imgsrc"))
                image = next((url for url in sources if url and url.startswith("https://")), None)
        elif title is None and element.tag == "a" and "ellipsis" in classes and _inside(element, "", tag="h2"):
            title = _text(element)
            href = href or (element.get("href") or "")
        elif price_text is None and "aditem-main--middle--price-shipping--price" in classes:
            price_text = _text(element)
        elif location is None and "aditem-main--top--left" in classes:
            location = _text(element)
        elif when is None and "aditem-main--top--right" in classes:
            when = _text(element)
    if not ad_id.isdigit() or not title or not href:
        log.debug("Kleinanzeigen card without an ad id, a title or a link: %r", ad_id)
        return None
    return Listing(
        marketplace=MARKETPLACE,
        external_id=ad_id,
        title=title,
        url=href if href.startswith("https://") else SITE + "/" + href.lstrip("/"),
        price=parse_money(price_text, CURRENCY) if price_text else None,
        price_text=price_text,
        location=location,
        image_url=image,
        posted_at=parse_when(when, today) if when else None,
    )


def _inside(element: etree._Element, css_class: str, *, tag: str | None = None) -> bool:
    for parent in element.iterancestors():
        if parent.tag == "article":
            return False
        if tag is not None and parent.tag == tag:
            return True
        if css_class and css_class in (parent.get("class") or "").split():
            return True
    return False


def _text(element: etree._Element) -> str | None:
    raw = element.text if len(element) == 0 else "".join(element.itertext())
    return " ".join((raw or "").translate(_INVISIBLE).split()) or None


def _berlin_now(now: datetime) -> datetime | None:
    if BERLIN is None:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(BERLIN)


def parse_when(text: str, today: datetime | None) -> datetime | None:
    """ "Heute, 10:15", "Gestern, 09:11" or "27.03.2025" as an aware Europe/Berlin time; None when unreadable.

    A bare date (older ads) is taken as midnight of that day: the site shows no time for them.
    """
    found = _WHEN.search(text)
    if found is None or today is None or BERLIN is None:
        return None
    is_today, is_yesterday, day, month, year, hour, minute = found.groups()
    if is_today or is_yesterday:
        when: date = today.date() - timedelta(days=1 if is_yesterday else 0)
    else:
        try:
            when = date(int(year), int(month), int(day))
        except ValueError:
            return None
    try:
        clock = time(int(hour), int(minute)) if hour is not None else time(0, 0)
    except ValueError:
        return None
    return datetime.combine(when, clock, tzinfo=BERLIN)


def _blocked_reason(body: bytes, doc: etree._Element) -> str | None:
    head = body[:200_000]
    for marker in _SCRIPT_MARKERS:
        if marker in head:
            return f"Kleinanzeigen answered a bot challenge ({marker.decode()!r})"
    text = " ".join(" ".join(_VISIBLE_TEXT(doc)).split()).casefold()
    for phrase in _TEXT_MARKERS:
        if phrase in text:
            return f"Kleinanzeigen refused the request ({phrase!r})"
    return None
