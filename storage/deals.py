"""The deal part of a scan's save: the comparables kept per search words, a deal score on each alert, and price drops
and relists announced to the destinations that heard of a listing.

Scoring the alerts of a save costs one indexed query per (search words, marketplace) among them, however many
listings the fetch holds: ix_listing_words_recent holds the comparables of one fetch group in one range, newest first.
"""

from __future__ import annotations

import functools
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from scout.deals import (
    Comparable,
    DealPolicy,
    DealScore,
    Verdict,
    comparable_words,
    describe,
    is_price_drop,
    meets,
    pick_comparables,
    score_sorted,
    total_price,
)
from scout.models import AlertKind, DealFacts, FetchOutcome, Listing, Money
from scout.sparkline import price_spread, price_trend
from storage.bulk import POSTGRESQL, json_insert, json_rows, keyed, one_of, unnest_keys
from storage.decode import text_list
from storage.tables import ListingRow, ListingWordsRow, OutboxRow, PriceHistoryRow, SearchRow

__all__ = ["comparable_words"]  # the save imports it from here, with the rest of the deal part

# A listing not seen for this long that shows up again was off the market: it is announced as a relist, not as
# news to nobody. A day spans every search interval the service allows but the weekly one, so a listing that only
# slipped to the next page between two scans is not taken for one.
RELIST_AFTER = timedelta(hours=24)
# How stale a comparable's last sighting may get before a fetch that sees it again writes it anew.
SEEN_REFRESH = timedelta(days=1)
# Comparables kept per fetch group: the newest this many, so one popular search's range stays a bounded read.
MAX_COMPARABLES = 5000
# The price history points drawn in an alert's one-line trend.
TREND_POINTS = 12

WordsKey = tuple[str, str]  # (normalised search words, marketplace)


@dataclass(frozen=True, slots=True)
class Known:
    """A stored listing as the save found it before this fetch."""

    id: int
    price: Decimal | None
    currency: str | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class PriceChange:
    listing_id: int
    old: Decimal
    new: Decimal
    currency: str


@dataclass(slots=True)
class Judge:
    """The comparables of the save's fetch groups, loaded once, and the deal facts they give each listing.

    The comparables of one (words, marketplace, currency, excluded words) are picked and sorted once for all the
    listings judged against them; each listing then leaves only itself out."""

    comparables: dict[WordsKey, list[Comparable]] = field(default_factory=dict)
    currencies: dict[int, str] = field(default_factory=dict)  # listing id -> its currency
    policy: DealPolicy = field(default_factory=DealPolicy)
    _picked: dict[tuple[str, str, str, tuple[str, ...]], tuple[list[Decimal], dict[int, Decimal], str]] = field(
        default_factory=dict)

    def facts(self, listing_id: int, listing: Listing, words: str,
              exclude: Sequence[str]) -> tuple[DealFacts, DealScore | None]:
        total = total_price(listing)
        currency = listing.price.currency if listing.price else None
        if total is None or currency is None:
            return DealFacts(), None
        totals, by_id, spread = self._pick(words, listing.marketplace, currency, tuple(exclude))
        if listing_id in by_id:  # a listing is not its own comparable
            totals = totals.copy()
            del totals[bisect_left(totals, by_id[listing_id])]
        judged = score_sorted(total, totals, self.policy)
        if judged is None:
            return DealFacts(), None
        return DealFacts(deal=describe(judged), verdict=judged.verdict.value,
                         low_confidence=judged.low_confidence, trend=spread or None), judged

    def _pick(self, words: str, marketplace: str, currency: str,
              exclude: tuple[str, ...]) -> tuple[list[Decimal], dict[int, Decimal], str]:
        """The comparables' totals in order, by listing, and the one-line spread an alert draws of them."""
        key = (words, marketplace, currency, exclude)
        if key not in self._picked:
            same = [c for c in self.comparables.get((words, marketplace), ())
                    if self.currencies.get(c.listing_id) == currency]
            picked = pick_comparables(same, exclude=exclude)
            totals = sorted(c.total for c in picked)
            self._picked[key] = (totals, {c.listing_id: c.total for c in picked}, price_spread(totals, currency))
        return self._picked[key]


async def record_words(session: AsyncSession, dialect: str, fetches: Sequence[FetchOutcome],
                       ids: Mapping[tuple[str, str], int], now: datetime) -> None:
    """Keep, for each fetch group's search words, the listings whose titles carry them all (seen now)."""
    keys = sorted({(words, fetch.marketplace, ids[listing.key])
                   for fetch in fetches for words, carried in fetch.carrying.items() for listing in carried})
    if not keys:
        return
    # Rows in key order: two saves writing overlapping rows at once lock them in the same order.
    rows = [{"words": words, "marketplace": marketplace, "listing_id": listing_id, "seen_at": now}
            for words, marketplace, listing_id in keys]
    await session.execute(_words_upsert(dialect), {
        **json_rows(dialect, ListingWordsRow.__table__, rows), "stale_before": now - SEEN_REFRESH})


