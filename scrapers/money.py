"""Price text as marketplaces print it -> Money (Decimal amount, ISO 4217 currency); pure and table-tested."""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

from scout.models import Money

# Currency markers, matched longest first so "US $" wins over "$" and "S/." over "S".
# Prefixed dollars are eBay's own spelling on its international sites ("US $12.00", "C $5", "AU $10.50").
_SYMBOLS: dict[str, str] = {
    "US $": "USD", "US$": "USD", "USD": "USD",
    "C $": "CAD", "C$": "CAD", "CA$": "CAD", "CAD": "CAD",
    "AU $": "AUD", "AU$": "AUD", "A$": "AUD", "AUD": "AUD",
    "NZ $": "NZD", "NZ$": "NZD", "HK $": "HKD", "HK$": "HKD", "S$": "SGD", "SG$": "SGD",
    "NT$": "TWD", "R$": "BRL", "MX$": "MXN", "MX $": "MXN",
    "£": "GBP", "€": "EUR", "円": "JPY", "JP¥": "JPY", "CN¥": "CNY", "元": "CNY", "RMB": "CNY",
    "₹": "INR", "Rs.": "INR", "S/.": "PEN", "S/": "PEN", "Rp": "IDR",
    "Fr.": "CHF", "zł": "PLN", "₩": "KRW", "₽": "RUB", "руб.": "RUB", "₺": "TRY", "TL": "TRY",
    "Kč": "CZK", "Ft": "HUF", "lei": "RON", "₱": "PHP", "RM": "MYR", "฿": "THB", "₪": "ILS", "₫": "VND",
    "₴": "UAH", "лв": "BGN",
}

# Symbols that several currencies share: the default currency wins when it is one of them, else the first.
_AMBIGUOUS: dict[str, tuple[str, ...]] = {
    "$": ("USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "TWD", "ARS", "CLP", "COP"),
    "¥": ("JPY", "CNY"),
    "kr.": ("SEK", "NOK", "DKK", "ISK"),
    "kr": ("SEK", "NOK", "DKK", "ISK"),
}
# ...except these, which have no sensible first guess (all four kronor are common): they need a default.
_NEEDS_DEFAULT = frozenset({"kr", "kr."})

# Amounts from this on are no real price: a placeholder ("US $99,999,999,999,999,999.00"), a phone number or a
# misparse. It is also where prices stop fitting the database (storage.types.Price: 18 digits, 4 of them decimals).
MAX_AMOUNT = Decimal(10) ** 14

# Active ISO 4217 codes seen on second-hand marketplaces; a code written next to an amount names its currency.
_ISO_CODES = frozenset(
    "AED ARS AUD BGN BHD BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK JOD JPY KRW KWD "
    "MAD MXN MYR NOK NZD OMR PEN PHP PKR PLN QAR RON RSD RUB SAR SEK SGD THB TND TRY TWD UAH USD VND ZAR".split()
)

# ISO 4217 minor units that differ from 2 (table A.1): they decide what "3,858" or "1.500" means.
_MINOR_UNITS: dict[str, int] = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "PYG": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3,
}

# Whole-text words that mean "given away": price 0 in the default currency, so a max-price filter still matches.
_FREE_WORDS = frozenset({"free", "gratis", "zu verschenken", "gratuit", "gratuito", "za darmo", "gratuita"})

# Words that join the two ends of a price range in the languages eBay and the classifieds use.
_RANGE_SEPARATOR = re.compile(r"\s+(?:to|bis|a|à|al|tot|do|til|till|-|–|—)\s+|\s*[–—]\s*", re.IGNORECASE)

# Thousands marks that never mean a decimal point: spaces (also narrow and no-break) and the Swiss apostrophe.
_GROUPING_MARKS = str.maketrans("", "", " \u00a0\u202f'")

# An amount: digits with "." "," or "'" inside, and spaces only as thousands groups ("1 234,56").
_NUMBER = re.compile(r"\d(?:[\d.,']|[ \u00a0\u202f](?=\d{3}(?!\d)))*")


def _marker_pattern(markers: list[str]) -> re.Pattern[str]:
    # Letters must not touch other letters ("TL" inside "TOTAL" is no currency); digits may touch ("IDR1,614").
    parts = []
    for marker in sorted(markers, key=len, reverse=True):
        body = re.escape(marker).replace(r"\ ", r"\s?")
        lead = r"(?<![^\W\d_])" if marker[0].isalpha() else ""
        tail = r"(?![^\W\d_])" if marker[-1].isalpha() else ""
        parts.append(lead + body + tail)
    return re.compile("|".join(parts))


