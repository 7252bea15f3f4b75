"""`dealscout worker` as a child process for drills, its marketplace hosts pointed at local fakes.

    DEALSCOUT_DRILL_RESOLVE='{"www.ebay.com": "http://127.0.0.1:PORT"}' python -m tests.drills.worker_process NAME

DEALSCOUT_DRILL_BUDGETS sets marketplaces' request budgets as in tests.drills.leader_process.
"""

from __future__ import annotations

import json
import os
import sys

from dealscout.roles import prepare_metrics_dir

prepare_metrics_dir()  # before the imports below load prometheus_client

from dealscout.cli import configure_logging  # noqa: E402
from scout.config import load_settings  # noqa: E402
from tests.drills.leader_process import apply_budgets  # noqa: E402
from tests.drills.service_process import RESOLVE_ENV  # noqa: E402


def main() -> int:
    settings = load_settings(env_file=None)
    configure_logging(settings.log_level)
    apply_budgets(settings)  # in the main process, before the pool forks: every task process inherits it
    from dealscout import tasks
    from dealscout.roles import run_worker

    tasks.RESOLVE = json.loads(os.environ.get(RESOLVE_ENV) or "{}")
    return run_worker(settings, name=sys.argv[1] if len(sys.argv) > 1 else None)


if __name__ == "__main__":
    sys.exit(main())
