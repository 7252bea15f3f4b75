"""What operators read and do: marketplace states and their pause, the audit log, task logs, failure summaries, the
ops snapshot and recent activity, and what the public status page reads (its notices among it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from scout.circuit import Circuit, CircuitState
from scout.models import MarketplaceState
from storage.bulk import POSTGRESQL
from storage.queries import Queries
from storage.scans import CIRCUIT_TASK_NAME, FAILING_STATUSES, SCAN_TASK_NAME, marketplace_row
from storage.tables import AuditLogRow, MarketplaceStateRow, OutboxRow, SearchRow, TaskLogRow


@dataclass(frozen=True, slots=True)
class OpsSnapshot:
    """The stored figures the ops checks need, read in one go."""

    searches_by_status: dict[str, int]
    stale_searches: int
    oldest_due_at: datetime | None
    failures_last_hour: dict[str, dict[str, int]]  # marketplace -> status -> count, failing statuses only
    recent_lags: list[float]  # seconds from queued to sent, alerts sent in the last hour


SECONDS_A_DAY = 86_400.0


def seconds_between(dialect: str, earlier: Any, later: Any) -> Any:
    """`later - earlier` in seconds, worked out by the database: one float a row, which reads faster than two
    timestamps (on SQLite, text that SQLAlchemy parses in Python)."""
    if dialect == POSTGRESQL:
        return sa.cast(sa.extract("epoch", later - earlier), sa.Float)
    # SQLite keeps UTC timestamps as text, which julianday() reads as days.
    return (sa.func.julianday(later, type_=sa.Float) - sa.func.julianday(earlier, type_=sa.Float)) * SECONDS_A_DAY


@dataclass(frozen=True, slots=True)
class TaskLog:
    marketplace: str | None
    status: str
    error: str | None
    query: str | None
    duration_ms: int | None
    listings_found: int
    new_listings: int
    alerts_queued: int
    created_at: datetime


@dataclass(frozen=True)
class FailureSummary:
    """What a marketplace's fetches did over a period: fetches counted per outcome (circuit changes are not
    fetches), the most frequent errors, and how many times each circuit opened."""

    fetches: dict[tuple[str, str], int]  # (marketplace, status) -> fetches
    errors: list[tuple[str, str, int]]  # (marketplace, error's first line, fetches), most frequent first
    circuit_openings: dict[str, int]  # marketplace -> times its circuit opened


# The public status page's reads (api.status). They return no actor, owner, chat or query: nothing private.
NOTICE_ADD = "notice.add"
NOTICE_END = "notice.end"
MARKETPLACE_PAUSE = "marketplace.pause"
MARKETPLACE_RESUME = "marketplace.resume"
# A threshold's level change is audited as ops.threshold.<level> (ops.reporter.audit_threshold_changes).
THRESHOLD_ACTION = "ops.threshold."


@dataclass(frozen=True, slots=True)
class Notice:
    """A maintenance notice: shown on the status page from `created_at` until `until`, or until it is ended."""

    id: int
    text: str
    created_at: datetime
    until: datetime | None
    ended_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.ended_at is None and (self.until is None or now < self.until)


@dataclass(frozen=True, slots=True)
class PublicEvent:
    """An audited event the status page may show: a marketplace paused or resumed, a threshold's level change."""

    action: str
    target: str | None
    detail: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CircuitChange:
    """A marketplace's circuit opened (fetches stopped) or closed again, from the 'scrape_circuit' task logs."""

    marketplace: str
    opened: bool
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FetchHealth:
    """A marketplace's fetches in a recent window: how many answered, how many failed, and the first failure."""

    ok: int = 0
    failing: int = 0
    first_failure_at: datetime | None = None


