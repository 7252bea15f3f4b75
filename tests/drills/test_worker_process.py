"""A real `dealscout worker` on a real Redis (or RabbitMQ) broker runs the run_search_task messages a leader sends: each fetch
group is fetched once and committed once, a redelivered message commits nothing, and the queue drains to 0."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from kombu import Connection

from bot.commands import Actor, Commands
from dealscout.broker import Broker, build_celery
from dealscout.leader import TaskScanner
from dealscout.parts import utc_now
from scout.config import load_settings
from scout.models import Destination
from scrapers.registry import build_adapters
from scrapers.shared_budget import KEY_PREFIX as BUDGET_KEY_PREFIX
from storage import db
from storage.claims import ScanTasks
from storage.repo import Repository
from tests.db import SHARED_BROKER_QUEUE
from tests.drills.process import REPO_ROOT, service_environment
from tests.drills.service_process import RESOLVE_ENV
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.marketplace import FakeMarketplace

pytestmark = [pytest.mark.drill, SHARED_BROKER_QUEUE]
REDIS_ENV = "DEALSCOUT_TEST_REDIS_URL"
AMQP_ENV = "DEALSCOUT_TEST_AMQP_URL"  # RabbitMQ, the other broker Celery runs on
BROKER_DB = 12  # this test's own Redis database; the budgets' tests use another


def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: no Redis server to run this test on")
    return url.rsplit("/", 1)[0] + f"/{BROKER_DB}"


def broker_url(kind: str) -> str:
    if kind == "redis":
        return redis_url()
    url = os.environ.get(AMQP_ENV)
    if not url:
        pytest.skip(f"{AMQP_ENV} is not set: no RabbitMQ server to run this test on")
    return url


def purge(url: str) -> None:
    with Connection(url) as connection, connection.channel() as channel:
        if connection.transport.driver_type == "redis":
            return  # the test flushes its Redis database
        try:
            channel.queue_purge("celery")
        except connection.channel_errors:
            pass  # no such queue yet: nothing to purge


@pytest.mark.parametrize("broker_kind", ["redis", "amqp"])
async def test_a_real_worker_commits_each_task_once_and_drains_the_queue(
    database_url: str, tmp_path: Path, broker_kind: str,
) -> None:
    broker = broker_url(broker_kind)
    queue = aioredis.from_url(redis_url())  # the budgets' Redis, and the broker when it is Redis
    await queue.flushdb()
    await queue.set(f"{BUDGET_KEY_PREFIX}#epoch", "0")  # budgets kept for long: no first-window hold here
    await asyncio.to_thread(purge, broker)
    env = {"DATABASE_URL": database_url, "DEALSCOUT_DATA_DIR": str(tmp_path), "CELERY_BROKER_URL": broker,
           "REDIS_URL": redis_url(),
           "BASELINE_FIRST_SCAN": "false", "WORKER_METRICS_PORT": "0", "WORKER_CONCURRENCY": "2",
           "RESPECT_ROBOTS_TXT": "false", "DEFAULT_MARKETPLACES": "ebay"}
    settings = load_settings(env, env_file=None)
    engine = db.create_engine(settings.resolved_database_url)
    await db.upgrade(engine)
    repo = Repository(db.session_factory(engine))
    adapters = build_adapters(settings)
    async with FakeMarketplace() as market:
        market.route("/sch/i.html", body=ebay_results_page([(101, "Lego castle 6080", "80"),
                                                            (102, "Lego pirate ship", "120")]))
        commands = Commands(repo, adapters, clock=utc_now)
        for owner in ("a", "b", "c"):
            await commands.add_search(Actor(owner), Destination("console", owner), query="lego",
                                      marketplaces="ebay")
        await commands.add_search(Actor("d"), Destination("console", "d"), query="duplo", marketplaces="ebay")
        sender = Broker(build_celery(settings))
        tasks = ScanTasks(db.session_factory(engine))
        leader = TaskScanner(repo, adapters, None, clock=lambda: utc_now() + _later(), tasks=tasks,
                             send=sender.send, backlog=sender.depth, max_backlog=100,
                             baseline_first_scan=False, lease_seconds=300)
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.drills.worker_process", "celery@drill-worker"], cwd=REPO_ROOT,
            env=service_environment({**env, RESOLVE_ENV: f'{{"www.ebay.com": "{market.url}"}}'}),
            stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT)
        try:
            report = await leader.run_until_idle()
            assert (report.searches, report.fetches) == (4, 2)
            sent = await tasks.take_due(now=utc_now() + _later(), limit=10)
            assert sent == []  # both tasks are on the queue
            # The same message delivered again, as after a worker lost it: it must commit nothing new.
            first_token = (await repo_tokens(engine))[0]
            await sender.send([first_token])
            await _until(lambda: _drained(engine, sender), tmp_path / "worker.log")
            assert len(market.requests_to("/sch/i.html")) == 2  # one fetch per group, none for the duplicate
            logs = await repo.load_task_logs(since=utc_now().replace(year=2000))
            assert len(logs) == 2 and all(log.status == "success" for log in logs)
            summary = await repo.outbox_summary(count_sent=False)
            assert summary.pending == 6  # two lego listings for three searches, nothing for duplo, each once
            assert await sender.depth() == 0
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            await queue.flushdb()
            await queue.aclose()
            await engine.dispose()


def _later():  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(seconds=10)


async def repo_tokens(engine) -> list[str]:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    async with engine.connect() as connection:
        return list((await connection.scalars(sa.text("SELECT token FROM scan_tasks"))).all())


async def _drained(engine, sender) -> bool:  # type: ignore[no-untyped-def]
    return not await repo_tokens(engine) and await sender.depth() == 0


async def _until(condition, log_path: Path, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not finish:\n" + log_path.read_text(errors="replace")[-4000:])
        await asyncio.sleep(0.2)  # waiting on another process: poll with a deadline
