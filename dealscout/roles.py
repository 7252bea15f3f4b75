"""The roles that run as several processes: `dealscout worker` (a Celery worker whose processes share one
Prometheus endpoint) and `dealscout api --workers N` (N processes serving one port)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import shutil
import socket
import tempfile

from scout.config import Settings

log = logging.getLogger(__name__)

# prometheus_client's multiprocess mode: each worker process writes its metrics to files in this folder, and the
# main process serves their sum. It must be set before prometheus_client is first imported.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def run_worker(settings: Settings, *, concurrency: int | None = None, name: str | None = None) -> int:
    """Run a Celery worker until it is stopped (SIGTERM: warm shutdown, the running tasks finish)."""
    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="dealscout-metrics-")
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


def serve_metrics(port: int) -> None:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
    log.info("worker metrics on :%d/metrics", port)


def run_api(settings: Settings, *, workers: int = 1) -> int:
    """Serve the ops API from `workers` processes sharing its port (SO_REUSEPORT); each is stateless."""
    from dealscout import app

    if workers <= 1:
        asyncio.run(app.run_api(settings))
        return 0
    spawn = multiprocessing.get_context("spawn")
    children = [spawn.Process(target=_serve_api, args=(settings,), daemon=False) for _ in range(workers)]
    for child in children:
        child.start()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()
    return max((child.exitcode or 0) for child in children)


def _serve_api(settings: Settings) -> None:
    from dealscout import app
    from dealscout.cli import configure_logging

    configure_logging(settings.log_level)
    asyncio.run(app.run_api(settings, reuse_port=True))
