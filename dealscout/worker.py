"""What one `run_search_task` does in a worker process: fetch one claimed fetch group and commit its listings,
price history, matches, outbox rows and task log in one transaction, only while its lease holds."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram

from dealscout.app import build_fetcher, open_store
from dealscout.leader import lease_margin
from dealscout.parts import configured_platforms, utc_now
from ops.reporter import OpsOutbox, OpsReporter, ops_destinations
from scout.circuit import Circuit, CircuitPolicy, Transition, record
from scout.config import Settings
from scout.errors import InputError, StorageError
from scout.models import FetchOutcome
from scout.scan import Scanner, next_run
from scrapers.base import Adapter, ScrapeResult, SearchQuery
from scrapers.http import HttpFetcher
from scrapers.registry import build_adapters
from scrapers.shared_budget import BudgetDenied, SharedBudgetError
from storage import db
from storage.claims import ScanTasks, TaskVoid
from storage.repo import Repository

log = logging.getLogger(__name__)

TASK_NAME = "run_search_task"
# When Redis cannot say whether a request fits its budget, the task is tried again this much later.
BUDGET_UNKNOWN_RETRY_SECONDS = 5.0
# When the database refuses a task's results, the task is tried again this much later.
STORAGE_RETRY_SECONDS = 5.0


class TaskMetrics:
    """The worker's own metrics: tasks by outcome and their duration (the leader exports the queue's)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.runs = Counter("dealscout_task_runs", "Tasks run by workers, by outcome", ["task", "status"],
                            registry=self.registry)
        self.duration = Histogram("dealscout_task_duration_seconds", "Time of one task, fetch and commit",
                                  ["task"], registry=self.registry)


def metrics_for_process() -> TaskMetrics:
    """This process's task metrics; under `dealscout worker` they are written for the worker's shared endpoint."""
    return TaskMetrics()


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    status: str  # done, deferred, duplicate (committed before), void (its searches are no longer its own)
    new_listings: int = 0
    alerts_queued: int = 0


