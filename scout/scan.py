"""One pass over the due searches: shared fetches, in-memory filters, and one transaction that records it all."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from datetime import datetime, timedelta

from scout.matching import build_matcher, fold
from scout.circuit import Circuit, CircuitPolicy, CircuitState, Transition, admit, record
from scout.errors import InputError
from scout.models import FetchOutcome, MarketplaceState, SavedSearch, ScanSaved, SearchRun
from scrapers.base import Adapter, Fetcher, ScrapeResult, ScrapeStatus, SearchQuery, normalise_query
from storage.repo import Repository

log = logging.getLogger(__name__)

FetchKey = tuple[str, SearchQuery]


@dataclass(frozen=True, slots=True)
class ScanReport:
    searches: int = 0
    fetches: int = 0
    new_listings: int = 0
    alerts_queued: int = 0
    failed_fetches: int = 0

    def __add__(self, other: ScanReport) -> ScanReport:
        return ScanReport(
            self.searches + other.searches, self.fetches + other.fetches, self.new_listings + other.new_listings,
            self.alerts_queued + other.alerts_queued, self.failed_fetches + other.failed_fetches,
        )


def next_run(now: datetime, interval_minutes: int, jitter: float, rand: float) -> datetime:
    """When a search runs next: its interval, stretched by up to `jitter` of it so searches spread out."""
    return now + timedelta(minutes=interval_minutes * (1 + jitter * rand))


def task_status(result: ScrapeResult) -> tuple[str, str | None]:
    """The task_logs status and error of a result; a broken page is a failure the runbook's queries must see."""
    if result.status is ScrapeStatus.BROKEN:
        return "failed", f"layout changed: {result.detail}"
    return result.status.value, result.detail or None


class ScanObserver(Protocol):
    """Told about every fetch once its outcome is saved (metrics)."""

    def fetch_done(self, fetch: FetchOutcome) -> None: ...


