"""The FastAPI application: /health, /api/v1/monitoring/health/detailed, /api/v1/monitoring/metrics, the docs, and
the routers front ends add (the Telegram webhook)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from api.metrics import RequestMetrics, RequestStats
from api.protocol import OnlyHttp1
from ops.health import HealthChecker
from ops.metrics import Metrics
from scout import __version__

HEALTH = "/health"
DETAILED = "/api/v1/monitoring/health/detailed"
METRICS = "/api/v1/monitoring/metrics"
DOCS = "/docs"
OPENAPI = "/openapi.json"
# No request body the API takes comes near this (a Telegram update is a few KiB); the aiohttp server before it
# refused the same size (its client_max_size).
MAX_BODY_BYTES = 1024 * 1024
MONITORING = ["monitoring"]

Refresh = Callable[[], Awaitable[None]]


class ReportJSON(JSONResponse):
    """JSON as the ops endpoints always wrote it (json.dumps' own spacing), which monitors and the runbook grep."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode()


def build_app(health: HealthChecker, metrics: Metrics, stats: RequestStats, *,
              detailed: Callable[[], Awaitable[dict[str, Any]]], refresh_metrics: Refresh,
              routers: Iterable[APIRouter] = (), docs: bool = True) -> FastAPI:
    """The API application. /health asks `health` every time (a load balancer's probe needs the truth); `detailed`
    gives the detailed report and `refresh_metrics` updates the gauges read from storage before a scrape, both
    cheap under a flood (see ops.assembly's snapshots). `docs` serves /docs and /openapi.json (API_DOCS)."""
    app = FastAPI(title="Deal Scout", version=__version__, docs_url=DOCS if docs else None,
                  openapi_url=OPENAPI if docs else None, redoc_url=None,
                  # /health/ is not /health: no redirect, as before, and one routing pass for an unknown path.
                  redirect_slashes=False)
    # Each added one wraps those before it: the metrics see the 413 the body limit answers.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY_BYTES)
    app.add_middleware(RequestMetrics, metrics=metrics, stats=stats)
    # Outermost: a request no HTTP/1 server should have accepted is not counted as served.
    app.add_middleware(OnlyHttp1)

    @app.get(HEALTH, response_class=ReportJSON, tags=MONITORING,
             summary="Liveness: 200, or 503 naming the failing part")
    async def liveness() -> Response:
        ok, body = await health.liveness()
        return ReportJSON(body, status_code=200 if ok else 503)

    @app.get(DETAILED, response_class=ReportJSON, tags=MONITORING,
             summary="Every part's health: database, scheduler, marketplaces, platforms, outbox")
    async def detailed_health() -> Response:
        report = await detailed()
        return ReportJSON(report, status_code=503 if report["status"] == "down" else 200)

    @app.get(METRICS, response_class=Response, tags=MONITORING, summary="Prometheus metrics",
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def scrape() -> Response:
        await refresh_metrics()
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # HEAD as well: load balancers probe with either, as the aiohttp server's GET routes allowed. Kept out of the
    # schema, where it would repeat each GET's operation.
    for path, endpoint in ((HEALTH, liveness), (DETAILED, detailed_health), (METRICS, scrape)):
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)

    for router in routers:
        app.include_router(router)
    return app
