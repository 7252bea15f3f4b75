"""The deal commands through the real CommandTree and the fake Discord: deal options on /search add and edit, pasted
search addresses, /search snooze, /search history with its PNG chart, and the channel's /settings."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import discord
import pytest

from bot import charts
from bot.commands import Actor, Commands
from bot.discord.frontend import DiscordFrontEnd
from bot.discord.render import CONTENT_LIMIT, discord_length
from scout.deals import comparable_words
from scout.delivery import Dispatcher
from scout.models import Destination, FetchOutcome, Layout, SavedSearch, SearchRun
from scout.quiet import QuietHours
from storage.repo import Repository
from tests.bot.discord.conftest import adapters
from tests.bot.discord.harness import (
    CHANNEL_ID,
    GUILD_ID,
    MANAGER,
    MANAGER_ID,
    MANAGER_ROLE_ID,
    MEMBER,
    OTHER_USER_ID,
    USER_ID,
    Interactions,
    VirtualClock,
    is_ephemeral,
    queue_alerts,
    reply_text,
)
from tests.fakes.adapters import TableAdapter, make_listing
from tests.fakes.discord_api import FakeDiscord

HERE = Destination("discord", str(CHANNEL_ID))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A chart is drawn in a worker thread and the first one imports matplotlib: generous on a busy machine.
CHART_WAIT_SECONDS = 60
CHANNEL_MANAGER = MEMBER | discord.Permissions(manage_channels=True)
EBAY_SEARCH = "https://www.ebay.com/sch/i.html?_nkw=lego+technic&_udhi=150&LH_BIN=1&LH_ItemCondition=3000"


@pytest.fixture
def commands(repo: Repository, vclock: VirtualClock) -> Commands:
    """The usual two fake marketplaces, and one keyed as eBay so that eBay's search addresses can be pasted."""
    return Commands(repo, {**adapters(), "ebay": TableAdapter(key="ebay", name="eBay")}, clock=vclock)


async def saved(commands: Commands, owner: int = USER_ID, query: str = "lego technic", **fields: Any) -> SavedSearch:
    return await commands.add_search(Actor(str(owner)), HERE, scope=str(GUILD_ID), query=query,
                                     marketplaces="fakebay", **fields)


async def record_prices(repo: Repository, search: SavedSearch, prices: list[str]) -> None:
    """One scan in which `search` matched one listing per price, all titled after its words: its comparables."""
    listings = tuple(make_listing(n, f"{search.query} set {n}", price=price) for n, price in enumerate(prices))
    fetch = FetchOutcome("fakebay", search.query, "success", 1, listings, matches={search.id: listings},
                         carrying={comparable_words(search.query): listings})
    run = SearchRun(search.id, search.created_at + timedelta(minutes=5), frozenset({"fakebay"}))
    await repo.save_scan(now=search.created_at, fetches=[fetch], runs=[run], searches={search.id: search},
                         baseline_first_scan=False)


# --- /search add and edit: the deal options --------------------------------------------------------------------


async def test_search_add_saves_the_deal_options(bot: Interactions, repo: Repository) -> None:
    callback = await bot.send(bot.slash("search add", {
        "query": "lego technic", "marketplaces": "fakebay", "min_deal": "good", "price_drop": "15%",
        "exclude_sellers": "Cheap Bricks, brickdump", "min_seller_rating": "98"}))
    assert is_ephemeral(callback) and "Saved search" in reply_text(callback)
    [search] = await repo.load_searches(platform="discord")
    spec = search.spec
    assert (spec.min_deal, spec.price_drop_share, spec.min_seller_rating) == ("good", Decimal("0.15"), 98)
    assert spec.exclude_sellers == ("cheap bricks", "brickdump")
    text = reply_text(callback)
    assert "good deals only" in text and "price drops of 15% or more" in text
    assert "not from cheap bricks, brickdump" in text and "sellers rated 98% or better" in text


