"""Outage drills on the real service process: a chat platform that cannot be reached at start, and a database that
stops taking writes between a send and its record.

    .venv/bin/pytest -rA tests/drills/test_outages.py
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.commands import Actor, Commands
from dealscout.app import Store, open_store
from scout.config import load_settings
from scout.models import Destination
from scrapers.registry import build_adapters
from storage.db import create_engine
from tests.db import BACKENDS, fresh_database
from tests.drills.process import ServiceProcess, service_environment
from tests.drills.service_process import DISCORD_API_ENV, RESOLVE_ENV
from tests.drills.world import LISTING_LINK
from tests.fakes.discord_api import API_PREFIX
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.marketplace import FakeMarketplace
from tests.fakes.telegram_api import TOKEN, FakeBotApi

pytestmark = pytest.mark.drill

CHAT = 4242
LISTINGS = [(300_000_000_101, "Drill press", "40.00"), (300_000_000_102, "Cordless drill", "25.00"),
            (300_000_000_103, "Drill bits", "5.00")]
# Each condition below is reached within seconds; these bound a broken run.
TIMEOUT = 90.0
# How often a condition read from outside (the ops API, the database, the service's log) is looked at again.
POLL_SECONDS = 0.1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_settings(data_dir: Path, market: FakeMarketplace, **extra: str) -> dict[str, str]:
    return {
        "DEALSCOUT_DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO", "SCAN_TICK_SECONDS": "1",
        "DELIVERY_TICK_SECONDS": "0.2", "BASELINE_FIRST_SCAN": "false", "RESPECT_ROBOTS_TXT": "false",
        "OPS_EVALUATE_SECONDS": "3600", "TELEGRAM_TOKEN": TOKEN, RESOLVE_ENV: json.dumps({"www.ebay.com": market.url}),
        **extra,
    }


async def watch_chat(store: Store, env: dict[str, str]) -> None:
    commands = Commands(store.repo, build_adapters(load_settings(env, env_file=None)), clock=lambda: datetime.now(UTC))
    await commands.add_search(Actor(str(CHAT)), Destination("telegram", str(CHAT)), scope=str(CHAT), query="drill",
                              marketplaces="ebay")


async def until(check: Callable[[], Any]) -> Any:
    """Look again until `check` (a coroutine function) returns something true; returns it."""
    while not (found := await check()):
        await asyncio.sleep(POLL_SECONDS)
    return found


def health_at(port: int, wanted: Callable[[dict[str, Any]], bool]) -> Callable[[], Any]:
    async def check() -> dict[str, Any] | None:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{port}/api/v1/monitoring/health/detailed") as response:
                report = await response.json()
        except (aiohttp.ClientError, ValueError):
            return None
        return report if wanted(report) else None
    return check


def delivered(api: FakeBotApi) -> list[str]:
    return [listing for call in api.sent for listing in LISTING_LINK.findall(call.text)]


async def test_a_chat_platform_unreachable_at_start_does_not_stop_the_service(tmp_path: Path) -> None:
    """Regression: `dealscout run` exited 1 with a traceback when Telegram or Discord could not be reached at start.
    The service runs, says the platforms are down, keeps the alerts, and delivers them once Telegram is back."""
    telegram_port, discord_port, ops_port = free_port(), free_port(), free_port()
    async with FakeMarketplace() as market:
        market.route("/sch/i.html", body=ebay_results_page(LISTINGS))
        env = service_settings(tmp_path, market, TELEGRAM_API_URL=f"http://127.0.0.1:{telegram_port}/bot",
                               DISCORD_TOKEN="drill-token-not-a-secret", OPS_HTTP_PORT=str(ops_port),
                               **{DISCORD_API_ENV: f"http://127.0.0.1:{discord_port}{API_PREFIX}"})
        async with open_store(load_settings(env, env_file=None)) as store:
            await watch_chat(store, env)
            service = ServiceProcess(service_environment(env), tmp_path)
            await service.start()
            try:
                report = await service.run_until(until(health_at(ops_port, lambda r: all(
                    r["platforms"][p]["error"] for p in ("discord", "telegram")))), timeout=TIMEOUT)
                assert report["status"] == "degraded"
                for platform in ("discord", "telegram"):
                    assert (report["platforms"][platform]["connected"],
                            report["platforms"][platform]["state"]) == (False, "connecting")
                assert "drill-token" not in json.dumps(report) and TOKEN not in json.dumps(report)

                async def waiting() -> bool:
                    return (await store.repo.outbox_summary()).pending >= len(LISTINGS)
                await service.run_until(until(waiting), timeout=TIMEOUT)

                async with FakeBotApi(port=telegram_port) as api:
                    await service.run_until(api.wait_for(lambda: len(delivered(api)) >= len(LISTINGS)),
                                            timeout=TIMEOUT)
                    report = await service.run_until(until(health_at(
                        ops_port, lambda r: r["platforms"]["telegram"]["connected"])), timeout=TIMEOUT)
                    assert report["platforms"]["discord"]["state"] == "connecting"
                    assert await service.stop() == 0
            finally:
                await service.close()
    assert sorted(delivered(api)) == sorted(str(n) for n, _, _ in LISTINGS)
    assert "Traceback" not in service.log_text()


@asynccontextmanager
async def writes_refused(backend: str, url: str) -> AsyncIterator[None]:
    """The database stops taking the service's writes for real: on PostgreSQL it refuses every connection; on
    SQLite it refuses to record any outbox row as sent."""
    if backend == "postgres":
        name = make_url(url).database
        admin = create_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False))
        try:
            async with admin.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                await conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                           "WHERE datname = :name"), {"name": name})
            yield
            async with admin.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        finally:
            await admin.dispose()
        return
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "CREATE TRIGGER drill_full BEFORE UPDATE ON alert_outbox WHEN NEW.status = 'sent' "
                "BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END"))
        yield
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TRIGGER drill_full"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_send_the_database_cannot_record_is_not_sent_again(backend: str, tmp_path: Path) -> None:
    """Regression: with SQLite on a full disk one alert was printed 84 times in 25 s: recording it as sent failed,
    so every tick sent it again. Here the service's database stops taking writes while an alert is in flight; the
    alert is sent once, nothing else goes out while the database fails, and everything is sent once it is back."""
    async with fresh_database(backend, tmp_path) as url, FakeMarketplace() as market, FakeBotApi() as api:
        market.route("/sch/i.html", body=ebay_results_page(LISTINGS))
        env = service_settings(tmp_path, market, DATABASE_URL=url, TELEGRAM_API_URL=api.base_url,
                               OPS_HTTP_PORT="0")
        async with open_store(load_settings(env, env_file=None)) as store:
            await watch_chat(store, env)
        api.hold_answers(from_send=0)
        service = ServiceProcess(service_environment(env), tmp_path)
        await service.start()
        try:
            await service.run_until(api.wait_for(lambda: len(api.sent) == 1), timeout=TIMEOUT)
            async with writes_refused(backend, url):
                api.release_answers()  # the first alert reached the chat; recording it fails

                async def tried_again_or_resent() -> bool:
                    return service.log_text().count("the database still fails") >= 2 or len(api.sent) > 1
                await service.run_until(until(tried_again_or_resent), timeout=TIMEOUT)
                sent_while_failing = delivered(api)
            await service.run_until(api.wait_for(lambda: len(delivered(api)) >= len(LISTINGS)), timeout=TIMEOUT)
            async with open_store(load_settings(env, env_file=None), migrate=False) as store:
                async def all_recorded() -> bool:
                    summary = await store.repo.outbox_summary()
                    return summary.sent >= len(LISTINGS) and summary.pending == 0
                await service.run_until(until(all_recorded), timeout=TIMEOUT)
            assert await service.stop() == 0
        finally:
            await service.close()
    assert len(sent_while_failing) == 1, f"sent while the database failed: {sent_while_failing}"
    assert sorted(delivered(api)) == sorted(str(n) for n, _, _ in LISTINGS), "each alert exactly once"
