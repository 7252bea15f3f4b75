"""eBay Browse API answers (item_summary/search JSON, OAuth token JSON) -> Listings, a verdict, a token; pure."""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from scout.errors import BlockedError, ParseError
from scout.models import Listing, Money
from scrapers.base import Distinct, ScrapeResult

log = logging.getLogger(__name__)

# The same marketplace as the HTML adapter: listings keep their (marketplace, id) when a deployment switches.
MARKETPLACE = "ebay"

# The Browse API's marketplace ids and each one's web site (developer.ebay.com, "Marketplace ID values").
MARKETPLACE_DOMAINS: dict[str, str] = {
    "EBAY_US": "www.ebay.com", "EBAY_MOTORS_US": "www.ebay.com", "EBAY_CA": "www.ebay.ca", "EBAY_GB": "www.ebay.co.uk",
    "EBAY_DE": "www.ebay.de", "EBAY_FR": "www.ebay.fr", "EBAY_IT": "www.ebay.it", "EBAY_ES": "www.ebay.es",
    "EBAY_NL": "www.ebay.nl", "EBAY_BE": "www.ebay.be", "EBAY_AT": "www.ebay.at", "EBAY_CH": "www.ebay.ch",
    "EBAY_IE": "www.ebay.ie", "EBAY_PL": "www.ebay.pl", "EBAY_AU": "www.ebay.com.au", "EBAY_HK": "www.ebay.com.hk",
    "EBAY_SG": "www.ebay.com.sg", "EBAY_MY": "www.ebay.com.my", "EBAY_PH": "www.ebay.ph", "EBAY_IN": "www.ebay.in",
}
# An item link may point at any eBay storefront; anything else (a tracking host) falls back to the marketplace's.
_EBAY_HOST = re.compile(r"(?:www\.)?ebay\.(?:com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})")
# seller.feedbackPercentage is a share of positive feedback in percent: above this it is no rating.
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An OAuth application token. repr hides the value: tokens are credentials."""

    value: str
    expires_in_seconds: float

    def __repr__(self) -> str:
        return f"AccessToken(***, expires_in_seconds={self.expires_in_seconds:g})"


def parse_token_response(body: bytes) -> AccessToken:
    """The token from POST /identity/v1/oauth2/token; BlockedError when eBay refused, ParseError when unreadable."""
    data = _load(body, "OAuth token answer")
    if not isinstance(data, dict):
        raise ParseError("eBay's OAuth token answer is not a JSON object")
    if "error" in data:
        # The error code ("invalid_client", "invalid_scope") is safe to show; the description may echo the request.
        raise BlockedError(f"eBay refused the API credentials ({str(data['error'])[:40]}): "
                           "check EBAY_CLIENT_ID and EBAY_CLIENT_SECRET")
    token, expires = data.get("access_token"), data.get("expires_in")
    if not isinstance(token, str) or not token or not isinstance(expires, (int, float)) or expires <= 0:
        raise ParseError("eBay's OAuth token answer has no access_token and expires_in")
    return AccessToken(token, float(expires))


@dataclass(frozen=True, slots=True)
class BrowsePage:
    """One item_summary/search answer: the verdict and listings, and how many items match in all."""

    result: ScrapeResult
    total: int | None


def parse_search_response(body: bytes) -> ScrapeResult:
    """Classify and parse one item_summary/search answer: listings or a real zero; ParseError when the shape changed."""
    return parse_browse_page(body).result


def parse_browse_page(body: bytes) -> BrowsePage:
    """parse_search_response, plus the answer's `total` (all matches, of which one page is returned).

    Every item summary counts as a result row (the variations of one listing, once), so a summary without an id
    or a title makes the fetch partial.
    """
    data = _load(body, "Browse API answer")
    if not isinstance(data, dict):
        raise ParseError("eBay Browse API answer is not a JSON object")
    items = data.get("itemSummaries")
    if items is None:
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            raise ParseError(f"eBay Browse API error {first.get('errorId')}: {str(first.get('message'))[:160]}")
        # With no match the API leaves itemSummaries out and says total 0.
        if data.get("total") == 0:
            return BrowsePage(ScrapeResult.of([]), 0)
        raise ParseError("eBay Browse API answer has neither itemSummaries nor total 0: the format changed")
    if not isinstance(items, list):
        raise ParseError("eBay Browse API itemSummaries is not a list")
    found = Distinct()  # the variations of one listing repeat its id: one row
    for item in items:
        listing = _parse_item(item) if isinstance(item, dict) else None
        if listing is not None:
            found.add(listing)
    listings, repeats = found.listings, found.repeats
    if items and not listings:
        raise ParseError(f"{len(items)} eBay item summaries but none had an id and title: the format changed")
    total = data.get("total")
    return BrowsePage(ScrapeResult.of(listings, rows=len(items) - repeats), total if isinstance(total, int) else None)


def _load(body: bytes, what: str) -> Any:
    if not body.strip():
        raise ParseError(f"empty eBay {what}")
    try:
        return json.loads(body)
    except ValueError as err:
        raise ParseError(f"eBay {what} is not JSON: {err}") from err


def _parse_item(item: dict[str, Any]) -> Listing | None:
    item_id = _legacy_id(item)
    title = " ".join(str(item.get("title") or "").split())
    if item_id is None or not title:
        return None
    # A fixed price, or for an auction the current bid; "price" is absent on auction-only items.
    money = _money(item.get("price")) or _money(item.get("currentBidPrice"))
    return Listing(
        marketplace=MARKETPLACE,
        external_id=item_id,
        title=title,
        url=f"https://{_web_host(item)}/itm/{item_id}",
        price=money,
        price_text=f"{money.amount} {money.currency}" if money else None,
        location=_location(item.get("itemLocation")),
        image_url=_image(item),
        posted_at=_timestamp(item.get("itemCreationDate")),
        condition=str(item["condition"]) if item.get("condition") else None,
        seller=_seller(item.get("seller")),
        shipping=_shipping(item.get("shippingOptions")),
        seller_rating=_seller_rating(item.get("seller")),
    )


def _legacy_id(item: dict[str, Any]) -> str | None:
    """The numeric item number the web pages use ("334691749565"), so both eBay adapters name a listing alike.

    itemId is "v1|<item number>|<variation>"; one listing with variations can appear once per variation, and
    the item number makes them one listing, as the web page shows them.
    """
    legacy = str(item.get("legacyItemId") or "")
    if legacy.isdigit():
        return legacy
    parts = str(item.get("itemId") or "").split("|")
    return parts[1] if len(parts) >= 2 and parts[1].isdigit() else None


def _money(data: Any) -> Money | None:
    if not isinstance(data, dict):
        return None
    value, currency = data.get("value"), data.get("currency")
    if isinstance(value, str) and isinstance(currency, str):
        return _money_of(value, currency)
    return _money_of.__wrapped__(value, currency)  # a number, or a list or dict that no cache can key on


@functools.lru_cache(maxsize=1024)  # pure, and an answer repeats the same few amounts ("0.00" USD delivery)
def _money_of(value: Any, currency: Any) -> Money | None:
    code = str(currency or "").upper()
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if len(code) != 3 or not amount.is_finite():
        return None
    return Money(amount, code)


def _web_host(item: dict[str, Any]) -> str:
    url = item.get("itemWebUrl")
    host = (urlsplit(url).hostname or "").lower() if isinstance(url, str) else ""
    if _EBAY_HOST.fullmatch(host):
        return host
    return MARKETPLACE_DOMAINS.get(str(item.get("listingMarketplaceId")), "www.ebay.com")


def _location(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    parts = [str(data[key]).strip() for key in ("city", "stateOrProvince", "country") if data.get(key)]
    return ", ".join(parts) or None


def _image(item: dict[str, Any]) -> str | None:
    for candidate in (item.get("image"), *(item.get("thumbnailImages") or [])):
        if isinstance(candidate, dict) and str(candidate.get("imageUrl") or "").startswith("https://"):
            return str(candidate["imageUrl"])
    return None


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        # "2023-01-05T17:43:03.000Z": fromisoformat reads the Z from Python 3.11 on.
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def _seller(data: Any) -> str | None:
    name = data.get("username") if isinstance(data, dict) else None
    return str(name) if name else None


def _seller_rating(data: Any) -> Decimal | None:
    """seller.feedbackPercentage ("99.9", a string): the share of positive feedback, 0-100."""
    value = data.get("feedbackPercentage") if isinstance(data, dict) else None
    if value is None or isinstance(value, bool):
        return None
    return _rating_of(value if isinstance(value, str) else str(value))


@functools.lru_cache(maxsize=1024)
def _rating_of(text: str) -> Decimal | None:
    try:
        rating = Decimal(text)
    except InvalidOperation:
        return None
    return rating if rating.is_finite() and 0 <= rating <= _HUNDRED else None


def _shipping(options: Any) -> Money | None:
    """The cheapest of the item's shippingOptions[].shippingCost: what delivery costs at least, 0 when free. An
    option without a cost (shippingCostType CALCULATED: it depends on the buyer's address) tells nothing, and
    options in another currency than the first priced one are not compared with it."""
    if not isinstance(options, list):
        return None
    cheapest: Money | None = None
    for option in options:  # nearly always one
        cost = _money(option.get("shippingCost")) if isinstance(option, dict) else None
        if cost is None or cost.amount < 0:
            continue
        if cheapest is None or (cost.currency == cheapest.currency and cost.amount < cheapest.amount):
            cheapest = cost
    return cheapest