class StatusQueries(Queries):
    """The reads of the public status page, and the maintenance notices operators add and end."""

    async def add_notice(self, *, text: str, until: datetime | None, actor: str, now: datetime) -> int:
        """The new notice's id: its audit row's id. The end time, if any, is kept as the row's target."""
        async with self._sessions.begin() as session:
            row = AuditLogRow(actor=actor, action=NOTICE_ADD, target=until.isoformat() if until else None,
                              detail=text, created_at=now)
            session.add(row)
            await session.flush()
            return row.id

    async def end_notice(self, notice_id: int, *, actor: str, now: datetime) -> bool:
        """False when there is no such notice, or it has ended already."""
        notices = {notice.id: notice for notice in await self.load_notices()}
        notice = notices.get(notice_id)
        if notice is None or not notice.active(now):
            return False
        await self.add_audit(actor=actor, action=NOTICE_END, target=str(notice_id), detail=None, now=now)
        return True

    async def load_notices(self) -> list[Notice]:
        """Every notice, newest first. Operators add a few a month: all of them are read."""
        async with self._sessions() as session:
            rows = (await session.execute(
                sa.select(AuditLogRow.id, AuditLogRow.action, AuditLogRow.target, AuditLogRow.detail,
                          AuditLogRow.created_at)
                .where(AuditLogRow.action.in_((NOTICE_ADD, NOTICE_END))).order_by(AuditLogRow.id))).all()
        ended = {target: at for _, action, target, _, at in rows if action == NOTICE_END}
        return [
            Notice(id=row_id, text=detail or "", created_at=at, until=_parse_time(target),
                   ended_at=ended.get(str(row_id)))
            for row_id, action, target, detail, at in reversed(rows) if action == NOTICE_ADD
        ]

    async def load_public_events(self, *, since: datetime, limit: int = 200) -> list[PublicEvent]:
        """Marketplace pauses and resumes and threshold level changes since a moment, newest first; no actor."""
        wanted = sa.or_(AuditLogRow.action.in_((MARKETPLACE_PAUSE, MARKETPLACE_RESUME)),
                        AuditLogRow.action.startswith(THRESHOLD_ACTION))
        async with self._sessions() as session:
            rows = (await session.execute(
                sa.select(AuditLogRow.action, AuditLogRow.target, AuditLogRow.detail, AuditLogRow.created_at)
                .where(AuditLogRow.created_at >= since, wanted)
                .order_by(AuditLogRow.created_at.desc(), AuditLogRow.id.desc()).limit(limit))).all()
        return [PublicEvent(action, target, detail, at) for action, target, detail, at in rows]

    async def load_circuit_changes(self, *, since: datetime, limit: int = 200) -> list[CircuitChange]:
        """Marketplaces' circuit openings and closings since a moment, newest first. A circuit kept for one host
        (one user's feed) is that user's, not the marketplace's: it is left out."""
        async with self._sessions() as session:
            rows = (await session.execute(
                sa.select(TaskLogRow.marketplace, TaskLogRow.status, TaskLogRow.error, TaskLogRow.query,
                          TaskLogRow.created_at)
                .where(TaskLogRow.created_at >= since, TaskLogRow.task_name == CIRCUIT_TASK_NAME)
                .order_by(TaskLogRow.created_at.desc(), TaskLogRow.id.desc()).limit(limit))).all()
        return [
            CircuitChange(market or "-", status == "failed", error, at)
            for market, status, error, what, at in rows if " for " not in (what or "")
        ]

    async def load_fetch_health(self, *, since: datetime) -> dict[str, FetchHealth]:
        """Per marketplace, its fetches since a moment, counted by the database."""
        failing = TaskLogRow.status.in_(FAILING_STATUSES)
        async with self._sessions() as session:
            rows = (await session.execute(
                sa.select(TaskLogRow.marketplace, failing.label("failing"), sa.func.count(),
                          sa.func.min(TaskLogRow.created_at))
                .where(TaskLogRow.created_at >= since, TaskLogRow.task_name == SCAN_TASK_NAME)
                .group_by(TaskLogRow.marketplace, failing))).all()
        health: dict[str, FetchHealth] = {}
        for market, is_failing, count, first in rows:
            known = health.get(market or "-", FetchHealth())
            if is_failing:
                known = FetchHealth(known.ok, int(count), first)
            else:
                known = FetchHealth(int(count), known.failing, known.first_failure_at)
            health[market or "-"] = known
        return health

    async def load_alert_lags(self, *, since: datetime, sample: int = 2000) -> list[float]:
        """Seconds from queued to sent of the alerts sent since a moment, the newest `sample` of them (the same
        reading as the ops snapshot's, without its searches' schedule)."""
        async with self._sessions() as session:
            rows = (await session.execute(
                sa.select(OutboxRow.created_at, OutboxRow.sent_at)
                .where(OutboxRow.status == "sent", OutboxRow.sent_at >= since)
                .order_by(OutboxRow.sent_at.desc()).limit(sample))).all()
        return [(sent - queued).total_seconds() for queued, sent in rows]


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None



