"""One scan's results in one transaction: listings and prices, matches, alerts queued, each search's outcome and
schedule, the fetches' task logs, and each marketplace's health and circuit."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from scout.circuit import Circuit, CircuitState, Transition
from scout.errors import StorageError
from scout.models import (
    AlertKind,
    DealFacts,
    FetchOutcome,
    Listing,
    MarketplaceOutcome,
    Money,
    SavedSearch,
    ScanSaved,
    SearchRun,
    SearchStatus,
)
from storage.bulk import (
    POSTGRESQL,
    any_of,
    json_insert,
    json_rows,
    keyed,
    listed,
    planned_for_now,
    select_by_keys,
)
from storage.convert import listing_values, outcome_value, shipping_amount
from storage.crosslist import fold_cross_listings
from storage.deals import (
    RELIST_AFTER,
    Known,
    PriceChange,
    announced_to,
    comparable_words,
    drops_worth_telling,
    facts_value,
    load_judge,
    occasion,
    passes,
    predecessors,
    price_trends,
    record_words,
)
from storage.decode import text_list
from storage.queries import Queries, describe_database_error
from storage.tables import (
    ListingRow,
    MarketplaceStateRow,
    OutboxRow,
    PriceHistoryRow,
    SearchMatchRow,
    SearchRow,
    TaskLogRow,
)

if TYPE_CHECKING:
    from storage.claims import CommitGuard

# A fetch and its circuit as stored -> the circuit after the fetch, and the transitions worth telling.
CircuitStep = Callable[[FetchOutcome, Circuit], tuple[Circuit, list[Transition]]]

SCAN_TASK_NAME = "run_search_task"  # the name the operations runbook queries task_logs by
CIRCUIT_TASK_NAME = "scrape_circuit"
# Marketplace outcomes that count as a failure for health and circuit purposes.
FAILING_STATUSES = ("blocked", "broken", "failed")
PAUSED_REASON_LENGTH = 300  # searches.paused_reason
# Alerts judged between two turns of the event loop: ~200 take ~10 ms, so no judging holds the loop for long.
JUDGED_PER_TURN = 200


@dataclass(slots=True)
class _SearchState:
    """What a scan's transaction reads of a search before it adds to it."""

    baselined: set[str]
    outcomes: dict[str, Any]  # searches.last_outcomes, as stored


@dataclass(slots=True)
class _Upserted:
    """What storing a save's listings found: each listing's id, the new ones, the prices that changed (and which
    fell, in the same currency), and the listings back after RELIST_AFTER unseen (id -> when last seen)."""

    ids: dict[tuple[str, str], int]
    new_keys: set[tuple[str, str]]
    price_changes: int
    changes: list[PriceChange]
    returned: dict[int, datetime]
    fresh: list[Listing]


def _came_back(upserted: _Upserted, listing_id: int, search: SavedSearch) -> bool:
    """Whether a listing is back on the market for this search: unseen for RELIST_AFTER, and the search looked in
    the meantime (a scan of it succeeded after the listing's last sighting). A search that was not scanned for a
    day, the service being down, finds its listings where they were: that is no relist."""
    last_seen = upserted.returned.get(listing_id)
    looked = search.last_success_at
    return last_seen is not None and looked is not None and looked > last_seen


async def marketplace_row(session: AsyncSession, key: str) -> MarketplaceStateRow:
    """A marketplace's (or a host's) health row, added when it has none yet, and locked until the transaction ends
    on PostgreSQL: workers saving fetches of one marketplace at once add to its counters one after the other, and
    two first fetches cannot both add the row."""
    locking = session.bind.dialect.name == POSTGRESQL
    row = await session.get(MarketplaceStateRow, key, with_for_update=locking or None)
    if row is None:
        if locking:
            from sqlalchemy.dialects.postgresql import insert as pg_insert  # loaded only where it is used

            insert = pg_insert(MarketplaceStateRow)
        else:
            insert = sqlite_insert(MarketplaceStateRow)
        insert = insert.values(
            marketplace=key, status="active", consecutive_failures=0, total_successes=0, total_failures=0,
            total_blocked=0, circuit_state="closed", circuit_openings=0)
        await session.execute(insert.on_conflict_do_nothing())
        row = await session.get(MarketplaceStateRow, key, with_for_update=locking or None, populate_existing=True)
        assert row is not None
    return row


