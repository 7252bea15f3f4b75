"""The leader's view of the broker: what it sends is what `redis-cli LLEN celery` (or RabbitMQ) counts, an empty or
never-declared queue is 0, and an unreachable broker is 'cannot say', never 0."""

from __future__ import annotations

import asyncio
import os

import pytest
import redis.asyncio as aioredis
from kombu import Connection

from dealscout.broker import QUEUE, Broker, build_celery
from scout.config import load_settings
from tests.db import SHARED_BROKER_QUEUE

REDIS_ENV = "DEALSCOUT_TEST_REDIS_URL"
AMQP_ENV = "DEALSCOUT_TEST_AMQP_URL"
BROKER_DB = 10  # this file's own Redis database

pytestmark = SHARED_BROKER_QUEUE


def broker_url(kind: str) -> str:
    url = os.environ.get(REDIS_ENV if kind == "redis" else AMQP_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV if kind == 'redis' else AMQP_ENV} is not set: no such broker to run this test on")
    return url.rsplit("/", 1)[0] + f"/{BROKER_DB}" if kind == "redis" else url


def purge(url: str) -> None:
    with Connection(url) as connection, connection.channel() as channel:
        if connection.transport.driver_type == "redis":
            channel.client.flushdb()
            return
        try:
            channel.queue_purge(QUEUE)
        except connection.channel_errors:
            pass  # no such queue yet: nothing to purge


def broker(url: str) -> Broker:
    return Broker(build_celery(load_settings({"CELERY_BROKER_URL": url}, env_file=None)))


@pytest.mark.parametrize("kind", ["redis", "amqp"])
async def test_the_depth_is_what_was_sent_and_not_yet_taken(kind: str) -> None:
    url = broker_url(kind)
    await asyncio.to_thread(purge, url)
    leader = broker(url)
    try:
        assert await leader.depth() == 0  # empty, or never declared
        await leader.send(["a" * 32, "b" * 32, "c" * 32])
        assert await leader.depth() == 3
        if kind == "redis":
            client = aioredis.from_url(url)
            assert await client.llen("celery") == 3  # the runbook's command agrees
            await client.aclose()
    finally:
        await asyncio.to_thread(purge, url)


async def test_an_unreachable_broker_cannot_say() -> None:
    leader = broker("redis://127.0.0.1:1/0")
    assert await leader.depth() is None
    with pytest.raises(Exception):  # noqa: B017 - whatever kombu raises: the leader keeps the tasks due
        await leader.send(["a" * 32])
