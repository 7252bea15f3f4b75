"""Builds the ops side of a service: metrics, health checks, the reporter, the API server and their jobs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import build_app
from api.metrics import RequestStats
from api.server import ApiServer
from ops.health import HealthChecker, PlatformConnection, Snapshot
from ops.metrics import Metrics
from ops.reporter import OpsReporter
from ops.thresholds import parse_overrides
from scout.circuit import CircuitState
from scout.config import Settings
from scout.delivery import PlatformSends
from scrapers.base import Adapter
from storage.repo import Repository

log = logging.getLogger(__name__)

DAY = timedelta(days=1)


@dataclass
class Ops:
    metrics: Metrics
    health: HealthChecker
    reporter: OpsReporter
    stats: RequestStats
    repo: Repository
    adapters: Mapping[str, Adapter]
    clock: Callable[[], datetime]
    extra_routers: list[APIRouter] = field(default_factory=list)
    server: ApiServer | None = None
    # What the ops API serves: readings shared by every request within a few seconds (see Snapshot).
    detailed_health: Snapshot[dict[str, Any]] = field(init=False)
    scraped_gauges: Snapshot[None] = field(init=False)

    def __post_init__(self) -> None:
        self.detailed_health = Snapshot(self.health.detailed)
        self.scraped_gauges = Snapshot(self._refresh_for_scrape)

    async def refresh_metrics(self) -> None:
        """Set the gauges that are read from storage."""
        now = self.clock()
        snapshot = await self.repo.load_ops_snapshot(now=now)
        outbox = await self.repo.outbox_summary(count_sent=False)  # the backlog only: cheap at any size
        states = await self.repo.load_marketplace_states()
        m = self.metrics
        m.outbox_pending.set(outbox.pending)
        m.outbox_dead.set(outbox.dead)
        m.outbox_oldest_age.set((now - outbox.oldest_pending_at).total_seconds() if outbox.oldest_pending_at else 0)
        m.scheduler_lag.set(max(0.0, (now - snapshot.oldest_due_at).total_seconds()) if snapshot.oldest_due_at else 0)
        m.failed_tasks.set(sum(sum(v.values()) for v in snapshot.failures_last_hour.values()))
        for status in ("active", "paused"):
            m.searches.labels(status).set(snapshot.searches_by_status.get(status, 0))
        for key in self.adapters:
            state = states.get(key)
            m.circuit_open.labels(key).set(1 if state and state.circuit.state is not CircuitState.CLOSED else 0)
            m.marketplace_paused.labels(key).set(1 if state and state.paused else 0)

    async def _refresh_for_scrape(self) -> None:
        try:
            await self.refresh_metrics()
        except Exception as err:  # noqa: BLE001 - stale gauges beat no metrics; the database check reports the cause
            log.warning("could not refresh the metrics from the database (%s); the scrape gets the last values",
                        type(err).__name__)

    async def evaluate(self) -> None:
        figures = await self.health.figures()
        self.metrics.set_figures(figures)
        if self.health.queue_depth is not None:
            workers = self.health.workers_alive
            self.metrics.set_queue(await self.health.queue_depth(), await workers() if workers else None)
        await self.reporter.evaluate(figures)
        await self.refresh_metrics()

    async def daily_summary(self) -> None:
        await self.reporter.daily_summary(await self.repo.load_activity(since=self.clock() - DAY))

    def build_api(self, settings: Settings) -> FastAPI:
        """The API application serving these ops, with the routers front ends added (extra_routers)."""
        return build_app(self.health, self.metrics, self.stats, detailed=self.detailed_health.get,
                         refresh_metrics=self.scraped_gauges.get, routers=self.extra_routers, docs=settings.api_docs)

    async def start_server(self, settings: Settings, *, reuse_port: bool = False) -> None:
        self.server = ApiServer(self.build_api(settings), settings.ops_http_host, settings.ops_http_port,
                                reuse_port=reuse_port)
        await self.server.start()

    async def stop_server(self) -> None:
        if self.server is not None:
            await self.server.stop()


def build_ops(
    settings: Settings, *, engine: AsyncEngine, repo: Repository, adapters: Mapping[str, Adapter],
    clock: Callable[[], datetime], scheduler_ticks: Mapping[str, datetime],
    platforms: Mapping[str, Callable[[], PlatformConnection] | None], sends: Mapping[str, PlatformSends],
    say: Callable[[str], Awaitable[None]],
) -> Ops:
    metrics = Metrics()
    stats = RequestStats()
    health = HealthChecker(
        engine=engine, repo=repo, adapters=adapters, clock=clock, scheduler_ticks=scheduler_ticks,
        scan_tick_seconds=settings.scan_tick_seconds, platforms=platforms, sends=sends,
        data_dir=Path(settings.data_dir), requests=stats,
    )
    reporter = OpsReporter(say, clock=clock, thresholds=parse_overrides(settings.ops_thresholds),
                           repeat_critical=timedelta(minutes=settings.ops_repeat_critical_minutes))
    return Ops(metrics, health, reporter, stats, repo, adapters, clock)
