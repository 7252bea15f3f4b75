"""The Celery side every role shares: the application's settings for at-least-once delivery, and what the leader
asks of the broker (send tasks, the queue's depth, the workers that answer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from celery import Celery
from kombu import Connection

from dealscout.leader import lease_margin
from scout.config import Settings
from scout.errors import ConfigError

log = logging.getLogger(__name__)

TASK_NAME = "run_search_task"
# The queue the runbook watches with `redis-cli LLEN celery`.
QUEUE = "celery"
# How long the leader waits for the broker or the workers before it takes them as unreachable.
BROKER_TIMEOUT_SECONDS = 3.0



def build_celery(settings: Settings) -> Celery:
    broker = settings.celery_broker_url
    if not broker:
        raise ConfigError("CELERY_BROKER_URL: required by the leader and the workers (e.g. redis://127.0.0.1:6379/0)")
    app = Celery("dealscout", broker=broker)
    # A worker starts a task only while its searches' leases last this long: a task never outlives its lease.
    limit = lease_margin(settings.scan_lease_seconds).total_seconds()
    app.conf.update(
        task_default_queue=QUEUE,
        task_ignore_result=True,  # a task's outcome is in the database (task_logs), not in a result backend
        # At least once: a message is acknowledged after its task ran, and given back when its worker died.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=limit,
        task_soft_time_limit=limit * 0.9,
        # Redis hands an unacknowledged message to another worker after this long: longer than any task may
        # run, so a slow task is never given out twice while it runs.
        broker_transport_options={"visibility_timeout": int(settings.scan_lease_seconds * 4)},
        broker_connection_timeout=BROKER_TIMEOUT_SECONDS,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # Flower and `celery events` see the tasks
        task_send_sent_event=True,
    )
    return app


class Broker:
    """The leader's view of the queue. Every call runs in a thread (kombu and the Celery control API block)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    async def send(self, tokens: Sequence[str]) -> None:
        """Put one run_search_task message per token on the queue; raises when the broker does not take them."""
        await asyncio.to_thread(self._send, list(tokens))

    def _send(self, tokens: list[str]) -> None:
        with self._app.producer_or_acquire() as producer:
            for token in tokens:
                self._app.send_task(TASK_NAME, args=[token], queue=QUEUE, producer=producer, retry=False)

    async def depth(self) -> int | None:
        """Messages waiting on the queue (what `redis-cli LLEN celery` says); None when the broker cannot say."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._depth), BROKER_TIMEOUT_SECONDS * 2)
        except Exception as err:  # noqa: BLE001 - an unreachable broker is a figure the ops channel reports
            log.debug("queue depth unknown: %s", err)
            return None

    def _depth(self) -> int:
        with Connection(self._app.conf.broker_url, connect_timeout=BROKER_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1)
            with connection.channel() as channel:
                if connection.transport.driver_type == "redis":
                    # The queue is a Redis list: LLEN, as the runbook says (an empty list does not exist, and
                    # neither does its binding after a restart, so a passive declare would say "not found").
                    return int(channel.client.llen(QUEUE))
                try:
                    return int(channel.queue_declare(queue=QUEUE, passive=True).message_count)
                except connection.channel_errors:
                    return 0  # the queue has not been declared yet: nothing waits on it

    async def workers_alive(self) -> int | None:
        """Workers that answer a ping within a second; None when the broker cannot be reached."""
        try:
            return await asyncio.to_thread(lambda: len(self._app.control.ping(timeout=1.0) or []))
        except Exception as err:  # noqa: BLE001 - see depth
            log.debug("workers unknown: %s", err)
            return None
