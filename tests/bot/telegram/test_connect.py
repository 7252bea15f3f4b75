"""Telegram down at start, a refused token, polling that fails: the front end keeps trying, never stops the service,
alerts wait in the outbox meanwhile, and `connection` says where it stands."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from typing import Self

import pytest
from aiohttp import web

from bot.commands import Actor, Commands
from bot.connection import Backoff
from bot.telegram.frontend import TelegramFrontEnd
from bot.telegram.notifier import NOT_CONNECTED_WAIT
from scout.config import load_settings
from scout.delivery import Dispatcher
from scout.errors import ConfigError
from scout.models import Destination
from storage.repo import Repository
from tests.bot.telegram.helpers import HANG, ask, queue_alerts, quick_notifier, settings_for
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.scout.clock import ManualClock

# Real waits between tries, short enough that the next try comes at once.
QUICK = Backoff(first_seconds=0.01, max_seconds=0.05)
CHAT = 42


def quick_front(api: FakeBotApi, commands: Commands, clock: ManualClock, **extra: str) -> TelegramFrontEnd:
    return TelegramFrontEnd(settings_for(api, **extra), commands, clock=clock, notifier=quick_notifier(),
                            backoff=QUICK)


def end_outage(api: FakeBotApi) -> None:
    api.outage(until=-math.inf)


def front_at(api_url: str, commands: Commands, clock: ManualClock) -> TelegramFrontEnd:
    settings = load_settings({"TELEGRAM_TOKEN": TOKEN, "TELEGRAM_API_URL": api_url}, env_file=None)
    return TelegramFrontEnd(settings, commands, clock=clock, backoff=QUICK)


class SilentBotApi:
    """A Bot API that takes every request and never answers (until the test ends): a try stays in flight."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._hold)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/bot"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hold(self, request: web.Request) -> web.Response:
        self.asked.set()
        await self._release.wait()
        return web.Response(status=502)


def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_start_returns_while_telegram_is_down_and_connects_once_it_is_back(
        api: FakeBotApi, commands: Commands, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    """Pins: `dealscout run` exited 1 with a traceback when Telegram could not be reached at start."""
    caplog.set_level(logging.INFO)
    api.outage(until=math.inf)
    front = quick_front(api, commands, clock)
    try:
        await front.start()
        assert front.connection.state == "connecting"
        assert front.connection.error is not None and "Bad Gateway" in front.connection.error
        assert front.notifier.bot is None, "no bot for alerts until getMe answered"
        await asyncio.wait_for(api.wait_for_call("getMe", status=502, count=3), HANG)
        # One warning when the trouble began, none for each try after it.
        assert len([r for r in caplog.records if r.name == "bot.connection" and r.levelno >= logging.WARNING]) == 1
        end_outage(api)
        connection = await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
        assert connection.error is None and front.notifier.bot is not None
        assert api.commands, "the command menu is registered"
        assert "/help" in (await ask(api, "/start", chat_id=CHAT)).text, "commands are answered"
    finally:
        await front.stop()
    assert api.token not in caplog.text


async def test_alerts_wait_in_the_outbox_until_telegram_is_connected(
        api: FakeBotApi, commands: Commands, repo: Repository, clock: ManualClock) -> None:
    api.outage(until=math.inf)
    front = quick_front(api, commands, clock)
    dispatcher = Dispatcher(repo, {"telegram": front.notifier}, clock=clock)
    try:
        await front.start()
        search = await commands.add_search(Actor(str(CHAT)), Destination("telegram", str(CHAT)), scope=str(CHAT),
                                           query="lego", marketplaces="ebay")
        await queue_alerts(repo, clock(), search, 1)
        await dispatcher.drain()
        assert api.sent == []
        end_outage(api)
        await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
        clock.advance(seconds=NOT_CONNECTED_WAIT)
        await dispatcher.drain()
        assert len(api.sent_to(CHAT)) == 1
    finally:
        await front.stop()


async def test_a_token_refused_at_start_is_a_config_error_that_does_not_carry_the_token(
        api: FakeBotApi, commands: Commands, clock: ManualClock) -> None:
    front = quick_front(api, commands, clock, TELEGRAM_TOKEN="999:refused-token-value")
    try:
        with pytest.raises(ConfigError, match="TELEGRAM_TOKEN was refused by Telegram") as refused:
            await front.start()
        # PTB's InvalidToken quotes the token; chained, it would show in any logged traceback.
        assert refused.value.__cause__ is None and refused.value.__suppress_context__
        assert front.connection.state == "down"
    finally:
        await front.stop()


async def test_a_token_refused_once_telegram_is_back_reports_telegram_down_without_raising(
        api: FakeBotApi, commands: Commands, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    api.outage(until=math.inf)
    front = quick_front(api, commands, clock)
    token = api.token
    try:
        await front.start()
        api.token = "999:the-token-that-is-valid-now"
        end_outage(api)
        connection = await asyncio.wait_for(front.wait_for_connection("down"), HANG)
        assert connection.error == "TELEGRAM_TOKEN was refused by Telegram: check it with @BotFather"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "@BotFather" in errors[0].getMessage()
        assert front.notifier.bot is None
    finally:
        await front.stop()
    assert token not in caplog.text


async def test_stop_works_before_start_between_tries_and_while_a_try_is_in_flight(
        api: FakeBotApi, commands: Commands, clock: ManualClock) -> None:
    await quick_front(api, commands, clock).stop()

    refused = front_at(f"http://127.0.0.1:{closed_port()}/bot", commands, clock)
    await refused.start()
    assert refused.connection.state == "connecting" and "ConnectError" in str(refused.connection.error)
    await refused.stop()
    assert (refused.connection.state, refused.connection.error) == ("down", "stopped")

    async with SilentBotApi() as silent:
        held = front_at(silent.base_url, commands, clock)
        starting = asyncio.create_task(held.start())
        await asyncio.wait_for(silent.asked.wait(), HANG)
        await held.stop()
        await asyncio.wait_for(starting, HANG)  # start() gives up waiting for the first try, and raises nothing
        assert (held.connection.state, held.connection.error) == ("down", "stopped")


async def test_a_webhook_telegram_did_not_take_is_set_on_a_later_try(
        api: FakeBotApi, commands: Commands, clock: ManualClock) -> None:
    secret = "webhook-secret-value"
    api.fail("setWebhook", 500, "Internal Server Error")
    front = quick_front(api, commands, clock, TELEGRAM_MODE="webhook", TELEGRAM_WEBHOOK_SECRET=secret,
                        TELEGRAM_WEBHOOK_URL="https://bot.example.org/tg/hook")
    try:
        await front.start()
        await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
        assert api.webhook["secret_token"] == secret
        assert [call.status for call in api.calls_to("setWebhook")] == [500, 200]
        assert len(api.calls_to("getMe")) == 1 and len(api.calls_to("setMyCommands")) == 1, "done once, kept"
    finally:
        await front.stop()


async def test_polling_that_fails_reports_telegram_connecting_until_a_poll_answers_again(
        api: FakeBotApi, commands: Commands, clock: ManualClock) -> None:
    front = quick_front(api, commands, clock)
    try:
        await front.start()
        assert front.connection.connected
        dropped = asyncio.ensure_future(front.wait_for_connection("connecting"))
        api.fail("getUpdates", 502, "Bad Gateway")
        api.type("/start", chat_id=CHAT)  # ends the poll in flight: the next one fails
        assert (await asyncio.wait_for(dropped, HANG)).error == "getUpdates answered 502"
        await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
    finally:
        await front.stop()
