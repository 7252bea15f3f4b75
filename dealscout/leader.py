"""The leader's scan: claim due searches, group them into fetches, and hand each fetch to the workers as a
`run_search_task` message; timing stays in the database (next_run_at, scan_tasks.due_at), never in the broker."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from scout.circuit import CircuitState
from scout.models import SavedSearch
from scout.scan import FetchKey, ScanBatch, Scanner, ScanReport
from storage.claims import ScanTask, ScanTasks

log = logging.getLogger(__name__)

# Sends tokens as run_search_task messages; raises when the broker cannot take them.
Send = Callable[[Sequence[str]], Awaitable[None]]
# Tasks on the queue (or None when the broker cannot tell), read before each claim.
Backlog = Callable[[], Awaitable[int | None]]
# Told when the broker stops taking tasks (the reason) and when it takes them again (None): the ops channel.
BrokerNews = Callable[[str | None], Awaitable[None]]
# Tasks sent in one go: a claim of SCAN_BATCH_SIZE searches is rarely more fetch groups than this.
SEND_BATCH = 500


class TaskScanner(Scanner):
    """A Scanner whose fetches run on the workers: a claim becomes scan_tasks rows and messages, and the workers
    commit each fetch with its results (dealscout.worker)."""

    def __init__(self, *args: object, tasks: ScanTasks, send: Send, backlog: Backlog, max_backlog: int,
                 on_broker: BrokerNews | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._on_broker = on_broker
        self._tasks = tasks
        self._send = send
        self._backlog = backlog
        self._max_backlog = max_backlog
        self.broker_error: str | None = None

    async def run_until_idle(self, *, max_batches: int = 100) -> ScanReport:
        await self.send_due()
        report = await super().run_until_idle(max_batches=max_batches)
        await self._tasks.sweep(created_before=self._clock() - 2 * self._lease)
        return report

    async def run_once(self) -> ScanReport:
        """One claim, unless the broker is down or the queue is full enough: then nothing (the searches wait in
        the database, which is where their timing lives)."""
        if self.broker_error is not None:
            return ScanReport()
        waiting = await self._backlog()
        if waiting is not None and waiting >= self._max_backlog:
            log.info("%d tasks on the queue: no new claims until the workers catch up", waiting)
            return ScanReport()
        return await super().run_once()

    async def send_due(self) -> int:
        """Send the tasks that are due (new ones, and those a worker put off); they stay due until sent."""
        sent = 0
        while True:
            taken_at = self._clock()
            tokens = await self._tasks.take_due(now=taken_at, limit=SEND_BATCH)
            if not tokens:
                return sent
            try:
                await self._send(tokens)
            except Exception as err:  # noqa: BLE001 - any broker failure: the tasks stay due and are sent later
                await self._tasks.unsend(tokens, sent_at=taken_at)
                first = self.broker_error is None
                self.broker_error = f"{type(err).__name__}: {err}"
                if first:
                    log.error("the task queue refused %d tasks (%s); scans wait until it is back", len(tokens), err)
                    await self._tell(f"The task queue is unreachable ({self.broker_error}): scans wait until it "
                                     "is back; no request budget is exceeded meanwhile.")
                return sent
            if self.broker_error is not None:
                log.info("the task queue takes tasks again")
                self.broker_error = None
                await self._tell(None)
            sent += len(tokens)
            if len(tokens) < SEND_BATCH:
                return sent

    async def _tell(self, news: str | None) -> None:
        if self._on_broker is not None:
            await self._on_broker(news)

    async def run_fetches(self, batch: ScanBatch, admitted: dict[FetchKey, list[SavedSearch]]) -> None:
        lease_token = uuid.uuid4().hex
        tasks = [ScanTask(uuid.uuid4().hex, lease_token, marketplace, query.text, query.location, query.radius_km,
                          tuple(search.id for search in members))
                 for (marketplace, query), members in admitted.items()]
        pending = Counter(search_id for task in tasks for search_id in task.search_ids)
        now = self._clock()
        # A probe goes to the queue and may wait there: its circuit is held half-open for as long as a task may take.
        probes = {key: now + self._lease for key, circuit in batch.circuits.items()
                  if circuit.state is CircuitState.HALF_OPEN}
        await self._tasks.create(tasks, pending=pending, now=now, probes=probes)
        batch.finished.update(pending)  # the workers finish them now; the scan's release leaves them be
        batch.report = ScanReport(fetches=len(tasks))
        await self.send_due()


def lease_margin(lease_seconds: float) -> timedelta:
    """How long a task may run, at most: a worker starts a task only while its searches' leases last this long."""
    return timedelta(seconds=lease_seconds / 2)
