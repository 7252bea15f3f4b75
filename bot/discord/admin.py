"""The /admin group for operators: pause, resume or back off a marketplace, service status, recent failures."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.discord.client import DealScoutClient, send_ephemeral
from bot.discord.render import EMBED_DESCRIPTION_LIMIT, NOTICE_COLOUR, cut, escape_markdown

AUTOCOMPLETE_CHOICES = 25
MAX_FAILURE_HOURS = 168  # a week of task logs is as far back as the runbook's diagnosis looks


def _client(interaction: discord.Interaction) -> DealScoutClient:
    client = interaction.client
    assert isinstance(client, DealScoutClient)
    return client


async def _marketplaces(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    adapters = _client(interaction).services.commands.adapters
    wanted = current.strip().lower()
    return [app_commands.Choice(name=adapter.name, value=key) for key, adapter in sorted(adapters.items())
            if not wanted or key.startswith(wanted) or adapter.name.lower().startswith(wanted)][:AUTOCOMPLETE_CHOICES]


async def _answer(interaction: discord.Interaction, title: str, text: str) -> None:
    # Status lines quote errors from marketplaces: scraped text, so escaped.
    embed = {"title": title, "description": cut(escape_markdown(text), EMBED_DESCRIPTION_LIMIT), "color": NOTICE_COLOUR}
    await send_ephemeral(interaction, embed=discord.Embed.from_dict(embed))


# Hidden from every member but server administrators, who can show it to the operators' roles or accounts in
# Server Settings > Integrations; never offered in DMs. Who may run it is still decided by DISCORD_OPERATOR_IDS.
@app_commands.guild_only()
@app_commands.default_permissions()
class AdminGroup(app_commands.Group, name="admin", description="Deal Scout operators only"):
    """Every command checks the caller against DISCORD_OPERATOR_IDS in bot.admin.AdminCommands."""

    @app_commands.command(name="pause", description="Stop scanning a marketplace (its searches are skipped)")
    @app_commands.describe(marketplace="The marketplace", reason="Why, for the audit log and the ops channel")
    @app_commands.autocomplete(marketplace=_marketplaces)
    async def pause(self, interaction: discord.Interaction, marketplace: str, reason: str | None = None) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        await _answer(interaction, "Marketplace paused",
                      await client.services.admin.pause_marketplace(actor, marketplace, reason))

    @app_commands.command(name="resume", description="Scan a paused marketplace again")
    @app_commands.describe(marketplace="The marketplace")
    @app_commands.autocomplete(marketplace=_marketplaces)
    async def resume(self, interaction: discord.Interaction, marketplace: str) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        await _answer(interaction, "Marketplace resumed",
                      await client.services.admin.resume_marketplace(actor, marketplace))

    @app_commands.command(name="backoff", description="Double the check interval of a marketplace's searches")
    @app_commands.describe(marketplace="The marketplace that is rate limiting us")
    @app_commands.autocomplete(marketplace=_marketplaces)
    async def backoff(self, interaction: discord.Interaction, marketplace: str) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        await _answer(interaction, "Marketplace backed off",
                      await client.services.admin.back_off_marketplace(actor, marketplace))

    @app_commands.command(name="status", description="Marketplaces and the alert outbox")
    async def status(self, interaction: discord.Interaction) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        await _answer(interaction, "Deal Scout status", await client.services.admin.status(actor))

    @app_commands.command(name="failures", description="Recent marketplace fetches that failed, and why")
    @app_commands.describe(hours="How far back (default 1)")
    async def failures(self, interaction: discord.Interaction,
                       hours: app_commands.Range[int, 1, MAX_FAILURE_HOURS] = 1) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        await _answer(interaction, "Recent failures", await client.services.admin.recent_failures(actor, hours=hours))
