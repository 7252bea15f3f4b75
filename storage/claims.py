"""Worker tasks' SQL: the fetch groups a leader claimed (scan_tasks), sending them when due, and the lease checks
that let a task commit once and only while its searches are still its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scout.circuit import CircuitState
from scout.errors import StorageError
from scout.models import SavedSearch, SearchRun
from storage.bulk import one_of
from storage.convert import search_from_row
from storage.tables import MarketplaceStateRow, ScanTaskRow, SearchRow

# Run inside the transaction that saves a task's results: the runs of the searches whose last task this was.
CommitGuard = Callable[[AsyncSession], Awaitable[Sequence[SearchRun]]]


class TaskVoid(StorageError):
    """The task's row is gone (its results were committed by an earlier delivery, or it expired): nothing to save."""


@dataclass(frozen=True, slots=True)
class ScanTask:
    """One fetch group: a marketplace, what to ask it, and the searches that share the answer."""

    token: str
    lease_token: str
    marketplace: str
    query: str
    location: str | None
    radius_km: int | None
    search_ids: tuple[int, ...]
    deferrals: int = 0


class ScanTasks:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self.dialect = bind.dialect.name if bind is not None else "sqlite"

    async def create(self, tasks: Sequence[ScanTask], *, pending: Mapping[int, int], now: datetime,
                     probes: Mapping[str, datetime] | None = None) -> None:
        """Record the tasks of one claim and put their lease token on its searches, with how many tasks each has.

        `probes`: the circuits (by key) whose probe this claim sends, each stored half-open until the given time, so
        that no later claim sends another while it waits on the queue (scout.circuit.admit). A circuit that a
        worker closed, or opened again, meanwhile is left as it is."""
        if not tasks:
            return
        async with self._sessions.begin() as session:
            for key, until in (probes or {}).items():
                await session.execute(
                    sa.update(MarketplaceStateRow)
                    .where(MarketplaceStateRow.marketplace == key,
                           MarketplaceStateRow.circuit_state != CircuitState.CLOSED.value,
                           sa.or_(MarketplaceStateRow.circuit_open_until.is_(None),
                                  MarketplaceStateRow.circuit_open_until <= now))
                    .values(circuit_state=CircuitState.HALF_OPEN.value, circuit_open_until=until)
                    .execution_options(synchronize_session=False))
            session.add_all(ScanTaskRow(
                token=task.token, lease_token=task.lease_token, marketplace=task.marketplace, query=task.query,
                location=task.location, radius_km=task.radius_km, search_ids=list(task.search_ids),
                created_at=now, due_at=now, deferrals=0) for task in tasks)
            lease_tokens = {task.lease_token for task in tasks}
            [lease_token] = lease_tokens
            by_count: dict[int, list[int]] = {}
            for search_id, count in pending.items():
                by_count.setdefault(count, []).append(search_id)
            for count, ids in by_count.items():
                await session.execute(
                    sa.update(SearchRow).where(one_of(self.dialect, SearchRow.id, ids))
                    .values(lease_token=lease_token, lease_pending=count, lease_failed=False)
                    .execution_options(synchronize_session=False))

    async def take_due(self, *, now: datetime, limit: int) -> list[str]:
        """Tokens of tasks due to be sent, oldest first, marked sent at `now` in the same statement: a worker that
        puts one off the moment it arrives can never have its deferral overwritten. `unsend` gives back those a
        broker refused."""
        due = (sa.select(ScanTaskRow.token).where(ScanTaskRow.sent_at.is_(None), ScanTaskRow.due_at <= now)
               .order_by(ScanTaskRow.due_at).limit(limit))
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        async with self._sessions.begin() as session:
            tokens = list((await session.scalars(due)).all())
            if not tokens:
                return []
            taken = await session.scalars(
                sa.update(ScanTaskRow)
                .where(one_of(self.dialect, ScanTaskRow.token, tokens), ScanTaskRow.sent_at.is_(None))
                .values(sent_at=now).returning(ScanTaskRow.token).execution_options(synchronize_session=False))
            return sorted(taken.all(), key=tokens.index)

    async def unsend(self, tokens: Sequence[str], *, sent_at: datetime) -> None:
        """Make due again the tasks `take_due` marked at `sent_at` that did not reach the broker (unless a worker
        has changed them since)."""
        if tokens:
            async with self._sessions.begin() as session:
                await session.execute(
                    sa.update(ScanTaskRow)
                    .where(one_of(self.dialect, ScanTaskRow.token, tokens), ScanTaskRow.sent_at == sent_at)
                    .values(sent_at=None).execution_options(synchronize_session=False))

    async def load(self, token: str) -> ScanTask | None:
        async with self._sessions() as session:
            row = await session.get(ScanTaskRow, token)
        if row is None:
            return None
        return ScanTask(row.token, row.lease_token, row.marketplace, row.query, row.location, row.radius_km,
                        tuple(row.search_ids), row.deferrals)

    async def start(self, token: str, *, now: datetime, stale_before: datetime, redelivered: bool) -> bool:
        """Mark the task started; False when another worker runs it now (or it is gone). A task started before
        `stale_before` has outlived its time limit, and a redelivered message means its worker died: either may
        be started again."""
        free = sa.or_(ScanTaskRow.started_at.is_(None), ScanTaskRow.started_at < stale_before, sa.true()
                      if redelivered else sa.false())
        async with self._sessions.begin() as session:
            started = await session.execute(sa.update(ScanTaskRow).where(ScanTaskRow.token == token, free)
                                            .values(started_at=now))
            return bool(started.rowcount)

    async def live_members(self, task: ScanTask, *, hold_until: datetime) -> list[SavedSearch]:
        """The task's searches that are still leased to it until at least `hold_until`.

        A search whose lease ends sooner is left out: its lease may pass to another claim while this task runs,
        and a search is never scanned by two tasks at once.
        """
        async with self._sessions() as session:
            rows = await session.scalars(sa.select(SearchRow).where(
                one_of(self.dialect, SearchRow.id, list(task.search_ids)),
                SearchRow.lease_token == task.lease_token, SearchRow.lease_until >= hold_until))
            return [search_from_row(row) for row in rows]

    async def defer(self, task: ScanTask, *, due_at: datetime, lease_until: datetime, circuit: str) -> bool:
        """Make the task due again at `due_at` (a request budget said wait), its searches' leases lasting to
        `lease_until`; False when the task is gone.

        While a probe is out on the task's circuit (by key: its marketplace's, or its feed host's; stored half-open),
        the hold lasts to `lease_until` too: the task put off is the probe, or a fetch that will tell as much, and no
        other probe goes out before it runs."""
        async with self._sessions.begin() as session:
            moved = await session.execute(
                sa.update(ScanTaskRow).where(ScanTaskRow.token == task.token)
                .values(sent_at=None, started_at=None, due_at=due_at, deferrals=ScanTaskRow.deferrals + 1))
            if not moved.rowcount:
                return False
            await session.execute(
                sa.update(MarketplaceStateRow)
                .where(MarketplaceStateRow.marketplace == circuit,
                       MarketplaceStateRow.circuit_state == CircuitState.HALF_OPEN.value,
                       MarketplaceStateRow.circuit_open_until < lease_until)
                .values(circuit_open_until=lease_until)
                .execution_options(synchronize_session=False))
            await session.execute(
                sa.update(SearchRow).where(one_of(self.dialect, SearchRow.id, list(task.search_ids)),
                                           SearchRow.lease_token == task.lease_token)
                .values(lease_until=lease_until).execution_options(synchronize_session=False))
        return True

    async def discard(self, token: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(sa.delete(ScanTaskRow).where(ScanTaskRow.token == token))

    async def sweep(self, *, created_before: datetime) -> int:
        """Delete tasks whose searches' leases have long expired (their message was lost): the searches were
        claimed again since, under a new lease."""
        try:
            async with self._sessions.begin() as session:
                gone = await session.execute(sa.delete(ScanTaskRow).where(ScanTaskRow.created_at < created_before))
                return gone.rowcount or 0
        except SQLAlchemyError as err:
            raise StorageError(f"could not sweep old scan tasks: {err}") from err

    def commit_guard(self, task: ScanTask, *, ok: bool, next_run: Callable[[int], datetime]) -> CommitGuard:
        """What the task's commit checks and settles, in the saving transaction: its row must still exist (it is
        deleted, so a second delivery commits nothing), and only searches still under its lease count it done.

        `next_run(search_id)` gives when a search whose last task this is runs next.
        """

        async def guard(session: AsyncSession) -> list[SearchRun]:
            gone = await session.execute(sa.delete(ScanTaskRow).where(ScanTaskRow.token == task.token))
            if not gone.rowcount:
                raise TaskVoid(f"scan task {task.token} was already committed or has expired")
            mine = (sa.select(SearchRow.id, SearchRow.lease_pending, SearchRow.lease_failed)
                    .where(one_of(self.dialect, SearchRow.id, list(task.search_ids)),
                           SearchRow.lease_token == task.lease_token)
                    .order_by(SearchRow.id))  # every transaction locks searches in one order: no deadlock
            if self.dialect == "postgresql":
                mine = mine.with_for_update()
            runs: list[SearchRun] = []
            for search_id, pending, failed in (await session.execute(mine)).all():
                failed = bool(failed) or not ok
                left = pending - 1
                values: dict[str, object]
                if left <= 0:
                    done = frozenset({task.marketplace})
                    runs.append(SearchRun(search_id, next_run(search_id), frozenset() if failed else done,
                                          done if failed else frozenset()))
                    values = {"lease_token": None, "lease_pending": 0, "lease_failed": False}
                else:
                    values = {"lease_pending": left, "lease_failed": failed}
                await session.execute(sa.update(SearchRow).where(SearchRow.id == search_id).values(**values))
            return runs

        return guard
