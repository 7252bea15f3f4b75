"""Vinted catalog API answers (/api/v2/catalog/items JSON) -> Listings and a verdict; pure."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from scout.errors import ParseError
from scout.models import Listing, Money
from scrapers.base import Distinct, ScrapeResult
from scrapers.money import parse_money

MARKETPLACE = "vinted"

# Each country site's currency, for old answers whose price is a bare string with no currency beside it.
# Source: the country sites listed at the foot of www.vinted.com (one storefront per country).
DOMAIN_CURRENCIES: dict[str, str] = {
    "vinted.fr": "EUR", "vinted.de": "EUR", "vinted.es": "EUR", "vinted.it": "EUR", "vinted.nl": "EUR",
    "vinted.be": "EUR", "vinted.at": "EUR", "vinted.lu": "EUR", "vinted.pt": "EUR", "vinted.ie": "EUR",
    "vinted.fi": "EUR", "vinted.gr": "EUR", "vinted.sk": "EUR", "vinted.lt": "EUR", "vinted.hr": "EUR",
    "vinted.co.uk": "GBP", "vinted.pl": "PLN", "vinted.cz": "CZK", "vinted.hu": "HUF", "vinted.ro": "RON",
    "vinted.se": "SEK", "vinted.dk": "DKK", "vinted.com": "USD",
}
# Markers of the bot walls in front of Vinted (DataDome, Cloudflare), which answer with HTML instead of JSON.
_CHALLENGE_MARKERS = (b"datadome", b"captcha", b"cf-chl", b"just a moment", b"challenge-platform", b"access denied")


def currency_for_domain(domain: str) -> str | None:
    host = domain.lower()
    for suffix in sorted(DOMAIN_CURRENCIES, key=len, reverse=True):
        if host == suffix or host.endswith("." + suffix):
            return DOMAIN_CURRENCIES[suffix]
    return None


def parse_catalog(body: bytes, *, domain: str = "www.vinted.fr", content_type: str = "") -> ScrapeResult:
    """Classify and parse one catalog answer: listings, a real zero, or blocked; ParseError when the format changed.

    Every item counts as a result row (an item repeating an earlier id, or hidden, none), so an item without an
    id or a title makes the fetch partial.
    """
    if not body.strip():
        raise ParseError("empty Vinted answer")
    try:
        data = json.loads(body)
    except ValueError as err:
        head = body[:4096].lower()
        if "html" in content_type.lower() or head.lstrip().startswith(b"<"):
            if any(marker in head or marker in body[-4096:].lower() for marker in _CHALLENGE_MARKERS):
                return ScrapeResult.blocked("Vinted answered with a bot challenge page instead of JSON")
            raise ParseError("Vinted answered with an HTML page instead of catalog JSON") from err
        raise ParseError(f"Vinted answer is not JSON: {err}") from err
    if not isinstance(data, dict):
        raise ParseError("Vinted answer is not a JSON object")
    items = data.get("items")
    if not isinstance(items, list):
        # Errors come as {"code": 106, "message": "..."} (HTTP 200 on some), never with an items list.
        if data.get("code") not in (None, 0) or data.get("message"):
            raise ParseError(f"Vinted API error {data.get('code')}: {str(data.get('message'))[:160]}")
        raise ParseError("Vinted answer has no items list: the format changed")
    fallback = currency_for_domain(domain)
    found = Distinct()
    left_out = 0  # hidden items: no lost rows, nor are repeats
    for item in items:
        if isinstance(item, dict) and item.get("is_visible") is False:
            left_out += 1
            continue
        listing = _parse_item(item, domain, fallback) if isinstance(item, dict) else None
        if listing is not None:
            found.add(listing)
    if items and not found.listings:
        raise ParseError(f"{len(items)} Vinted items but none had an id and title: the format changed")
    return ScrapeResult.of(found.listings, rows=len(items) - left_out - found.repeats)


def _parse_item(item: dict[str, Any], domain: str, fallback_currency: str | None) -> Listing | None:
    item_id = str(item.get("id") or "")
    title = " ".join(str(item.get("title") or "").split())
    if not item_id.isdigit() or not title or item.get("is_visible") is False:
        return None
    price, price_text = parse_price(item.get("price"), item.get("currency"), fallback_currency)
    url = item.get("url")
    if not isinstance(url, str) or not url.startswith("https://"):
        url = f"https://{domain}/items/{item_id}"
    user = item.get("user")
    photo = item.get("photo")
    # The catalog gives the seller's login and nothing more about them (no feedback), no description, and no
    # delivery cost: service_fee is the buyer-protection fee and total_item_price the price with it, while
    # delivery is priced at checkout by the carrier the buyer picks. So shipping, seller_rating and description
    # stay unknown; neither fee is ever read as delivery.
    return Listing(
        marketplace=MARKETPLACE,
        external_id=item_id,
        title=title,
        url=url,
        price=price,
        price_text=price_text,
        image_url=_text(photo.get("url")) if isinstance(photo, dict) else None,
        condition=_text(item.get("status")),
        seller=_text(user.get("login")) if isinstance(user, dict) else None,
    )


def parse_price(price: Any, currency: Any, fallback_currency: str | None) -> tuple[Money | None, str | None]:
    """Both shapes the API has used: {"amount": "20.0", "currency_code": "PLN"}, or "20.0" with "currency" beside it."""
    if isinstance(price, dict):
        amount_text = price.get("amount")
        code = price.get("currency_code") or currency
    else:
        amount_text, code = price, currency
    if amount_text is None or amount_text == "":
        return None, None
    code = str(code).upper() if code else fallback_currency
    try:
        amount = Decimal(str(amount_text))
    except InvalidOperation:
        # Not a bare number: a formatted price ("20,00 zł"), read like any printed price.
        shown = parse_money(str(amount_text), code)
        return shown, str(amount_text)
    if not amount.is_finite():
        return None, str(amount_text)
    text = f"{amount_text} {code}" if code else str(amount_text)
    return (Money(amount, code) if code and len(code) == 3 else None), text


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None
