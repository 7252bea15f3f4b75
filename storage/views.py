"""What the REST API reads across aggregates: a filtered page of searches and its total, a search's alerts with
their listings' ids, a listing with its price history, and how many alerts were raised since a moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from scout.models import Listing, SavedSearch, SearchStatus
from storage.bulk import POSTGRESQL
from storage.convert import listing_from_row, search_from_row
from storage.outbox import recent_alert_rows
from storage.queries import Queries
from storage.tables import ListingRow, OutboxRow, PriceHistoryRow, SearchMatchRow, SearchRow


@dataclass(frozen=True, slots=True)
class SearchAlert:
    """One alert a search raised, with the stored listing's id (GET /api/v1/listings/{id} reads it)."""

    outbox_id: int
    listing_id: int
    listing: Listing
    status: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class PricePoint:
    price: Decimal | None
    currency: str | None
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class StoredListing:
    id: int
    listing: Listing
    first_seen_at: datetime
    last_seen_at: datetime
    history: list[PricePoint]


class ViewQueries(Queries):
    """The REST API's reads, as part of storage.repo.Repository."""

    def _on_marketplace(self, marketplace: str) -> sa.ColumnElement[bool]:
        if self.dialect == POSTGRESQL:
            # The runbook's own test: 'ebay' = ANY(marketplaces).
            return sa.literal(marketplace) == sa.any_(SearchRow.marketplaces)
        items = sa.func.json_each(SearchRow.marketplaces).table_valued("value")
        return sa.exists(sa.select(sa.literal(1)).select_from(items).where(items.c.value == marketplace))

    async def page_searches(self, *, owner: str | None = None, status: SearchStatus | None = None,
                            marketplace: str | None = None, limit: int, offset: int) -> tuple[list[SavedSearch], int]:
        """One page of the searches that pass every filter given, oldest first, and how many pass in all."""
        conditions: list[sa.ColumnElement[bool]] = []
        if owner is not None:
            conditions.append(SearchRow.owner == owner)
        if status is not None:
            conditions.append(SearchRow.status == status.value)
        if marketplace is not None:
            conditions.append(self._on_marketplace(marketplace))
        async with self._sessions() as session:
            total = (await session.execute(
                sa.select(sa.func.count()).select_from(SearchRow).where(*conditions))).scalar_one()
            rows = await session.scalars(
                sa.select(SearchRow).where(*conditions).order_by(SearchRow.id).offset(offset).limit(limit))
            return [search_from_row(row) for row in rows.all()], int(total)

    async def load_search_alerts(self, search_id: int, *, limit: int) -> list[SearchAlert]:
        rows = await recent_alert_rows(self._sessions, search_id, limit=limit)
        return [SearchAlert(o.id, lst.id, listing_from_row(lst), o.status, o.created_at, o.sent_at) for o, lst in rows]

    async def load_listing(self, listing_id: int, *, matched_for: str | None = None) -> StoredListing | None:
        """A listing and its price history, oldest first. With `matched_for`, only a listing one of that owner's
        searches matched: which listings exist tells what others look for."""
        stmt: Any = sa.select(ListingRow).where(ListingRow.id == listing_id)
        if matched_for is not None:
            stmt = stmt.where(sa.exists(
                sa.select(sa.literal(1)).select_from(SearchMatchRow)
                .join(SearchRow, SearchRow.id == SearchMatchRow.search_id)
                .where(SearchMatchRow.listing_id == ListingRow.id, SearchRow.owner == matched_for)))
        async with self._sessions() as session:
            row = (await session.scalars(stmt)).first()
            if row is None:
                return None
            history = (await session.scalars(
                sa.select(PriceHistoryRow).where(PriceHistoryRow.listing_id == row.id)
                .order_by(PriceHistoryRow.observed_at, PriceHistoryRow.id))).all()
            return StoredListing(row.id, listing_from_row(row), row.first_seen_at, row.last_seen_at,
                                 [PricePoint(h.price, h.currency, h.observed_at) for h in history])

    async def count_alerts_since(self, since: datetime) -> int:
        """Alerts about listings queued since `since` (notices and ops messages are not alerts)."""
        stmt = sa.select(sa.func.count()).select_from(OutboxRow).where(
            OutboxRow.kind == "alert", OutboxRow.created_at >= since)
        async with self._sessions() as session:
            return int((await session.execute(stmt)).scalar_one())
