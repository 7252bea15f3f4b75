"""One pass over the due searches: shared fetches, in-memory filters, and each fetch saved the moment it completes."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, runtime_checkable

from scout.circuit import Circuit, CircuitPolicy, CircuitState, Transition, admit, circuit_key, record
from scout.deals import comparable_words
from scout.errors import InputError, StorageError
from scout.matching import build_matcher, fold
from scout.models import FetchOutcome, Listing, MarketplaceState, SavedSearch, ScanSaved, SearchRun
from scout.ports import ScanStore
from scrapers.base import Adapter, Fetcher, ScrapeResult, ScrapeStatus, SearchQuery, normalise_query
from scrapers.host_pacer import turn_waits

log = logging.getLogger(__name__)

FetchKey = tuple[str, SearchQuery]
# The share of SCAN_LEASE_SECONDS one fetch may take, retries included: its searches are saved and freed well
# before another scan may take them. Waiting for a host's turn does not count (see _search).
FETCH_SHARE_OF_LEASE = 1 / 3


@dataclass(frozen=True, slots=True)
class ScanReport:
    searches: int = 0
    fetches: int = 0
    new_listings: int = 0
    alerts_queued: int = 0
    failed_fetches: int = 0
    held_searches: int = 0  # searches with a marketplace left out because its circuit is open

    def __add__(self, other: ScanReport) -> ScanReport:
        return ScanReport(
            self.searches + other.searches, self.fetches + other.fetches, self.new_listings + other.new_listings,
            self.alerts_queued + other.alerts_queued, self.failed_fetches + other.failed_fetches,
            self.held_searches + other.held_searches,
        )


@runtime_checkable
class UserHosts(Protocol):
    """An adapter whose hosts are its users' choice (feeds): the scan keeps a circuit per host, so one user's broken
    feed stops nobody else's, and pauses the searches whose address the adapter refuses."""

    def circuit_host(self, query: SearchQuery) -> str:
        """The host a fetch of `query` counts against."""
        ...

    async def check_address(self, query: SearchQuery) -> None:
        """Raise InputError, saying why, when the address `query` names may not be fetched at all."""
        ...


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


class _Deadline:
    """Cancels the fetch it wraps once it has run for `seconds`, not counting the time it waited for its turn
    (a host's request budget, a place among the requests in flight): queueing behind others is not being slow."""

    def __init__(self, seconds: float) -> None:
        self._cap = asyncio.timeout(seconds)
        self._waiting = 0
        self._left = seconds
        self._told: contextvars.Token[object] | None = None

    async def __aenter__(self) -> None:
        await self._cap.__aenter__()
        self._told = turn_waits.set(self._waits)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._told is not None:
            turn_waits.reset(self._told)
            self._told = None
        return await self._cap.__aexit__(exc_type, exc, tb)

    def expired(self) -> bool:
        return self._cap.expired()

    @contextlib.contextmanager
    def _waits(self) -> Iterator[None]:
        self._pause()
        try:
            yield
        finally:
            self._resume()

    def _pause(self) -> None:
        when = self._cap.when()
        if self._waiting == 0 and self._told is not None and when is not None and not self._cap.expired():
            self._left = when - asyncio.get_running_loop().time()
            self._cap.reschedule(None)
        self._waiting += 1

    def _resume(self) -> None:
        self._waiting -= 1
        if self._waiting == 0 and self._told is not None and self._cap.when() is None:
            self._cap.reschedule(asyncio.get_running_loop().time() + self._left)


