"""The Discord front end the service starts: login, command sync, the gateway in the background, and the notifier."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import aiohttp
import discord
from discord import app_commands

from bot.admin import AdminCommands
from bot.commands import Commands
from bot.connection import Backoff, Connection, ConnectionState, ConnectionTracker, Connector
from bot.discord.admin import AdminGroup
from bot.discord.client import DealScoutClient, DiscordRest, Services
from bot.discord.notifier import DiscordLimits, DiscordNotifier
from bot.discord.render import render_gone_notice
from bot.discord.searches import SearchGroup, deals
from bot.discord.settings import SettingsGroup
from bot.discord.views import DYNAMIC_ITEMS
from scout.config import Settings
from scout.errors import ConfigError
from scout.models import Destination, SavedSearch

log = logging.getLogger(__name__)

TOKEN_REFUSED = ("DISCORD_TOKEN was refused by Discord: copy the bot token again from the Developer Portal "
                 "(Bot > Reset Token)")
# The gateway's close code for a token it does not accept (Discord's "Opcodes and Status Codes" page).
GATEWAY_AUTHENTICATION_FAILED = 4004
# discord.py's REST calls have no deadline of their own; a Discord that takes connections and never answers
# must not hold the tries up.
LOGIN_TIMEOUT_SECONDS = 60.0
# What a try can meet when Discord or the way to it is down; anything else is a bug, logged with its traceback.
NETWORK_TROUBLE = (OSError, aiohttp.ClientError, TimeoutError, discord.DiscordException)


class DiscordFrontEnd:
    """Implements dealscout.app.FrontEnd for Discord."""

    platform = "discord"

    def __init__(self, token: str, services: Services, notifier: DiscordNotifier, *,
                 guild_id: int | None = None, backoff: Backoff | None = None) -> None:
        self._token = token
        self.services = services
        self.notifier = notifier
        self._guild_id = guild_id
        self.client: DealScoutClient | None = None
        self._synced = False
        self._connector = Connector(ConnectionTracker("Discord", clock=services.clock), self._connect,
                                    expected=NETWORK_TROUBLE, secrets=(token,), backoff=backoff)

    def __repr__(self) -> str:
        return f"DiscordFrontEnd(guild_id={self._guild_id})"

    def build_client(self) -> DealScoutClient:
        """A fresh client and command tree: what a restart builds, over the same database."""
        client = DealScoutClient(self.services, dynamic_items=DYNAMIC_ITEMS, on_gateway=self._gateway_changed)
        client.tree.add_command(SearchGroup())
        client.tree.add_command(deals)
        client.tree.add_command(SettingsGroup())
        client.tree.add_command(AdminGroup())
        return client

    @property
    def connection(self) -> Connection:
        """Connected while the gateway is up (slash commands and buttons arrive); alerts go over REST regardless."""
        return self._connector.tracker.current

    async def wait_for_connection(self, state: ConnectionState = "connected") -> Connection:
        return await self._connector.tracker.wait_for(state)

    async def login(self) -> DealScoutClient:
        """Check the token and learn who we are (REST only; the gateway comes with start())."""
        if self.client is not None:
            await self.client.close()  # a client that failed to connect holds an HTTP session
        client = self.client = self.build_client()
        try:
            await client.login(self._token)
        except discord.LoginFailure as err:
            await client.close()
            raise ConfigError(TOKEN_REFUSED) from err
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
        """Connect in the background; returns once connected, once the first try failed, or after a few seconds.

        Raises ConfigError when Discord refuses the token. Discord being unreachable is no error here: the front
        end keeps trying, and `connection` says how that goes.
        """
        await self._connector.start()

    async def _connect(self) -> None:
        """One try: log in, publish the commands (once), then run the gateway until discord.py gives up on it."""
        async with asyncio.timeout(LOGIN_TIMEOUT_SECONDS):
            client = await self.login()
            if not self._synced:
                await self.sync_commands()
                self._synced = True
        try:
            # discord.py resumes or reconnects on its own after drops; it raises for a close it will not
            # resume, and returns only when the client was closed, which only stop() does, after cancelling this.
            await client.connect(reconnect=True)
        except discord.ConnectionClosed as err:
            if err.code == GATEWAY_AUTHENTICATION_FAILED:
                raise ConfigError(TOKEN_REFUSED) from err
            raise
        raise ConnectionError("the Discord gateway connection ended")

    def _gateway_changed(self, up: bool) -> None:
        if up:
            self._connector.tracker.mark_connected()
        else:
            self._connector.tracker.mark_retrying("the gateway connection dropped; reconnecting")

    async def stop(self) -> None:
        """Works in every state: never connected, still trying, or connected."""
        await self._connector.stop()
        if self.client is not None:
            await self.client.close()
        await self.notifier.close()

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
    pacing_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep, backoff: Backoff | None = None,
) -> DiscordFrontEnd:
    """The front end from settings.

    `admin`: the service's operator commands, which announce each action through the outbox; without it the front
    end makes its own, which audits but announces nothing. `limits`, `pacing_clock`, `pacing_sleep` and the
    connection tries' `backoff` let tests scale time down.
    """
    if not settings.discord_token:
        raise ConfigError("DISCORD_TOKEN is empty: set it to the bot token from the Discord Developer Portal")
    names = {key: adapter.name for key, adapter in commands.adapters.items()}
    admin = admin or AdminCommands(commands.repo, commands.adapters, clock=clock)
    services = Services(commands=commands, admin=admin, clock=clock, scan_tick_seconds=settings.scan_tick_seconds,
                        baseline_first_scan=settings.baseline_first_scan,
                        manager_role=settings.discord_manager_role, operator_ids=settings.discord_operator_ids)
    limits = limits or dataclasses.replace(DiscordLimits(), outage_backoff_seconds=settings.delivery_backoff_seconds,
                                           outage_backoff_max_seconds=settings.delivery_backoff_max_seconds)
    notifier = DiscordNotifier(DiscordRest(settings.discord_token), marketplace_names=names, limits=limits,
                               clock=pacing_clock, sleep=pacing_sleep)
    return DiscordFrontEnd(settings.discord_token, services, notifier, guild_id=settings.discord_guild_id,
                           backoff=backoff)