@functools.cache
def _words_upsert(dialect: str) -> Any:
    """listing_words rows, each new one inserted and each older than its parameter `stale_before` seen anew."""
    table = ListingWordsRow.__table__
    stmt = json_insert(dialect, table, ("words", "marketplace", "listing_id", "seen_at"))
    # A row seen within the last day is left as it is: the deal window is days long, and a scan that sees the same
    # listings every few minutes writes nothing for them.
    return stmt.on_conflict_do_update(
        index_elements=["words", "marketplace", "listing_id"], set_={"seen_at": stmt.excluded.seen_at},
        where=table.c.seen_at < sa.bindparam("stale_before", type_=table.c.seen_at.type))


async def load_judge(session: AsyncSession, keys: Iterable[WordsKey], now: datetime,
                     policy: DealPolicy | None = None) -> Judge:
    """The comparables of each (words, marketplace): one range of listing_words joined to listings, per key, the
    newest MAX_COMPARABLES of each. PostgreSQL reads every key's range in one statement (a LATERAL subquery per key
    of an array): a save judges a dozen fetch groups, and a round trip each costs more than its reading while the
    scan keeps the event loop busy."""
    judge = Judge(policy=policy or DealPolicy())
    since = now - timedelta(days=judge.policy.window_days)
    wanted = sorted(set(keys))
    if not wanted:
        return judge
    found: dict[WordsKey, list[Comparable]] = {key: [] for key in wanted}
    dialect = session.bind.dialect.name
    if dialect == POSTGRESQL:
        rows: Iterable[Any] = await session.execute(_comparables_select(dialect),
                                                    {**keyed(dialect, wanted), "since": since})
    else:
        rows = [(words, marketplace, *row) for words, marketplace in wanted
                for row in await session.execute(_comparables_select(dialect),
                                                 {"words": words, "marketplace": marketplace, "since": since})]
    for words, marketplace, listing_id, title, price, shipping, currency in rows:
        found[(words, marketplace)].append(Comparable(listing_id, title, price + (shipping or 0)))
        judge.currencies[listing_id] = currency
    judge.comparables.update(found)
    return judge


@functools.cache
def _comparables_select(dialect: str) -> sa.Select[Any]:
    """The newest MAX_COMPARABLES priced listings of a (words, marketplace) seen since the parameter `since`:
    PostgreSQL, of every key bound (`keyed`), each with its key; SQLite, of the one bound as `words` and
    `marketplace`."""
    listings, words_table = ListingRow.__table__, ListingWordsRow.__table__

    def newest(words: Any, marketplace: Any) -> sa.Select[Any]:
        return (
            sa.select(listings.c.id, listings.c.title, listings.c.price, listings.c.shipping, listings.c.currency)
            .select_from(words_table.join(listings, listings.c.id == words_table.c.listing_id))
            .where(words_table.c.words == words, words_table.c.marketplace == marketplace,
                   words_table.c.seen_at >= sa.bindparam("since", type_=words_table.c.seen_at.type),
                   listings.c.price.is_not(None))
            .order_by(words_table.c.seen_at.desc())
            .limit(MAX_COMPARABLES)
        )

    if dialect == POSTGRESQL:
        key = unnest_keys((words_table.c.words, words_table.c.marketplace))
        each = newest(key.c.k0, key.c.k1).lateral("comparable")
        return sa.select(key.c.k0, key.c.k1, *each.c).select_from(key.join(each, sa.true()))
    return newest(sa.bindparam("words", type_=sa.String()), sa.bindparam("marketplace", type_=sa.String()))


def facts_value(kind: AlertKind, facts: DealFacts) -> dict[str, Any] | None:
    """alert_outbox.detail: the facts worth keeping, JSON-ready."""
    value: dict[str, Any] = {}
    if kind is not AlertKind.NEW:
        value["kind"] = kind.value
    if facts.deal:
        value.update(deal=facts.deal, verdict=facts.verdict, low_confidence=facts.low_confidence)
    if facts.trend:
        value["trend"] = facts.trend
    if facts.old_price is not None:
        value["old_price"] = [str(facts.old_price.amount), facts.old_price.currency]
    if facts.first_seen_at is not None:
        value["first_seen_at"] = facts.first_seen_at.astimezone(UTC).isoformat()
    return value or None


