"""The roles that run as several processes: `dealscout worker` (a Celery worker whose processes share one
Prometheus endpoint) and `dealscout api --workers N` (N uvicorn worker processes serving one port)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from typing import TYPE_CHECKING

from scout.config import Settings
from scout.errors import DealScoutError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

# prometheus_client's multiprocess mode: each worker process writes its metrics to files in this folder, and the
# main process serves their sum. It must be set before prometheus_client is first imported.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# What uvicorn imports in each process of `dealscout api --workers N` (see api_worker_app).
API_WORKER_APP = f"{__name__}:api_worker_app"
EXIT_FAILURE = 1


def run_worker(settings: Settings, *, concurrency: int | None = None, name: str | None = None) -> int:
    """Run a Celery worker until it is stopped (SIGTERM: warm shutdown, the running tasks finish)."""
    own_dir = prepare_metrics_dir()
    try:
        from dealscout import tasks

        if settings.worker_metrics_port:
            serve_metrics(settings.worker_metrics_port)
        argv = ["worker", f"--loglevel={settings.log_level}",
                f"--concurrency={concurrency or settings.worker_concurrency}",
                f"--hostname={name or 'celery@' + socket.gethostname()}"]
        tasks.app.worker_main(argv)
        return 0
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def prepare_metrics_dir() -> str | None:
    """Point prometheus_client's multiprocess mode at a folder of its own, unless one is set; the folder made, to
    remove at the end. Call before anything imports prometheus_client (dealscout.tasks does, through the worker)."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    os.environ[MULTIPROC_ENV] = folder = tempfile.mkdtemp(prefix="dealscout-metrics-")
    return folder


def serve_metrics(port: int) -> None:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
    log.info("worker metrics on :%d/metrics", port)


def run_api(settings: Settings, *, workers: int = 1) -> int:
    """Serve the ops API; with `workers` above 1, from that many processes under uvicorn's supervisor, which
    restarts a worker that dies or hangs. Each worker is stateless: it builds the API with `api_worker_app`."""
    from dealscout import app

    if workers <= 1:
        asyncio.run(app.run_api(settings))
        return 0
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from api.server import bind_sockets, uvicorn_config

    # Bound here, so a taken port is told as for one process; the workers inherit the listening socket.
    sockets = bind_sockets(settings.ops_http_host, settings.ops_http_port)
    supervisor = Multiprocess(uvicorn_config(API_WORKER_APP, factory=True, workers=workers), sockets=sockets)
    log.info("ops API listening on http://%s:%s with %d worker processes", settings.ops_http_host,
             sockets[0].getsockname()[1], workers)
    supervisor.run()
    # A worker that could not start (the database unreachable, say) made the supervisor give up.
    return EXIT_FAILURE if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0


def api_worker_app() -> ApiWorkerApp:
    """uvicorn's app factory in each worker process: the settings come from the environment (and .env) the worker
    inherited from `dealscout api`, as that command read them; the database opens when the worker starts serving."""
    from dealscout.cli import configure_logging
    from scout.config import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    return ApiWorkerApp(settings)


class ApiWorkerApp:
    """An ASGI application whose lifespan opens the database and builds the API (dealscout.app.stateless_ops), and
    closes them when the worker stops; requests in between go to that API."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._api: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self._api is not None, "uvicorn runs the lifespan (startup) before any request"
        await self._api(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        from dealscout import app

        await receive()  # lifespan.startup
        async with contextlib.AsyncExitStack() as opened:
            try:
                ops = await opened.enter_async_context(app.stateless_ops(self._settings))
            except DealScoutError as err:
                await send({"type": "lifespan.startup.failed", "message": str(err)})
                return
            self._api = ops.build_api(self._settings)
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