async def test_search_add_takes_a_pasted_address_and_names_what_it_could_not_keep(bot: Interactions,
                                                                                 repo: Repository) -> None:
    callback = await bot.send(bot.slash("search add", {"url": EBAY_SEARCH, "min_deal": "great"}))
    assert is_ephemeral(callback)
    [search] = await repo.load_searches(platform="discord")
    spec = search.spec
    assert (spec.query, spec.marketplaces, spec.max_price, spec.currency, spec.min_deal) == (
        "lego technic", ("ebay",), 150, "USD", "great")
    text = reply_text(callback)
    assert f"Saved search \\#{search.id} \u201clego technic\u201d on eBay" in text
    assert "Not kept from the pasted address (a saved search cannot filter by these): " in text
    assert "buy it now only" in text and "condition" in text


async def test_a_pasted_address_whose_filters_are_all_kept_says_so(bot: Interactions) -> None:
    callback = await bot.send(bot.slash("search add", {"url": "https://www.ebay.com/sch/i.html?_nkw=lego"}))
    assert "Every filter of the pasted address was kept." in reply_text(callback)


@pytest.mark.parametrize(("options", "message"), [
    ({"min_deal": "superb"}, "The min_deal 'superb' is not one of: great, good, fair."),
    ({"min_seller_rating": "150"}, "The seller rating is a share of positive feedback from 1% to 100%."),
    ({"min_seller_rating": "lots"}, "The seller rating 'lots' is not a percentage such as 98%."),
    ({"price_drop": "-5%"}, "A price drop worth telling is from 1% to 90% of the price."),
    ({"price_drop": "big"}, "The price-drop share 'big' is not a percentage such as 10%, or 'off'."),
    ({"exclude_sellers": ",".join(f"seller{n}" for n in range(21))}, "At most 20 sellers can be left out."),
    ({"query": None, "url": "https://example.com/search?q=lego"}, "example.com is not a marketplace whose searches"),
    ({"url": EBAY_SEARCH}, "not both: the address carries its own words."),
    ({"query": None}, "Give the words to look for (query), or paste a marketplace search address (url)."),
    ({"query": None, "url": "https://www.ebay.com/itm/1234567890"}, "That is one listing, not a search"),
])
async def test_search_add_refuses_bad_deal_options_and_saves_nothing(bot: Interactions, repo: Repository,
                                                                    options: dict[str, Any], message: str) -> None:
    given = {key: value for key, value in {"query": "lego", **options}.items() if value is not None}
    callback = await bot.send(bot.slash("search add", given))
    assert callback["type"] == 4 and is_ephemeral(callback)
    text = reply_text(callback)
    assert text.startswith("\u26a0\ufe0f") and message in text
    assert await repo.load_searches() == []


async def test_search_edit_changes_and_clears_the_deal_options(bot: Interactions, commands: Commands,
                                                               repo: Repository) -> None:
    search = await saved(commands)
    callback = await bot.send(bot.slash("search edit", {
        "search": str(search.id), "min_deal": "great", "price_drop": "off", "exclude_sellers": "brickdump",
        "min_seller_rating": "99.5"}))
    assert "Updated" in reply_text(callback) and "no price-drop alerts" in reply_text(callback)
    spec = (await repo.load_search(search.id)).spec  # type: ignore[union-attr]
    assert (spec.min_deal, spec.price_drop_share, spec.exclude_sellers, spec.min_seller_rating) == (
        "great", None, ("brickdump",), Decimal("99.5"))
    await bot.send(bot.slash("search edit", {"search": str(search.id), "min_deal": "any", "price_drop": "20%",
                                             "exclude_sellers": "none", "min_seller_rating": "none"}))
    spec = (await repo.load_search(search.id)).spec  # type: ignore[union-attr]
    assert (spec.min_deal, spec.price_drop_share, spec.exclude_sellers, spec.min_seller_rating) == (
        None, Decimal("0.2"), (), None)


