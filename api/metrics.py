"""Request metrics for the API: one ASGI middleware feeding the duration histogram and the thresholds' window."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops.health import percentile
from ops.metrics import Metrics

# The window the API p95 and error rate thresholds look at.
WINDOW_SECONDS = 300.0
WINDOW_MAX_REQUESTS = 10_000

# Label values stay a fixed, small set whatever clients send: a path no route matches, or a method nobody serves,
# would otherwise add a time series per distinct value.
UNMATCHED = "unmatched"
OTHER_METHOD = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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


def route_label(scope: Scope) -> str:
    """The matched route's template (`/api/v1/searches/{search_id}`), never the raw path."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) else UNMATCHED


class RequestMetrics:
    """Times every HTTP request to its last byte and records (method, route template, status).

    Installed inside FastAPI's error middleware: a handler that raises is counted as the 500 that answers it.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics, stats: RequestStats) -> None:
        self.app = app
        self._histogram = metrics.http_request_duration
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER_METHOD
            self._histogram.labels(method, route_label(scope), str(status)).observe(elapsed)
            self._stats.add(elapsed, status)
