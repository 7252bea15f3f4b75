"""One item put up on several marketplaces by the same seller within a day is told once, with every link.

Two listings are taken for one item when a marketplace shows who sells them and the seller's name, the title's
words and the price (amount and currency) are the same. Listings found in one save are folded into one alert; a
listing whose twin a destination was told of in the last day adds its link to that alert while it waits, and is
not told again once it went out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from scout.deals import comparable_words
from scout.matching import fold
from scout.models import Listing
from storage.bulk import one_of
from storage.tables import ListingRow, MarketplaceStateRow, OutboxRow

# A seller who lists one item on two sites does it the same day; the same title and price a week apart is another
# item, or the same one relisted (see storage.deals.RELIST_AFTER).
SAME_ITEM_WINDOW = timedelta(days=1)
# The links one alert carries at most: the marketplaces Deal Scout knows.
MAX_LINKS = 9

ItemKey = tuple[str, str, Decimal, str]  # folded seller, title words, price amount, currency


def item_key(seller: str | None, title: str, price: Decimal | None, currency: str | None) -> ItemKey | None:
    if not seller or not seller.strip() or price is None or not currency:
        return None
    return (fold(seller.strip()), comparable_words(title), price.normalize(), currency)


def listing_key(listing: Listing) -> ItemKey | None:
    price = listing.price
    return item_key(listing.seller, listing.title, price.amount if price else None, price.currency if price else None)


def _add_link(detail: dict[str, Any] | None, marketplace: str, url: str) -> dict[str, Any]:
    detail = dict(detail or {})
    links = [list(link) for link in detail.get("also", []) if isinstance(link, list | tuple) and len(link) == 2]
    if [marketplace, url] not in links and len(links) < MAX_LINKS - 1:
        links.append([marketplace, url])
    detail["also"] = links
    return detail


async def fold_cross_listings(session: AsyncSession, dialect: str, rows: list[dict[str, Any]],
                              listings: Mapping[int, Listing], now: datetime) -> list[dict[str, Any]]:
    """The outbox rows to insert, cross-listed items folded: `rows` are a save's planned rows (news has occasion
    ''), `listings` each row's listing by id. Alerts waiting for a destination gain the links of their twins."""
    kept: list[dict[str, Any]] = []
    firsts: dict[tuple[str, str, ItemKey], dict[str, Any]] = {}
    for row in rows:
        listing = listings[row["listing_id"]]
        key = listing_key(listing) if row["occasion"] == "" else None
        first = firsts.get((row["platform"], row["target"], key)) if key else None
        if first is not None and listings[first["listing_id"]].marketplace != listing.marketplace:
            first["detail"] = _add_link(first["detail"], listing.marketplace, listing.url)
            continue
        if key is not None:
            firsts.setdefault((row["platform"], row["target"], key), row)
        kept.append(row)
    if not firsts:
        return kept
    earlier = await _told_lately(session, dialect, [listings[row["listing_id"]] for row in firsts.values()], now)
    dropped: set[int] = set()
    for (platform, target, key), row in firsts.items():
        listing = listings[row["listing_id"]]
        for outbox_id, status, marketplace in earlier.get((platform, target, key), ()):
            if marketplace == listing.marketplace:
                continue
            if status == "pending":
                detail = await session.scalar(sa.select(OutboxRow.detail).where(OutboxRow.id == outbox_id))
                await session.execute(sa.update(OutboxRow).where(OutboxRow.id == outbox_id).values(
                    detail=_add_link(detail, listing.marketplace, listing.url)))
            dropped.add(id(row))  # told already, or on its way with this link now
            break
    return [row for row in kept if id(row) not in dropped]


async def _told_lately(session: AsyncSession, dialect: str, listings: list[Listing],
                       now: datetime) -> dict[tuple[str, str, ItemKey], list[tuple[int, str, str]]]:
    """The alerts of the last day about the same sellers' listings, by destination and item (their details are read
    only for a twin found: a big shop's alerts of a day are many)."""
    sellers = sorted({listing.seller[:200] for listing in listings if listing.seller})
    # The twin may be on any other marketplace Deal Scout has fetched (their health rows name them all): each is one
    # seek of ix_listings_seller per seller. A big shop's own listings on the same marketplace are never its twins,
    # and reading them would cost the most: a save of one marketplace's listings looks at the others alone.
    own = {listing.marketplace for listing in listings}
    marketplaces = {*(await session.scalars(sa.select(MarketplaceStateRow.marketplace))).all(), *own}
    if len(own) == 1:
        marketplaces -= own
    if not sellers or not marketplaces:
        return {}
    table, outbox = ListingRow.__table__, OutboxRow.__table__
    rows = await session.execute(
        sa.select(outbox.c.id, outbox.c.platform, outbox.c.target, outbox.c.status,
                  table.c.marketplace, table.c.seller, table.c.title, table.c.price, table.c.currency)
        .select_from(table.join(outbox, outbox.c.listing_id == table.c.id))
        .where(table.c.marketplace.in_(sorted(marketplaces)), one_of(dialect, table.c.seller, sellers),
               outbox.c.created_at >= now - SAME_ITEM_WINDOW, outbox.c.kind == "alert", outbox.c.occasion == "")
        .order_by(outbox.c.id)
    )
    found: dict[tuple[str, str, ItemKey], list[tuple[int, str, str]]] = {}
    for outbox_id, platform, target, status, marketplace, seller, title, price, currency in rows:
        key = item_key(seller, title, price, currency)
        if key is not None:
            found.setdefault((platform, target, key), []).append((outbox_id, status, marketplace))
    return found
