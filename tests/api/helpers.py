"""A running API on 127.0.0.1 with stand-in health readings, and a client for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families

from api.app import build_app
from api.metrics import RequestStats
from api.server import ApiServer
from ops.metrics import Metrics


@dataclass
class StandInHealth:
    """HealthChecker's liveness, answering what the test sets."""

    ok: bool = True

    async def liveness(self) -> tuple[bool, dict[str, Any]]:
        return self.ok, {"status": "ok" if self.ok else "down"}


@dataclass
class Running:
    app: FastAPI
    server: ApiServer
    metrics: Metrics
    stats: RequestStats
    client: aiohttp.ClientSession
    health: StandInHealth = field(default_factory=StandInHealth)
    report: dict[str, Any] = field(default_factory=lambda: {"status": "ok"})

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def durations(self) -> dict[tuple[str, str, str], float]:
        """http_request_duration_seconds_count by (method, route, status)."""
        counts = {}
        for family in text_string_to_metric_families(self.metrics.render().decode()):
            for sample in family.samples:
                if sample.name == "http_request_duration_seconds_count":
                    labels = sample.labels
                    counts[(labels["method"], labels["route"], labels["status"])] = sample.value
        return counts


@contextlib.asynccontextmanager
async def running_api(routers: Iterable[APIRouter] = (), *, docs: bool = True) -> AsyncIterator[Running]:
    metrics, stats, health = Metrics(), RequestStats(), StandInHealth()
    holder: dict[str, Running] = {}

    async def detailed() -> dict[str, Any]:
        return holder["running"].report

    async def refresh() -> None:
        return None

    app = build_app(health, metrics, stats, detailed=detailed, refresh_metrics=refresh,  # type: ignore[arg-type]
                    routers=routers, docs=docs)
    server = ApiServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.port}") as client:
            running = holder["running"] = Running(app, server, metrics, stats, client, health)
            yield running
    finally:
        await server.stop()