@functools.cache
def _listings_insert(dialect: str, names: tuple[str, ...]) -> Any:
    """New listings, those stored meanwhile by another writer left alone; returns the ids of those inserted."""
    table = ListingRow.__table__
    return json_insert(dialect, table, names).on_conflict_do_nothing(
        index_elements=["marketplace", "external_id"]).returning(table.c.id, table.c.marketplace, table.c.external_id)


@functools.cache
def _outbox_insert(dialect: str, names: tuple[str, ...]) -> Any:
    """Alerts, one per destination, listing and occasion at most; returns the keys of those inserted."""
    table = OutboxRow.__table__
    return json_insert(dialect, table, names).on_conflict_do_nothing(
        index_elements=["platform", "target", "listing_id", "occasion"]
    ).returning(table.c.listing_id, table.c.platform, table.c.target, table.c.occasion)


@functools.cache
def _known_select(dialect: str) -> sa.Select[Any]:
    """PostgreSQL: the listings among the keys bound (`keyed`). SQLite: among one marketplace's external ids, bound
    as `marketplace` and `ids` (`listed`)."""
    columns = (ListingRow.id, ListingRow.marketplace, ListingRow.external_id, ListingRow.price, ListingRow.currency,
               ListingRow.last_seen_at)
    if dialect == POSTGRESQL:
        return select_by_keys(dialect, columns, (ListingRow.marketplace, ListingRow.external_id))
    return sa.select(*columns).where(ListingRow.marketplace == sa.bindparam("marketplace", type_=sa.String()),
                                     any_of(dialect, ListingRow.external_id, "ids"))


@functools.cache
def _matches_select(dialect: str) -> sa.Select[Any]:
    """The (search, listing) matches stored among the pairs bound (`keyed`)."""
    keys = (SearchMatchRow.search_id, SearchMatchRow.listing_id)
    return select_by_keys(dialect, keys, keys)


@functools.cache
def _searches_lock(dialect: str) -> sa.Select[Any]:
    """The baseline and last outcomes of the searches bound as `ids` (`listed`), read for update."""
    return (sa.select(SearchRow.id, SearchRow.baselined, SearchRow.last_outcomes)
            .where(any_of(dialect, SearchRow.id, "ids")).with_for_update())


@functools.cache
def _seen_update(dialect: str) -> Any:
    """The listings bound as `ids` (`listed`) seen at `now`."""
    table = ListingRow.__table__
    return sa.update(table).where(any_of(dialect, table.c.id, "ids")).values(
        last_seen_at=sa.bindparam("now", type_=table.c.last_seen_at.type))


