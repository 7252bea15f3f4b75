"""Reads what the status page shows from storage, in one go."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.status.view import INCIDENT_DAYS, Readings
from ops.health import percentile
from storage.repo import Repository

RECENT = timedelta(hours=1)  # the window of fetches a light is judged on, and of the alert lag


async def load_readings(repo: Repository, *, now: datetime) -> Readings:
    week_ago = now - timedelta(days=INCIDENT_DAYS)
    outbox = await repo.outbox_summary(count_sent=False)  # the backlog only: cheap at any size
    return Readings(
        now=now,
        states=await repo.load_marketplace_states(),
        fetches=await repo.load_fetch_health(since=now - RECENT),
        circuits=await repo.load_circuit_changes(since=week_ago),
        events=await repo.load_public_events(since=week_ago),
        notices=await repo.load_notices(),
        alert_lag_p95_seconds=percentile(await repo.load_alert_lags(since=now - RECENT), 0.95),
        pending_alerts=outbox.pending,
        oldest_pending_seconds=(now - outbox.oldest_pending_at).total_seconds() if outbox.oldest_pending_at else 0.0,
    )
