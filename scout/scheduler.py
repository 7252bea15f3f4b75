"""The one shared APScheduler: a scan job that claims due searches from the database and a delivery job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scout.delivery import STORAGE_ERRORS
from scout.errors import StorageError

log = logging.getLogger(__name__)

SCAN_JOB = "scan"
DELIVERY_JOB = "deliver"
# A job that keeps failing logs when it starts, a reminder at most this often, and when it works again: a database
# outage with a scan every few seconds would otherwise bury the log in tracebacks.
FAILURE_REMINDER_SECONDS = 60.0


@dataclass
class _Failing:
    """A job's run of failures: since when, how many, when it was last logged, and of which kind."""

    kind: str
    since: float
    logged_at: float
    runs: int = 1


def _cause(err: BaseException) -> str:
    if isinstance(err, StorageError) and err.__cause__ is not None:
        err = err.__cause__  # the storage layer's wrapper: the database's own error says what failed
    cause = getattr(err, "orig", None) or err  # SQLAlchemy wraps the driver's error, whose text says what failed
    text = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


class JobFailures:
    """Logs a job's failures so that the log stays readable: one line when they start (a bug's first traceback
    included), a reminder at most every FAILURE_REMINDER_SECONDS, one line when the job works again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failing: dict[str, _Failing] = {}

    def failed(self, job_id: str, err: Exception) -> None:
        now = self._clock()
        outage = isinstance(err, STORAGE_ERRORS)
        kind = "database" if outage else type(err).__name__
        failing = self._failing.get(job_id)
        if failing is None or failing.kind != kind:
            self._failing[job_id] = _Failing(kind, since=now, logged_at=now)
            if outage:
                log.error("job %s: the database is failing (%s); the job runs on schedule, and a reminder is "
                          "logged each minute until it works again", job_id, _cause(err))
            else:
                log.exception("job %s failed", job_id)
            return
        failing.runs += 1
        if now - failing.logged_at >= FAILURE_REMINDER_SECONDS:
            failing.logged_at = now
            log.warning("job %s still failing after %.0f s, %d runs in a row (%s)", job_id, now - failing.since,
                        failing.runs, _cause(err))

    def succeeded(self, job_id: str) -> None:
        failing = self._failing.pop(job_id, None)
        if failing is not None:
            log.info("job %s works again after %.0f s and %d failed runs", job_id, self._clock() - failing.since,
                     failing.runs)


class ScoutScheduler:
    """Runs the scan and delivery jobs; the database's next_run_at, not this scheduler, says what is due."""

    def __init__(self, *, scan_tick_seconds: float, delivery_tick_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # Two instances are allowed so that APScheduler never logs "maximum number of running instances" for a
        # long scan; the guard below turns the second into a no-op, so a job never really runs twice at once.
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 2})
        self._scan_tick = scan_tick_seconds
        self._delivery_tick = delivery_tick_seconds
        self.last_tick_at: dict[str, datetime] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._failures = JobFailures(clock)

    def add_job(self, job_id: str, func: Callable[[], Awaitable[object]], seconds: float, *,
                start_now: bool = True, trigger: str = "interval", **trigger_args: object) -> None:
        """Run `func` every `seconds`; never two runs of one job at once, missed runs coalesce into one."""

        async def guarded() -> None:
            self.last_tick_at[job_id] = datetime.now(UTC)
            task = asyncio.current_task()
            if job_id in self._running or task is None or self._stopping:
                return  # the previous run is still going; it picks up whatever is due now
            self._running[job_id] = task
            try:
                await func()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                log.info("job %s cancelled at shutdown", job_id)
            except Exception as err:  # noqa: BLE001 - the top-level job guard: log, keep the schedule alive
                self._failures.failed(job_id, err)
            else:
                self._failures.succeeded(job_id)
            finally:
                self._running.pop(job_id, None)

        timing: dict[str, object] = dict(trigger_args)
        if trigger == "interval":
            timing["seconds"] = seconds
            if start_now:
                timing["next_run_time"] = datetime.now(UTC)
        self._scheduler.add_job(
            guarded, trigger, id=job_id, name=job_id, replace_existing=True, misfire_grace_time=None, **timing,
        )

    def add_daily(self, job_id: str, func: Callable[[], Awaitable[object]], *, hour: int) -> None:
        """Run `func` once a day at `hour`:00 UTC."""
        self.add_job(job_id, func, 0, trigger="cron", hour=hour, minute=0)

    def add_scan(self, func: Callable[[], Awaitable[object]]) -> None:
        self.add_job(SCAN_JOB, func, self._scan_tick)

    def add_delivery(self, func: Callable[[], Awaitable[object]]) -> None:
        self.add_job(DELIVERY_JOB, func, self._delivery_tick)

    def wake(self, job_id: str) -> None:
        """Run a job as soon as possible (after a scan queues alerts, delivery need not wait for its tick)."""
        if self._stopping or not self._scheduler.running:
            return
        job = self._scheduler.get_job(job_id)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    def start(self) -> None:
        self._scheduler.start()

    async def stop(self, *, grace_seconds: float = 10.0) -> None:
        """Start no new runs; let running jobs finish within the grace period, then cancel them.

        A cancelled scan commits nothing and its searches run again after restart; a cancelled delivery
        leaves its alerts pending. Nothing is lost either way.
        """
        self._stopping = True
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        # Runs already handed to the event loop start, find the scheduler stopping and return at once: APScheduler's
        # shutdown cancels every run it still counts as pending, and logs one cancelled before it began as an error.
        await asyncio.sleep(0)
        running = set(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace_seconds)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn

    @property
    def running(self) -> bool:
        return self._scheduler.running
