"""The REST API's JSON shapes. They say what type each field has; whether a value is acceptable is the engine's
call (bot.commands), so the API accepts and refuses exactly what the CLI and the bots do."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from bot.describe import describe_destination, describe_search, format_amount
from scout.models import Listing, SavedSearch
from scrapers.base import Adapter
from storage.repo import SearchAlert, StoredListing

# A price bound as JSON gives it (200, 199.99) or as a person types it ("$1,200"): the engine reads both.
PriceIn = Decimal | StrictStr | None
Words = list[StrictStr] | StrictStr | None
Minutes = StrictInt | StrictStr | None


class SearchFields(BaseModel):
    """The fields of a search a client may set; all but `query` fall back to the service's defaults."""

    model_config = ConfigDict(extra="forbid")

    marketplaces: Words = Field(None, description="Marketplace keys (a list, or comma-separated); default: "
                                "DEFAULT_MARKETPLACES", examples=[["ebay", "craigslist"]])
    interval_minutes: Minutes = Field(None, description="Check interval; at least the marketplaces' minimum")
    exclude: Words = Field(None, description="Words that rule a listing out", examples=[["broken", "parts"]])
    min_price: PriceIn = Field(None, examples=[100])
    max_price: PriceIn = Field(None, examples=[499.99])
    currency: StrictStr | None = Field(None, description="ISO code of the price range", examples=["USD"])
    location: StrictStr | None = Field(None, description="What the marketplace makes of a place: a Craigslist "
                                       "site, a city slug, a feed's URL...", examples=["sfbay"])
    radius_km: Minutes = Field(None, description="Kilometres around the location")
    unpriced: StrictStr | None = Field(None, description="include or exclude listings without a comparable price")
    sponsored: StrictStr | None = Field(None, description="include or exclude paid placements")
    min_deal: StrictStr | None = Field(None, description="Deals only: good, great or fair (judged against similar "
                                       "listings seen in the last 90 days); any for every match")
    price_drop: PriceIn = Field(None, description="Announce a drop of at least this share again: 10%, 0.15, or off",
                                examples=["10%"])
    exclude_sellers: Words = Field(None, description="Seller names whose listings never match")
    min_seller_rating: PriceIn = Field(None, description="Least share of positive feedback, in percent, where the "
                                       "marketplace shows it", examples=[98])


class SearchCreate(SearchFields):
    query: StrictStr = Field(description="Words a listing's title must have", examples=["nintendo switch"])
    to: StrictStr = Field("console", description="Where alerts go, as the CLI's --to: console, discord:<channel "
                          "id>, telegram:<chat id> or apprise:<Apprise URL>")


class SearchUpdate(SearchFields):
    """Only the fields given change; the search is validated whole again, as `/edit` does. A field given as null
    is cleared, as an empty value clears it in a chat command: no price bound, no location, every match, the
    marketplaces' shortest interval; null means what it means in a search read back, so `price_drop: null` turns
    drop alerts off. What every search has (its query, the unpriced and sponsored rules) cannot be null."""

    query: StrictStr | None = None

    def changes(self) -> dict[str, object]:
        """The fields given, as bot.commands' edit_search takes them (it leaves a field it is given None alone)."""
        return {field: _CLEARED.get(field, "") if value is None else value
                for field, value in self.model_dump(exclude_unset=True).items()}


# What clears a field whose empty value means something else: an empty drop share is the default share.
_CLEARED = {"price_drop": "off"}


class PauseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StrictStr | None = Field(None, description="Shown with the search (or marketplace) while it waits")


class CheckOut(BaseModel):
    status: str
    at: datetime
    error: str | None
    listings: int


def _amount(value: Decimal | None) -> str | None:
    return format_amount(value) if value is not None else None


