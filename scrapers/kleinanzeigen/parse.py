"""Kleinanzeigen result pages (article.aditem cards) -> Listings, or none, a challenge, or broken; pure."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from selectolax.lexbor import LexborHTMLParser, LexborNode

from scout.errors import ParseError
from scout.models import Listing, Money
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

# A result card: search results and an ad page's "similar ads" box use the same article.
_CARDS = "article.aditem[data-adid]"
# Every field of a card, found with one selector per card and told apart by tag and class. Titles are links
# ("h2 a") or, on cards whose title is not a link, a span that carries the ad's address ("h2 span[data-url]").
# Prices sit in "--price-shipping--price" (the older markup: "p.aditem-main--middle--price"; the struck-through
# "--old-price" beside them is never read). Pictures are an img (lazy ones keep the address in data-src) or, in
# the older markup, a box whose data-imgsrc holds it. The description is the site's own snippet of the ad's text
# (cut by the site, ending in "..."); a shipping line beside the price counts only when it shows an amount.
_CARD_FIELDS = (
    "h2 a, h2 span[data-url], .aditem-main--middle--price-shipping--price, p.aditem-main--middle--price, "
    ".aditem-main--top--left, .aditem-main--top--right, .aditem-image img, .aditem-image [data-imgsrc], "
    "p.aditem-main--middle--description, .aditem-main--middle--price-shipping--shipping"
)
_PRICE_CLASSES = frozenset({"aditem-main--middle--price-shipping--price", "aditem-main--middle--price"})
_DESCRIPTION_CLASS = "aditem-main--middle--description"
_SHIPPING_CLASS = "aditem-main--middle--price-shipping--shipping"
# Longest description kept: the site's snippets are about a hundred characters, and a changed page must not put
# a whole ad (or the page) into every stored listing and alert.
DESCRIPTION_LIMIT = 2000
# Paid "TOP" placements: the card's list item (or the card) carries these classes.
_SPONSORED_CLASSES = frozenset({"is-topad", "badge-topad"})
# The zero-results page: "Es wurden leider keine Ergebnisse für „…“ gefunden." inside the result column.
_ZERO_RESULTS = "#srchrslt-results #saved-search-empty-result, #srchrslt-results .j-zsrp-error-message"
# Bot walls: Reblaze's JavaScript challenge (the real one in the fixtures sets window.rbzns and has an empty body),
# and the words of the captcha and "access denied" pages in front of the site.
_SCRIPT_MARKERS = (b"window.rbzns", b"rbzid", b"winsocks()", b"/_sec/cp_challenge", b"geo.captcha-delivery.com")
# Bytes that only a page with results or a no-results message holds (the card's ad id, the result column).
_RESULT_SIGNS = (b"data-adid", b"srchrslt-results")
# Challenge scripts fill the whole page: the markers are looked for in this many first bytes.
_MARKER_SPAN = 200_000
_TEXT_MARKERS = ("captcha", "zugriff verweigert", "access denied", "ungewöhnliche aktivitäten", "unusual activity",
                 "bist du ein mensch", "are you a human", "sicherheitsüberprüfung")
# Zero-width characters the site puts into long place names ("Duisburg-\u200bSüd") as line-break hints.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_WHEN = re.compile(r"(?:(heute)|(gestern)|(\d{1,2})\.(\d{1,2})\.(\d{4}))(?:\s*,\s*(\d{1,2}):(\d{2}))?", re.IGNORECASE)


def parse_search_page(body: bytes, *, now: datetime, encoding: str | None = None) -> ScrapeResult:
    """Classify and parse a result page (or any page with aditem cards); `now` (aware) anchors "Heute"/"Gestern".

    The result counts every distinct card as a row, so a card that cannot be read makes the result partial.
    """
    if not body or body.isspace():
        raise ParseError("empty Kleinanzeigen page")
    if not any(body.find(sign) >= 0 for sign in _RESULT_SIGNS):
        # Neither cards nor a result column: a challenge page needs no parse to be known (a script fills it).
        challenge = _challenge_reason(body)
        if challenge:
            return ScrapeResult.blocked(challenge)
    tree = LexborHTMLParser(_utf8(body, encoding))
    cards = tree.css(_CARDS)
    today = _berlin_now(now)
    listings: list[Listing] = []
    index: dict[str, int] = {}
    rows = 0
    for card in cards:
        ad_id = (card.attributes.get("data-adid") or "").strip()
        if ad_id and ad_id in index:
            # Paid "TOP" ads repeat a card of the same list; the ad id is the listing, and an ad that also
            # shows among the ordinary results is not only sponsored.
            kept = index[ad_id]
            if listings[kept].sponsored and not _sponsored(card):
                listings[kept] = msgspec.structs.replace(listings[kept], sponsored=False)
            continue
        rows += 1
        listing = _card_listing(card, ad_id, today)
        if listing is not None:
            index[ad_id] = len(listings)
            listings.append(listing)
    if listings:
        return ScrapeResult.of(listings, rows=rows)
    if cards:
        raise ParseError(f"{len(cards)} Kleinanzeigen cards but none had an ad id and a title")
    if tree.css_first(_ZERO_RESULTS) is not None:
        return ScrapeResult.of([])
    blocked = _blocked_reason(body, tree)
    if blocked:
        return ScrapeResult.blocked(blocked)
    raise ParseError("no Kleinanzeigen ad cards and no recognisable no-results or challenge page")


def _utf8(body: bytes, encoding: str | None) -> bytes | str:
    """The page as lexbor reads it: UTF-8 bytes as they are, any other declared charset decoded first."""
    if not encoding or encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        return body
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:
        return body


def _card_listing(card: LexborNode, ad_id: str, today: datetime | None) -> Listing | None:
    href = (card.attributes.get("data-href") or "").strip()
    title = price_text = location = when = image = description = shipping_text = None
    for node in card.css(_CARD_FIELDS):
        attrs = node.attributes
        tag = node.tag
        if tag == "img" or "data-imgsrc" in attrs:
            if image is None:
                # Lazy-loaded pictures keep a data: placeholder in src and the real address elsewhere.
                sources = (attrs.get("src"), attrs.get("data-src"), attrs.get("data-imgsrc"))
                image = next((url for url in sources if url and url.startswith("https://")), None)
            continue
        classes = (attrs.get("class") or "").split()
        if _SHIPPING_CLASS in classes:  # checked first: it may be a span, like a title
            shipping_text = shipping_text or _text(node)
        elif tag in ("a", "span"):
            if title is None:
                title = _text(node)
                href = href or (attrs.get("href") or attrs.get("data-url") or "").strip()
        elif price_text is None and not _PRICE_CLASSES.isdisjoint(classes):
            price_text = _text(node)
        elif location is None and "aditem-main--top--left" in classes:
            location = _text(node)
        elif when is None and "aditem-main--top--right" in classes:
            when = _text(node)
        elif description is None and _DESCRIPTION_CLASS in classes:
            description = _text(node)
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
        sponsored=_sponsored(card),
        shipping=parse_shipping(shipping_text),
        description=_cap(description),
    )


def parse_shipping(text: str | None) -> Money | None:
    """The delivery cost in a card's shipping line when that line shows an amount ("Versand ab 5,49 €"); None
    otherwise. Cards mostly say only "Versand möglich" (delivery possible, at a price agreed later): no cost."""
    if not text or not any(c.isdigit() for c in text):
        return None
    return parse_money(text, CURRENCY)


def _cap(text: str | None) -> str | None:
    if text is None or len(text) <= DESCRIPTION_LIMIT:
        return text
    return text[: DESCRIPTION_LIMIT - 1].rstrip() + "…"


def _sponsored(card: LexborNode) -> bool:
    """Whether the card is a paid "TOP" placement: the card or its list item says so."""
    node: LexborNode | None = card
    for _ in range(2):
        if node is None:
            break
        if not _SPONSORED_CLASSES.isdisjoint((node.attributes.get("class") or "").split()):
            return True
        node = node.parent
    return False


def _text(node: LexborNode) -> str | None:
    return " ".join(node.text().translate(_INVISIBLE).split()) or None


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


def _challenge_reason(body: bytes) -> str | None:
    # Searched from the end: Reblaze's page (the real one in the fixtures) names window.rbzns in its last lines,
    # 300 bytes before the end of 93 KB of script, so a search from the start reads the whole page first.
    for marker in _SCRIPT_MARKERS:
        if body.rfind(marker, 0, _MARKER_SPAN) >= 0:
            return f"Kleinanzeigen answered a bot challenge ({marker.decode()!r})"
    return None


def _blocked_reason(body: bytes, tree: LexborHTMLParser) -> str | None:
    challenge = _challenge_reason(body)
    if challenge:
        return challenge
    tree.strip_tags(["script", "style", "noscript"])
    text = " ".join(tree.text().split()).casefold()
    for phrase in _TEXT_MARKERS:
        if phrase in text:
            return f"Kleinanzeigen refused the request ({phrase!r})"
    return None
