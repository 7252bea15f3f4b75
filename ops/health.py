"""Health checks: the database, the scheduler, each marketplace, each chat platform, the outbox, the machine."""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import psutil
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from scout import __version__
from scout.circuit import CircuitState
from scout.delivery import PlatformSends
from scout.errors import StorageError
from scout.scan import UserHosts
from scrapers.base import Adapter
from storage.repo import Repository

log = logging.getLogger(__name__)

# Liveness must answer fast even when the database hangs: a load balancer's probe times out at a few seconds.
DATABASE_TIMEOUT_SECONDS = 2.0
# A platform still connecting this long after its last change is reported to the ops channel (a start-up takes
# a few seconds; health says degraded meanwhile, which is true).
CONNECT_GRACE_SECONDS = 120.0
# Sends in a row that failed (not counting waits for a rate limit) before a platform counts as failing.
FAILING_SENDS = 3
# The detailed health and the metrics each take several queries: requests are served from a reading at most this
# old, so a flood of them (5,000 local requests pushed the p99 to 2 s) costs the database one reading per period.
SNAPSHOT_SECONDS = 5.0

T = TypeVar("T")


class RequestWindow(Protocol):
    def p95_seconds(self) -> float | None: ...

    def error_rate(self) -> float | None: ...


class PlatformConnection(Protocol):
    """How a chat platform's connection stands (bot.connection.Connection)."""

    @property
    def state(self) -> str: ...

    @property
    def since(self) -> datetime: ...

    @property
    def error(self) -> str | None: ...

    @property
    def connected(self) -> bool: ...


