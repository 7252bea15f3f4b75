"""Persistent buttons: pause or remove a search from its alert, confirm a removal, page through /search list."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import discord

from bot.buttons import existed_by, latest_creation, parse_stamp
from bot.discord.client import DealScoutClient, reply_error, send_ephemeral
from bot.discord.render import (
    CONFIRM_REMOVE_TEMPLATE,
    PAGE_TEMPLATE,
    PAUSE_TEMPLATE,
    REMOVE_TEMPLATE,
    confirm_remove_custom_id,
    escape_markdown,
    page_custom_id,
    pause_custom_id,
    remove_custom_id,
)
from bot.discord.searches import load_page
from scout.errors import InputError, NotFoundError

log = logging.getLogger(__name__)

Handler = Callable[[DealScoutClient, discord.Interaction], Awaitable[None]]


def scope_of(interaction: discord.Interaction) -> str | None:
    return str(interaction.guild_id) if interaction.guild_id else None


async def guarded(interaction: discord.Interaction, handler: Handler) -> None:
    """Run a button's action; refusals become an ephemeral reply, bugs are logged and reported plainly."""
    client = interaction.client
    assert isinstance(client, DealScoutClient)
    try:
        await handler(client, interaction)
    except InputError as err:
        await reply_error(interaction, err)
    except Exception:  # the handler guard: log, tell the presser, keep serving
        log.exception("button %s failed", (interaction.data or {}).get("custom_id"))
        await send_ephemeral(interaction, "Something went wrong on our side and it has been logged.")


def _existed_at(interaction: discord.Interaction, stamp: datetime | None) -> datetime:
    """The latest moment the pressed button's search can have been created (see bot.buttons)."""
    posted = interaction.message.created_at if interaction.message is not None else None
    moment = latest_creation(stamp, posted)
    if moment is None:
        raise InputError("This button is too old to tell which search it was for: use the /search commands.")
    return moment


async def _refusal(client: DealScoutClient, search_id: int, moment: datetime, verb: str) -> NotFoundError:
    # The alert shows the search to the whole channel anyway, so saying whose it is reveals nothing new; a newer
    # search that was given the same id is nobody's business here.
    search = await client.services.commands.repo.load_search(search_id)
    if search is None or not existed_by(search, moment):
        return NotFoundError(f"Search #{search_id} no longer exists.")
    return NotFoundError(f"Only the owner of search #{search_id} or a server manager can {verb} it.")


class PauseButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PAUSE_TEMPLATE):
    def __init__(self, search_id: int, stamp: datetime | None) -> None:
        super().__init__(discord.ui.Button(label="Pause search", style=discord.ButtonStyle.secondary,
                                           custom_id=pause_custom_id(search_id, stamp)))
        self.search_id, self.stamp = search_id, stamp

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> PauseButton:
        return cls(int(match["search_id"]), parse_stamp(match["stamp"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, self._pause)

    async def _pause(self, client: DealScoutClient, interaction: discord.Interaction) -> None:
        actor = await client.access.actor(interaction)
        moment = _existed_at(interaction, self.stamp)
        try:
            search = await client.services.commands.pause_search(
                actor, self.search_id, scope=scope_of(interaction), reason=f"paused by {interaction.user.name}",
                existed_at=moment)
        except NotFoundError:
            raise await _refusal(client, self.search_id, moment, "pause") from None
        text = client.services.commands.describe(search)
        await send_ephemeral(interaction, f"Paused {escape_markdown(text)}.\n"
                                          f"Resume it with `/search resume {search.id}`.")


class RemoveButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REMOVE_TEMPLATE):
    def __init__(self, search_id: int, stamp: datetime | None) -> None:
        super().__init__(discord.ui.Button(label="Remove search", style=discord.ButtonStyle.danger,
                                           custom_id=remove_custom_id(search_id, stamp)))
        self.search_id, self.stamp = search_id, stamp

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> RemoveButton:
        return cls(int(match["search_id"]), parse_stamp(match["stamp"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, self._ask)

    async def _ask(self, client: DealScoutClient, interaction: discord.Interaction) -> None:
        actor = await client.access.actor(interaction)
        moment = _existed_at(interaction, self.stamp)
        try:
            search = await client.services.commands.show_search(actor, self.search_id, scope=scope_of(interaction),
                                                                existed_at=moment)
        except NotFoundError:
            raise await _refusal(client, self.search_id, moment, "remove") from None
        # A removal cannot be undone, so one more press confirms it.
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="Yes, remove it", style=discord.ButtonStyle.danger,
                                        custom_id=confirm_remove_custom_id(search.id, search.created_at)))
        text = client.services.commands.describe(search)
        await send_ephemeral(interaction, f"Remove {escape_markdown(text)}? This cannot be undone.", view=view)


class ConfirmRemoveButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CONFIRM_REMOVE_TEMPLATE):
    def __init__(self, search_id: int, stamp: datetime | None) -> None:
        super().__init__(discord.ui.Button(label="Yes, remove it", style=discord.ButtonStyle.danger,
                                           custom_id=confirm_remove_custom_id(search_id, stamp)))
        self.search_id, self.stamp = search_id, stamp

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> ConfirmRemoveButton:
        return cls(int(match["search_id"]), parse_stamp(match["stamp"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, self._remove)

    async def _remove(self, client: DealScoutClient, interaction: discord.Interaction) -> None:
        actor = await client.access.actor(interaction)
        moment = _existed_at(interaction, self.stamp)
        try:
            search = await client.services.commands.remove_search(actor, self.search_id, scope=scope_of(interaction),
                                                                  existed_at=moment)
        except NotFoundError:
            raise await _refusal(client, self.search_id, moment, "remove") from None
        text = client.services.commands.describe(search)
        await interaction.response.edit_message(content=f"Removed {escape_markdown(text)}.", view=None)


class PageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PAGE_TEMPLATE):
    """Previous/next under /search list. The list is the presser's own, so anyone may press."""

    def __init__(self, page: int, everyone: bool) -> None:
        super().__init__(discord.ui.Button(label="Page", custom_id=page_custom_id(page, everyone)))
        self.page, self.everyone = page, everyone

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> PageButton:
        return cls(int(match["page"]), match["everyone"] == "1")

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, self._turn)

    async def _turn(self, client: DealScoutClient, interaction: discord.Interaction) -> None:
        embed, view = await load_page(client, interaction, page=self.page, everyone=self.everyone)
        await interaction.response.edit_message(embed=embed, view=view)


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (PauseButton, RemoveButton, ConfirmRemoveButton,
                                                                 PageButton)
