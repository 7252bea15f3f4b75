"""The ops HTTP server (aiohttp): /health, /api/v1/monitoring/health/detailed, /api/v1/monitoring/metrics."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST

from ops.health import HealthChecker, percentile
from ops.metrics import Metrics
from scout.errors import ConfigError

log = logging.getLogger(__name__)

HEALTH = "/health"
DETAILED = "/api/v1/monitoring/health/detailed"
METRICS = "/api/v1/monitoring/metrics"
# The window the API p95 and error rate thresholds look at.
WINDOW_SECONDS = 300.0
WINDOW_MAX_REQUESTS = 10_000

Refresh = Callable[[], Awaitable[None]]


class RequestStats:
    """Recent requests' durations and statuses, for the API p95 and error-rate thresholds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: deque[tuple[float, float, int]] = deque(maxlen=WINDOW_MAX_REQUESTS)

    def add(self, seconds: float, status: int) -> None:
        self._seen.append((self._clock(), seconds, status))

    def _recent(self) -> list[tuple[float, float, int]]:
        horizon = self._clock() - WINDOW_SECONDS
        while self._seen and self._seen[0][0] < horizon:
            self._seen.popleft()
        return list(self._seen)

    def p95_seconds(self) -> float | None:
        return percentile([seconds for _, seconds, _ in self._recent()], 0.95)

    def error_rate(self) -> float | None:
        recent = self._recent()
        if not recent:
            return None
        return sum(1 for _, _, status in recent if status >= 500) / len(recent)


def build_app(health: HealthChecker, metrics: Metrics, stats: RequestStats, *,
              detailed: Callable[[], Awaitable[dict[str, Any]]], refresh_metrics: Refresh,
              extra_routes: Iterable[web.RouteDef] = ()) -> web.Application:
    """The ops application. /health asks `health` every time (a load balancer's probe needs the truth); `detailed`
    gives the detailed report and `refresh_metrics` updates the gauges read from storage before a scrape, both
    cheap under a flood (see ops.assembly's snapshots)."""

    @web.middleware
    async def measure(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as err:
            status = err.status
            raise
        finally:
            elapsed = time.perf_counter() - started
            # The route pattern, never the raw path: labels stay low-cardinality.
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            metrics.http_request_duration.labels(request.method, route, str(status)).observe(elapsed)
            stats.add(elapsed, status)

    async def liveness(_: web.Request) -> web.Response:
        ok, body = await health.liveness()
        return web.json_response(body, status=200 if ok else 503)

    async def detailed_health(_: web.Request) -> web.Response:
        report = await detailed()
        return web.json_response(report, status=503 if report["status"] == "down" else 200)

    async def scrape(_: web.Request) -> web.Response:
        await refresh_metrics()
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(middlewares=[measure])
    app.add_routes([web.get(HEALTH, liveness), web.get(DETAILED, detailed_health), web.get(METRICS, scrape),
                    *extra_routes])
    return app


class RequestLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log, except that a malformed request is one debug line: it is the client's mistake, answered
    with a 400, and a flood of them must not fill the log with ERROR tracebacks."""

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:
        err = kwargs.get("exc_info")
        if isinstance(err, HttpProcessingError):
            reason = (err.message.strip().splitlines() or [""])[0].rstrip(":")
            self.logger.debug("malformed request from %s answered %s: %s", args[0] if args else "?", err.code, reason)
            return
        super().log(level, msg, *args, **kwargs)  # type: ignore[arg-type]


class OpsServer:
    """Runs the ops application on the configured address."""

    def __init__(self, app: web.Application, host: str, port: int, *, reuse_port: bool = False) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._reuse_port = reuse_port  # several processes serve one port (dealscout api --workers N)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None,
                                     logger=RequestLog(logging.getLogger("aiohttp.server"), {}))
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_port=self._reuse_port or None)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            raise ConfigError(f"the ops API cannot listen on {self._host}:{self._port} ({err.strerror}); "
                              "set OPS_HTTP_HOST / OPS_HTTP_PORT (0 picks a free port)") from err
        server = site._server  # the bound socket tells the real port when 0 was asked for
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("ops API listening on http://%s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
