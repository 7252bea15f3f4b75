"""Facebook Marketplace search results (the page's embedded JSON, or a GraphQL answer) -> Listings and a verdict; pure."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from scout.errors import ParseError
from scout.models import Listing, Money
from scrapers.base import ScrapeResult
from scrapers.money import parse_money

log = logging.getLogger(__name__)

MARKETPLACE = "facebook"
ITEM_URL = "https://www.facebook.com/marketplace/item/{id}/"

# The search feed sits in one of ~60 JSON blobs; only blobs naming it are decoded (a substring test is ~free).
_SEARCH_KEY = "marketplace_search"
_JSON_SCRIPTS = 'script[type="application/json"]'
# The visitor's marketplace currency is in another blob ("current_marketplace": {..., "primary_currency": "USD"});
# search results carry only "$20", which several currencies print alike.
_PRIMARY_CURRENCY = re.compile(rb'"primary_currency"\s*:\s*"([A-Z]{3})"')
_LOGIN_FORM = 'form#login_form, form[action*="/login"], input[name="pass"]'
# Where Facebook sends a visitor it will not serve: log in, prove you are human, accept terms, or go away.
_BLOCKED_URL_PARTS = ("/login", "/checkpoint/", "/two_step_verification/", "/privacy/consent", "/marketplace/ineligible")
# Texts of its "slow down" and checkpoint pages (English UI: the adapter asks for English).
_BLOCKED_TEXTS = ("temporarily blocked", "going too fast", "security check", "confirm you're human",
                  "confirm you\u2019re human")
# Longest seller name kept, as for Reddit's authors: a person's or a shop's name is far shorter, and a changed
# answer must not put a long text into every alert.
_SELLER_LIMIT = 200
_BLOCKED_TITLES = ("log in", "log into", "login", "checkpoint", "security check")


def parse_search_page(body: bytes, *, url: str = "", content_type: str = "") -> ScrapeResult:
    """Classify and parse a search page or GraphQL answer: listings, no results, or blocked; ParseError otherwise."""
    if not body or body.isspace():
        raise ParseError("empty Facebook page")
    currency_match = _PRIMARY_CURRENCY.search(body)
    currency = currency_match.group(1).decode("ascii") if currency_match else None
    tree: LexborHTMLParser | None = None
    if _looks_like_json(body, content_type):
        blobs = list(_json_documents(body))
    else:
        tree = LexborHTMLParser(body)
        texts = (script.text() for script in tree.css(_JSON_SCRIPTS))
        blobs = [_loads(text) for text in texts if _SEARCH_KEY in text]
        if None in blobs:
            # The feed's own blob is cut or mangled: the page is broken, whatever else it shows.
            raise ParseError("the JSON that holds marketplace_search does not parse")
    feeds = [feed for blob in blobs if blob is not None for feed in _find_key(blob, _SEARCH_KEY) if feed is not None]
    if feeds:
        return _parse_feeds(feeds, currency)
    # No feed: a page Facebook serves instead of results, or a layout we no longer know.
    blocked = _blocked_reason(url, tree, blobs)
    if blocked:
        return ScrapeResult.blocked(blocked)
    raise ParseError("no marketplace_search feed in the page's JSON and no login wall or challenge either")


def _looks_like_json(body: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or body.lstrip()[:1] in (b"{", b"[")


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None  # one unreadable blob is not a verdict; the missing feed decides


def _json_documents(body: bytes) -> Iterator[Any]:
    """A GraphQL answer is one JSON document, or several, one a line, when Facebook streams deferred parts."""
    whole = _loads(body)
    if whole is not None:
        yield whole
        return
    found = False
    for line in body.splitlines():
        if line.strip():
            doc = _loads(line)
            if doc is not None:
                found = True
                yield doc
    if not found:
        raise ParseError("Facebook answered with JSON that does not parse")


def _find_key(data: Any, key: str) -> Iterator[Any]:
    """Every value stored under `key`, at any depth (the feed's path changes with the page's bootstrapping)."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if key in node:
                yield node[key]
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in reversed(node) if isinstance(v, (dict, list)))