_MARKER = _marker_pattern([*_SYMBOLS, *_AMBIGUOUS, *_ISO_CODES])


def split_price_range(text: str) -> tuple[str, str | None]:
    """Split "EUR 17,72 bis EUR 18,66" into its low and high ends; (text, None) when it is not a range."""
    for match in _RANGE_SEPARATOR.finditer(text):
        low, high = text[: match.start()], text[match.end() :]
        if any(c.isdigit() for c in low) and any(c.isdigit() for c in high):
            return low.strip(), high.strip()
    return text.strip(), None


@functools.lru_cache(maxsize=4096)  # pure, and result pages repeat the same few price texts
def parse_money(text: str | None, default_currency: str | None = None) -> Money | None:
    """The price in text (the lower end of a range), or None when text shows no amount, an absurd amount (see
    parse_amount) or no knowable currency.

    "Free" and its translations give 0 in the default currency (None without one).
    """
    if not text:
        return None
    clean = " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())
    if not clean:
        return None
    if clean.casefold().rstrip("!.") in _FREE_WORDS:
        return Money(Decimal(0), default_currency) if default_currency else None
    low, high = split_price_range(clean)
    number = _NUMBER.search(low)
    if number is None:
        return None
    currency, unsettled = _find_currency(_NUMBER.sub("0", low), default_currency)
    if currency is None and high is not None:
        currency, _ = _find_currency(_NUMBER.sub("0", high), default_currency)
    if currency is None:
        if unsettled:
            return None  # an ambiguous symbol ("kr") that the default does not settle
        currency = default_currency
    if currency is None:
        return None
    amount = parse_amount(number.group(0), currency)
    if amount is None:
        return None
    return Money(amount, currency)


def parse_amount(digits: str, currency: str | None = None) -> Decimal | None:
    """One number as printed ("1.234,56", "1,614,898.07", "4.350") -> Decimal, using the currency's minor unit.

    None when there is no number, or when it is absurd (MAX_AMOUNT or more): such a listing is unpriced.
    """
    raw = digits.translate(_GROUPING_MARKS).rstrip(".,")
    if not raw:
        return None
    try:
        amount = Decimal(_plain_number(raw, currency))
    except InvalidOperation:
        return None
    return amount if amount < MAX_AMOUNT else None


def _plain_number(raw: str, currency: str | None) -> str:
    """The number with its thousands marks dropped and a "." as its decimal point."""
    if raw.isdigit():
        return raw
    last_dot, last_comma = raw.rfind("."), raw.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        decimal_sep = "." if last_dot > last_comma else ","
    elif last_dot >= 0 or last_comma >= 0:
        sep = "." if last_dot >= 0 else ","
        decimal_sep = sep if _single_separator_is_decimal(raw, sep, currency) else ""
    else:
        decimal_sep = ""
    if decimal_sep == ",":
        return raw.replace(".", "").replace(",", ".")
    if decimal_sep == ".":
        return raw.replace(",", "")
    return raw.replace(",", "").replace(".", "")


def _single_separator_is_decimal(raw: str, sep: str, currency: str | None) -> bool:
    # Used more than once it can only group thousands ("1,614,898", "1.234.567").
    if raw.count(sep) > 1:
        return False
    whole, fraction = raw.split(sep)
    if len(fraction) != 3:
        return True  # "17,72", "44.38", "12.5"
    minor = _MINOR_UNITS.get(currency or "", 2)
    # Three digits after one separator: a thousands group ("4.350 €", "3,858 円", "$1,234"), unless the currency
    # really has three decimals or the whole part is zero ("0.999").
    return minor == 3 or whole.strip("0") == ""


@functools.lru_cache(maxsize=1024)
def _find_currency(skeleton: str, default_currency: str | None) -> tuple[str | None, bool]:
    """(currency, whether an unsettled shared symbol was seen) in a price text with its numbers reduced to "0".

    Cached on that skeleton ("$0", "EUR 0 bis EUR 0"): a site prints a handful of shapes, over and over.
    """
    unsettled = False
    for match in _MARKER.finditer(skeleton):
        marker = re.sub(r"\s+", " ", match.group(0))
        code = _SYMBOLS.get(marker) or _SYMBOLS.get(marker.replace(" ", ""))
        if code:
            return code, False
        if marker in _ISO_CODES:
            return marker, False
        candidates = _AMBIGUOUS.get(marker, ())
        if default_currency in candidates:
            return default_currency, False
        if marker in _NEEDS_DEFAULT:
            unsettled = True
        elif candidates:
            return candidates[0], False
    return None, unsettled
