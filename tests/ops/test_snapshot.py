"""The monitoring endpoints stay cheap under a flood: the detailed health and the metrics come from a reading of the
database taken at most every few seconds and shared by every request; /health stays a real check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import event

from bot.commands import Actor
from ops.health import SNAPSHOT_SECONDS, Snapshot
from dealscout.app import Service, build_service, start_service
from scout.config import load_settings
from scout.models import Destination
from tests.fakes.notifier import RecordingNotifier

FLOOD = 300


class Seconds:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_callers_of_a_stale_snapshot_share_one_read() -> None:
    clock = Seconds()
    release = asyncio.Event()
    reads = 0

    async def read() -> int:
        nonlocal reads
        reads += 1
        await release.wait()
        return reads

    snapshot = Snapshot(read, max_age=5, clock=clock)
    waiting = [asyncio.create_task(snapshot.get()) for _ in range(50)]
    await asyncio.sleep(0)  # let every caller reach the snapshot
    release.set()
    assert await asyncio.gather(*waiting) == [1] * 50
    clock.now += 4.9
    assert (await snapshot.get(), reads) == (1, 1)
    clock.now += 0.1
    assert (await snapshot.get(), reads) == (2, 2)


async def test_a_failed_read_is_not_kept() -> None:
    outcomes: list[int | Exception] = [RuntimeError("database gone"), 7]

    async def read() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    snapshot = Snapshot(read, max_age=5, clock=Seconds())
    with pytest.raises(RuntimeError):
        await snapshot.get()
    assert await snapshot.get() == 7


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Service, str]]:
    settings = load_settings({"DEALSCOUT_DATA_DIR": str(tmp_path), "OPS_HTTP_PORT": "0",
                              "SCAN_TICK_SECONDS": "3600", "OPS_EVALUATE_SECONDS": "3600"}, env_file=None)
    async with build_service(settings, notifiers={"console": RecordingNotifier()}) as running:
        await start_service(running)
        await running.scheduler.stop()  # no job queries the database meanwhile: what is counted is the endpoints'
        assert running.ops.server is not None
        yield running, f"http://127.0.0.1:{running.ops.server.port}"


async def test_a_flood_of_monitoring_requests_reads_the_database_once_per_period(
    service: tuple[Service, str]
) -> None:
    """Pins every detailed-health and metrics request running its own queries (several each): 5,000 anonymous local
    requests pushed the p99 to 2 s and raised a false "API response time" warning in the ops channel."""
    running, base = service
    clock = Seconds()
    running.ops.detailed_health.clock = running.ops.scraped_gauges.clock = clock
    statements: list[str] = []
    event.listen(running.store.engine.sync_engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))

    async with aiohttp.ClientSession() as session:
        async def get(path: str) -> str:
            async with session.get(base + path) as response:
                assert response.status == 200
                return await response.text()

        await get("/api/v1/monitoring/health/detailed")
        await get("/api/v1/monitoring/metrics")
        one_reading = len(statements)
        assert one_reading > 2

        statements.clear()
        paths = ["/api/v1/monitoring/health/detailed", "/api/v1/monitoring/metrics"] * (FLOOD // 2)
        await asyncio.gather(*(get(path) for path in paths))
        assert statements == []  # every request of the flood was served from the readings

        await running.commands.add_search(Actor("a"), Destination("console", "main"), query="lego",
                                          marketplaces="ebay")
        clock.now += SNAPSHOT_SECONDS
        statements.clear()
        assert '"active": 1' in await get("/api/v1/monitoring/health/detailed")
        assert 'dealscout_searches{status="active"} 1.0' in await get("/api/v1/monitoring/metrics")
        assert len(statements) == one_reading

        statements.clear()
        await get("/health")
        assert statements, "liveness asks the database every time"
