"""The Celery application of Deal Scout's workers and its one task, `run_search_task`.

    celery -A dealscout.tasks inspect active      # what each worker runs now
    dealscout worker                              # a worker with the settings' concurrency and metrics

Settings come from the environment like every role's (CELERY_BROKER_URL names the broker). Each worker process
opens its event loop, database engine and HTTP session once, after the fork, and runs every task it receives on
that loop; the tasks are settled for at-least-once delivery, and the task's own commit makes a second delivery
commit nothing (see dealscout.worker).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from dealscout.broker import TASK_NAME, build_celery

# Loaded here, in the worker's main process, so that its pool processes inherit it instead of each importing the
# whole service after the fork.
from dealscout.worker import WorkerProcess, metrics_for_process
from scout.config import Settings, load_settings

log = logging.getLogger(__name__)

def _settings() -> Settings:
    return load_settings(env_file=os.environ.get("DEALSCOUT_ENV_FILE", ".env"))


settings = _settings()
app = build_celery(settings)

# Marketplace hosts sent elsewhere (see HttpFetcher's resolve): set before the worker starts by a launcher that
# points the workers at local fakes; None in production.
RESOLVE: dict[str, str] | None = None
# One per worker process, opened after the fork (worker_process_init) and used by every task it runs.
_loop: asyncio.AbstractEventLoop | None = None
_process: Any = None


@worker_process_init.connect
def _open_process(**_: Any) -> None:
    global _loop, _process
    _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    _process = WorkerProcess(settings, resolve=RESOLVE, metrics=metrics_for_process())
    _loop.run_until_complete(_process.open())


@worker_process_shutdown.connect
def _close_process(**_: Any) -> None:
    if _loop is not None and _process is not None:
        _loop.run_until_complete(_process.close())
        _loop.close()


@app.task(name=TASK_NAME, bind=True)
def run_search_task(self: Any, token: str) -> str:
    """Scan one claimed fetch group and commit its results; returns what became of it."""
    if _loop is None or _process is None:
        _open_process()  # a solo or threaded pool sends no worker_process_init
    assert _loop is not None and _process is not None and _process.runner is not None
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    outcome = _loop.run_until_complete(_process.runner.run(token, redelivered=redelivered))
    return outcome.status

