"""The Discord front end the service starts: login, command sync, the gateway in the background, and the notifier."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import discord
from discord import app_commands

from bot.admin import AdminCommands
from bot.commands import Commands
from bot.discord.admin import AdminGroup
from bot.discord.client import DealScoutClient, DiscordRest, Services
from bot.discord.notifier import DiscordLimits, DiscordNotifier
from bot.discord.render import render_gone_notice
from bot.discord.searches import SearchGroup, deals
from bot.discord.views import DYNAMIC_ITEMS
from scout.config import Settings
from scout.errors import ConfigError
from scout.models import Destination, SavedSearch

log = logging.getLogger(__name__)


class DiscordFrontEnd:
    """Implements scout.app.FrontEnd for Discord."""

    platform = "discord"

    def __init__(self, token: str, services: Services, notifier: DiscordNotifier, *,
                 guild_id: int | None = None) -> None:
        self._token = token
        self.services = services
        self.notifier = notifier
        self._guild_id = guild_id
        self.client: DealScoutClient | None = None
        self._gateway: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[object]] = set()

    def __repr__(self) -> str:
        return f"DiscordFrontEnd(guild_id={self._guild_id})"

    def build_client(self) -> DealScoutClient:
        """A fresh client and command tree: what a restart builds, over the same database."""
        client = DealScoutClient(self.services, dynamic_items=DYNAMIC_ITEMS)
        client.tree.add_command(SearchGroup())
        client.tree.add_command(deals)
        client.tree.add_command(AdminGroup())
        return client

    async def login(self) -> DealScoutClient:
        """Check the token and learn who we are (REST only; the gateway comes with start())."""
        client = self.client = self.build_client()
        try:
            await client.login(self._token)
        except discord.LoginFailure as err:
            await client.close()
            raise ConfigError("DISCORD_TOKEN was refused by Discord: copy the bot token again from the "
                              "Developer Portal (Bot > Reset Token)") from err
        return client

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """Publish the slash commands: to DISCORD_GUILD_ID at once when set, else globally."""
        assert self.client is not None, "login() first"
        tree = self.client.tree
        if self._guild_id is not None:
            guild = discord.Object(self._guild_id)
            tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
        else:
            synced = await tree.sync()
        log.info("synced %d Discord commands %s", len(synced),
                 "to one server" if self._guild_id is not None else "globally")
        return synced

    async def start(self) -> None:
        await self.login()
        await self.sync_commands()
        self._gateway = asyncio.create_task(self._run_gateway(), name="discord-gateway")

    async def wait_until_ready(self) -> None:
        assert self.client is not None, "start() first"
        await self.client.ready_event.wait()

    async def _run_gateway(self) -> None:
        assert self.client is not None
        try:
            await self.client.connect(reconnect=True)
        except Exception:  # noqa: BLE001 - the background task's guard: alerts still go out over REST
            log.exception("the Discord gateway connection stopped; slash commands are unavailable until restart")

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self._gateway is not None:
            self._gateway.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gateway
        for task in list(self._background):
            task.cancel()
        await self.notifier.close()

    async def announce(self, message: str) -> None:
        """Echo an admin action to the ops channel without holding up the operator's reply."""
        task: asyncio.Task[object] = asyncio.create_task(self._send_ops(message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_ops(self, message: str) -> None:
        result = await self.notifier.send_ops(message)
        if not result.delivered:
            log.info("admin action not echoed to Discord: %s", result.error)

    async def destination_gone(self, destination: Destination, reason: str, searches: list[SavedSearch]) -> None:
        """DM each owner once, listing their searches that were paused and why."""
        by_owner: dict[str, list[SavedSearch]] = {}
        for search in searches:
            by_owner.setdefault(search.owner, []).append(search)
        for owner, theirs in by_owner.items():
            if not owner.isdigit():
                continue
            result = await self.notifier.send_direct(int(owner), render_gone_notice(theirs, destination, reason))
            if not result.delivered:
                log.info("could not tell the owner of %d paused searches by DM: %s", len(theirs), result.error)


def build_discord_front_end(
    settings: Settings, commands: Commands, *, clock: Callable[[], datetime], admin: AdminCommands | None = None,
    limits: DiscordLimits | None = None, pacing_clock: Callable[[], float] = time.monotonic,
    pacing_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> DiscordFrontEnd:
    """The front end from settings.

    `admin`: the service's operator commands (their announcements reach every ops channel); without it the front
    end makes its own, announcing to OPS_DISCORD_CHANNEL_ID. `limits`, `pacing_clock` and `pacing_sleep` let tests
    scale time down.
    """
    if not settings.discord_token:
        raise ConfigError("DISCORD_TOKEN is empty: set it to the bot token from the Discord Developer Portal")
    names = {key: adapter.name for key, adapter in commands.adapters.items()}
    own_admin = admin is None
    admin = admin or AdminCommands(commands.repo, commands.adapters, clock=clock)
    services = Services(commands=commands, admin=admin, clock=clock, scan_tick_seconds=settings.scan_tick_seconds,
                        baseline_first_scan=settings.baseline_first_scan,
                        manager_role=settings.discord_manager_role, operator_ids=settings.discord_operator_ids)
    limits = limits or dataclasses.replace(DiscordLimits(), outage_backoff_seconds=settings.delivery_backoff_seconds,
                                           outage_backoff_max_seconds=settings.delivery_backoff_max_seconds)
    notifier = DiscordNotifier(DiscordRest(settings.discord_token), marketplace_names=names, limits=limits,
                               ops_channel_id=settings.ops_discord_channel_id, clock=pacing_clock,
                               sleep=pacing_sleep)
    front = DiscordFrontEnd(settings.discord_token, services, notifier, guild_id=settings.discord_guild_id)
    if own_admin:
        admin.set_announcer(front.announce)
    return front
