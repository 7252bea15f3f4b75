"""Rows to domain objects and back: the conversions every part of the repository shares.

Imports no SQLAlchemy: a row is anything with the table's column names as attributes (an ORM row, or the decoded
row of a read straight through the driver in storage.direct)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scout.models import (
    Destination,
    Listing,
    MarketplaceOutcome,
    Money,
    SavedSearch,
    SearchSpec,
    SearchStatus,
    SponsoredRule,
    UnpricedRule,
)
from storage.decode import text_list

if TYPE_CHECKING:
    from storage.tables import ListingRow, SearchRow

log = logging.getLogger(__name__)

# Rows per IN (...) list; well under SQLite's 32,766 bound parameters and PostgreSQL's 32,767.
CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def search_from_row(row: SearchRow | Any) -> SavedSearch:
    spec = SearchSpec(
        query=row.query,
        marketplaces=tuple(text_list(row.marketplaces)),
        check_interval_minutes=row.check_interval_minutes,
        exclude=tuple(text_list(row.exclude_words)),
        min_price=row.min_price,
        max_price=row.max_price,
        currency=row.currency,
        location=row.location,
        radius_km=row.radius_km,
        unpriced=UnpricedRule(row.unpriced),
        sponsored=SponsoredRule(row.sponsored),
        min_deal=row.min_deal,
        price_drop_share=row.price_drop_share,
        exclude_sellers=tuple(text_list(row.exclude_sellers)),
        min_seller_rating=row.min_seller_rating,
    )
    return SavedSearch(
        id=row.id,
        owner=row.owner,
        destination=Destination(row.platform, row.target),
        spec=spec,
        status=SearchStatus(row.status),
        created_at=row.created_at,
        next_run_at=row.next_run_at,
        scope=row.scope,
        paused_reason=row.paused_reason,
        last_run_at=row.last_run_at,
        last_success_at=row.last_success_at,
        baselined=frozenset(text_list(row.baselined)),
        last_outcomes=outcomes_from_value(row.id, row.last_outcomes),
        snoozed_until=row.snoozed_until,
    )


def outcome_value(outcome: MarketplaceOutcome) -> dict[str, Any]:
    """One entry of searches.last_outcomes: {"status", "at" (ISO 8601, UTC), "error" (or null), "listings"}."""
    return {"status": outcome.status, "at": outcome.at.astimezone(UTC).isoformat(), "error": outcome.error,
            "listings": outcome.listings}


def outcomes_from_value(search_id: int, value: Any) -> dict[str, MarketplaceOutcome]:
    """searches.last_outcomes as domain values; an entry that is not of our making (hand-edited) is skipped."""
    outcomes: dict[str, MarketplaceOutcome] = {}
    for marketplace, entry in (value or {}).items() if isinstance(value, Mapping) else ():
        try:
            outcomes[marketplace] = MarketplaceOutcome(
                status=str(entry["status"]), at=datetime.fromisoformat(entry["at"]).astimezone(UTC),
                error=None if entry.get("error") is None else str(entry["error"]),
                listings=int(entry.get("listings") or 0),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("search %s: ignoring an unreadable last outcome for %r: %r", search_id, marketplace, entry)
    return outcomes


def listing_from_row(row: ListingRow | Any) -> Listing:
    price = Money(row.price, row.currency) if row.price is not None and row.currency else None
    return Listing(
        marketplace=row.marketplace,
        external_id=row.external_id,
        title=row.title,
        url=row.url,
        price=price,
        price_text=row.price_text,
        location=row.location,
        image_url=row.image_url,
        posted_at=row.posted_at,
        condition=row.condition,
        seller=row.seller,
        shipping=Money(row.shipping, row.currency) if row.shipping is not None and row.currency else None,
        seller_rating=row.seller_rating,
    )


def listing_values(listing: Listing, now: datetime) -> dict[str, Any]:
    return {
        "marketplace": listing.marketplace,
        "external_id": listing.external_id,
        "title": listing.title,
        "url": listing.url,
        "price": listing.price.amount if listing.price else None,
        "currency": listing.price.currency if listing.price else None,
        "price_text": (listing.price_text or "")[:200] or None,
        "location": (listing.location or "")[:200] or None,
        "image_url": listing.image_url,
        "posted_at": listing.posted_at,
        "condition": (listing.condition or "")[:100] or None,
        "seller": (listing.seller or "")[:200] or None,
        "shipping": shipping_amount(listing),
        "seller_rating": listing.seller_rating,
        "first_seen_at": now,
        "last_seen_at": now,
    }


def spec_values(spec: SearchSpec) -> dict[str, Any]:
    return {
        "query": spec.query,
        "exclude_words": list(spec.exclude),
        "min_price": spec.min_price,
        "max_price": spec.max_price,
        "currency": spec.currency,
        "marketplaces": list(spec.marketplaces),
        "check_interval_minutes": spec.check_interval_minutes,
        "location": spec.location,
        "radius_km": spec.radius_km,
        "unpriced": spec.unpriced.value,
        "sponsored": spec.sponsored.value,
        "min_deal": spec.min_deal,
        "price_drop_share": spec.price_drop_share,
        "exclude_sellers": list(spec.exclude_sellers),
        "min_seller_rating": spec.min_seller_rating,
    }


def shipping_amount(listing: Listing) -> Any:
    """The delivery cost as stored: only in the listing's own currency, the one its row keeps."""
    shipping, price = listing.shipping, listing.price
    if shipping is None or (price is not None and shipping.currency != price.currency):
        return None
    return shipping.amount