class OpsQueries(StatusQueries):
    """The marketplaces, task logs and audit part of storage.repo.Repository (the status page's reads among
    them)."""

    async def load_marketplace_states(self) -> dict[str, MarketplaceState]:
        async with self._sessions() as session:
            rows = (await session.scalars(sa.select(MarketplaceStateRow))).all()
        return {
            row.marketplace: MarketplaceState(
                key=row.marketplace, status=row.status, reason=row.reason, changed_by=row.changed_by,
                changed_at=row.changed_at, consecutive_failures=row.consecutive_failures, last_status=row.last_status,
                last_success_at=row.last_success_at, last_failure_at=row.last_failure_at, last_error=row.last_error,
                circuit=Circuit(CircuitState(row.circuit_state), row.consecutive_failures, row.circuit_openings,
                                row.circuit_open_until),
            )
            for row in rows
        }

    async def set_marketplace_status(
        self, key: str, *, status: str, reason: str | None, actor: str, now: datetime
    ) -> None:
        """Pause or resume a marketplace and write who did it to the audit log, in one transaction."""
        async with self._sessions.begin() as session:
            row = await marketplace_row(session, key)
            row.status, row.reason, row.changed_by, row.changed_at = status, reason, actor, now
            if status == "active" and row.circuit_state != CircuitState.CLOSED.value:
                # An operator who resumes a marketplace asks for a try now: the next scan sends the probe.
                row.circuit_open_until = now
            session.add(AuditLogRow(actor=actor, action=f"marketplace.{'pause' if status == 'paused' else 'resume'}",
                                    target=key, detail=reason, created_at=now))

    async def add_audit(self, *, actor: str, action: str, target: str | None, detail: str | None,
                        now: datetime) -> None:
        async with self._sessions.begin() as session:
            session.add(AuditLogRow(actor=actor, action=action, target=target, detail=detail, created_at=now))

    async def load_task_logs(self, *, since: datetime, marketplace: str | None = None,
                             limit: int = 100) -> list[TaskLog]:
        stmt = sa.select(TaskLogRow).where(TaskLogRow.created_at >= since).order_by(TaskLogRow.id.desc()).limit(limit)
        if marketplace:
            stmt = stmt.where(TaskLogRow.marketplace == marketplace)
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [
            TaskLog(r.marketplace, r.status, r.error, r.query, r.duration_ms, r.listings_found, r.new_listings,
                    r.alerts_queued, r.created_at)
            for r in rows
        ]

    async def load_failure_summary(self, *, since: datetime, top_errors: int = 10,
                                   error_width: int = 100) -> FailureSummary:
        """Counted by the database, so a busy hour is summarised as exactly as a quiet one."""
        fetched = (TaskLogRow.created_at >= since, TaskLogRow.task_name == SCAN_TASK_NAME)
        error = sa.func.substr(sa.func.coalesce(TaskLogRow.error, ""), 1, error_width)
        async with self._sessions() as session:
            outcomes = (await session.execute(
                sa.select(TaskLogRow.marketplace, TaskLogRow.status, sa.func.count())
                .where(*fetched).group_by(TaskLogRow.marketplace, TaskLogRow.status))).all()
            errors = (await session.execute(
                sa.select(TaskLogRow.marketplace, error, sa.func.count().label("n"))
                .where(*fetched, TaskLogRow.status.in_(FAILING_STATUSES))
                .group_by(TaskLogRow.marketplace, error).order_by(sa.desc("n")).limit(top_errors))).all()
            openings = (await session.execute(
                sa.select(TaskLogRow.marketplace, sa.func.count())
                .where(TaskLogRow.created_at >= since, TaskLogRow.task_name == CIRCUIT_TASK_NAME,
                       TaskLogRow.status == "failed")
                .group_by(TaskLogRow.marketplace))).all()
        return FailureSummary(
            fetches={(market or "-", status): int(count) for market, status, count in outcomes},
            errors=[(market or "-", text, int(count)) for market, text, count in errors],
            circuit_openings={market or "-": int(count) for market, count in openings},
        )

    async def load_ops_snapshot(self, *, now: datetime, stale_after_intervals: int = 3,
                                lag_sample: int = 2000) -> OpsSnapshot:
        hour_ago = now - timedelta(hours=1)
        async with self._sessions() as session:
            by_status = dict((await session.execute(
                sa.select(SearchRow.status, sa.func.count()).group_by(SearchRow.status))).all())
            schedule = (await session.execute(
                sa.select(SearchRow.check_interval_minutes, SearchRow.last_success_at, SearchRow.created_at)
                .where(SearchRow.status == "active"))).all()
            oldest_due = (await session.execute(
                sa.select(sa.func.min(SearchRow.next_run_at)).where(SearchRow.status == "active"))).scalar_one()
            failures = (await session.execute(
                sa.select(TaskLogRow.marketplace, TaskLogRow.status, sa.func.count())
                .where(TaskLogRow.created_at >= hour_ago, TaskLogRow.status.in_(FAILING_STATUSES),
                       TaskLogRow.task_name == SCAN_TASK_NAME)
                .group_by(TaskLogRow.marketplace, TaskLogRow.status))).all()
            lags = (await session.execute(
                sa.select(seconds_between(self.dialect, OutboxRow.created_at, OutboxRow.sent_at))
                .where(OutboxRow.status == "sent", OutboxRow.sent_at >= hour_ago)
                .order_by(OutboxRow.sent_at.desc()).limit(lag_sample))).scalars().all()
        stale = sum(
            1 for interval, last_ok, created in schedule
            if now - (last_ok or created) > timedelta(minutes=interval * stale_after_intervals)
        )
        per_market: dict[str, dict[str, int]] = {}
        for market, status, count in failures:
            per_market.setdefault(market or "-", {})[status] = count
        return OpsSnapshot(
            searches_by_status={str(k): int(v) for k, v in by_status.items()}, stale_searches=stale,
            oldest_due_at=oldest_due, failures_last_hour=per_market,
            recent_lags=list(lags),
        )

    async def load_activity(self, *, since: datetime) -> dict[str, Any]:
        """What happened since a moment: fetches and their outcomes per marketplace, new listings, alerts sent."""
        async with self._sessions() as session:
            fetches = (await session.execute(
                sa.select(TaskLogRow.marketplace, TaskLogRow.status, sa.func.count(),
                          sa.func.coalesce(sa.func.sum(TaskLogRow.new_listings), 0))
                .where(TaskLogRow.created_at >= since, TaskLogRow.task_name == SCAN_TASK_NAME)
                .group_by(TaskLogRow.marketplace, TaskLogRow.status))).all()
            sent = (await session.execute(
                sa.select(sa.func.count()).select_from(OutboxRow)
                .where(OutboxRow.status == "sent", OutboxRow.sent_at >= since))).scalar_one()
            searches = dict((await session.execute(
                sa.select(SearchRow.status, sa.func.count()).group_by(SearchRow.status))).all())
        per_market: dict[str, dict[str, int]] = {}
        new_listings = 0
        for market, status, count, new in fetches:
            per_market.setdefault(market or "-", {})[status] = int(count)
            new_listings += int(new)
        return {"fetches": per_market, "new_listings": new_listings, "alerts_sent": int(sent),
                "searches": {str(k): int(v) for k, v in searches.items()}}

    async def count_failed_tasks(self, *, since: datetime) -> int:
        stmt = sa.select(sa.func.count()).select_from(TaskLogRow).where(
            TaskLogRow.created_at >= since, TaskLogRow.status.in_(FAILING_STATUSES)
        )
        async with self._sessions() as session:
            return int((await session.execute(stmt)).scalar_one())