class TaskRunner:
    """Runs tasks one after another on the worker process's event loop, with that process's database engine,
    HTTP session and adapters."""

    def __init__(self, settings: Settings, repo: Repository, tasks: ScanTasks, adapters: Mapping[str, Adapter],
                 fetcher: HttpFetcher, *, clock: Callable[[], datetime] = utc_now,
                 metrics: TaskMetrics | None = None,
                 on_circuit_change: Callable[[list[Transition]], Awaitable[None]] | None = None) -> None:
        self._settings = settings
        self._on_circuit_change = on_circuit_change
        self._repo = repo
        self._tasks = tasks
        self._clock = clock
        self._metrics = metrics
        self._policy = CircuitPolicy(
            failure_threshold=settings.circuit_failure_threshold,
            base_wait=timedelta(seconds=settings.circuit_base_wait_seconds),
            max_wait=timedelta(seconds=settings.circuit_max_wait_seconds))
        self._scanner = Scanner(repo, adapters, fetcher, clock=clock, lease_seconds=settings.scan_lease_seconds,
                                jitter=settings.schedule_jitter, baseline_first_scan=settings.baseline_first_scan,
                                circuit_policy=self._policy)
        self._margin = lease_margin(settings.scan_lease_seconds)

    async def run(self, token: str, *, redelivered: bool = False) -> TaskOutcome:
        """Run the task `token` names; `redelivered`: the broker gave its message again (its worker died)."""
        started = time.perf_counter()
        outcome = await self._run(token, redelivered)
        if self._metrics is not None:
            self._metrics.runs.labels(TASK_NAME, outcome.status).inc()
            self._metrics.duration.labels(TASK_NAME).observe(time.perf_counter() - started)
        return outcome

    async def _run(self, token: str, redelivered: bool) -> TaskOutcome:
        task = await self._tasks.load(token)
        if task is None:
            log.info("task %s: already committed or expired; nothing to do", token)
            return TaskOutcome("duplicate")
        now = self._clock()
        if not await self._tasks.start(token, now=now, stale_before=now - self._margin, redelivered=redelivered):
            log.info("task %s: another worker runs it now; this copy is dropped", token)
            return TaskOutcome("duplicate")
        members = await self._tasks.live_members(task, hold_until=now + self._margin)
        if not members:
            # Its searches' leases end too soon (or passed to a newer claim): the leader claims them again.
            await self._tasks.discard(token)
            return TaskOutcome("void")
        query = SearchQuery(task.query, task.location, task.radius_km)
        key = (task.marketplace, query)
        started = time.perf_counter()
        refused = False
        try:
            result = await self._scanner.fetch(task.marketplace, query)
        except SharedBudgetError as err:
            # Spent (BudgetDenied says for how long) or unknowable (Redis is down): the task is put off, never
            # fetched over budget, and its worker is free for another task meanwhile.
            wait = max(err.retry_after, 0.1) if isinstance(err, BudgetDenied) else BUDGET_UNKNOWN_RETRY_SECONDS
            due = now + timedelta(seconds=wait)
            await self._tasks.defer(task, due_at=due, lease_until=due + timedelta(
                seconds=self._settings.scan_lease_seconds), circuit=self._scanner.circuit_of(key))
            log.info("task %s put off %.1f s: %s", token, wait, err)
            return TaskOutcome("deferred")
        except InputError as err:
            result, refused = ScrapeResult.blocked(str(err)), True
        except Exception as err:  # noqa: BLE001 - an adapter bug fails this fetch, not the worker
            log.exception("adapter %s raised on %r", task.marketplace, task.query)
            result = ScrapeResult.failed(f"{type(err).__name__}: {err}")
        ms = int((time.perf_counter() - started) * 1000)
        fetch = self._scanner.outcome(key, members, result, ms, refused)
        told: list[Transition] = []

        def circuit_step(done: FetchOutcome, stored: Circuit) -> tuple[Circuit, list[Transition]]:
            """Run in the saving transaction, on the circuit as stored under its row's lock."""
            after = record(stored, ok=done.ok, now=self._clock(), policy=self._policy)
            changes = self._scanner.circuit_changes(stored.state, after, done, self._clock())
            told[:] = changes
            return after, changes

        by_id = {search.id: search for search in members}
        spread = self._scanner.spread

        def next_run_of(search_id: int) -> datetime:
            search = by_id.get(search_id)
            interval = search.spec.check_interval_minutes if search else 60
            return next_run(now, interval, self._settings.schedule_jitter, spread(search) if search else 0.5)

        try:
            saved = await self._repo.save_scan(
                now=self._clock(), fetches=[fetch], runs=[], searches=by_id,
                baseline_first_scan=self._settings.baseline_first_scan, circuit_step=circuit_step,
                guard=self._tasks.commit_guard(task, ok=fetch.ok, next_run=next_run_of))
        except TaskVoid:
            log.info("task %s: committed by an earlier delivery; this one's results are dropped", token)
            return TaskOutcome("duplicate")
        except StorageError as err:
            # The database refused the results (a conflict, a full disk): the task is tried again shortly rather
            # than dropped; if even that cannot be written, its searches' leases end and they are claimed again.
            log.error("task %s: the results could not be saved (%s); tried again in %.0f s", token, err,
                      STORAGE_RETRY_SECONDS)
            due = self._clock() + timedelta(seconds=STORAGE_RETRY_SECONDS)
            await self._tasks.defer(task, due_at=due, lease_until=due + timedelta(
                seconds=self._settings.scan_lease_seconds), circuit=self._scanner.circuit_of(key))
            return TaskOutcome("deferred")
        await self._tell(told)
        return TaskOutcome("done", saved.new_listings, saved.alerts_queued)

    async def _tell(self, transitions: list[Transition]) -> None:
        """A marketplace's circuit to the ops channel (through the outbox the leader delivers); one user's feed
        host only to the log, as the scanner does."""
        for change in transitions:
            if change.host is not None:
                log.warning("%s circuit of %s: %s", change.marketplace, change.host, change.reason)
        ops = [change for change in transitions if change.host is None]
        if ops and self._on_circuit_change is not None:
            try:
                await self._on_circuit_change(ops)
            except StorageError as err:  # the fetch is saved; only the announcement is lost, and the log has it
                log.error("could not queue the circuit news %s: %s", [change.reason for change in ops], err)


class WorkerProcess:
    """One worker process's long-lived parts, opened after the fork on the process's own event loop."""

    def __init__(self, settings: Settings, *, resolve: Mapping[str, str] | None = None,
                 metrics: TaskMetrics | None = None) -> None:
        self._settings = settings
        self._resolve = resolve
        self._metrics = metrics
        self._stack = contextlib.AsyncExitStack()
        self.runner: TaskRunner | None = None

    async def open(self) -> TaskRunner:
        store = await self._stack.enter_async_context(open_store(self._settings, migrate=False))
        adapters = build_adapters(self._settings)
        fetcher = build_fetcher(self._settings, adapters, self._resolve, shared=True, budget_mode="deny")
        self._stack.push_async_callback(fetcher.close)
        say = OpsOutbox(store.repo, ops_destinations(self._settings, configured_platforms(self._settings)),
                        clock=utc_now)
        self.runner = TaskRunner(self._settings, store.repo, ScanTasks(db.session_factory(store.engine)), adapters,
                                 fetcher, metrics=self._metrics,
                                 on_circuit_change=OpsReporter(say, clock=utc_now).circuit_changed)
        return self.runner

    async def close(self) -> None:
        await self._stack.aclose()