class ScanQueries(Queries):
    """The scan part of storage.repo.Repository."""

    async def save_scan(
        self, *, now: datetime, fetches: Sequence[FetchOutcome], runs: Sequence[SearchRun],
        searches: Mapping[int, SavedSearch], baseline_first_scan: bool = True,
        circuits: Mapping[str, Circuit] | None = None, transitions: Sequence[Transition] = (),
        guard: CommitGuard | None = None, circuit_step: CircuitStep | None = None,
    ) -> ScanSaved:
        """Record fetches of a scan in one transaction: listings, price changes, matches, outbox rows, each search's
        last outcome and baseline per marketplace, the runs they finish, task logs, marketplace health, circuits.

        The scanner saves each fetch as soon as it completes (with those done while the save before it was being
        written), never waiting for the rest of its batch. `searches` holds the searches the fetches and runs name;
        `circuits` is keyed as scout.circuit.circuit_key says. `guard` (a worker task's lease check, see
        storage.claims) runs first in the transaction: it may refuse the whole save by raising, and gives the runs
        of the searches the save finishes. `circuit_step` (a worker's) turns each fetch's circuit as stored, read
        under the row's lock, into its next state and the transitions worth telling, in place of `circuits` and
        `transitions` computed before the transaction: workers saving one marketplace at once count every failure.
        Raises StorageError when the database refused the write; then nothing of it is kept.
        """
        try:
            async with self._sessions.begin() as session:
                if guard is not None:
                    runs = [*runs, *await guard(session)]
                listings = {listing.key: listing for fetch in fetches for listing in fetch.listings}
                upserted = await self._upsert_listings(session, list(listings.values()), now)
                await record_words(session, self.dialect, fetches, upserted.ids, now)
                # Searches removed while the scan ran get neither matches nor outcomes nor schedule updates.
                live = await self._lock_searches(session, searches)
                new_matches, queued = await self._record_matches(session, fetches, searches, live, upserted, now,
                                                                 baseline_first_scan)
                await self._update_searches(session, fetches, runs, searches, live, now)
                await self._log_fetches(session, fetches, upserted.new_keys, queued, now)
                if circuit_step is not None:
                    circuits, transitions = await self._step_circuits(session, fetches, circuit_step)
                await self._update_marketplace_health(session, fetches, circuits or {}, now)
                self._log_transitions(session, transitions, now)
        except SQLAlchemyError as err:
            raise StorageError(f"the database refused the results: {describe_database_error(err)}") from err
        return ScanSaved(len(upserted.new_keys), upserted.price_changes, sum(new_matches.values()),
                         sum(queued.values()))

    async def _upsert_listings(self, session: AsyncSession, listings: list[Listing], now: datetime) -> _Upserted:
        """Store the listings not seen before, mark the rest seen and record the prices that changed, in a fixed
        number of statements however many listings there are."""
        known = await self._load_known(session, [listing.key for listing in listings])
        ids = {key: row.id for key, row in known.items()}
        fresh = [listing for listing in listings if listing.key not in known]
        if fresh:
            ids.update(await self._insert_listings(session, fresh, now))
        new_keys = {listing.key for listing in fresh}
        history: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        changes: list[PriceChange] = []
        for listing in listings:
            price = listing.price.amount if listing.price else None
            currency = listing.price.currency if listing.price else None
            if listing.key in new_keys:
                if price is not None:
                    history.append({"listing_id": ids[listing.key], "price": price, "currency": currency,
                                    "observed_at": now})
                continue
            old = known[listing.key]
            if price is not None and (old.price is None or old.price != price or old.currency != currency):
                history.append({"listing_id": ids[listing.key], "price": price, "currency": currency,
                                "observed_at": now})
                changed.append({"row_id": ids[listing.key], "price": price, "currency": currency,
                                "price_text": listing.price_text, "shipping": shipping_amount(listing),
                                "last_seen_at": now})
                if old.price is not None and old.currency == currency and currency is not None:
                    changes.append(PriceChange(old.id, old.price, price, currency))
        if changed:
            table = ListingRow.__table__
            await session.execute(sa.update(table).where(table.c.id == sa.bindparam("row_id")), changed)
        repriced = {row["row_id"] for row in changed}
        seen = [row.id for row in known.values() if row.id not in repriced]
        if seen:
            await session.execute(_seen_update(self.dialect), {"ids": listed(self.dialect, seen), "now": now})
        if history:
            await self._insert_rows(session, PriceHistoryRow.__table__, history)
        returned = {row.id: row.last_seen_at for row in known.values()
                    if row.last_seen_at is not None and row.last_seen_at < now - RELIST_AFTER}
        return _Upserted(ids, new_keys, len(changed), changes, returned, fresh)

    async def _load_known(self, session: AsyncSession, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Known]:
        """The stored listings among `keys`: (marketplace, external id) -> (id, price, currency), an index lookup per
        key. PostgreSQL: the keys joined to the table (`= ANY` on the index's second column would be a filter in a
        generic plan, over every listing of the marketplace), planned for the table as it is now. SQLite: per
        marketplace, `marketplace = ? AND external_id` among one JSON array."""
        if not keys:
            return {}
        statement = _known_select(self.dialect)
        if self.dialect == POSTGRESQL:
            lookups = [keyed(self.dialect, keys)]
        else:
            by_marketplace: dict[str, list[str]] = {}
            for marketplace, external_id in keys:
                by_marketplace.setdefault(marketplace, []).append(external_id)
            lookups = [{"marketplace": marketplace, "ids": listed(self.dialect, ids)}
                       for marketplace, ids in by_marketplace.items()]
        known: dict[tuple[str, str], Known] = {}
        async with planned_for_now(session) if self.dialect == POSTGRESQL else contextlib.nullcontext():
            for params in lookups:
                for row_id, marketplace, external_id, price, currency, last_seen in await session.execute(statement,
                                                                                                          params):
                    known[(marketplace, external_id)] = Known(row_id, price, currency, last_seen)
        return known

    async def _insert_listings(
        self, session: AsyncSession, fresh: list[Listing], now: datetime
    ) -> dict[tuple[str, str], int]:
        """Insert listings not stored yet (idempotent on the unique key) in one statement; returns their ids."""
        values = [listing_values(listing, now) for listing in fresh]
        inserted = await session.execute(_listings_insert(self.dialect, tuple(values[0])),
                                         json_rows(self.dialect, ListingRow.__table__, values))
        ids = {(marketplace, external_id): row_id for row_id, marketplace, external_id in inserted}
        # Those another writer stored in the meantime (PostgreSQL; SQLite lets one writer in at a time).
        missing = [listing.key for listing in fresh if listing.key not in ids]
        if missing:
            ids.update({key: row.id for key, row in (await self._load_known(session, missing)).items()})
        return ids

    async def _lock_searches(
        self, session: AsyncSession, searches: Mapping[int, SavedSearch]
    ) -> dict[int, _SearchState]:
        """The baseline and last outcomes of the searches still there, read for update."""
        live: dict[int, _SearchState] = {}
        if not searches:
            return live
        rows = await session.execute(_searches_lock(self.dialect), {"ids": listed(self.dialect, list(searches))})
        for search_id, baselined, outcomes in rows:
            live[search_id] = _SearchState(set(text_list(baselined)), dict(outcomes or {}))
        return live

    async def _record_matches(
        self, session: AsyncSession, fetches: Sequence[FetchOutcome], searches: Mapping[int, SavedSearch],
        live: Mapping[int, _SearchState], upserted: _Upserted, now: datetime, baseline_first_scan: bool,
    ) -> tuple[dict[int, int], dict[int, int]]:
        """Insert the new (search, listing) matches and the alerts they give: one per new match past the baseline
        (scored, and left out where the search wants better deals or is snoozed), one per relisted listing a search
        had matched, and one per price drop to each destination that heard of the listing."""
        ids = upserted.ids
        wanted: dict[tuple[int, int], tuple[int, Listing]] = {}  # (search, listing) -> (fetch index, listing)
        where: dict[int, tuple[int, Listing]] = {}  # listing id -> (the first fetch with it, the listing)
        for index, fetch in enumerate(fetches):
            for listing in fetch.listings:
                where.setdefault(ids[listing.key], (index, listing))
            for search_id, matched in fetch.matches.items():
                if search_id in live:
                    for listing in matched:
                        wanted.setdefault((search_id, ids[listing.key]), (index, listing))
        already: set[tuple[int, int]] = set()
        if wanted:
            rows = await session.execute(_matches_select(self.dialect), keyed(self.dialect, list(wanted)))
            already.update((s, lst) for s, lst in rows)
        new_matches: dict[int, int] = {}
        match_rows: list[dict[str, Any]] = []
        candidates: list[tuple[int, int, int, Listing, AlertKind]] = []  # search, listing, fetch index, kind
        for (search_id, listing_id), (index, listing) in wanted.items():
            if (search_id, listing_id) in already:
                if _came_back(upserted, listing_id, searches[search_id]):
                    candidates.append((search_id, listing_id, index, listing, AlertKind.RELIST))
                continue
            baseline = baseline_first_scan and listing.marketplace not in live[search_id].baselined
            match_rows.append({"search_id": search_id, "listing_id": listing_id, "matched_at": now,
                               "baseline": baseline})
            new_matches[index] = new_matches.get(index, 0) + 1
            if not baseline:
                candidates.append((search_id, listing_id, index, listing, AlertKind.NEW))
        if match_rows:
            await self._insert_rows(session, SearchMatchRow.__table__, match_rows, skip_conflicts=True)
        outbox_rows = await self._plan_alerts(session, candidates, searches, upserted, where, now)
        queued: dict[int, int] = {}
        if outbox_rows:
            indexes = [row.pop("_index") for row in outbox_rows]  # the rows are this save's own
            inserted = await self._queue_alerts(session, outbox_rows)
            for row, index in zip(outbox_rows, indexes, strict=True):
                if (row["listing_id"], row["platform"], row["target"], row["occasion"]) in inserted:
                    queued[index] = queued.get(index, 0) + 1
        return new_matches, queued

    async def _plan_alerts(
        self, session: AsyncSession, candidates: list[tuple[int, int, int, Listing, AlertKind]],
        searches: Mapping[int, SavedSearch], upserted: _Upserted, where: Mapping[int, tuple[int, Listing]],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The outbox rows of a save's new matches, relists and price drops, each with its deal facts: the
        comparables of every fetch group among them are read once, one query per group."""
        falling = [change for change in upserted.changes if change.new < change.old]
        drops = drops_worth_telling(falling, await announced_to(session, self.dialect,
                                                                {change.listing_id for change in falling}), now)
        if not candidates and not drops:
            return []
        fresh = {listing.key for listing in upserted.fresh}
        moved = await predecessors(session, self.dialect, list({
            listing.key: listing for _, _, _, listing, kind in candidates
            if kind is AlertKind.NEW and listing.key in fresh}.values()), now)
        words = {search_id: comparable_words(searches[search_id].query) for search_id in {c[0] for c in candidates}}
        keys = {(words[search_id], listing.marketplace) for search_id, _, _, listing, _ in candidates}
        keys.update((comparable_words(heard.query), where[heard.listing_id][1].marketplace) for heard, _ in drops)
        judge = await load_judge(session, keys, now, self.deal_policy)
        told = {lid for _, lid, _, _, kind in candidates if kind is AlertKind.RELIST}
        told.update(change.listing_id for _, change in drops)
        currencies = {lid: where[lid][1].price.currency for lid in told if where[lid][1].price is not None}
        trends = await price_trends(session, self.dialect, currencies)
        rows: dict[tuple[str, str, int, str], dict[str, Any]] = {}
        occasions = {kind: occasion(kind, now) for kind in AlertKind}

        def add(platform: str, target: str, listing_id: int, search_id: int, index: int, kind: AlertKind,
                told_as: AlertKind, facts: DealFacts) -> None:
            """Queue one alert: `kind` names its occasion (news, a return, a drop), `told_as` how it reads."""
            happening = occasions[kind]
            rows.setdefault((platform, target, listing_id, happening), {
                "platform": platform, "target": target, "listing_id": listing_id, "search_id": search_id,
                "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
                "occasion": happening, "detail": facts_value(told_as, facts), "_index": index,
            })

        # A listing back on sale for less is one alert to a destination, the relist with the price before, not two.
        cheaper = {(heard.platform, heard.target, change.listing_id): change for heard, change in drops}
        for number, (search_id, listing_id, index, listing, kind) in enumerate(candidates, 1):
            if number % JUDGED_PER_TURN == 0:
                await asyncio.sleep(0)  # a save of many fetches judges thousands: let the event loop turn meanwhile
            search = searches[search_id]
            if search.snoozed_until is not None and search.snoozed_until > now:
                continue
            destination = search.destination
            if (destination.platform, destination.target, listing_id, occasions[kind]) in rows:
                continue  # another search already tells this chat of it
            facts, judged = judge.facts(listing_id, listing, words[search_id], search.spec.exclude)
            if not passes(judged, search.spec.min_deal):
                continue
            # A new match is news of this listing to the chat (occasion ''), told as a relist where the item was
            # off the market (under this id, or under another by the same seller); a listing the search had
            # matched that comes back is a relist, told once for its return.
            told_as = kind
            if listing.key in moved:
                first_seen, old_price = moved[listing.key]
                facts = replace(facts, first_seen_at=first_seen, old_price=old_price)
                told_as = AlertKind.RELIST
            elif _came_back(upserted, listing_id, search):
                told_as = AlertKind.RELIST
            if told_as is AlertKind.RELIST:
                facts = replace(facts, trend=trends.get(listing_id) or facts.trend)
                change = cheaper.pop((search.destination.platform, search.destination.target, listing_id), None)
                if change is not None and facts.old_price is None:
                    facts = replace(facts, old_price=Money(change.old, change.currency))
            add(destination.platform, destination.target, listing_id, search_id, index, kind, told_as, facts)
        for heard, change in drops:
            if (heard.platform, heard.target, change.listing_id) not in cheaper:
                continue  # told with its relist
            index, listing = where[change.listing_id]
            facts, _ = judge.facts(change.listing_id, listing, comparable_words(heard.query), heard.exclude)
            facts = replace(facts, old_price=Money(change.old, change.currency),
                            trend=trends.get(change.listing_id) or facts.trend)
            add(heard.platform, heard.target, change.listing_id, heard.search_id, index, AlertKind.DROP,
                AlertKind.DROP, facts)
        listings = {listing_id: listing for listing_id, (_, listing) in where.items()}
        return await fold_cross_listings(session, self.dialect, list(rows.values()), listings, now)

    async def _queue_alerts(self, session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[int, str, str, str]]:
        """Insert outbox rows, one per destination, listing and occasion at most, in one statement; returns the
        (listing id, platform, target, occasion) of those inserted (the others were queued before)."""
        inserted = await session.execute(_outbox_insert(self.dialect, tuple(rows[0])),
                                         json_rows(self.dialect, OutboxRow.__table__, rows))
        return set(inserted.all())

    async def _update_searches(
        self, session: AsyncSession, fetches: Sequence[FetchOutcome], runs: Sequence[SearchRun],
        searches: Mapping[int, SavedSearch], live: Mapping[int, _SearchState], now: datetime,
    ) -> None:
        """Each search's last outcome on the fetches' marketplaces and its baseline, a pause where its address was
        refused, and the schedule of the searches whose runs end here: one row of values per search."""
        rows: dict[int, dict[str, Any]] = {}
        for fetch in fetches:
            outcome = outcome_value(MarketplaceOutcome(fetch.status, now, fetch.error, len(fetch.listings)))
            for search_id in fetch.matches:
                state = live.get(search_id)
                if state is None:
                    continue
                state.outcomes[fetch.marketplace] = outcome
                if fetch.ok:
                    state.baselined.add(fetch.marketplace)
                row = rows.setdefault(search_id, {"id": search_id})
                row.update(baselined=sorted(state.baselined), last_outcomes=state.outcomes)
                if fetch.refused:
                    reason = (fetch.error or "its address was refused")[:PAUSED_REASON_LENGTH]
                    row.update(status=SearchStatus.PAUSED.value, paused_reason=reason, updated_at=now)
        for run in runs:
            if run.search_id in live:
                succeeded = run.succeeded and not run.failed
                rows.setdefault(run.search_id, {"id": run.search_id}).update(
                    next_run_at=run.next_run_at, last_run_at=now, lease_until=None,
                    last_success_at=now if succeeded else searches[run.search_id].last_success_at,
                )
        if rows:
            # Bulk UPDATE by primary key: SQLAlchemy runs one statement per set of columns, for all its rows.
            await session.execute(sa.update(SearchRow), list(rows.values()))

    async def _log_fetches(
        self, session: AsyncSession, fetches: Sequence[FetchOutcome], new_keys: set[tuple[str, str]],
        queued: dict[int, int], now: datetime,
    ) -> None:
        rows = [
            {
                "task_name": SCAN_TASK_NAME, "marketplace": fetch.marketplace, "status": fetch.status,
                "error": fetch.error, "query": fetch.query[:200], "duration_ms": fetch.duration_ms,
                "searches": len(fetch.matches), "listings_found": len(fetch.listings),
                "new_listings": sum(1 for listing in fetch.listings if listing.key in new_keys),
                "alerts_queued": queued.get(index, 0), "created_at": now,
            }
            for index, fetch in enumerate(fetches)
        ]
        if rows:
            await self._insert_rows(session, TaskLogRow.__table__, rows)

    async def _update_marketplace_health(
        self, session: AsyncSession, fetches: Sequence[FetchOutcome], circuits: Mapping[str, Circuit], now: datetime
    ) -> None:
        """Each fetch's outcome on its marketplace's row and, for a circuit kept per host, on that host's row too;
        failures in a row and the circuit belong to the circuit's row only. A refused fetch counts nowhere.

        Each row is read (and locked) once, in key order, and written once when the transaction ends, however many
        of the save's fetches it counts: two saves lock the rows they share in the same order."""
        counted = [fetch for fetch in fetches if not fetch.refused]
        keys = {key for fetch in counted for key in (fetch.marketplace, fetch.circuit_key)} | set(circuits)
        rows = {key: await marketplace_row(session, key) for key in sorted(keys)}
        for fetch in counted:
            for key in dict.fromkeys((fetch.marketplace, fetch.circuit_key)):
                row = rows[key]
                row.last_status = fetch.status
                if fetch.status in FAILING_STATUSES:
                    row.total_failures += 1
                    row.total_blocked += fetch.status == "blocked"
                    row.last_failure_at = now
                    row.last_error = (fetch.error or fetch.status)[:1000]
                else:
                    row.total_successes += 1
                    row.last_success_at = now
                if key == fetch.circuit_key:
                    row.consecutive_failures = row.consecutive_failures + 1 if not fetch.ok else 0
        for key, circuit in circuits.items():
            row = rows[key]
            row.consecutive_failures = circuit.failures
            row.circuit_state = circuit.state.value
            row.circuit_openings = circuit.openings
            row.circuit_open_until = circuit.open_until

    @staticmethod
    async def _step_circuits(session: AsyncSession, fetches: Sequence[FetchOutcome],
                             step: CircuitStep) -> tuple[dict[str, Circuit], list[Transition]]:
        circuits: dict[str, Circuit] = {}
        transitions: list[Transition] = []
        for fetch in fetches:
            if fetch.refused or fetch.circuit_key in circuits:
                continue
            row = await marketplace_row(session, fetch.circuit_key)
            stored = Circuit(CircuitState(row.circuit_state), row.consecutive_failures, row.circuit_openings,
                             row.circuit_open_until)
            circuits[fetch.circuit_key], changes = step(fetch, stored)
            transitions += changes
        return circuits, transitions

    @staticmethod
    def _log_transitions(session: AsyncSession, transitions: Sequence[Transition], now: datetime) -> None:
        # The circuit's history sits beside the fetches; its task name carries 'scrape', which the runbook's
        # section 5 error-pattern query selects on.
        for change in transitions:
            failing = change.after is CircuitState.OPEN
            what = f"circuit {change.before.value} -> {change.after.value}"
            session.add(TaskLogRow(
                task_name=CIRCUIT_TASK_NAME, marketplace=change.marketplace,
                status="failed" if failing else "success", error=change.reason[:1000] if failing else None,
                query=(f"{what} for {change.host}" if change.host else what)[:200], searches=0, listings_found=0,
                new_listings=0, alerts_queued=0, created_at=now,
            ))
