"""What an eBay card's untyped rows say about its location, delivery and seller, in any interface language; pure."""

from __future__ import annotations

import enum
import functools
import re
from decimal import Decimal

from selectolax.lexbor import LexborNode

from scout.models import Money
from scrapers.ebay.locations import is_location_line
from scrapers.money import parse_money


class RowKind(enum.Enum):
    """What an s-card attribute row is, told from its text alone."""

    OTHER = enum.auto()  # price, offers, bids, counts, returns, badges
    LOCATION = enum.auto()
    SHIPPING = enum.auto()
    RATED_SELLER = enum.auto()  # "mic_196915 77.8% positive (5)"
    NAME = enum.auto()  # one word, or one word and a count ("mic_196915 (5)"): a seller where sellers stand


# Words that make a row about delivery. The real pages write "+$5.28 delivery", "+£23.91 postage estimate",
# "Free International Shipping", "+S/. 66.64 por el envío", "Envío no especificado"; German pages "Versand" and
# "Lieferung"; the rest are those languages' usual words (livraison, spedizione, verzending, wysyłka, dostawa,
# frete, доставка, 送料), read like the location leads in scrapers/ebay/locations.py: any language, whatever the
# site. Matched anywhere in the row: the words around them ("estimate", "in 2-4 days", "not specified") vary.
_SHIPPING_WORDS = re.compile(
    r"delivery|postage|shipping|env[íi]o|versand|lieferung|livraison|spedizion|verzend|wysyłk|dostaw|frete"
    r"|доставк|送料|配送|运费|運費",
    re.IGNORECASE,
)
# "Free" in those languages; English "free" as a whole word, so that "Freight delivery" is no free delivery.
_FREE = re.compile(
    r"\b(?:free\b|gratis\b|gratuit|grátis|gratuït|kostenlos|kostenfrei|darmow|bezpłatn|бесплатн)|無料|免费|免運",
    re.IGNORECASE,
)
# The feedback share on a seller row: "99.5% positive", "99,5 % positive Bewertungen", "100% de votos positivos",
# "99,5 % d'évaluations positives", "99,5% pozytywnych"; the word tells it from "Extra 10% off".
_RATING = re.compile(r"(?<![\d.,])(\d{1,3}(?:[.,]\d{1,2})?)\s?%")
_POSITIVE = re.compile(r"positi|pozytyw|положит|好評|好评", re.IGNORECASE)
# The older s-item seller line: "name (1,234) 99.8%", "name (1.2K) 100%" or the name alone.
_SITEM_SELLER = re.compile(r"^(?P<name>\S+)(?:\s*\([\d.,\s]*[KkMm]?\))?(?:\s+(?P<rating>\d{1,3}(?:[.,]\d{1,2})?)\s?%)?")
# A feedback count alone beside a seller's name: "(5)", "(3.3K)".
_FEEDBACK_COUNT = re.compile(r"^\(\s*[\d.,]+\s*[KkMm]?\s*\)$")
_HUNDRED = Decimal(100)
# The s-card column that holds the seller's row (name, then "99.5% positive (1.2K)") below the item's own rows.
_SECONDARY_ROWS = "su-card-container__attributes__secondary"
# Joins a row's text nodes so that a seller's name and rating split apart again; no page text holds it.
_PIECE = "\x1f"


@functools.lru_cache(maxsize=2048)  # pure, and a page repeats the same few rows ("Buy It Now", "+$5.28 delivery")
def row_kind(text: str) -> RowKind:
    """What a stripped, non-empty row text is. A seller's row is known by its rating before anything else: a
    name may hold a delivery word ("fastshipping_store"), and a place has no digits."""
    if "%" in text and _POSITIVE.search(text):
        return RowKind.RATED_SELLER
    if is_location_line(text):
        return RowKind.LOCATION
    words = text.split(maxsplit=1)
    if len(words) == 1 or _FEEDBACK_COUNT.match(words[1]):
        return RowKind.NAME
    if _SHIPPING_WORDS.search(text):
        return RowKind.SHIPPING
    return RowKind.OTHER


@functools.lru_cache(maxsize=2048)
def parse_shipping(text: str, currency: str) -> Money | None:
    """The delivery cost a shipping row shows, in `currency` unless the row names its own: Money(0) for free
    delivery, None when the row gives no cost ("Postage not specified", "Envío no especificado").

    An added cost ("+$5.28 delivery in 2-4 days") is read first, so that a free-returns note beside it never
    makes delivery free; an amount elsewhere counts only with its currency written beside it ("Versand: EUR 4,99"),
    so that "Lieferung in 3-5 Tagen" is no cost of 3."""
    plus = text.find("+")
    if plus >= 0:
        word = _SHIPPING_WORDS.search(text, plus)
        added = parse_money(text[plus + 1 : word.start() if word else len(text)], currency)
        if added is not None:
            return added
    if _FREE.search(text):
        return Money(Decimal(0), currency)
    if any(c.isdigit() for c in text) and parse_money(text) is not None:
        return parse_money(text, currency)
    return None