class Scanner:
    """Claims due searches, fetches each distinct (marketplace, query) once, and saves the outcome."""

    def __init__(
        self,
        repo: Repository,
        adapters: Mapping[str, Adapter],
        fetcher: Fetcher,
        *,
        clock: Callable[[], datetime],
        batch_size: int = 500,
        concurrency: int = 8,
        lease_seconds: float = 300.0,
        jitter: float = 0.1,
        baseline_first_scan: bool = True,
        on_alerts_queued: Callable[[], Awaitable[None] | None] | None = None,
        circuit_policy: CircuitPolicy | None = None,
        on_circuit_change: Callable[[list[Transition]], Awaitable[None]] | None = None,
        observer: ScanObserver | None = None,
    ) -> None:
        self._repo = repo
        self._adapters = dict(adapters)
        self._fetcher = fetcher
        self._clock = clock
        self._batch = batch_size
        self._limit = asyncio.Semaphore(concurrency)
        self._lease = timedelta(seconds=lease_seconds)
        self._jitter = jitter
        self._baseline = baseline_first_scan
        self._on_alerts_queued = on_alerts_queued
        self._circuit_policy = circuit_policy or CircuitPolicy()
        self._on_circuit_change = on_circuit_change
        self._observer = observer
        self.last_tick_at: datetime | None = None

    async def run_until_idle(self, *, max_batches: int = 100) -> ScanReport:
        """Scan batches of due searches until none is due."""
        total = ScanReport()
        self.last_tick_at = self._clock()
        for _ in range(max_batches):
            report = await self.run_once()
            if not report.searches:
                break
            total += report
        return total

    async def run_once(self) -> ScanReport:
        now = self._clock()
        states = await self._repo.load_marketplace_states()
        searches = await self._repo.claim_due_searches(now=now, lease_until=now + self._lease, limit=self._batch)
        if not searches:
            return ScanReport()
        try:
            groups = self.group(searches, paused={key for key, state in states.items() if state.paused})
            circuits, groups = self._admit(groups, states, now)
            keys = list(groups)
            results = await asyncio.gather(*(self._fetch(key) for key in keys))
        except BaseException:
            await self._repo.release_searches([s.id for s in searches])
            raise
        fetches = []
        for key, (result, ms) in zip(keys, results, strict=True):
            fetches.append(self._outcome(key, groups[key], result, ms))
            await asyncio.sleep(0)  # matching is CPU work: let the loop breathe between fetches
        runs = self._runs(searches, fetches, now)
        circuits, transitions = self._record_circuits(circuits, states, fetches)
        saved = await self._repo.save_scan(
            now=self._clock(), fetches=fetches, runs=runs, searches={s.id: s for s in searches},
            baseline_first_scan=self._baseline, circuits=circuits, transitions=transitions,
        )
        if self._observer is not None:
            for fetch in fetches:
                self._observer.fetch_done(fetch)
        if transitions and self._on_circuit_change is not None:
            await self._on_circuit_change(transitions)
        failed = sum(1 for f in fetches if f.status not in ("success", "empty"))
        log.info("scanned %d searches with %d fetches: %d new listings, %d alerts queued, %d fetches failed",
                 len(searches), len(fetches), saved.new_listings, saved.alerts_queued, failed)
        if saved.alerts_queued and self._on_alerts_queued is not None:
            maybe = self._on_alerts_queued()
            if maybe is not None:
                await maybe
        return self._report(searches, fetches, saved, failed)

    def group(self, searches: list[SavedSearch], paused: set[str]) -> dict[FetchKey, list[SavedSearch]]:
        """Searches that ask a marketplace the same thing share one fetch; paused or unknown marketplaces are skipped."""
        groups: dict[FetchKey, list[SavedSearch]] = {}
        # Two searches share a fetch when their adapter would send the same request: the same words on eBay, or
        # the same feed for any words (a feed's items are filtered by each search's own words afterwards).
        by_request: dict[tuple[object, ...], FetchKey] = {}
        for search in searches:
            for key in search.marketplaces:
                adapter = self._adapters.get(key)
                if adapter is None or key in paused:
                    continue
                location = search.spec.location if adapter.capabilities.location else None
                radius = search.spec.radius_km if location else None
                query = SearchQuery.build(search.query, location, radius)
                try:
                    request = adapter.build_request(query)
                except InputError as err:
                    log.warning("search %s cannot be asked of %s: %s", search.id, key, err)
                    continue
                identity = (key, request.method, request.url, request.params, request.data, request.json)
                fetch_key = by_request.setdefault(identity, (key, query))
                groups.setdefault(fetch_key, []).append(search)
        return groups

    def _admit(
        self, groups: dict[FetchKey, list[SavedSearch]], states: Mapping[str, MarketplaceState], now: datetime
    ) -> tuple[dict[str, Circuit], dict[FetchKey, list[SavedSearch]]]:
        """Drop the fetches an open circuit forbids; a half-open circuit lets its marketplace's first fetch probe."""
        circuits: dict[str, Circuit] = {}
        admitted: dict[FetchKey, list[SavedSearch]] = {}
        left: dict[str, int | None] = {}
        for key, members in groups.items():
            marketplace = key[0]
            if marketplace not in left:
                state = states.get(marketplace)
                allowed, circuits[marketplace] = admit(state.circuit if state else Circuit(), now)
                left[marketplace] = allowed
            allowed = left[marketplace]
            if allowed is None:
                admitted[key] = members
            elif allowed > 0:
                left[marketplace] = allowed - 1
                admitted[key] = members
        return circuits, admitted

    def _record_circuits(
        self, circuits: dict[str, Circuit], states: Mapping[str, MarketplaceState], fetches: list[FetchOutcome]
    ) -> tuple[dict[str, Circuit], list[Transition]]:
        now = self._clock()
        after = dict(circuits)
        last_error: dict[str, str] = {}
        for fetch in fetches:
            ok = fetch.status in ("success", "empty")
            after[fetch.marketplace] = record(after[fetch.marketplace], ok=ok, now=now, policy=self._circuit_policy)
            if not ok:
                last_error[fetch.marketplace] = fetch.error or fetch.status
        transitions = []
        for marketplace, circuit in after.items():
            state = states.get(marketplace)
            before = state.circuit.state if state else CircuitState.CLOSED
            if circuit.state is not before and circuit.state is not CircuitState.HALF_OPEN:
                if circuit.state is CircuitState.OPEN:
                    wait = int((circuit.open_until - now).total_seconds() // 60) if circuit.open_until else 0
                    reason = (f"circuit open for {wait} min after {circuit.failures} failed fetches: "
                              f"{last_error.get(marketplace, 'failed')}")
                else:
                    reason = "circuit closed: a fetch succeeded"
                transitions.append(Transition(marketplace, before, circuit.state, circuit, reason))
        return after, transitions

    async def _fetch(self, key: FetchKey) -> tuple[ScrapeResult, int]:
        marketplace, query = key
        started = time.perf_counter()
        async with self._limit:
            try:
                result = await self._adapters[marketplace].search(query, self._fetcher)
            except Exception as err:  # noqa: BLE001 - an adapter bug must fail this fetch, not the scan
                log.exception("adapter %s raised on %r", marketplace, query.text)
                result = ScrapeResult.failed(f"{type(err).__name__}: {err}")
        return result, int((time.perf_counter() - started) * 1000)

    def _outcome(self, key: FetchKey, searches: list[SavedSearch], result: ScrapeResult, ms: int) -> FetchOutcome:
        marketplace, query = key
        status, error = task_status(result)
        folded = [(fold(listing.title), listing) for listing in result.listings]
        matches = {}
        for search in searches:
            matcher = build_matcher(search.spec)
            matches[search.id] = tuple(listing for title, listing in folded if matcher.matches_folded(title, listing))
        return FetchOutcome(marketplace, query.text, status, ms, result.listings, error, matches)

    def _runs(self, searches: list[SavedSearch], fetches: list[FetchOutcome], now: datetime) -> list[SearchRun]:
        ok: dict[int, set[str]] = {}
        bad: dict[int, set[str]] = {}
        for fetch in fetches:
            bucket = ok if fetch.status in ("success", "empty") else bad
            for search_id in fetch.matches:
                bucket.setdefault(search_id, set()).add(fetch.marketplace)
        return [
            SearchRun(
                search.id,
                next_run(now, search.spec.check_interval_minutes, self._jitter, self._spread(search)),
                frozenset(ok.get(search.id, ())),
                frozenset(bad.get(search.id, ())),
            )
            for search in searches
        ]

    def _spread(self, search: SavedSearch) -> float:
        """The search's place within the jitter window: the same for every search asking the same thing, so
        searches that shared a fetch stay due together and keep sharing it; different questions spread out."""
        key = f"{normalise_query(search.query)}|{search.spec.location or ''}|{search.spec.check_interval_minutes}"
        return zlib.crc32(key.encode()) / 2**32

    @staticmethod
    def _report(searches: list[SavedSearch], fetches: list[FetchOutcome], saved: ScanSaved, failed: int) -> ScanReport:
        return ScanReport(len(searches), len(fetches), saved.new_listings, saved.alerts_queued, failed)
