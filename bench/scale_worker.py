"""`dealscout worker` for bench.scale: eBay sent to the bench's fake site, and eBay's request budget raised for it.

    DEALSCOUT_DRILL_RESOLVE='{"www.ebay.com": "http://127.0.0.1:PORT"}' BENCH_EBAY_REQUESTS_PER_MINUTE=60000 \
        python -m bench.scale_worker celery@NAME
    BENCH_PROFILE_DIR=/tmp/prof ...   # also cProfile each task process (bench.scale --profile)

Everything else is the worker's own configuration from the environment (DATABASE_URL, CELERY_BROKER_URL, REDIS_URL,
WORKER_CONCURRENCY, ...), read by load_settings with no .env file.
"""

from __future__ import annotations

import json
import os
import sys

from dealscout.roles import prepare_metrics_dir

prepare_metrics_dir()  # before the imports below load prometheus_client: the worker's metrics are read

from dealscout.cli import configure_logging  # noqa: E402
from scout.config import load_settings  # noqa: E402

RATE_ENV = "BENCH_EBAY_REQUESTS_PER_MINUTE"
PROFILE_ENV = "BENCH_PROFILE_DIR"  # set: each task process writes its cProfile there when it stops
# The drills' name for it (tests.drills.service_process.RESOLVE_ENV), not imported from there: that module imports
# the whole service, prometheus_client with it, before run_worker sets PROMETHEUS_MULTIPROC_DIR, and the task
# processes' metrics would then stay in memory where the worker's endpoint cannot sum them.
RESOLVE_ENV = "DEALSCOUT_DRILL_RESOLVE"


def main() -> int:
    settings = load_settings(env_file=None)
    configure_logging(settings.log_level)
    from dealscout import tasks
    from dealscout.roles import run_worker
    from scrapers.ebay.adapter import EbayAdapter

    # Set on the class before the pool forks, so every worker process's fetcher gives the eBay lane this budget:
    # a finite one, so each request still takes its slot in the shared Redis window as it would in production.
    EbayAdapter.requests_per_minute = float(os.environ[RATE_ENV])
    tasks.RESOLVE = json.loads(os.environ.get(RESOLVE_ENV) or "{}")
    if os.environ.get(PROFILE_ENV):
        profile_pool(os.environ[PROFILE_ENV])
    return run_worker(settings, name=sys.argv[1] if len(sys.argv) > 1 else None)


def profile_pool(folder: str) -> None:
    """cProfile each task process's CPU time from the moment its stores are open until it stops, one file per
    process."""
    import cProfile
    import time

    from celery.signals import worker_process_init, worker_process_shutdown

    # CPU time, not wall time: a send on a busy machine would otherwise be charged for the processes that ran
    # while this one waited for a core.
    profiler = cProfile.Profile(time.process_time)

    # Connected after dealscout.tasks' own handlers, so each runs after the process has opened its stores.
    @worker_process_init.connect(weak=False)
    def _start(**_: object) -> None:
        profiler.enable()

    @worker_process_shutdown.connect(weak=False)
    def _stop(**_: object) -> None:
        profiler.disable()
        profiler.dump_stats(os.path.join(folder, f"{os.getpid()}.prof"))


if __name__ == "__main__":
    sys.exit(main())
