"""The /settings group: how the current channel hears its alerts (quiet hours, layout), changed by its managers."""

from __future__ import annotations

import functools
from zoneinfo import available_timezones

import discord
from discord import app_commands

from bot.discord.client import DealScoutClient, send_ephemeral
from bot.discord.replies import render_layout, render_quiet_hours, render_settings
from scout.errors import PermissionDeniedError
from scout.models import Destination

PLATFORM = "discord"
AUTOCOMPLETE_CHOICES = 25  # Discord shows at most 25 suggestions
LAYOUT_CHOICES = [
    app_commands.Choice(name="full: a card with picture and buttons", value="full"),
    app_commands.Choice(name="compact: one line of text per alert", value="compact"),
]
MANAGERS_ONLY = ("Only members who can manage this channel (or the server) change how it hears alerts. "
                 "`/settings show` tells anyone what is set.")


def _client(interaction: discord.Interaction) -> DealScoutClient:
    client = interaction.client
    assert isinstance(client, DealScoutClient)
    return client


def _here(interaction: discord.Interaction) -> Destination:
    return Destination(PLATFORM, str(interaction.channel_id))


async def _check_can_change(client: DealScoutClient, interaction: discord.Interaction) -> None:
    if not await client.access.can_manage_channel(interaction):
        raise PermissionDeniedError(MANAGERS_ONLY)


@functools.cache
def _zone_names() -> tuple[str, ...]:
    # available_timezones() walks the time zone database on every call; the names do not change while we run.
    return tuple(sorted(available_timezones()))


async def _timezone_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Zone names containing what was typed ("berlin" finds Europe/Berlin), those starting with it first."""
    wanted = current.strip().casefold().replace(" ", "_")
    names = _zone_names()
    found = sorted((name for name in names if wanted in name.casefold()),
                   key=lambda name: (not name.casefold().startswith(wanted), name))
    return [app_commands.Choice(name=name, value=name) for name in found[:AUTOCOMPLETE_CHOICES]]


@app_commands.guild_only()
class SettingsGroup(app_commands.Group, name="settings", description="How this channel hears its deal alerts"):
    """Changes need Manage Channels here or a server manager (bot.discord.access.Access.can_manage_channel)."""

    @app_commands.command(name="quiet", description="Quiet hours: alerts found in this daily window wait until it ends")
    @app_commands.describe(window="A daily window such as 22:00-07:00, or off",
                           timezone="Time zone of the window, e.g. Europe/Berlin (default: as set before, else UTC)")
    @app_commands.autocomplete(timezone=_timezone_choices)
    async def quiet(self, interaction: discord.Interaction, window: str, timezone: str | None = None) -> None:
        client = _client(interaction)
        await _check_can_change(client, interaction)
        commands = client.services.commands
        if timezone is None or not timezone.strip():
            current = (await commands.destination_settings(_here(interaction))).quiet_hours
            timezone = current.timezone if current is not None else None
        settings = await commands.set_quiet_hours(_here(interaction), window, timezone)
        await send_ephemeral(interaction, render_quiet_hours(settings))

    @app_commands.command(name="layout", description="How alerts look here: a full card, or one compact line")
    @app_commands.describe(layout="full (picture and buttons) or compact (one line of text)")
    @app_commands.choices(layout=LAYOUT_CHOICES)
    async def layout(self, interaction: discord.Interaction, layout: str) -> None:
        client = _client(interaction)
        await _check_can_change(client, interaction)
        settings = await client.services.commands.set_layout(_here(interaction), layout)
        await send_ephemeral(interaction, render_layout(settings))

    @app_commands.command(name="show", description="This channel's quiet hours and alert layout")
    async def show(self, interaction: discord.Interaction) -> None:
        commands = _client(interaction).services.commands
        settings = await commands.destination_settings(_here(interaction))
        await send_ephemeral(interaction, render_settings(settings, commands.now()))