@pytest.mark.parametrize(("options", "message"), [
    ({"min_deal": "cheap"}, "The min_deal 'cheap' is not one of"),
    ({"min_seller_rating": "150"}, "from 1% to 100%"),
    ({"price_drop": "-5%"}, "A price drop worth telling is from 1% to 90%"),
])
async def test_search_edit_refuses_bad_deal_options_and_changes_nothing(bot: Interactions, commands: Commands,
                                                                       repo: Repository, options: dict[str, Any],
                                                                       message: str) -> None:
    search = await saved(commands, min_deal="good")
    callback = await bot.send(bot.slash("search edit", {"search": str(search.id), **options}))
    assert is_ephemeral(callback) and message in reply_text(callback)
    assert await repo.load_search(search.id) == search


# --- /search snooze ------------------------------------------------------------------------------------------------


async def test_snooze_for_two_hours_then_wake(bot: Interactions, commands: Commands, repo: Repository,
                                              vclock: VirtualClock) -> None:
    search = await saved(commands)
    callback = await bot.send(bot.slash("search snooze", {"search": str(search.id), "duration": "2h"}))
    until = vclock() + timedelta(hours=2)
    assert (await repo.load_search(search.id)).snoozed_until == until  # type: ignore[union-attr]
    text = reply_text(callback)
    assert is_ephemeral(callback)
    assert f"until <t:{int(until.timestamp())}:f> (<t:{int(until.timestamp())}:R>)" in text
    assert f"`/search snooze {search.id} off`" in text
    woken = await bot.send(bot.slash("search snooze", {"search": str(search.id), "duration": "off"}))
    assert "is awake" in reply_text(woken)
    assert (await repo.load_search(search.id)).snoozed_until is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("duration", "message"), [
    ("0m", "Snooze for 1 minute up to 30 days; to stop a search for longer, pause it."),
    ("99w", "Snooze for 1 minute up to 30 days"),
    ("soon", "'soon' is not a duration: write it as 30m, 2h, 1d or 1w."),
])
async def test_snooze_refuses_bad_durations_and_changes_nothing(bot: Interactions, commands: Commands,
                                                                repo: Repository, duration: str, message: str) -> None:
    search = await saved(commands)
    callback = await bot.send(bot.slash("search snooze", {"search": str(search.id), "duration": duration}))
    assert is_ephemeral(callback) and message in reply_text(callback)
    assert await repo.load_search(search.id) == search


async def test_snooze_is_only_for_my_searches(bot: Interactions, commands: Commands, repo: Repository) -> None:
    theirs = await saved(commands, owner=OTHER_USER_ID)
    callback = await bot.send(bot.slash("search snooze", {"search": str(theirs.id), "duration": "1d"}))
    assert f"You have no search #{theirs.id}." in reply_text(callback)
    assert await repo.load_search(theirs.id) == theirs


async def test_snooze_suggests_durations(bot: Interactions, commands: Commands) -> None:
    search = await saved(commands)
    choices = await bot.send(bot.slash("search snooze", {"search": str(search.id), "duration": "1"},
                                       focused="duration"))
    assert [choice["value"] for choice in choices["data"]["choices"]] == ["1d", "1w"]


# --- /search history -----------------------------------------------------------------------------------------------


async def test_history_of_a_search_sends_the_chart_as_a_png_attachment(bot: Interactions, commands: Commands,
                                                                       repo: Repository, fake: FakeDiscord) -> None:
    search = await saved(commands)
    await record_prices(repo, search, ["80", "95", "100", "120", "150"])
    deferred = await bot.send(bot.slash("search history", {"target": str(search.id)}))
    assert deferred["type"] == 5 and is_ephemeral(deferred), reply_text(deferred)
    await asyncio.wait_for(fake.wait_for(lambda: bool(fake.uploads)), CHART_WAIT_SECONDS)
    [upload] = fake.uploads
    assert upload.path.startswith("/webhooks/")
    assert PNG_SIGNATURE in upload.raw
    [(filename, content)] = upload.files.values()
    assert filename == "history.png" and content.startswith(PNG_SIGNATURE)
    assert upload.payload["attachments"][0]["filename"] == "history.png"
    assert int(upload.payload["flags"]) & 64
    text = upload.payload["content"]
    assert f"\\#{search.id} \u201clego technic\u201d: 5 comparable listings, last 90 days" in text
    assert "80.00\u2013150.00 USD, median 100.00" in text


