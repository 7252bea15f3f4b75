"""A price written inside free text (a deal post's title: "[GPU] RTX 3080 - $499") -> Money; pure."""

from __future__ import annotations

import re

from scout.models import Money
from scrapers.money import parse_money

# An amount with a currency marker on either side. Codes are upper case only, so words ("eur", "us") stay words;
# the model number in "RTX 3080 - $499" has no marker and is never read as a price.
_CURRENCY_CODES = ("USD", "CAD", "AUD", "NZD", "EUR", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "JPY", "INR")
_SYMBOLS = ("$", "£", "€", "¥", "₹")
_CODES = "(?:" + "|".join(_CURRENCY_CODES) + ")"
_PRICE = re.compile(
    r"(?<![\w$£€])"
    r"(?:(?:(?:US|CA|AU|NZ|C|A)\s?)?[$£€¥₹]\s?\d[\d,.]*|" + _CODES + r"\s?\d[\d,.]*"
    r"|\d[\d,.]*\s?(?:[$£€]|" + _CODES + r"\b))"
)
_MARKERS = _SYMBOLS + _CURRENCY_CODES  # an amount is a price only beside one of them
# Any of them, found by one search: most titles hold none, and one search costs half a test per marker.
_ANY_MARKER = re.compile("|".join(re.escape(marker) for marker in _MARKERS))
# Amounts that are a saving, a fee or a gift card, not what the deal costs: "$100 off", "save $50", "+$5 shipping".
_NOT_THE_PRICE_AFTER = re.compile(
    r"\s*(?:off|rebate|cash\s?back|back|credit|discount|coupon|promo|shipping|s&h|gift\s?card|gc)\b", re.IGNORECASE
)
# "-$100" is a discount, while "RTX 3080 - $499" (a spaced dash) introduces the price.
_NOT_THE_PRICE_BEFORE = re.compile(r"(?:\b(?:save|saving|savings|extra)\s+|\+\s*|-)$", re.IGNORECASE)
# How far before an amount those words are looked for: "savings" and the spaces after it, with room to spare.
_BEFORE_WINDOW = 24


def find_price(text: str | None, default_currency: str | None = "USD") -> tuple[Money, str] | None:
    """The first amount in text that is the price (not a saving or a fee), and the words it was read from."""
    if not text or _ANY_MARKER.search(text) is None:
        return None  # most titles: no currency sign or code, so no price to look for
    for match in _PRICE.finditer(text):
        if _NOT_THE_PRICE_AFTER.match(text, match.end()):
            continue
        if _NOT_THE_PRICE_BEFORE.search(text, max(0, match.start() - _BEFORE_WINDOW), match.start()):
            continue
        token = match.group(0).strip().rstrip(".,")
        money = parse_money(token, default_currency)
        if money is not None:
            return money, token
    return None
