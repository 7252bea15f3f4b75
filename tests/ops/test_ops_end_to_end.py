"""End to end: the marketplace starts answering 429, the circuit opens, the ops chat hears it once, an operator
resumes from Telegram, the probe succeeds, the ops chat hears one recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.commands import Actor
from dealscout import cli
from dealscout.app import build_service, start_service
from scout.config import load_settings
from scout.models import Destination
from scout.pacing import Rate
from tests.bot.telegram.helpers import ask, visible
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.marketplace import FakeMarketplace
from tests.fakes.telegram_api import FakeBotApi

OPS_CHAT = -100500
OPERATOR = 7
STRANGER = 8


async def test_block_circuit_ops_message_operator_resume_recovery(tmp_path: Path) -> None:
    async with FakeMarketplace() as market, FakeBotApi() as api:
        market.route("/sch/i.html", body=ebay_results_page([(1, "Lego castle", "10.00")]))
        settings = load_settings({
            "DEALSCOUT_DATA_DIR": str(tmp_path), "HTTP_MAX_RETRIES": "0", "OPS_HTTP_PORT": "0",
            "SCAN_TICK_SECONDS": "3600", "OPS_EVALUATE_SECONDS": "3600", "CIRCUIT_FAILURE_THRESHOLD": "2",
            "CIRCUIT_BASE_WAIT_SECONDS": "3600", "TELEGRAM_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url,
            "TELEGRAM_OPERATOR_IDS": str(OPERATOR), "OPS_TELEGRAM_CHAT_ID": str(OPS_CHAT),
        }, env_file=None)
        async with build_service(settings, resolve=market.resolving("www.ebay.com")) as service:
            service.fetcher.set_host_rate("www.ebay.com", float("inf"))
            (front,) = service.front_ends
            front.notifier.set_limits(per_chat=Rate(1, 0.001), per_group=Rate(20, 0.06), overall=Rate(30, 0.001))
            await start_service(service)
            await service.commands.add_search(Actor("u"), Destination("console", "main"), query="lego castle",
                                              marketplaces="ebay")
            await service.commands.add_search(Actor("u"), Destination("console", "main"), query="lego ship",
                                              marketplaces="ebay")
            await service.dispatcher.drain()
            ops_before = len(api.sent_to(OPS_CHAT))  # the start-up message

            market.fail("/sch/i.html", 429, times=2)
            await service.scanner.run_until_idle()
            await service.dispatcher.drain()
            opened = [visible(c.text) for c in api.sent_to(OPS_CHAT)[ops_before:]]
            assert len(opened) == 1
            assert opened[0].startswith("CRITICAL ebay: circuit open for 60 min after 2 failed fetches: HTTP 429")

            # While open, nothing is fetched and nothing more is said.
            requests = len(market.requests_to("/sch/i.html"))
            for search in await service.store.repo.load_searches():
                await service.store.repo.update_search(search.id, now=search.created_at, next_run_at=search.created_at)
            await service.scanner.run_until_idle()
            assert len(market.requests_to("/sch/i.html")) == requests
            assert len(api.sent_to(OPS_CHAT)) == ops_before + 1

            refused = await ask(api, "/admin resume ebay", chat_id=STRANGER, user_id=STRANGER)
            assert "Only Deal Scout operators" in visible(refused.text)
            resumed = await ask(api, "/admin resume ebay", chat_id=OPERATOR, user_id=OPERATOR)
            assert visible(resumed.text).startswith(f"eBay resumed by {OPERATOR}.")
            for search in await service.store.repo.load_searches():
                await service.store.repo.update_search(search.id, now=search.created_at, next_run_at=search.created_at)
            await service.scanner.run_until_idle()
            await service.dispatcher.drain()
            assert len(market.requests_to("/sch/i.html")) == requests + 1  # one probe

            said = [visible(c.text) for c in api.sent_to(OPS_CHAT)[ops_before + 1:]]
            assert said == [f"eBay resumed by {OPERATOR}.",
                            "RECOVERED ebay: fetches succeed again; its searches run as usual."]
            audit = await service.store.repo.load_task_logs(since=search.created_at)
            assert [log.query for log in audit if log.query and log.query.startswith("circuit")] == [
                "circuit open -> closed", "circuit closed -> open"]


async def test_an_operator_action_from_the_cli_reaches_the_ops_chat(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: only chat /admin actions were announced; `dealscout marketplace pause` from a shell changed the
    service without a word to the ops channel."""
    async with FakeBotApi() as api:
        env = {"DEALSCOUT_DATA_DIR": str(tmp_path), "OPS_HTTP_PORT": "0", "SCAN_TICK_SECONDS": "3600",
               "OPS_EVALUATE_SECONDS": "3600", "TELEGRAM_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url,
               "OPS_TELEGRAM_CHAT_ID": str(OPS_CHAT)}
        async with build_service(load_settings(env, env_file=None)) as service:
            await start_service(service)
            await service.dispatcher.drain()
            heard = len(api.sent_to(OPS_CHAT))  # the start-up message

            for name, value in env.items():
                monkeypatch.setenv(name, value)
            monkeypatch.chdir(tmp_path)
            code = await asyncio.to_thread(cli.main, ["marketplace", "pause", "ebay", "--reason", "captcha wall"])
            assert code == 0

            await service.dispatcher.drain()
            said = [visible(c.text) for c in api.sent_to(OPS_CHAT)[heard:]]
            assert said == ["eBay paused by cli: captcha wall. Its searches are skipped until resumed."]
