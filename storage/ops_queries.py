"""What operators read and do: marketplace states and their pause, the audit log, task logs, failure summaries, the
ops snapshot and recent activity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from scout.circuit import Circuit, CircuitState
from scout.models import MarketplaceState
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



class OpsQueries(Queries):
    """The marketplaces, task logs and audit part of storage.repo.Repository."""

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
            if status == "active" and row.circuit_state == CircuitState.OPEN.value:
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
                sa.select(OutboxRow.created_at, OutboxRow.sent_at)
                .where(OutboxRow.status == "sent", OutboxRow.sent_at >= hour_ago)
                .order_by(OutboxRow.sent_at.desc()).limit(lag_sample))).all()
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
            recent_lags=[(sent - queued).total_seconds() for queued, sent in lags],
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