class Snapshot(Generic[T]):
    """The last result of an expensive read, read again when it is older than `max_age` seconds. Callers that find
    it stale while a read is under way wait for that read instead of starting their own. A read that fails is not
    kept: the next caller tries again."""

    def __init__(self, read: Callable[[], Awaitable[T]], *, max_age: float = SNAPSHOT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._read = read
        self._max_age = max_age
        self._value: T | None = None
        self._taken_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        async with self._lock:
            started = self.clock()
            if self._taken_at is None or started - self._taken_at >= self._max_age:
                self._value = await self._read()
                self._taken_at = started
        return self._value  # type: ignore[return-value]


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass
class HealthChecker:
    engine: AsyncEngine
    repo: Repository
    adapters: Mapping[str, Adapter]
    clock: Callable[[], datetime]
    scheduler_ticks: Mapping[str, datetime]
    scan_tick_seconds: float
    # Each platform alerts can go to -> how its connection stands (the console has none: always connected).
    platforms: Mapping[str, Callable[[], PlatformConnection] | None]
    sends: Mapping[str, PlatformSends]  # how sends to each platform went lately (scout.delivery.Dispatcher.sends)
    data_dir: Path
    requests: RequestWindow | None = None
    # A leader's broker: tasks waiting on the Celery queue and workers that answer (None: cannot tell).
    queue_depth: Callable[[], Awaitable[int | None]] | None = None
    workers_alive: Callable[[], Awaitable[int | None]] | None = None
    # The API role runs no scheduler of its own: the scheduler's health is how late the oldest due search is.
    scheduler_elsewhere: bool = False

    async def database(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self.repo.ping(), DATABASE_TIMEOUT_SECONDS)
        except (StorageError, TimeoutError) as err:
            return {"ok": False, "error": str(err) or "timed out"}
        latency = (time.perf_counter() - started) * 1000
        pool = self.engine.pool
        checked_out = getattr(pool, "checkedout", lambda: None)()
        size = getattr(pool, "size", lambda: None)()
        return {"ok": True, "latency_ms": round(latency, 1), "dialect": self.engine.dialect.name,
                "pool": {"size": size, "in_use": checked_out}}

    async def liveness(self) -> tuple[bool, dict[str, Any]]:
        database = await self.database()
        if not database["ok"]:
            return False, {"status": "down", "failing": "database", "error": database["error"]}
        return True, {"status": "ok"}

    async def detailed(self) -> dict[str, Any]:
        now = self.clock()
        database = await self.database()
        report: dict[str, Any] = {"version": __version__, "time": now.isoformat(), "database": database}
        if not database["ok"]:
            report["status"] = "down"
            return report
        snapshot = await self.repo.load_ops_snapshot(now=now)
        states = await self.repo.load_marketplace_states()
        outbox = await self.repo.outbox_summary()
        last_tick = self.scheduler_ticks.get("scan")
        tick_age = (now - last_tick).total_seconds() if last_tick else None
        lag = max(0.0, (now - snapshot.oldest_due_at).total_seconds()) if snapshot.oldest_due_at else 0.0
        report["scheduler"] = {
            "running": last_tick is not None, "last_tick": last_tick.isoformat() if last_tick else None,
            "last_tick_age_seconds": round(tick_age, 1) if tick_age is not None else None,
            "lag_seconds": round(lag, 1),
        }
        markets = {}
        for key, adapter in sorted(self.adapters.items()):
            state = states.get(key)
            failures = snapshot.failures_last_hour.get(key, {})
            markets[key] = {
                "name": adapter.name,
                "state": state.status if state else "active",
                "paused_reason": state.reason if state and state.paused else None,
                "circuit": (state.circuit.state.value if state else CircuitState.CLOSED.value),
                "circuit_open_until": (state.circuit.open_until.isoformat()
                                       if state and state.circuit.open_until else None),
                "last_status": state.last_status if state else None,
                "last_success": state.last_success_at.isoformat() if state and state.last_success_at else None,
                "last_failure": state.last_failure_at.isoformat() if state and state.last_failure_at else None,
                # A feed's error names the user's feed address: the open endpoint says only that it failed.
                "last_error": (None if not state or not state.last_error else
                               "a user's feed failed (its host's circuit is in the log)"
                               if isinstance(adapter, UserHosts) else state.last_error),
                "failures_last_hour": failures.get("failed", 0),
                "blocks_last_hour": failures.get("blocked", 0),
                "consecutive_failures": state.consecutive_failures if state else 0,
                "usage": adapter.usage(),  # an API's daily budget, as the running service has spent it
            }
        report["marketplaces"] = markets
        report["platforms"] = {platform: self._platform(platform) for platform in sorted(self.platforms)}
        oldest = (now - outbox.oldest_pending_at).total_seconds() if outbox.oldest_pending_at else 0.0
        report["outbox"] = {"pending": outbox.pending, "oldest_pending_age_seconds": round(oldest, 1),
                            "dead": outbox.dead, "sent": outbox.sent, "held": outbox.held}
        report["searches"] = {**snapshot.searches_by_status, "stale": snapshot.stale_searches}
        limit = max(120.0, 4 * self.scan_tick_seconds)
        scheduler_ok = lag < limit if self.scheduler_elsewhere else tick_age is not None and tick_age < limit
        if self.queue_depth is not None:
            report["queue"] = {"depth": await self.queue_depth(),
                               "workers_alive": await self.workers_alive() if self.workers_alive else None}
        degraded = (not scheduler_ok or any(_failing(m) for m in markets.values())
                    or any(not p["connected"] or p["failing_sends"] >= FAILING_SENDS
                           for p in report["platforms"].values()))
        report["status"] = "degraded" if degraded else "ok"
        return report

    def _platform(self, platform: str) -> dict[str, Any]:
        read = self.platforms.get(platform)
        connection = read() if read is not None else None
        sends = self.sends.get(platform, PlatformSends())
        return {
            "connected": connection.connected if connection else True,
            "state": connection.state if connection else "connected",
            "since": connection.since.isoformat() if connection else None,
            "error": connection.error if connection else None,
            "last_delivery": sends.last_delivered_at.isoformat() if sends.last_delivered_at else None,
            "failing_sends": sends.failures_in_row,
            "last_send_error": sends.last_error,
        }

    async def _queue_depth(self, outbox_pending: int) -> int:
        """The Celery queue's depth where there is one (a leader), else the outbox backlog (dealscout run)."""
        depth = await self.queue_depth() if self.queue_depth is not None else None
        return outbox_pending if depth is None else depth

    async def figures(self) -> dict[str, float | None]:
        """The numbers the alert thresholds judge (see ops/thresholds.py), keyed by threshold name."""
        now = self.clock()
        snapshot = await self.repo.load_ops_snapshot(now=now)
        outbox = await self.repo.outbox_summary(count_sent=False)  # the backlog only: cheap at any size
        states = await self.repo.load_marketplace_states()
        figures: dict[str, float | None] = {
            "api_p95_seconds": self.requests.p95_seconds() if self.requests else None,
            "api_error_rate": self.requests.error_rate() if self.requests else None,
            "queue_depth": float(await self._queue_depth(outbox.pending)),
            "db_connections": await self._database_connections(),
            "memory": _memory_fraction(),
            "disk": _disk_fraction(self.data_dir),
            "failed_tasks_hour": float(sum(sum(v.values()) for v in snapshot.failures_last_hour.values())),
            "outbox_oldest_seconds": (now - outbox.oldest_pending_at).total_seconds()
            if outbox.oldest_pending_at else 0.0,
            "alert_lag_p95_seconds": percentile(snapshot.recent_lags, 0.95) or 0.0,
            "stale_searches": float(snapshot.stale_searches),
        }
        for platform in self.platforms:
            figures[f"platform:{platform}"] = float(platform_level(self._platform(platform), now))
        for key in self.adapters:
            state = states.get(key)
            if state is None or state.paused:
                figures[f"marketplace:{key}"] = 0.0
            elif state.circuit.state is not CircuitState.CLOSED:
                figures[f"marketplace:{key}"] = 2.0
            else:
                figures[f"marketplace:{key}"] = 1.0 if state.consecutive_failures else 0.0
        return figures

    async def _database_connections(self) -> float | None:
        """Share of the server's connection limit in use (the runbook's pg_stat_activity check); None on SQLite."""
        if self.engine.dialect.name != "postgresql":
            return None
        try:
            async with self.engine.connect() as conn:
                used = (await conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity"))).scalar_one()
                limit = (await conn.execute(sa.text("SHOW max_connections"))).scalar_one()
        except Exception:  # noqa: BLE001 - a figure we cannot read is unknown, not an outage of the checker
            log.warning("could not read PostgreSQL connection counts", exc_info=True)
            return None
        return int(used) / max(1, int(limit))


def _failing(market: Mapping[str, Any]) -> bool:
    """A marketplace harms the service's health from its first failed or blocked fetch, not only once its circuit
    opens (its searches already miss their scans); one an operator paused is known, and counts only by its circuit."""
    return market["circuit"] != "closed" or (market["state"] != "paused" and market["consecutive_failures"] > 0)


def platform_level(report: Mapping[str, Any], now: datetime) -> int:
    """0 when a platform works; 1 while it is still connecting after a grace period, or its sends keep failing;
    2 while it is down (it refused our credentials)."""
    if report["state"] == "down":
        return 2
    connecting_for = (now - datetime.fromisoformat(report["since"])).total_seconds() if report["since"] else 0.0
    if report["state"] == "connecting" and connecting_for >= CONNECT_GRACE_SECONDS:
        return 1
    return 1 if report["failing_sends"] >= FAILING_SENDS else 0


def _memory_fraction() -> float:
    """This process's resident memory as a share of what it may use (the cgroup limit when there is one)."""
    rss = psutil.Process().memory_info().rss
    limit = psutil.virtual_memory().total
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < limit:
            limit = int(text)
            break
    return rss / limit


def _disk_fraction(path: Path) -> float | None:
    try:
        usage = shutil.disk_usage(path if path.exists() else Path.cwd())
    except OSError:
        return None
    return usage.used / usage.total