def _parse_feeds(feeds: list[Any], currency: str | None) -> ScrapeResult:
    listings: list[Listing] = []
    seen: set[str] = set()
    edges_seen = unavailable = rows = 0
    for feed in feeds:
        units = feed.get("feed_units") if isinstance(feed, dict) else None
        edges = units.get("edges") if isinstance(units, dict) else None
        if not isinstance(edges, list):
            raise ParseError("marketplace_search has no feed_units.edges list: the layout changed")
        for edge in edges:
            edges_seen += 1
            node = edge.get("node") if isinstance(edge, dict) else None
            item = node.get("listing") if isinstance(node, dict) else None
            if not isinstance(item, dict):
                continue  # other story types (ads, "more from nearby" banners) carry no listing
            if item.get("is_sold") or item.get("is_pending") or item.get("is_hidden"):
                # Someone already has it; if the sale falls through it shows up again and is new to us then.
                unavailable += 1
                continue
            listing = _parse_listing(item, currency)
            if listing is None:
                rows += 1  # a listing entry we could not read: counted, so the fetch says it is partial
            elif listing.external_id not in seen:
                rows += 1
                seen.add(listing.external_id)
                listings.append(listing)
    if not listings and edges_seen > unavailable:
        raise ParseError(f"{edges_seen} Facebook feed entries but none had a listing id and title: the layout changed")
    if unavailable:
        log.debug("skipped %d sold, pending or hidden Facebook listings", unavailable)
    return ScrapeResult.of(listings, rows=rows)


def _parse_listing(item: dict[str, Any], currency: str | None) -> Listing | None:
    item_id = str(item.get("id") or "")
    title = " ".join(str(item.get("marketplace_listing_title") or item.get("custom_title") or "").split())
    if not item_id.isdigit() or not title:
        return None
    price, price_text = _price(item.get("listing_price"), currency)
    return Listing(
        marketplace=MARKETPLACE,
        external_id=item_id,
        title=title,
        url=ITEM_URL.format(id=item_id),
        price=price,
        price_text=price_text,
        location=_location(item.get("location")),
        image_url=_dig(item, "primary_listing_photo", "image", "uri"),
        seller=_seller(item.get("marketplace_listing_seller")),
    )


def _price(data: Any, currency: str | None) -> tuple[Money | None, str | None]:
    if not isinstance(data, dict):
        return None, None
    text = str(data.get("formatted_amount") or "").strip() or None
    shown = parse_money(text, currency)
    try:
        amount = Decimal(str(data["amount"])) if data.get("amount") is not None else None
    except InvalidOperation:
        amount = None
    if amount is None:
        return shown, text
    code = currency or (shown.currency if shown else None)
    return (Money(amount, code) if code else None), text or f"{amount}"


def _location(data: Any) -> str | None:
    geo = data.get("reverse_geocode") if isinstance(data, dict) else None
    if not isinstance(geo, dict):
        return None
    parts = [str(geo[k]).strip() for k in ("city", "state") if geo.get(k)]
    return ", ".join(parts) or None


def _seller(data: Any) -> str | None:
    """The seller's shown name, where the answer names one: a logged-out page leaves marketplace_listing_seller
    null. Search results carry no delivery cost (delivery_types says only how a buyer gets the item: IN_PERSON,
    PUBLIC_MEETUP, DOOR_PICKUP, DOOR_DROPOFF on the real page) and no description, so listings from here have neither."""
    name = _dig(data, "name")
    return (" ".join(name.split())[:_SELLER_LIMIT] or None) if name else None


def _dig(data: Any, *keys: str) -> str | None:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data if isinstance(data, str) and data else None


def _blocked_reason(url: str, tree: LexborHTMLParser | None, blobs: list[Any]) -> str | None:
    path = url.split("?", 1)[0].lower()
    for part in _BLOCKED_URL_PARTS:
        if part in path:
            return f"Facebook sent us to {part.strip('/')} instead of results (login wall or checkpoint)"
    for blob in blobs:
        for errors in _find_key(blob, "errors"):
            text = json.dumps(errors)[:300].lower()
            if any(marker in text for marker in ("rate limit", "login", "checkpoint", "blocked")):
                return f"Facebook refused the search: {text[:120]}"
    if tree is None:
        return None
    title_node = tree.css_first("title")
    title = " ".join((title_node.text() if title_node is not None else "").split()).casefold()
    if any(marker in title for marker in _BLOCKED_TITLES):
        return f"Facebook login or checkpoint page (title {title[:60]!r})"
    login_form = tree.css_first(_LOGIN_FORM) is not None
    tree.strip_tags(["script", "style", "noscript"])
    body_text = " ".join(tree.text().split()).casefold()[:20000]
    for marker in _BLOCKED_TEXTS:
        if marker in body_text:
            return f"Facebook challenge page ({marker!r})"
    if login_form:
        return "Facebook login wall: a login form and no search results"
    return None