def facts_from_value(value: Any) -> tuple[AlertKind, DealFacts]:
    """alert_outbox.detail back as facts; anything unreadable is left out, never fatal to a delivery."""
    if not isinstance(value, Mapping):
        return AlertKind.NEW, DealFacts()
    try:
        kind = AlertKind(value.get("kind", AlertKind.NEW.value))
    except ValueError:
        kind = AlertKind.NEW
    old_price = None
    first_seen = None
    try:
        if isinstance(value.get("old_price"), list):
            amount, currency = value["old_price"]
            old_price = Money(Decimal(str(amount)), str(currency))
        if value.get("first_seen_at"):
            first_seen = datetime.fromisoformat(str(value["first_seen_at"])).astimezone(UTC)
    except (ValueError, TypeError, ArithmeticError):
        pass
    text = value.get("deal")
    trend = value.get("trend")
    also = tuple((str(link[0]), str(link[1])) for link in value.get("also") or ()
                 if isinstance(link, list) and len(link) == 2)
    return kind, DealFacts(
        deal=text if isinstance(text, str) else None,
        verdict=value.get("verdict") if isinstance(value.get("verdict"), str) else None,
        low_confidence=bool(value.get("low_confidence")),
        trend=trend if isinstance(trend, str) else None,
        old_price=old_price,
        first_seen_at=first_seen,
        also=also,
    )


def wanted_verdict(min_deal: str | None) -> Verdict | None:
    try:
        return Verdict(min_deal) if min_deal else None
    except ValueError:
        return None


def passes(judged: DealScore | None, min_deal: str | None) -> bool:
    return meets(judged, wanted_verdict(min_deal))


async def price_trends(session: AsyncSession, dialect: str, currencies: Mapping[int, str]) -> dict[int, str]:
    """A one-line sparkline of each listing's observed prices in its currency (listing id -> currency; those with
    two or more prices), in one query."""
    if not currencies:
        return {}
    rows = await session.execute(
        sa.select(PriceHistoryRow.listing_id, PriceHistoryRow.price, PriceHistoryRow.currency)
        .where(one_of(dialect, PriceHistoryRow.listing_id, sorted(currencies)), PriceHistoryRow.price.is_not(None))
        .order_by(PriceHistoryRow.listing_id, PriceHistoryRow.observed_at, PriceHistoryRow.id)
    )
    prices: dict[int, list[Decimal]] = {}
    for listing_id, price, currency in rows:
        if currency == currencies.get(listing_id):
            prices.setdefault(listing_id, []).append(price)
    return {listing_id: price_trend(points[-TREND_POINTS:], currencies[listing_id])
            for listing_id, points in prices.items() if len(points) >= 2}


@dataclass(frozen=True, slots=True)
class Announced:
    """A destination that was told of a listing, through a search that is still there."""

    platform: str
    target: str
    listing_id: int
    search_id: int
    query: str
    exclude: tuple[str, ...]
    drop_share: Decimal | None
    snoozed_until: datetime | None
    active: bool
    # The price the destination last saw (its newest alert of the listing, as it went out); None when unknown.
    told: Money | None = None