def parse_rating(text: str) -> Decimal | None:
    """The share of positive feedback in a seller row's text, 0-100; None when there is none."""
    found = _RATING.search(text)
    if found is None:
        return None
    rating = Decimal(found.group(1).replace(",", "."))
    return rating if rating <= _HUNDRED else None


@functools.lru_cache(maxsize=1024)  # a page lists a few sellers many times over
def parse_seller_row(text: str, separator: str) -> tuple[str | None, Decimal | None]:
    """(name, rating) of an s-card seller row from its text, its text nodes joined by `separator`: the name is a
    node of its own ("mic_196915 "), the rating ("77.8% positive (5)") or a bare feedback count ("(5)") after it."""
    pieces = [clean for piece in text.split(separator) if (clean := " ".join(piece.split()))]
    if not pieces:
        return None, None
    name, rest = pieces[0], " ".join(pieces[1:])
    if len(pieces) == 1 or "%" in name:
        # Name and rating in one text node: "mic_196915 77.8% positive (5)".
        name, _, rest = " ".join(pieces).partition(" ")
        if "%" in name:
            return None, None
    if " " in name:
        return None, None
    if rest and not _RATING.search(rest) and not _FEEDBACK_COUNT.match(rest):
        return None, None
    return name, parse_rating(rest) if rest else None


def parse_sitem_seller(text: str) -> tuple[str | None, Decimal | None]:
    """(name, rating) from the s-item seller line "name (1,234) 99.8%"."""
    found = _SITEM_SELLER.match(text)
    if found is None:
        return None, None
    rating = found.group("rating")
    return found.group("name"), parse_rating(rating + "%") if rating else None


def read_card_rows(
    elements: list[LexborNode], rows: dict[int, LexborNode], price_rows: set[int], currency: str, *,
    shipping_el: LexborNode | None = None, seller_el: LexborNode | None = None,
) -> tuple[str | None, Money | None, str | None, Decimal | None]:
    """A card's (location, delivery cost, seller, seller rating) in `currency` unless a row names its own.

    `elements` are the card's location parts and attribute rows in page order; `rows` the attribute rows by node
    id, of which `price_rows` hold the price and are skipped; `shipping_el` and `seller_el` the s-item layout's
    typed parts. Each row's text is read at most once.

    Rows are read from the top until the location and the delivery row are found, then from the bottom for the
    seller, whose row closes the card: the counts, badges and notes between them are never read. One loop with
    local names, not a method per row: this runs for every card of every page."""
    location: str | None = None
    shipping: Money | None = None
    seller: str | None = None
    rating: Decimal | None = None
    shipping_seen = seller_seen = False
    if shipping_el is not None:
        text = shipping_el.text().strip()
        if text:
            shipping, shipping_seen = parse_shipping(text, currency), True
    if seller_el is not None:
        seller, rating = parse_sitem_seller(_clean(seller_el.text()))
        seller_seen = True
    top, bottom = 0, len(elements) - 1
    from_top = True
    while top <= bottom:
        if from_top:
            if location is not None and shipping_seen:
                from_top = False
                continue
            element = elements[top]
            top += 1
        elif seller_seen:
            break
        else:
            element = elements[bottom]
            bottom -= 1
        row_id = element.mem_id
        if row_id in price_rows:
            continue
        text = element.text().strip()
        if not text:
            continue
        if row_id not in rows:  # a typed s-item location
            location = location or _clean(text)
            continue
        kind = row_kind(text)
        if kind is RowKind.LOCATION:
            location = location or _clean(text)
        elif kind is RowKind.SHIPPING:
            if not shipping_seen:
                shipping, shipping_seen = parse_shipping(text, currency), True
        elif not seller_seen and (kind is RowKind.RATED_SELLER
                                  or (kind is RowKind.NAME and _is_secondary_row(element))):
            seller, rating = parse_seller_row(element.text(separator=_PIECE), _PIECE)
            seller_seen = seller is not None
    return location, shipping, seller, rating


def _is_secondary_row(row: LexborNode) -> bool:
    """Whether an s-card row stands in the column below the item's rows, where the seller's name is shown."""
    parent = row.parent
    return parent is not None and _SECONDARY_ROWS in (parent.attrs.get("class") or "")


def _clean(text: str) -> str:
    return " ".join(text.split())
