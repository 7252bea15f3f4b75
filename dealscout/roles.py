"""`dealscout worker`: a Celery worker whose processes share one Prometheus endpoint."""

from __future__ import annotations

import logging
import os
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