def _price_when(outbox: sa.TableClause, column: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
    """A column of the listing's last price observed by the time an alert row went out (the listing's index)."""
    history = PriceHistoryRow.__table__
    return (sa.select(column).where(history.c.listing_id == outbox.c.listing_id,
                                    history.c.observed_at <= outbox.c.sent_at, history.c.price.is_not(None))
            .order_by(history.c.observed_at.desc(), history.c.id.desc()).limit(1).scalar_subquery())


async def announced_to(session: AsyncSession, dialect: str, listing_ids: Collection[int]) -> list[Announced]:
    """Who heard of these listings, one row per destination and listing: an alert that went out. (One still
    waiting shows the listing as it stands when it goes, the lower price included.)"""
    if not listing_ids:
        return []
    outbox = OutboxRow.__table__
    history = PriceHistoryRow.__table__
    rows = await session.execute(
        sa.select(outbox.c.platform, outbox.c.target, outbox.c.listing_id, SearchRow.id, SearchRow.query,
                  SearchRow.exclude_words, SearchRow.price_drop_share, SearchRow.snoozed_until, SearchRow.status,
                  _price_when(outbox, history.c.price), _price_when(outbox, history.c.currency))
        .select_from(outbox.join(SearchRow.__table__, SearchRow.id == outbox.c.search_id))
        .where(one_of(dialect, outbox.c.listing_id, sorted(listing_ids)), outbox.c.kind == "alert",
               outbox.c.status == "sent")
        .order_by(outbox.c.id)
    )
    found: dict[tuple[str, str, int], Announced] = {}
    for platform, target, listing_id, search_id, query, exclude, share, snoozed, status, price, currency in rows:
        key = (platform, target, listing_id)
        told = Money(price, currency) if price is not None and currency else None
        if key in found:  # the search of the first alert, the price of the newest
            found[key] = replace(found[key], told=told)
        else:
            found[key] = Announced(platform, target, listing_id, search_id, query, tuple(text_list(exclude)), share,
                                   snoozed, status == "active", told)
    return list(found.values())


def drops_worth_telling(changes: Iterable[PriceChange], announced: Iterable[Announced],
                        now: datetime) -> list[tuple[Announced, PriceChange]]:
    """The (destination, drop) pairs to announce: the search still active and not snoozed, and the price at
    least the search's share below the one the destination last saw (each pair's change says so in its `old`).

    Measured from what the destination saw, not from the last price: a price that climbs and falls back is no news
    to it, while a price cut a little at a time is told once the cuts add up."""
    by_listing = {change.listing_id: change for change in changes}
    pairs = []
    for heard in announced:
        change = by_listing.get(heard.listing_id)
        if change is None or not heard.active or heard.drop_share is None:
            continue
        if heard.snoozed_until is not None and heard.snoozed_until > now:
            continue
        told = heard.told
        if told is not None and told.currency == change.currency:
            change = replace(change, old=told.amount)
        if is_price_drop(change.old, change.new, heard.drop_share):
            pairs.append((heard, change))
    return pairs


def occasion(kind: AlertKind, now: datetime) -> str:
    """alert_outbox.occasion: '' for news, else the kind and the moment, so each drop or relist is told once."""
    return "" if kind is AlertKind.NEW else f"{kind.value}:{now.astimezone(UTC):%Y%m%dT%H%M%S}"


async def predecessors(session: AsyncSession, dialect: str, fresh: Sequence[Listing],
                       now: datetime) -> dict[tuple[str, str], tuple[datetime, Money | None]]:
    """New listings that are an item put up again under a new id: the same seller's listing of the same title,
    gone for RELIST_AFTER. Returns the new listing's key -> (the old one's first sighting, its last price)."""
    sellers: dict[str, set[str]] = {}
    for listing in fresh:
        if listing.seller:
            sellers.setdefault(listing.marketplace, set()).add(listing.seller[:200])
    if not sellers:
        return {}
    wanted = {(listing.marketplace, (listing.seller or "")[:200], comparable_words(listing.title)): listing.key
              for listing in fresh if listing.seller}
    fresh_keys = {listing.key for listing in fresh}
    found: dict[tuple[str, str], tuple[datetime, Money | None]] = {}
    table = ListingRow.__table__
    for marketplace, names in sorted(sellers.items()):
        rows = await session.execute(
            sa.select(table.c.external_id, table.c.seller, table.c.title, table.c.first_seen_at, table.c.price,
                      table.c.currency)
            .where(table.c.marketplace == marketplace, one_of(dialect, table.c.seller, sorted(names)),
                   table.c.last_seen_at < now - RELIST_AFTER)
        )
        for external_id, seller, title, first_seen, price, currency in rows:
            if (marketplace, external_id) in fresh_keys:
                continue
            key = wanted.get((marketplace, seller, comparable_words(title)))
            if key is not None:
                old = Money(price, currency) if price is not None and currency else None
                if key not in found or first_seen < found[key][0]:
                    found[key] = (first_seen, old)
    return found


class DealQueries:
    """The deal part of storage.repo.Repository: what `history` draws."""

    _sessions: Any
    dialect: str
    deal_policy: DealPolicy

    async def find_listing_id(self, marketplace: str, external_id: str) -> int | None:
        async with self._sessions() as session:
            return (await session.execute(
                sa.select(ListingRow.id).where(ListingRow.marketplace == marketplace,
                                               ListingRow.external_id == external_id))).scalar()

    async def load_comparable_totals(self, words: str, marketplaces: Sequence[str], *, exclude: Sequence[str],
                                     now: datetime) -> dict[str, list[Decimal]]:
        """The totals (price and delivery) of a search's comparables over the deal window, by currency: the
        prices a search's new listings are judged against, as one range of listing_words per marketplace."""
        judge = await self._judge([(words, marketplace) for marketplace in marketplaces], now, self.deal_policy)
        totals: dict[str, list[Decimal]] = {}
        for found in judge.comparables.values():
            for comparable in pick_comparables(found, exclude=exclude):
                currency = judge.currencies.get(comparable.listing_id)
                if currency:
                    totals.setdefault(currency, []).append(comparable.total)
        return totals

    async def _judge(self, keys: Iterable[WordsKey], now: datetime, policy: DealPolicy | None) -> Judge:
        async with self._sessions() as session:
            return await load_judge(session, keys, now, policy)