class SearchOut(BaseModel):
    id: int
    owner: str
    query: str
    marketplaces: list[str]
    interval_minutes: int
    exclude: list[str]
    min_price: str | None = Field(description="A decimal, as text: prices are exact")
    max_price: str | None
    currency: str | None
    location: str | None
    radius_km: int | None
    unpriced: str
    sponsored: str
    min_deal: str | None
    price_drop: str | None = Field(description="The share of a price a drop must reach to be told, or null: never")
    exclude_sellers: list[str]
    min_seller_rating: str | None
    snoozed_until: datetime | None
    status: Literal["active", "paused"]
    paused_reason: str | None
    destination: str = Field(description="Where alerts go; an Apprise URL is shown without its secrets")
    description: str
    created_at: datetime
    next_run_at: datetime
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_checks: dict[str, CheckOut] = Field(description="How each marketplace's last fetch went")

    @classmethod
    def of(cls, search: SavedSearch, adapters: Mapping[str, Adapter] | None = None) -> SearchOut:
        spec = search.spec
        return cls(
            id=search.id, owner=search.owner, query=spec.query, marketplaces=list(spec.marketplaces),
            interval_minutes=spec.check_interval_minutes, exclude=list(spec.exclude),
            min_price=_amount(spec.min_price), max_price=_amount(spec.max_price), currency=spec.currency,
            location=spec.location, radius_km=spec.radius_km, unpriced=spec.unpriced.value,
            sponsored=spec.sponsored.value, min_deal=spec.min_deal, price_drop=_amount(spec.price_drop_share),
            exclude_sellers=list(spec.exclude_sellers), min_seller_rating=_amount(spec.min_seller_rating),
            snoozed_until=search.snoozed_until, status=search.status.value, paused_reason=search.paused_reason,
            destination=describe_destination(search.destination), description=describe_search(search, adapters),
            created_at=search.created_at, next_run_at=search.next_run_at, last_run_at=search.last_run_at,
            last_success_at=search.last_success_at,
            last_checks={key: CheckOut(status=o.status, at=o.at, error=o.error, listings=o.listings)
                         for key, o in search.last_outcomes.items()},
        )


class SearchPage(BaseModel):
    items: list[SearchOut]
    page: int
    per_page: int
    total: int = Field(description="Searches matching the filters, on every page")
    pages: int


class ListingFields(BaseModel):
    marketplace: str
    external_id: str
    title: str
    url: str
    price: str | None
    currency: str | None
    price_text: str | None
    location: str | None
    image_url: str | None
    posted_at: datetime | None

    @staticmethod
    def fields_of(listing: Listing) -> dict[str, object]:
        return {"marketplace": listing.marketplace, "external_id": listing.external_id, "title": listing.title,
                "url": listing.url, "price": _amount(listing.price.amount) if listing.price else None,
                "currency": listing.price.currency if listing.price else None, "price_text": listing.price_text,
                "location": listing.location, "image_url": listing.image_url, "posted_at": listing.posted_at}


class AlertOut(ListingFields):
    id: int = Field(description="The alert's own id")
    listing_id: int = Field(description="GET /api/v1/listings/{listing_id} has its price history")
    status: str = Field(description="pending, sending, sent, held, summarised or dead")
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, alert: SearchAlert) -> AlertOut:
        return cls(id=alert.outbox_id, listing_id=alert.listing_id, status=alert.status, created_at=alert.created_at,
                   sent_at=alert.sent_at, **ListingFields.fields_of(alert.listing))  # type: ignore[arg-type]


class PricePointOut(BaseModel):
    price: str | None
    currency: str | None
    observed_at: datetime


class ListingOut(ListingFields):
    id: int
    condition: str | None
    seller: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    price_history: list[PricePointOut] = Field(description="Each price seen, oldest first")

    @classmethod
    def of(cls, stored: StoredListing) -> ListingOut:
        listing = stored.listing
        return cls(id=stored.id, condition=listing.condition, seller=listing.seller,
                   first_seen_at=stored.first_seen_at, last_seen_at=stored.last_seen_at,
                   price_history=[PricePointOut(price=_amount(p.price), currency=p.currency, observed_at=p.observed_at)
                                  for p in stored.history],
                   **ListingFields.fields_of(listing))  # type: ignore[arg-type]


Health = Literal["healthy", "failing", "blocked", "paused"]


class MarketplaceOut(BaseModel):
    key: str
    name: str
    state: Literal["active", "paused"]
    health: Health = Field(description="paused by an operator; blocked: its circuit is open or its last fetch was "
                           "refused; failing: its last fetches failed; else healthy")
    paused_reason: str | None
    circuit: str = Field(description="closed, open or half_open")
    circuit_open_until: datetime | None
    last_status: str | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    min_interval_minutes: int
    requests_per_minute: float = Field(description="Its request budget")
    usage: str | None = Field(description="An API's daily budget as spent so far, where it has one")


class OperatorActionOut(BaseModel):
    marketplace: str
    message: str = Field(description="What the ops channel was told")


class SummaryOut(BaseModel):
    """Flat figures for dashboard widgets, read at `time` (every request within a few seconds shares a reading)."""

    time: datetime
    active_searches: int
    paused_searches: int
    stale_searches: int
    alerts_last_24h: int
    marketplaces_healthy: int
    marketplaces_failing: int
    marketplaces_blocked: int
    marketplaces_paused: int
    outbox_backlog: int
    outbox_oldest_seconds: float
    outbox_dead: int
    alert_lag_p95_seconds: float
