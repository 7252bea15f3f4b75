"""The /search group and /deals: slash commands over the shared command layer, with ephemeral replies."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from typing import Any

import discord
from discord import app_commands

from bot.commands import Actor, Commands
from bot.describe import describe_outcomes
from bot.discord.client import DealScoutClient, send_ephemeral, view_from_components
from bot.discord.render import (
    channel_tag,
    cut,
    escape_markdown,
    page_count,
    render_deals,
    render_page_buttons,
    render_saved,
    render_search_detail,
    render_search_page,
)
from bot.discord.replies import HISTORY_FILENAME, render_history, render_ignored, render_snoozed
from bot.history import load_history
from scout.errors import InputError, PermissionDeniedError
from scout.models import Destination

log = logging.getLogger(__name__)

PLATFORM = "discord"
PAGE_SIZE = 10
AUTOCOMPLETE_CHOICES = 25  # Discord shows at most 25 suggestions
CHOICE_LENGTH = 100  # and each is at most 100 characters
# In /search edit, this word empties an optional field (a price bound, excluded words, location, currency).
CLEAR = "none"
# The deal verdicts a search can ask for at least (scout.deals.MIN_DEAL_CHOICES), and "any" for no deal filter.
MIN_DEAL_CHOICES = [
    app_commands.Choice(name="any match (no deal filter)", value="any"),
    app_commands.Choice(name="fair price or better", value="fair"),
    app_commands.Choice(name="good deal or better", value="good"),
    app_commands.Choice(name="great deals only", value="great"),
]
# What /search snooze offers as one types; any other duration from 1 minute to 30 days is taken too.
SNOOZE_SUGGESTIONS = ("30m", "2h", "8h", "1d", "3d", "1w", "off")
# Drawing a chart fails this way: an undrawable amount (ValueError), matplotlib or its fonts missing or broken.
CHART_FAILURES = (ValueError, ImportError, OSError, RuntimeError)
NEITHER_QUERY_NOR_URL = "Give the words to look for (query), or paste a marketplace search address (url)."
BOTH_QUERY_AND_URL = ("Give either the words to look for (query) or a marketplace search address (url), not both: "
                      "the address carries its own words.")


class AlertChannel(app_commands.Transformer):
    """A text or announcement channel of this server, as the interaction resolved it (with the caller's rights)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.news]

    async def transform(self, interaction: discord.Interaction, value: Any) -> Any:
        return value


def _client(interaction: discord.Interaction) -> DealScoutClient:
    client = interaction.client
    assert isinstance(client, DealScoutClient)
    return client


def _scope(interaction: discord.Interaction) -> str:
    return str(interaction.guild_id)


def _cleared(value: str | None) -> str | None:
    return "" if value is not None and value.strip().lower() == CLEAR else value


async def load_page(client: DealScoutClient, interaction: discord.Interaction, *, page: int,
                    everyone: bool) -> tuple[discord.Embed, discord.ui.View | None]:
    """One page of /search list for whoever is asking (shared by the command and its page buttons)."""
    actor = await client.access.actor(interaction)
    if everyone and not actor.is_admin:
        raise PermissionDeniedError("Only server managers can list everyone's searches.")
    searches = await client.services.commands.list_searches(actor, platform=PLATFORM, scope=_scope(interaction),
                                                            everyone=everyone)
    commands = client.services.commands
    paused = await commands.paused_marketplaces()
    descriptions = {search.id: commands.describe(search, paused) for search in searches}
    pages = page_count(len(searches), PAGE_SIZE)
    page = min(max(1, page), pages)
    embed = render_search_page(searches, descriptions, page=page, page_size=PAGE_SIZE, everyone=everyone)
    return discord.Embed.from_dict(embed), view_from_components(render_page_buttons(page, pages, everyone))


async def _search_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    client = _client(interaction)
    actor = await client.access.actor(interaction)
    # Only the caller's own (at most 100): a manager's "everyone" could be thousands per keystroke; they type ids.
    searches = await client.services.commands.list_searches(actor, platform=PLATFORM, scope=_scope(interaction))
    wanted = current.strip().lstrip("#").casefold()
    found = [s for s in searches if not wanted or wanted in f"{s.id} {s.query}".casefold()]
    return [app_commands.Choice(name=cut(f"#{s.id} {s.query}", CHOICE_LENGTH), value=str(s.id))
            for s in found[:AUTOCOMPLETE_CHOICES]]


async def _marketplace_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Completes the last of a comma-separated list of marketplaces from the adapter registry."""
    adapters = _client(interaction).services.commands.adapters
    parts = [part.strip() for part in current.split(",")]
    chosen, last = [p.lower() for p in parts[:-1] if p], parts[-1].lower()
    prefix = ", ".join(chosen + [""]) if chosen else ""
    choices = []
    for key, adapter in sorted(adapters.items()):
        if key not in chosen and (key.startswith(last) or adapter.name.lower().startswith(last)):
            value = cut(prefix + key, CHOICE_LENGTH)
            name = cut(", ".join([*(adapters[c].name if c in adapters else c for c in chosen), adapter.name]),
                       CHOICE_LENGTH)
            choices.append(app_commands.Choice(name=name, value=value))
    return choices[:AUTOCOMPLETE_CHOICES]


def _check_caller_can_post(actor: Actor, channel_id: int, rights: discord.Permissions | None) -> None:
    """A member cannot send alerts where they could not write themselves (a manager can)."""
    if actor.is_admin or rights is None or (rights.view_channel and rights.send_messages):
        return
    raise PermissionDeniedError(f"You cannot post in {channel_tag(channel_id)} yourself, so Deal Scout will not "
                                f"post there for you. Pick a channel you can write in.")


async def _check_bot_can_post(client: DealScoutClient, interaction: discord.Interaction, channel_id: int) -> None:
    missing = await client.access.bot_missing_in(interaction, channel_id)
    if missing:
        raise PermissionDeniedError(
            f"I cannot post alerts in {channel_tag(channel_id)}: I am missing {', '.join(missing)} there. "
            f"Give me those in the channel's settings, or pick another channel.")


def _sponsored(no_ads: bool) -> str:
    """The no_ads option as the search's rule for listings marked sponsored."""
    return "exclude" if no_ads else "include"


def _search_fields(commands: Commands, query: str | None, url: str | None,
                   typed: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """The fields of a new search from its words or from a pasted address (exactly one of them), and the address's
    filters that could not be kept (None when no address was pasted)."""
    has_query, has_url = bool(query and query.strip()), bool(url and url.strip())
    if has_query == has_url:
        raise InputError(BOTH_QUERY_AND_URL if has_query else NEITHER_QUERY_NOR_URL, field="url")
    if url is not None and has_url:
        return commands.search_from_url(url, **typed)
    return {**typed, "query": query}, None


async def _snooze_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    wanted = current.strip().lower()
    return [app_commands.Choice(name=choice, value=choice) for choice in SNOOZE_SUGGESTIONS
            if choice.startswith(wanted)]


class SearchGroup(app_commands.Group, name="search", description="Your saved deal searches in this server",
                  guild_only=True):
    @app_commands.command(name="add", description="Save a search; new listings that match are posted here")
    @app_commands.describe(
        query="Words to look for, e.g. nintendo switch oled (or paste a search address as url)",
        max_price="Highest price, e.g. 200",
        min_price="Lowest price", exclude="Words that rule a listing out, separated by commas",
        marketplaces="Where to look, separated by commas (empty: the usual set)",
        interval="Minutes between checks (default: the slowest marketplace's minimum)",
        channel="Where alerts go (default: this channel)", location="Where to look, for marketplaces that can",
        currency="Currency of the price range, e.g. USD", no_ads="Leave out listings marked sponsored",
        url="A marketplace search address to watch instead of a query, e.g. from eBay or Kleinanzeigen",
        min_deal="Tell only listings priced at least this well among comparable ones",
        price_drop="Tell price drops from this share, e.g. 10% (default), or off",
        exclude_sellers="Sellers whose listings are left out, separated by commas",
        min_seller_rating="Least positive feedback of a seller, in percent, e.g. 98")
    @app_commands.autocomplete(marketplaces=_marketplace_choices)
    @app_commands.choices(min_deal=MIN_DEAL_CHOICES)
    async def add(self, interaction: discord.Interaction, query: str | None = None, max_price: str | None = None,
                  min_price: str | None = None, exclude: str | None = None, marketplaces: str | None = None,
                  interval: int | None = None,
                  channel: app_commands.Transform[app_commands.AppCommandChannel, AlertChannel] | None = None,
                  location: str | None = None, currency: str | None = None, no_ads: bool = False,
                  url: str | None = None, min_deal: str | None = None, price_drop: str | None = None,
                  exclude_sellers: str | None = None, min_seller_rating: str | None = None) -> None:
        client = _client(interaction)
        services = client.services
        typed = {"marketplaces": marketplaces, "interval_minutes": interval, "exclude": exclude,
                 "min_price": min_price, "max_price": max_price, "location": location, "currency": currency,
                 "sponsored": _sponsored(no_ads), "min_deal": min_deal, "price_drop": price_drop,
                 "exclude_sellers": exclude_sellers, "min_seller_rating": min_seller_rating}
        fields, ignored = _search_fields(services.commands, query, url, typed)
        actor = await client.access.actor(interaction)
        channel_id = channel.id if channel is not None else interaction.channel_id
        _check_caller_can_post(actor, channel_id, channel.permissions if channel is not None
                               else interaction.permissions)
        await _check_bot_can_post(client, interaction, channel_id)
        search = await services.commands.add_search(
            actor, Destination(PLATFORM, str(channel_id)), scope=_scope(interaction), **fields)
        first_scan = search.next_run_at + timedelta(seconds=services.scan_tick_seconds)
        text = render_saved(search, services.commands.describe(search), first_scan_at=first_scan,
                            baseline=services.baseline_first_scan)
        await send_ephemeral(interaction, text if ignored is None else f"{text}\n{render_ignored(ignored)}")

    @app_commands.command(name="list", description="Your searches in this server")
    @app_commands.describe(page="Page number", everyone="Everyone's searches (server managers only)")
    async def list_(self, interaction: discord.Interaction, page: int = 1, everyone: bool = False) -> None:
        embed, view = await load_page(_client(interaction), interaction, page=page, everyone=everyone)
        await send_ephemeral(interaction, embed=embed, view=view)

    @app_commands.command(name="show", description="Everything about one search")
    @app_commands.describe(search="The search (start typing its words or number)")
    @app_commands.autocomplete(search=_search_choices)
    async def show(self, interaction: discord.Interaction, search: str) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        commands = client.services.commands
        found = await commands.show_search(actor, search, scope=_scope(interaction))
        text = commands.describe(found, await commands.paused_marketplaces())
        outcomes = describe_outcomes(found, commands.adapters, now=commands.now())
        await send_ephemeral(interaction, embed=discord.Embed.from_dict(render_search_detail(found, text, outcomes)))

    @app_commands.command(name="edit", description="Change a search; fields you leave out stay as they are")
    @app_commands.describe(
        search="The search to change", query="New words to look for",
        max_price=f"New highest price ('{CLEAR}' removes it)", min_price=f"New lowest price ('{CLEAR}' removes it)",
        exclude=f"New excluded words ('{CLEAR}' removes them)", marketplaces="New marketplaces, separated by commas",
        interval="New minutes between checks", location=f"New location ('{CLEAR}' removes it)",
        currency=f"New currency of the price range ('{CLEAR}' removes it)",
        no_ads="Leave out listings marked sponsored (False takes them back)",
        min_deal="Tell only listings priced at least this well ('any': every match)",
        price_drop="Tell price drops from this share, e.g. 10%, or off",
        exclude_sellers=f"Sellers to leave out, separated by commas ('{CLEAR}' takes them all back)",
        min_seller_rating=f"Least positive feedback of a seller, in percent ('{CLEAR}' removes it)")
    @app_commands.autocomplete(search=_search_choices, marketplaces=_marketplace_choices)
    @app_commands.choices(min_deal=MIN_DEAL_CHOICES)
    async def edit(self, interaction: discord.Interaction, search: str, query: str | None = None,
                   max_price: str | None = None, min_price: str | None = None, exclude: str | None = None,
                   marketplaces: str | None = None, interval: int | None = None, location: str | None = None,
                   currency: str | None = None, no_ads: bool | None = None, min_deal: str | None = None,
                   price_drop: str | None = None, exclude_sellers: str | None = None,
                   min_seller_rating: str | None = None) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        commands = client.services.commands
        before = await commands.show_search(actor, search, scope=_scope(interaction))
        changes = {"query": query, "max_price": _cleared(max_price), "min_price": _cleared(min_price),
                   "exclude": _cleared(exclude), "marketplaces": marketplaces, "interval_minutes": interval,
                   "location": _cleared(location), "currency": _cleared(currency),
                   "sponsored": None if no_ads is None else _sponsored(no_ads), "min_deal": min_deal,
                   "price_drop": price_drop, "exclude_sellers": _cleared(exclude_sellers),
                   "min_seller_rating": _cleared(min_seller_rating)}
        after = await commands.edit_search(actor, before.id, scope=_scope(interaction), **changes)
        text = escape_markdown(commands.describe(after))
        verb = "Nothing to change in" if after == before else "Updated"
        await send_ephemeral(interaction, f"{verb} {text}.")

    @app_commands.command(name="pause", description="Stop checking a search for now")
    @app_commands.describe(search="The search to pause")
    @app_commands.autocomplete(search=_search_choices)
    async def pause(self, interaction: discord.Interaction, search: str) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        paused = await client.services.commands.pause_search(actor, search, scope=_scope(interaction),
                                                             reason=f"paused by {interaction.user.name}")
        text = escape_markdown(client.services.commands.describe(paused))
        await send_ephemeral(interaction, f"Paused {text}.\nResume it with `/search resume {paused.id}`.")

    @app_commands.command(name="resume", description="Check a paused search again")
    @app_commands.describe(search="The search to resume")
    @app_commands.autocomplete(search=_search_choices)
    async def resume(self, interaction: discord.Interaction, search: str) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        before = await client.services.commands.show_search(actor, search, scope=_scope(interaction))
        # Resuming a search whose channel we lost would only pause it again at the first alert.
        await _check_bot_can_post(client, interaction, int(before.destination.target))
        resumed = await client.services.commands.resume_search(actor, before.id, scope=_scope(interaction))
        text = escape_markdown(client.services.commands.describe(resumed))
        await send_ephemeral(interaction, f"Resumed {text}.")

    @app_commands.command(name="snooze",
                          description="Announce none of a search's matches for a while; it keeps checking")
    @app_commands.describe(search="The search to snooze",
                           duration="For how long: 30m, 2h, 1d, 1w (at most 30 days), or off to wake it")
    @app_commands.autocomplete(search=_search_choices, duration=_snooze_choices)
    async def snooze(self, interaction: discord.Interaction, search: str, duration: str) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        commands = client.services.commands
        snoozed = await commands.snooze_search(actor, search, duration, scope=_scope(interaction))
        await send_ephemeral(interaction, render_snoozed(snoozed, commands.now()))

    @app_commands.command(name="history", description="Prices over time of a listing, or the prices a search's "
                                                      "comparable listings ask, with a chart")
    @app_commands.describe(target="A search (its number, e.g. 12) or a listing as marketplace:id, e.g. ebay:1234567")
    @app_commands.autocomplete(target=_search_choices)
    async def history(self, interaction: discord.Interaction, target: str) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        found = await load_history(client.services.commands, actor, target, scope=_scope(interaction))
        # Discord waits 3 seconds for an answer; a chart (the first one imports matplotlib) may take longer.
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            png = await found.chart()
        except CHART_FAILURES:
            log.warning("could not draw the history chart of %r", found.title[:80], exc_info=True)
            await send_ephemeral(interaction, render_history(found.text, charted=False))
            return
        await send_ephemeral(interaction, render_history(found.text, charted=True),
                             file=discord.File(io.BytesIO(png), filename=HISTORY_FILENAME))

    @app_commands.command(name="remove", description="Delete a search for good")
    @app_commands.describe(search="The search to remove")
    @app_commands.autocomplete(search=_search_choices)
    async def remove(self, interaction: discord.Interaction, search: str) -> None:
        client = _client(interaction)
        actor = await client.access.actor(interaction)
        removed = await client.services.commands.remove_search(actor, search, scope=_scope(interaction))
        text = escape_markdown(client.services.commands.describe(removed))
        await send_ephemeral(interaction, f"Removed {text}.")


@app_commands.command(name="deals", description="The newest deals one of your searches found")
@app_commands.describe(search="The search", count="How many (default 10, at most 50)")
@app_commands.autocomplete(search=_search_choices)
@app_commands.guild_only()
async def deals(interaction: discord.Interaction, search: str, count: int = 10) -> None:
    client = _client(interaction)
    actor = await client.access.actor(interaction)
    commands = client.services.commands
    found = await commands.show_search(actor, search, scope=_scope(interaction))
    recent = await commands.recent_deals(actor, found.id, scope=_scope(interaction), limit=count)
    await send_ephemeral(interaction, embed=discord.Embed.from_dict(render_deals(found, recent)))