async def test_history_of_a_listing(bot: Interactions, commands: Commands, repo: Repository,
                                    fake: FakeDiscord) -> None:
    search = await saved(commands)
    await queue_alerts(repo, search, ["Technic *crane* 42042"])
    await bot.send(bot.slash("search history", {"target": "fakebay:0"}))
    await asyncio.wait_for(fake.wait_for(lambda: bool(fake.uploads)), CHART_WAIT_SECONDS)
    [upload] = fake.uploads
    [(_, content)] = upload.files.values()
    assert content.startswith(PNG_SIGNATURE)
    assert "Technic \\*crane\\* 42042" in upload.payload["content"], "the scraped title is shown literally"


async def test_history_is_text_alone_when_the_chart_cannot_be_drawn(bot: Interactions, commands: Commands,
                                                                    repo: Repository, fake: FakeDiscord,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def undrawable(*args: Any, **kwargs: Any) -> bytes:
        raise ValueError("an amount beyond a float's range")

    monkeypatch.setattr(charts, "price_distribution_png", undrawable)
    search = await saved(commands)
    await record_prices(repo, search, ["80", "95", "100"])
    await bot.send(bot.slash("search history", {"target": f"#{search.id}"}))
    await asyncio.wait_for(fake.wait_for(lambda: bool(fake.followups)), CHART_WAIT_SECONDS)
    [followup] = fake.followups
    assert "3 comparable listings" in followup["content"] and "could not be drawn" in followup["content"]
    assert not followup.get("attachments") and fake.uploads == []


@pytest.mark.parametrize(("target", "message"), [
    ("nonsense", "'nonsense' names no search or listing."),
    ("fakebay:404", "None of your searches found fakebay:404."),
    ("99999", "You have no search #99999."),
])
async def test_history_refuses_what_names_nothing_of_mine(bot: Interactions, fake: FakeDiscord, target: str,
                                                          message: str) -> None:
    callback = await bot.send(bot.slash("search history", {"target": target}))
    assert callback["type"] == 4 and is_ephemeral(callback) and message in reply_text(callback)
    assert fake.uploads == [] and fake.followups == []


async def test_history_of_a_search_without_comparables_says_so(bot: Interactions, commands: Commands) -> None:
    search = await saved(commands)
    callback = await bot.send(bot.slash("search history", {"target": str(search.id)}))
    assert "has seen no priced listings in the last 90 days yet" in reply_text(callback)


# --- /settings -----------------------------------------------------------------------------------------------------


async def test_a_manager_sets_quiet_hours_and_anyone_sees_them(bot: Interactions, commands: Commands) -> None:
    callback = await bot.send(bot.slash("settings quiet", {"window": "22:00-07:00", "timezone": "Europe/Berlin"},
                                        user=MANAGER_ID, permissions=MANAGER))
    assert is_ephemeral(callback)
    assert f"Quiet hours in <#{CHANNEL_ID}>: 22:00\u201307:00 Europe/Berlin." in reply_text(callback)
    settings = await commands.destination_settings(HERE)
    assert settings.quiet_hours == QuietHours(22 * 60, 7 * 60, "Europe/Berlin")
    # A new window without a time zone keeps the channel's.
    await bot.send(bot.slash("settings quiet", {"window": "23-6"}, user=MANAGER_ID, permissions=MANAGER))
    assert (await commands.destination_settings(HERE)).quiet_hours == QuietHours(23 * 60, 6 * 60, "Europe/Berlin")
    shown = reply_text(await bot.send(bot.slash("settings show")))
    assert "Quiet hours: 23:00\u201306:00 Europe/Berlin" in shown and "Layout: full" in shown
    off = await bot.send(bot.slash("settings quiet", {"window": "off"}, user=MANAGER_ID, permissions=MANAGER))
    assert "No quiet hours" in reply_text(off)
    assert (await commands.destination_settings(HERE)).quiet_hours is None


@pytest.mark.parametrize(("permissions", "roles"), [(CHANNEL_MANAGER, ()), (MEMBER, (MANAGER_ROLE_ID,))],
                         ids=["manage-channel", "manager-role"])
async def test_channel_managers_may_change_settings(bot: Interactions, commands: Commands, permissions: Any,
                                                    roles: tuple[int, ...]) -> None:
    callback = await bot.send(bot.slash("settings layout", {"layout": "compact"}, permissions=permissions,
                                        roles=roles))
    assert "come as one line of text (compact)" in reply_text(callback)
    assert (await commands.destination_settings(HERE)).layout is Layout.COMPACT


@pytest.mark.parametrize(("command", "options"), [("settings quiet", {"window": "22:00-07:00"}),
                                                  ("settings layout", {"layout": "compact"})])
async def test_members_cannot_change_settings(bot: Interactions, commands: Commands, command: str,
                                              options: dict[str, Any]) -> None:
    callback = await bot.send(bot.slash(command, options))
    assert is_ephemeral(callback)
    assert "Only members who can manage this channel" in reply_text(callback)
    settings = await commands.destination_settings(HERE)
    assert (settings.quiet_hours, settings.layout) == (None, Layout.FULL)


@pytest.mark.parametrize(("command", "options", "message"), [
    ("settings quiet", {"window": "25:00-07:00"}, "'25:00' is not a time of day such as 22:00 or 7."),
    ("settings quiet", {"window": "22:00-07:00", "timezone": "Mars/Olympus"}, "Unknown time zone 'Mars/Olympus'"),
    ("settings quiet", {"window": "22:00"}, "Write quiet hours as a window such as 22:00-07:00, or 'off'."),
    ("settings quiet", {"window": "7-7"}, "Quiet hours need a start and an end that differ."),
    ("settings layout", {"layout": "tiny"}, "The alert layout is 'full'"),
])
async def test_settings_refuse_bad_input_and_change_nothing(bot: Interactions, commands: Commands, command: str,
                                                            options: dict[str, Any], message: str) -> None:
    await commands.set_quiet_hours(HERE, "1-2", "UTC")
    before = await commands.destination_settings(HERE)
    callback = await bot.send(bot.slash(command, options, user=MANAGER_ID, permissions=MANAGER))
    assert is_ephemeral(callback) and message in reply_text(callback)
    assert await commands.destination_settings(HERE) == before


async def test_timezone_autocomplete(bot: Interactions) -> None:
    choices = await bot.send(bot.slash("settings quiet", {"window": "22-7", "timezone": "berl"},
                                       focused="timezone"))
    assert [choice["value"] for choice in choices["data"]["choices"]] == ["Europe/Berlin"]


async def test_a_compact_alert_stays_within_discords_limits(bot: Interactions, front: DiscordFrontEnd,
                                                            commands: Commands, repo: Repository,
                                                            fake: FakeDiscord, vclock: VirtualClock) -> None:
    await bot.send(bot.slash("settings layout", {"layout": "compact"}, user=MANAGER_ID, permissions=MANAGER))
    search = await saved(commands)
    title = "Technic @everyone **bold** [link](x) " + "\U0001f9f1 brick " * 600
    await queue_alerts(repo, search, [title], now=vclock())
    dispatcher = Dispatcher(repo, {"discord": front.notifier}, clock=vclock, rng=random.Random(7), max_attempts=8,
                            backoff_seconds=5, backoff_max_seconds=900)
    report = await dispatcher.drain()
    assert report.sent == 1
    [posted] = fake.messages_in(CHANNEL_ID)
    content = posted.payload["content"]
    assert discord_length(content) <= CONTENT_LIMIT
    assert posted.payload["embeds"] == [] and not posted.payload.get("components")
    assert "\n" not in content.strip() and content.endswith(" <https://fakebay.test/itm/0>")
    assert "@\u200beveryone" in content and "\\*\\*bold\\*\\*" in content
    assert posted.payload["allowed_mentions"] == {"parse": []}


# --- the command tree as Discord receives it -----------------------------------------------------------------------

# https://discord.com/developers/docs/interactions/application-commands#application-command-object: names of 1-32
# lower-case characters, descriptions of 1-100, at most 25 options and 25 choices, required options first.
NAME = re.compile(r"^[-_\w]{1,32}$")
MAX_DESCRIPTION = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_CHOICE_NAME = 100
# The combined length of a command's names, descriptions and choice names and values.
MAX_COMMAND_CHARACTERS = 4000


def _check_command(entry: dict[str, Any], where: str) -> int:
    """Asserts Discord's limits on one command or option, recursively; returns its characters toward the total."""
    name, description = entry["name"], entry.get("description", "")
    assert NAME.match(name) and name == name.lower(), f"{where}: bad name {name!r}"
    assert 1 <= len(description) <= MAX_DESCRIPTION, f"{where} {name}: description of {len(description)}"
    total = len(name) + len(description)
    options = entry.get("options") or []
    assert len(options) <= MAX_OPTIONS, f"{where} {name}: {len(options)} options"
    required = [bool(option.get("required")) for option in options]
    assert required == sorted(required, reverse=True), f"{where} {name}: a required option after an optional one"
    for choice in entry.get("choices") or []:
        assert 1 <= len(choice["name"]) <= MAX_CHOICE_NAME, f"{where} {name}: choice {choice['name']!r}"
        total += len(choice["name"]) + len(str(choice["value"]))
    assert len(entry.get("choices") or []) <= MAX_CHOICES
    return total + sum(_check_command(option, f"{where} {name}") for option in options)


async def test_the_command_tree_syncs_within_discords_limits(front: DiscordFrontEnd, fake: FakeDiscord) -> None:
    await front.sync_commands()
    synced = {command["name"]: command for command in fake.synced["global"]}
    for name, command in synced.items():
        assert _check_command(command, "/") <= MAX_COMMAND_CHARACTERS, f"/{name} is too long in all"
    search = {sub["name"]: sub for sub in synced["search"]["options"]}
    add = {option["name"]: option for option in search["add"]["options"]}
    assert not add["query"].get("required") and not add["url"].get("required")
    assert [choice["value"] for choice in add["min_deal"]["choices"]] == ["any", "fair", "good", "great"]
    deal_options = {"min_deal", "price_drop", "exclude_sellers", "min_seller_rating"}
    assert deal_options <= set(add)
    edit = {option["name"] for option in search["edit"]["options"]}
    assert deal_options <= edit and "url" not in edit
    assert [option["name"] for option in search["snooze"]["options"]] == ["search", "duration"]
    assert [option["name"] for option in search["history"]["options"]] == ["target"]
    settings = {sub["name"]: sub for sub in synced["settings"]["options"]}
    assert set(settings) == {"quiet", "layout", "show"}
    assert [(o["name"], bool(o.get("required"))) for o in settings["quiet"]["options"]] == [
        ("window", True), ("timezone", False)]
    assert [c["value"] for c in settings["layout"]["options"][0]["choices"]] == ["full", "compact"]
    assert synced["settings"]["default_member_permissions"] is None, "/settings show is for every member"
