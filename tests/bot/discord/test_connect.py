"""Discord down at start, a refused token, a dropped gateway: the front end keeps trying, never stops the service,
and `connection` says where it stands."""

from __future__ import annotations

import asyncio
import json
import logging
from types import TracebackType
from typing import Self

import discord
import pytest
from aiohttp import web

from bot.commands import Commands
from bot.connection import Backoff
from bot.discord.frontend import DiscordFrontEnd, build_discord_front_end
from scout.errors import ConfigError
from tests.bot.discord.conftest import discord_settings
from tests.bot.discord.harness import CHANNEL_ID, GUILD_ID, VirtualClock
from tests.fakes.discord_api import API_PREFIX, FakeDiscord
from tests.fakes.discord_gateway import FakeGateway

TOKEN = "test-token-not-secret"
# Real waits between tries, short enough that the next try comes at once.
QUICK = Backoff(first_seconds=0.01, max_seconds=0.05)
# A test waits for an event, not for time; this only turns a hang into a failure.
HANG = 10.0
# Discord's gateway close codes: "unknown error, reconnect" (resumable), "authentication failed", "sharding
# required" (discord.py gives up on the connection; a fresh login asks Discord for the shard count again).
UNKNOWN_ERROR, AUTHENTICATION_FAILED, SHARDING_REQUIRED = 4000, 4004, 4011


class DiscordOutage:
    """Discord's API while it is down: every request answered `status` (503, as its edge does), or held unanswered
    with `hold`. discord.py is pointed here while entered; `requests` counts the tries."""

    def __init__(self, status: int = 503, *, hold: bool = False) -> None:
        self.status = status
        self.hold = hold
        self.requests = 0
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._saved_base = discord.http.Route.BASE

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        discord.http.Route.BASE = f"http://{host}:{port}{API_PREFIX}"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        discord.http.Route.BASE = self._saved_base
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for_requests(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.requests >= count), HANG)

    async def _answer(self, request: web.Request) -> web.Response:
        async with self._changed:
            self.requests += 1
            self._changed.notify_all()
        if self.hold:
            await self._release.wait()
        body = json.dumps({"message": "Discord is having trouble", "code": 0}).encode()
        return web.Response(status=self.status, body=body, headers={"Content-Type": "application/json"})


def quick_front(commands: Commands, vclock: VirtualClock) -> DiscordFrontEnd:
    return build_discord_front_end(discord_settings(), commands, clock=vclock, pacing_clock=vclock.monotonic,
                                   pacing_sleep=vclock.sleep, backoff=QUICK)


def warnings_from_connection(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.connection" and r.levelno >= logging.WARNING]


async def test_start_returns_while_discord_is_down_and_connects_once_it_is_back(
        commands: Commands, vclock: VirtualClock, caplog: pytest.LogCaptureFixture) -> None:
    """Pins: `dealscout run` exited 1 with a traceback when Discord could not be reached at start."""
    caplog.set_level(logging.INFO)
    async with DiscordOutage() as outage:
        front = quick_front(commands, vclock)
        try:
            await front.start()
            assert front.connection.state == "connecting"
            assert front.connection.error is not None and "503" in front.connection.error
            await outage.wait_for_requests(3)
            # One warning when the trouble began, none for each try after it.
            assert len(warnings_from_connection(caplog)) == 1
            gateway = FakeGateway()
            async with FakeDiscord(clock=vclock.monotonic, gateway=gateway) as fake:
                fake.add_channel(GUILD_ID, CHANNEL_ID)
                connection = await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
                assert connection.connected and connection.error is None
                assert {command["name"] for command in fake.synced["global"]} == {
                    "search", "deals", "settings", "admin"}
                assert gateway.sessions == ["identify"]
                await front.stop()
        finally:
            await front.stop()
    assert TOKEN not in caplog.text


async def test_a_token_refused_at_start_is_a_config_error(commands: Commands, vclock: VirtualClock) -> None:
    async with DiscordOutage(status=401):
        front = quick_front(commands, vclock)
        try:
            with pytest.raises(ConfigError, match="DISCORD_TOKEN was refused by Discord"):
                await front.start()
            assert front.connection.state == "down"
        finally:
            await front.stop()


async def test_a_token_refused_once_discord_is_back_reports_discord_down_without_raising(
        commands: Commands, vclock: VirtualClock, caplog: pytest.LogCaptureFixture) -> None:
    async with DiscordOutage() as outage:
        front = quick_front(commands, vclock)
        try:
            await front.start()
            outage.status = 401
            connection = await asyncio.wait_for(front.wait_for_connection("down"), HANG)
            assert connection.error is not None and connection.error.startswith("DISCORD_TOKEN was refused")
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1 and "Reset Token" in errors[0].getMessage()
        finally:
            await front.stop()
    assert TOKEN not in caplog.text


async def test_stop_works_before_start_and_while_a_try_is_in_flight(commands: Commands,
                                                                    vclock: VirtualClock) -> None:
    await quick_front(commands, vclock).stop()
    async with DiscordOutage(hold=True) as outage:
        front = quick_front(commands, vclock)
        starting = asyncio.create_task(front.start())
        await outage.wait_for_requests(1)
        await front.stop()
        await asyncio.wait_for(starting, HANG)  # start() gives up waiting for the first try, and raises nothing
        assert (front.connection.state, front.connection.error) == ("down", "stopped")


async def test_a_dropped_gateway_connection_is_resumed_and_reported_meanwhile(
        commands: Commands, vclock: VirtualClock) -> None:
    gateway = FakeGateway()
    async with FakeDiscord(clock=vclock.monotonic, gateway=gateway):
        front = quick_front(commands, vclock)
        try:
            await front.start()
            await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
            dropped = asyncio.ensure_future(front.wait_for_connection("connecting"))
            await gateway.drop(UNKNOWN_ERROR)
            assert "gateway connection dropped" in str((await asyncio.wait_for(dropped, HANG)).error)
            await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
            assert gateway.sessions == ["identify", "resume"]
        finally:
            await front.stop()


async def test_a_gateway_connection_discord_py_gives_up_on_is_made_again(commands: Commands,
                                                                        vclock: VirtualClock) -> None:
    """Pins: the gateway task logged "slash commands are unavailable until restart" and gave up."""
    gateway = FakeGateway()
    async with FakeDiscord(clock=vclock.monotonic, gateway=gateway) as fake:
        front = quick_front(commands, vclock)
        try:
            await front.start()
            await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
            dropped = asyncio.ensure_future(front.wait_for_connection("connecting"))
            await gateway.drop(SHARDING_REQUIRED)
            await asyncio.wait_for(dropped, HANG)
            await gateway.wait_for_sessions(2)
            await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
            assert gateway.sessions == ["identify", "identify"]
            assert fake.requests.count(("GET", "/users/@me")) == 2, "logged in again"
            assert len([r for r in fake.requests if r[0] == "PUT"]) == 1, "the commands are published once"
        finally:
            await front.stop()


async def test_a_token_the_gateway_refuses_reports_discord_down(commands: Commands, vclock: VirtualClock) -> None:
    gateway = FakeGateway()
    async with FakeDiscord(clock=vclock.monotonic, gateway=gateway):
        front = quick_front(commands, vclock)
        try:
            await front.start()
            await asyncio.wait_for(front.wait_for_connection("connected"), HANG)
            await gateway.drop(AUTHENTICATION_FAILED)
            connection = await asyncio.wait_for(front.wait_for_connection("down"), HANG)
            assert connection.error is not None and connection.error.startswith("DISCORD_TOKEN was refused")
        finally:
            await front.stop()