@dataclass
class ScanBatch:
    """The searches one scan pass claimed, and how far each has got: every fetch is saved as soon as it is done, and
    a search is finished (rescheduled, freed) with the last of its fetches."""

    now: datetime
    searches: dict[int, SavedSearch]
    pending: dict[int, int] = field(default_factory=dict)  # search id -> its fetches not saved yet
    succeeded: dict[int, set[str]] = field(default_factory=dict)  # search id -> marketplaces fetched fine
    failed: dict[int, set[str]] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)
    held: set[int] = field(default_factory=set)  # searches an open circuit left without a marketplace
    circuits: dict[str, Circuit] = field(default_factory=dict)  # circuit key -> its state now
    told: dict[str, CircuitState] = field(default_factory=dict)  # circuit key -> the state last reported
    report: ScanReport = field(default_factory=ScanReport)
    # Fetches done and waiting to be saved, each with the future its task awaits.
    unsaved: list[tuple[FetchOutcome, asyncio.Future[None]]] = field(default_factory=list)

    def expect(self, members: Iterable[SavedSearch]) -> None:
        for search in members:
            self.pending[search.id] = self.pending.get(search.id, 0) + 1

    def completed_by(self, fetch: FetchOutcome) -> list[int]:
        """The searches whose last pending fetch this is."""
        return [search_id for search_id in fetch.matches if self.pending.get(search_id) == 1]

    def unfetched(self) -> list[int]:
        return [search_id for search_id in self.searches if not self.pending.get(search_id)]

    def unfinished(self) -> list[int]:
        return [search_id for search_id in self.searches if search_id not in self.finished]

    def count(self, fetch: FetchOutcome) -> None:
        """Take a fetch as saved."""
        for search_id in fetch.matches:
            (self.succeeded if fetch.ok else self.failed).setdefault(search_id, set()).add(fetch.marketplace)
            self.pending[search_id] -= 1
            if not self.pending[search_id]:
                self.finished.add(search_id)
        self.report += ScanReport(fetches=1, failed_fetches=0 if fetch.ok else 1)

    def trial(self) -> ScanBatch:
        """A copy to count a save in before it is known to be written (see adopt)."""
        return replace(self, pending=dict(self.pending), finished=set(self.finished), circuits=dict(self.circuits),
                       told=dict(self.told), succeeded={key: set(value) for key, value in self.succeeded.items()},
                       failed={key: set(value) for key, value in self.failed.items()})

    def adopt(self, trial: ScanBatch) -> None:
        self.pending, self.finished, self.circuits, self.told = trial.pending, trial.finished, trial.circuits, trial.told
        self.succeeded, self.failed, self.report = trial.succeeded, trial.failed, trial.report


