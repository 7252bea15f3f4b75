"""`dealscout worker` for bench.scale: eBay sent to the bench's fake site, and eBay's request budget raised for it.

    DEALSCOUT_DRILL_RESOLVE='{"www.ebay.com": "http://127.0.0.1:PORT"}' BENCH_EBAY_REQUESTS_PER_MINUTE=60000 \
        python -m bench.scale_worker celery@NAME

Everything else is the worker's own configuration from the environment (DATABASE_URL, CELERY_BROKER_URL, REDIS_URL,
WORKER_CONCURRENCY, ...), read by load_settings with no .env file.
"""

from __future__ import annotations

import json
import os
import sys

from dealscout.cli import configure_logging
from scout.config import load_settings

RATE_ENV = "BENCH_EBAY_REQUESTS_PER_MINUTE"
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
    return run_worker(settings, name=sys.argv[1] if len(sys.argv) > 1 else None)


if __name__ == "__main__":
    sys.exit(main())
