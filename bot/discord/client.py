"""The discord.py client and command tree of Deal Scout, the one error-to-reply mapping, and the plain REST caller."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import discord
from discord import app_commands
from multidict import CIMultiDict

from bot.admin import AdminCommands
from bot.commands import Commands
from bot.discord.access import Access
from bot.discord.render import CONTENT_LIMIT, cut
from scout.errors import InputError, NotFoundError, PermissionDeniedError

log = logging.getLogger(__name__)

USER_AGENT = (f"DiscordBot (https://github.com/deal-scout, 0.1) Python/{sys.version_info[0]}.{sys.version_info[1]} "
              f"aiohttp/{aiohttp.__version__}")
REST_TIMEOUT_SECONDS = 15.0


@dataclass
class Services:
    """What the slash commands and buttons act on; reachable from any interaction as `interaction.client.services`."""

    commands: Commands
    admin: AdminCommands
    clock: Callable[[], datetime]
    scan_tick_seconds: float = 15.0
    baseline_first_scan: bool = True
    manager_role: str | None = None
    operator_ids: frozenset[int] = frozenset()


def render_error(error: InputError) -> str:
    """One user message per error type. The messages of InputError and its subclasses are safe to show as they are."""
    if isinstance(error, PermissionDeniedError):
        return f"\u26d4 {error}"
    if isinstance(error, NotFoundError):
        return f"\U0001f50e {error}"
    return f"\u26a0\ufe0f {error}"


async def send_ephemeral(interaction: discord.Interaction, content: str | None = None, *,
                         embed: discord.Embed | None = None, view: discord.ui.View | None = None,
                         file: discord.File | None = None) -> None:
    """Reply only the caller sees; a follow-up when the interaction was already answered (or deferred).

    With a file, discord.py sends the reply as multipart/form-data: the JSON payload and the file's bytes.
    """
    kwargs: dict[str, Any] = {"ephemeral": True}
    if content is not None:
        kwargs["content"] = cut(content, CONTENT_LIMIT)
    if embed is not None:
        kwargs["embed"] = embed
    if view is not None:
        kwargs["view"] = view
    if file is not None:
        kwargs["file"] = file
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)


async def reply_error(interaction: discord.Interaction, error: InputError) -> None:
    await send_ephemeral(interaction, render_error(error))


class DealScoutTree(app_commands.CommandTree):
    """The one command tree: maps every failure to an ephemeral reply that changes nothing."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        if isinstance(original, InputError):
            await reply_error(interaction, original)
            return
        if isinstance(error, app_commands.NoPrivateMessage):
            await send_ephemeral(interaction, "Deal Scout's commands work in a server, not in direct messages.")
            return
        if isinstance(error, app_commands.TransformerError):
            await send_ephemeral(interaction, f"\u26a0\ufe0f {str(error.value)[:100]!r} is not a valid value here.")
            return
        name = interaction.command.qualified_name if interaction.command else "?"
        # The handler guard: log the bug, tell the user plainly, keep serving.
        log.error("/%s failed for an unexpected reason", name, exc_info=original)
        try:
            await send_ephemeral(interaction, "Something went wrong on our side and it has been logged. "
                                              "Please try again in a minute.")
        except discord.HTTPException:
            log.warning("could not tell the user that /%s failed", name)


class DealScoutClient(discord.AutoShardedClient):
    """One gateway connection (sharded automatically when Discord says so), guild events only, mentions off."""

    def __init__(self, services: Services, *,
                 dynamic_items: tuple[type[discord.ui.DynamicItem[Any]], ...] = (),
                 on_gateway: Callable[[bool], None] = lambda up: None) -> None:
        """`on_gateway(up)` hears each time the gateway comes up (READY, RESUMED) or drops."""
        # Guilds intent: channel and role caches for permission checks. No privileged intents are needed.
        super().__init__(intents=discord.Intents(guilds=True), allowed_mentions=discord.AllowedMentions.none(),
                         chunk_guilds_at_startup=False)
        self.services = services
        self.access = Access(self, manager_role=services.manager_role, operator_ids=services.operator_ids)
        self.tree = DealScoutTree(self)
        self._dynamic_items = dynamic_items
        self._on_gateway = on_gateway

    async def setup_hook(self) -> None:
        # Buttons on alerts sent before a restart carry their search id in custom_id; these parse them again.
        self.add_dynamic_items(*self._dynamic_items)

    async def on_connect(self) -> None:
        # READY: interactions arrive from now on. on_ready comes later, once every server has streamed in.
        self._on_gateway(True)

    async def on_resumed(self) -> None:
        self._on_gateway(True)

    async def on_disconnect(self) -> None:
        self._on_gateway(False)

    async def on_ready(self) -> None:
        log.info("Discord gateway ready as %s in %d servers", self.user, len(self.guilds))


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    data: Any
    headers: Mapping[str, str]

    @property
    def error_code(self) -> int | None:
        return self.data.get("code") if isinstance(self.data, dict) else None

    @property
    def error_message(self) -> str:
        if isinstance(self.data, dict):
            return str(self.data.get("message", ""))[:200]
        return str(self.data or "")[:200]


class DiscordRest:
    """One REST call per method call, answered as it came (status, body, headers).

    discord.py's HTTPClient retries 5xx and sleeps through 429s on its own clock; delivery needs those as values
    so the dispatcher and the pacer decide, so alerts go through this small caller to the same API base.
    """

    def __init__(self, token: str, *, timeout_seconds: float = REST_TIMEOUT_SECONDS) -> None:
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return "DiscordRest(token=***)"

    async def request(self, method: str, path: str, *, payload: Any = None) -> RestResponse:
        """Raises aiohttp.ClientError or asyncio.TimeoutError when no answer came at all."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Authorization": f"Bot {self._token}", "User-Agent": USER_AGENT}
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        # Read at call time: discord.http.Route.BASE is where the API lives (tests point it at a local fake).
        url = discord.http.Route.BASE + path
        async with self._session.request(method, url, data=body, headers=headers) as response:
            text = await response.text()
            data: Any = text
            if response.headers.get("Content-Type", "").startswith("application/json") and text:
                try:
                    data = json.loads(text)
                except ValueError:
                    data = text
            return RestResponse(response.status, data, CIMultiDict(response.headers))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def view_from_components(rows: list[dict[str, Any]]) -> discord.ui.View | None:
    """A view of plain buttons matching rendered components; the dynamic items in views.py answer their presses."""
    if not rows:
        return None
    view = discord.ui.View(timeout=None)
    for number, row in enumerate(rows):
        for button in row["components"]:
            view.add_item(discord.ui.Button(label=button.get("label"), custom_id=button.get("custom_id"),
                                            url=button.get("url"), disabled=button.get("disabled", False),
                                            style=discord.ButtonStyle(button.get("style", 2)), row=number))
    return view