class Scanner:
    """Claims due searches, fetches each distinct (marketplace, query) once, and saves each fetch as it completes.

    A fetch's results, its searches' last outcomes and its circuit are committed, and its alerts handed to
    delivery, the moment that fetch is done: a slow or hanging marketplace delays no other's alerts. A fetch that
    cannot be saved is recorded as failed, with the database's reason, and the others are saved as usual.
    """

    def __init__(
        self,
        repo: ScanStore,
        adapters: Mapping[str, Adapter],
        fetcher: Fetcher,
        *,
        clock: Callable[[], datetime],
        batch_size: int = 500,
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
        self._lease = timedelta(seconds=lease_seconds)
        self._fetch_timeout = lease_seconds * FETCH_SHARE_OF_LEASE
        self._jitter = jitter
        self._baseline = baseline_first_scan
        self._on_alerts_queued = on_alerts_queued
        self._circuit_policy = circuit_policy or CircuitPolicy()
        self._on_circuit_change = on_circuit_change
        self._observer = observer
        # Saves are written one at a time: each merges into its searches' rows what the saves before it wrote.
        self._saving = asyncio.Lock()
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
        batch = ScanBatch(now, {search.id: search for search in searches})
        try:
            groups = self.group(searches, paused={key for key, state in states.items() if state.paused})
            admitted = self._admit(groups, states, batch)
            await self._finish_unfetched(batch)
            await self.run_fetches(batch, admitted)
        except BaseException:
            await self._release(batch)
            raise
        report = replace(batch.report, searches=len(searches), held_searches=len(batch.held))
        log.info("scanned %d searches with %d fetches: %d new listings, %d alerts queued, %d fetches failed, "
                 "%d searches held back by an open circuit", report.searches, report.fetches, report.new_listings,
                 report.alerts_queued, report.failed_fetches, report.held_searches)
        return report

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
        self, groups: dict[FetchKey, list[SavedSearch]], states: Mapping[str, MarketplaceState], batch: ScanBatch
    ) -> dict[FetchKey, list[SavedSearch]]:
        """Drop the fetches an open circuit forbids; a half-open circuit lets its first fetch probe."""
        admitted: dict[FetchKey, list[SavedSearch]] = {}
        left: dict[str, int | None] = {}
        for key, members in groups.items():
            circuit = self.circuit_of(key)
            if circuit not in left:
                state = states.get(circuit)
                stored = state.circuit if state else Circuit()
                left[circuit], batch.circuits[circuit] = admit(stored, batch.now)
                batch.told[circuit] = stored.state
            allowed = left[circuit]
            if allowed == 0:
                batch.held.update(search.id for search in members)
                continue
            if allowed is not None:
                left[circuit] = allowed - 1
            admitted[key] = members
            batch.expect(members)
        return admitted

    def circuit_of(self, key: FetchKey) -> str:
        """The key of the circuit a fetch counts against: its marketplace's, or its feed host's."""
        return circuit_key(key[0], self._circuit_host(key))

    def _circuit_host(self, key: FetchKey) -> str | None:
        marketplace, query = key
        adapter = self._adapters[marketplace]
        return adapter.circuit_host(query) if isinstance(adapter, UserHosts) else None

    async def _finish_unfetched(self, batch: ScanBatch) -> None:
        """Reschedule and free at once the searches with nothing to fetch (paused or held marketplaces)."""
        idle = batch.unfetched()
        if idle:
            await self._repo.save_scan(now=self._clock(), fetches=[], runs=self._runs(batch, idle), searches={
                search_id: batch.searches[search_id] for search_id in idle})
            batch.finished.update(idle)

    async def run_fetches(self, batch: ScanBatch, admitted: dict[FetchKey, list[SavedSearch]]) -> None:
        """Fetch the admitted groups here, each saved as it completes (a leader hands them to workers instead)."""
        tasks = [asyncio.create_task(self._fetch_and_save(batch, key, members)) for key, members in admitted.items()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # One fetch could not even be recorded as failed (the database is gone): stop the others too.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _fetch_and_save(self, batch: ScanBatch, key: FetchKey, members: list[SavedSearch]) -> None:
        marketplace, query = key
        started = time.perf_counter()
        refused = False
        try:
            result = await self.fetch(marketplace, query)
        except InputError as err:  # the searches' own address was refused: theirs to fix, no host's failure
            result, refused = ScrapeResult.blocked(str(err)), True
        except Exception as err:  # an adapter bug must fail this fetch, not the scan
            log.exception("adapter %s raised on %r", marketplace, query.text)
            result = ScrapeResult.failed(f"{type(err).__name__}: {err}")
        ms = int((time.perf_counter() - started) * 1000)
        await self._save(batch, self.outcome(key, members, result, ms, refused))

    async def fetch(self, marketplace: str, query: SearchQuery) -> ScrapeResult:
        """The adapter's search, cut off once it has taken the fetch timeout (see _Deadline). InputError: the
        address the searches gave was refused."""
        adapter = self._adapters[marketplace]
        deadline = _Deadline(self._fetch_timeout)
        try:
            async with deadline:
                if isinstance(adapter, UserHosts):
                    await adapter.check_address(query)
                return await adapter.search(query, self._fetcher)
        except TimeoutError:
            if not deadline.expired():
                raise
            return ScrapeResult.failed(f"no result within {self._fetch_timeout:g} s, retries included")

    def outcome(self, key: FetchKey, searches: list[SavedSearch], result: ScrapeResult, ms: int,
                refused: bool) -> FetchOutcome:
        """A fetch's result as its searches' own filters see it: the matches of each, and its task_logs status."""
        marketplace, query = key
        status, error = task_status(result)
        folded = [(fold(listing.title), listing) for listing in result.listings]
        matches = {}
        carrying: dict[str, tuple[Listing, ...]] = {}
        for search in searches:
            matcher = build_matcher(search.spec)
            matches[search.id] = tuple(listing for title, listing in folded if matcher.matches_folded(title, listing))
            words = comparable_words(search.query)
            if words and words not in carrying:
                carrying[words] = tuple(listing for title, listing in folded if matcher.has_words(title))
        return FetchOutcome(marketplace, query.text, status, ms, result.listings, error, matches,
                            circuit_host=self._circuit_host(key), refused=refused, rows_lost=result.rows_lost,
                            carrying=carrying)

    async def _save(self, batch: ScanBatch, fetch: FetchOutcome) -> None:
        """Return once the fetch is saved. Fetches that complete while another save is being written are saved
        together next, in one transaction: a busy scan commits less often, and a lone fetch at once."""
        saved = asyncio.get_running_loop().create_future()
        batch.unsaved.append((fetch, saved))
        async with self._saving:
            if batch.unsaved:  # else a save that ran while this one waited took this fetch along
                group, batch.unsaved = batch.unsaved, []
                await self._save_group(batch, [done for done, _ in group])
                for _, waiting in group:
                    waiting.set_result(None)
        await saved

    async def _save_group(self, batch: ScanBatch, fetches: list[FetchOutcome]) -> None:
        """Save fetches in one transaction; when the database refuses it, each on its own, and a fetch whose own
        results it refuses as failed, with the database's reason: no fetch's fault costs another its results."""
        try:
            saved, transitions = await self._write(batch, fetches)
        except StorageError as err:
            if len(fetches) > 1:
                for fetch in fetches:
                    await self._save_group(batch, [fetch])
                return
            [fetch] = fetches
            log.error("%s %r: %s; recorded as a failed fetch", fetch.marketplace, fetch.query, err)
            fetches = [replace(fetch, status=ScrapeStatus.FAILED.value, listings=(), error=str(err), refused=False,
                               matches=dict.fromkeys(fetch.matches, ()), carrying={})]
            saved, transitions = await self._write(batch, fetches)
        if self._observer is not None:
            for fetch in fetches:
                self._observer.fetch_done(fetch)
        await self._tell(transitions)
        if saved.alerts_queued and self._on_alerts_queued is not None:
            maybe = self._on_alerts_queued()
            if maybe is not None:
                await maybe

    async def _write(self, batch: ScanBatch, fetches: list[FetchOutcome]) -> tuple[ScanSaved, list[Transition]]:
        """One transaction: the fetches, their circuits after them, and the runs of the searches they finish."""
        now = self._clock()
        trial = batch.trial()
        circuits: dict[str, Circuit] = {}
        transitions: list[Transition] = []
        runs: list[SearchRun] = []
        for fetch in fetches:
            if not fetch.refused:
                key = fetch.circuit_key
                circuit = circuits[key] = record(trial.circuits[key], ok=fetch.ok, now=now,
                                                 policy=self._circuit_policy)
                changes = self.circuit_changes(trial.told[key], circuit, fetch, now)
                trial.circuits[key] = circuit
                trial.told.update((key, change.after) for change in changes)
                transitions += changes
            runs += self._runs(trial, trial.completed_by(fetch), fetch)
            trial.count(fetch)
        saved = await self._repo.save_scan(
            now=now, fetches=fetches, runs=runs, searches={search_id: batch.searches[search_id]
                                                           for fetch in fetches for search_id in fetch.matches},
            baseline_first_scan=self._baseline, circuits=circuits, transitions=transitions,
        )
        trial.report += ScanReport(new_listings=saved.new_listings, alerts_queued=saved.alerts_queued)
        batch.adopt(trial)
        return saved, transitions

    def circuit_changes(self, before: CircuitState, circuit: Circuit, fetch: FetchOutcome,
                        now: datetime) -> list[Transition]:
        """The change worth telling: a circuit that opened, or closed again; probing is no news (a circuit stored
        half-open, a leader's probe out, was open to those told)."""
        if before is CircuitState.HALF_OPEN:
            before = CircuitState.OPEN
        if circuit.state is before or circuit.state is CircuitState.HALF_OPEN:
            return []
        if circuit.state is CircuitState.OPEN:
            wait = int((circuit.open_until - now).total_seconds() // 60) if circuit.open_until else 0
            reason = (f"circuit open for {wait} min after {circuit.failures} failed fetches: "
                      f"{fetch.error or fetch.status}")
        else:
            reason = "circuit closed: a fetch succeeded"
        return [Transition(fetch.marketplace, before, circuit.state, circuit, reason, host=fetch.circuit_host)]

    async def _tell(self, transitions: list[Transition]) -> None:
        """A marketplace's circuit goes to the ops channel; a single host's (one user's feed) only to the log, as
        it stops no one else's searches."""
        for change in transitions:
            if change.host is not None:
                log.warning("%s circuit of %s: %s", change.marketplace, change.host, change.reason)
        ops = [change for change in transitions if change.host is None]
        if ops and self._on_circuit_change is not None:
            await self._on_circuit_change(ops)

    def _runs(self, batch: ScanBatch, search_ids: list[int], fetch: FetchOutcome | None = None) -> list[SearchRun]:
        """How the given searches' scan ends, `fetch` (their last) included."""
        runs = []
        for search_id in search_ids:
            search = batch.searches[search_id]
            succeeded = set(batch.succeeded.get(search_id, ()))
            failed = set(batch.failed.get(search_id, ()))
            if fetch is not None:
                (succeeded if fetch.ok else failed).add(fetch.marketplace)
            runs.append(SearchRun(
                search_id, next_run(batch.now, search.spec.check_interval_minutes, self._jitter, self.spread(search)),
                frozenset(succeeded), frozenset(failed),
            ))
        return runs

    def spread(self, search: SavedSearch) -> float:
        """The search's place within the jitter window: the same for every search asking the same thing, so
        searches that shared a fetch stay due together and keep sharing it; different questions spread out."""
        key = f"{normalise_query(search.query)}|{search.spec.location or ''}|{search.spec.check_interval_minutes}"
        return zlib.crc32(key.encode()) / 2**32

    async def _release(self, batch: ScanBatch) -> None:
        """Free at once the searches of a scan that failed, so the next scan takes them, not one a lease later."""
        try:
            await self._repo.release_searches(batch.unfinished())
        except (StorageError, OSError) as err:
            log.warning("could not free %d searches of a failed scan (%s); they are free again after %d s",
                        len(batch.unfinished()), err, int(self._lease.total_seconds()))
