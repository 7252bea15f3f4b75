"""Slash commands through the real CommandTree: every command's happy path, bad input, and who may do what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.commands import Actor, Commands
from scout.models import Destination, SavedSearch, SearchStatus
from storage.repo import Repository
from tests.bot.discord.harness import (
    CHANNEL_ID,
    GUILD_ID,
    LOCKED_CHANNEL_ID,
    MANAGER,
    MANAGER_ID,
    MANAGER_ROLE_ID,
    OTHER_CHANNEL_ID,
    OTHER_USER_ID,
    READ_ONLY,
    USER_ID,
    ChannelOption,
    Interactions,
    VirtualClock,
    is_ephemeral,
    queue_alerts,
    reply_text,
)
from tests.bot.outcomes import outcome, record_outcomes
from tests.fakes.discord_api import FakeDiscord

HERE = Destination("discord", str(CHANNEL_ID))


async def saved(commands: Commands, owner: int = USER_ID, query: str = "lego technic",
                **fields: Any) -> SavedSearch:
    return await commands.add_search(Actor(str(owner)), HERE, scope=str(GUILD_ID), query=query,
                                     marketplaces="fakebay", **fields)


async def test_search_add_saves_and_says_what_and_when(bot: Interactions, repo: Repository) -> None:
    callback = await bot.send(bot.slash("search add", {
        "query": "nintendo switch", "max_price": "200", "min_price": "50", "exclude": "broken, parts",
        "marketplaces": "fakebay", "interval": 15, "location": "sfbay", "currency": "usd"}))
    assert callback["type"] == 4 and is_ephemeral(callback)
    assert callback["data"]["allowed_mentions"] == {"parse": []}
    [search] = await repo.load_searches(platform="discord")
    assert (search.owner, search.scope, search.destination) == (str(USER_ID), str(GUILD_ID), HERE)
    spec = search.spec
    assert (spec.query, spec.marketplaces, spec.check_interval_minutes, spec.exclude) == (
        "nintendo switch", ("fakebay",), 15, ("broken", "parts"))
    assert (spec.min_price, spec.max_price, spec.currency, spec.location) == (50, 200, "USD", "sfbay")
    text = reply_text(callback)
    assert f"#{search.id} \u201cnintendo switch\u201d on FakeBay, every 15 min" in text
    assert f"Alerts go to <#{CHANNEL_ID}>" in text
    first_scan = int(search.next_run_at.timestamp()) + 15  # the next scan tick after it became due
    assert f"The first scan runs <t:{first_scan}:R>" in text
    assert "records what is listed now" in text
    assert search.spec.sponsored == "include"


async def test_search_add_and_edit_can_leave_sponsored_listings_out(bot: Interactions, repo: Repository) -> None:
    await bot.send(bot.slash("search add", {"query": "bike", "marketplaces": "fakebay", "no_ads": True}))
    [search] = await repo.load_searches(platform="discord")
    assert search.spec.sponsored == "exclude"
    await bot.send(bot.slash("search edit", {"search": str(search.id), "no_ads": False}))
    assert (await repo.load_search(search.id)).spec.sponsored == "include"


async def test_search_add_to_another_channel(bot: Interactions, repo: Repository) -> None:
    callback = await bot.send(bot.slash("search add", {"query": "lego", "channel": ChannelOption(OTHER_CHANNEL_ID)}))
    assert "Saved search" in reply_text(callback)
    [search] = await repo.load_searches(platform="discord")
    assert search.destination == Destination("discord", str(OTHER_CHANNEL_ID))


@pytest.mark.parametrize(("options", "message"), [
    ({"max_price": "-5"}, "The maximum price cannot be negative."),
    ({"min_price": "300", "max_price": "100"}, "The minimum price (300) is above the maximum price (100)."),
    ({"marketplaces": "nosuch"}, "Unknown marketplace 'nosuch'. Choose from: fakebay, slowlist."),
    ({"marketplaces": "slowlist", "interval": 10}, "The check interval must be at least 30 minutes for SlowList."),
    ({"query": "x" * 201}, "The query is 201 characters long; the limit is 200."),
    ({"query": "!!!"}, "The query needs at least one word to search for."),
    ({"query": "**_~~"}, "The query needs at least one word to search for."),
    ({"query": "<b>rtx</b>"}, "The query looks like HTML"),
    ({"max_price": "cheap"}, "The maximum price 'cheap' is not a number."),
    ({"currency": "dollars"}, "'dollars' is not a currency code"),
])
async def test_search_add_refuses_bad_input_and_saves_nothing(bot: Interactions, repo: Repository,
                                                              options: dict[str, Any], message: str) -> None:
    callback = await bot.send(bot.slash("search add", {"query": "lego", **options}))
    assert is_ephemeral(callback)
    assert message in reply_text(callback)
    assert await repo.load_searches() == []


async def test_the_bot_says_plainly_where_it_cannot_post(bot: Interactions, repo: Repository) -> None:
    locked = await bot.send(bot.slash("search add", {"query": "lego", "channel": ChannelOption(LOCKED_CHANNEL_ID)}))
    assert f"I cannot post alerts in <#{LOCKED_CHANNEL_ID}>: I am missing Send Messages there." in reply_text(locked)
    # Here, the interaction itself says what the bot may do (app_permissions): no Embed Links.
    here = await bot.send(bot.slash("search add", {"query": "lego"}, app_permissions=READ_ONLY))
    assert "I am missing Send Messages, Embed Links there" in reply_text(here)
    assert is_ephemeral(locked) and is_ephemeral(here)
    assert await repo.load_searches() == []


async def test_a_member_cannot_send_alerts_where_they_cannot_write(bot: Interactions, repo: Repository) -> None:
    callback = await bot.send(bot.slash("search add", {
        "query": "lego", "channel": ChannelOption(OTHER_CHANNEL_ID, permissions=READ_ONLY)}))
    assert f"You cannot post in <#{OTHER_CHANNEL_ID}> yourself" in reply_text(callback)
    assert await repo.load_searches() == []


async def test_search_list_shows_only_mine_and_pages(bot: Interactions, commands: Commands) -> None:
    mine = [await saved(commands, query=f"lego set {n}") for n in range(12)]
    await saved(commands, owner=OTHER_USER_ID, query="not mine")
    first = await bot.send(bot.slash("search list"))
    text = reply_text(first)
    assert "Your searches in this server (12)" in text and "Page 1 of 2" in text
    assert f"\\#{mine[0].id} \u201clego set 0\u201d" in text and "lego set 10" not in text
    assert "not mine" not in text
    buttons = first["data"]["components"][0]["components"]
    assert [b["custom_id"] for b in buttons] == ["dealscout:page:1:0", "dealscout:page:2:0"]
    second = await bot.send(bot.slash("search list", {"page": 2}))
    assert "lego set 11" in reply_text(second) and "Page 2 of 2" in reply_text(second)


async def test_search_list_everyone_is_for_managers(bot: Interactions, commands: Commands) -> None:
    await saved(commands, owner=OTHER_USER_ID, query="their search")
    refused = await bot.send(bot.slash("search list", {"everyone": True}))
    assert "Only server managers can list everyone's searches." in reply_text(refused)
    allowed = await bot.send(bot.slash("search list", {"everyone": True}, user=MANAGER_ID, permissions=MANAGER))
    assert "their search" in reply_text(allowed) and f"<@{OTHER_USER_ID}>" in reply_text(allowed)


async def test_search_show(bot: Interactions, commands: Commands) -> None:
    search = await saved(commands, max_price="99")
    callback = await bot.send(bot.slash("search show", {"search": str(search.id)}))
    text = reply_text(callback)
    assert f"Search #{search.id}" in text and "lego technic" in text and "price 0\u201399" in text
    assert f"Alerts go to: <#{CHANNEL_ID}>" in text and f"Owner: <@{USER_ID}>" in text
    assert "Last check per marketplace: FakeBay: not checked yet" in text


async def test_search_show_gives_the_last_outcome_per_marketplace(bot: Interactions, commands: Commands,
                                                                  vclock: VirtualClock, database_url: str) -> None:
    """Regression: /search show said nothing of how the marketplaces answered, so a search blocked for days looked
    like one that found nothing."""
    search = await commands.add_search(Actor(str(USER_ID)), HERE, scope=str(GUILD_ID), query="lego",
                                       marketplaces="fakebay, slowlist")
    await record_outcomes(database_url, search.id, {
        "fakebay": outcome("success", vclock() - timedelta(minutes=5), listings=3),
        "slowlist": outcome("blocked", vclock() - timedelta(hours=3), error="HTTP 403: *captcha* page")})
    text = reply_text(await bot.send(bot.slash("search show", {"search": str(search.id)})))
    assert ("Last check per marketplace: FakeBay: 3 listings, 5 min ago\n"
            "SlowList: blocked, 3 h ago \\(HTTP 403: \\*captcha\\* page\\)") in text


async def test_search_edit_changes_only_what_is_given(bot: Interactions, commands: Commands,
                                                      repo: Repository) -> None:
    search = await saved(commands, max_price="99", exclude="broken")
    callback = await bot.send(bot.slash("search edit", {"search": f"#{search.id}", "max_price": "150",
                                                        "exclude": "none", "interval": 20}))
    assert "Updated" in reply_text(callback)
    after = await repo.load_search(search.id)
    assert after is not None
    assert (after.spec.max_price, after.spec.exclude, after.spec.check_interval_minutes) == (150, (), 20)
    assert after.spec.query == "lego technic"
    same = await bot.send(bot.slash("search edit", {"search": str(search.id), "interval": 20}))
    assert "Nothing to change in" in reply_text(same)


async def test_search_edit_refuses_bad_input_and_changes_nothing(bot: Interactions, commands: Commands,
                                                                 repo: Repository) -> None:
    search = await saved(commands, max_price="99")
    callback = await bot.send(bot.slash("search edit", {"search": str(search.id), "min_price": "500"}))
    # The stored bound comes back as Numeric(18, 4): the shared message shows 99.0000 (reported upstream).
    assert "The minimum price (500) is above the maximum price (99" in reply_text(callback)
    assert await repo.load_search(search.id) == search


async def test_pause_resume_remove(bot: Interactions, commands: Commands, repo: Repository) -> None:
    search = await saved(commands)
    paused = await bot.send(bot.slash("search pause", {"search": str(search.id)}))
    assert f"Resume it with `/search resume {search.id}`" in reply_text(paused)
    assert (await repo.load_search(search.id)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
    resumed = await bot.send(bot.slash("search resume", {"search": str(search.id)}))
    assert "Resumed" in reply_text(resumed)
    assert (await repo.load_search(search.id)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]
    removed = await bot.send(bot.slash("search remove", {"search": str(search.id)}))
    assert "Removed" in reply_text(removed)
    assert await repo.load_search(search.id) is None


async def test_resume_refuses_while_the_bot_cannot_post_there(bot: Interactions, commands: Commands,
                                                              repo: Repository) -> None:
    search = await commands.add_search(Actor(str(USER_ID)), Destination("discord", str(LOCKED_CHANNEL_ID)),
                                       scope=str(GUILD_ID), query="lego", marketplaces="fakebay")
    await commands.pause_search(Actor(str(USER_ID)), search.id)
    callback = await bot.send(bot.slash("search resume", {"search": str(search.id)}))
    assert "I am missing Send Messages" in reply_text(callback)
    assert (await repo.load_search(search.id)).status is SearchStatus.PAUSED  # type: ignore[union-attr]


@pytest.mark.parametrize("command", ["search show", "search pause", "search resume", "search remove",
                                     "search edit", "deals"])
async def test_other_peoples_searches_are_not_found(bot: Interactions, commands: Commands, repo: Repository,
                                                     command: str) -> None:
    theirs = await saved(commands, owner=OTHER_USER_ID)
    callback = await bot.send(bot.slash(command, {"search": str(theirs.id)}))
    assert is_ephemeral(callback)
    assert f"You have no search #{theirs.id}." in reply_text(callback)
    assert await repo.load_search(theirs.id) == theirs


@pytest.mark.parametrize("search_id", ["abc", "0", "-1", "99999"])
async def test_bad_search_ids(bot: Interactions, search_id: str) -> None:
    callback = await bot.send(bot.slash("search show", {"search": search_id}))
    text = reply_text(callback)
    assert "is not a search number" in text or "You have no search" in text


@pytest.mark.parametrize(("permissions", "roles"), [(MANAGER, ()), (READ_ONLY, (MANAGER_ROLE_ID,))],
                         ids=["manage-server", "manager-role-by-name"])
async def test_managers_act_on_everyones_searches(bot: Interactions, commands: Commands, repo: Repository,
                                                   permissions: Any, roles: tuple[int, ...]) -> None:
    theirs = await saved(commands, owner=OTHER_USER_ID)
    callback = await bot.send(bot.slash("search pause", {"search": str(theirs.id)}, user=MANAGER_ID,
                                        permissions=permissions, roles=roles))
    assert "Paused" in reply_text(callback)
    assert (await repo.load_search(theirs.id)).status is SearchStatus.PAUSED  # type: ignore[union-attr]


async def test_deals_shows_the_newest_alerts(bot: Interactions, commands: Commands, repo: Repository) -> None:
    search = await saved(commands)
    await queue_alerts(repo, search, ["Technic *Porsche* [42056]", "Technic @everyone crane"])
    callback = await bot.send(bot.slash("deals", {"search": str(search.id), "count": 5}))
    text = reply_text(callback)
    assert f"Newest deals for \\#{search.id}" in text or f"Newest deals for #{search.id}" in text
    assert "[Technic \\*Porsche\\* \\[42056\\]](https://fakebay.test/itm/0)" in text
    assert "@\u200beveryone" in text
    empty = await bot.send(bot.slash("deals", {"search": str((await saved(commands, query="duplo")).id)}))
    assert "No deals yet" in reply_text(empty)


async def test_autocomplete_offers_marketplaces_and_my_searches(bot: Interactions, commands: Commands,
                                                                fake: FakeDiscord) -> None:
    markets = await bot.send(bot.slash("search add", {"query": "x", "marketplaces": "fakebay, s"},
                                       focused="marketplaces"))
    assert markets["type"] == 8
    assert markets["data"]["choices"] == [{"name": "FakeBay, SlowList", "value": "fakebay, slowlist"}]
    mine = await saved(commands, query="lego technic")
    await saved(commands, owner=OTHER_USER_ID, query="lego city")
    choices = await bot.send(bot.slash("search pause", {"search": "lego"}, focused="search"))
    assert choices["data"]["choices"] == [{"name": f"#{mine.id} lego technic", "value": str(mine.id)}]


async def test_show_and_list_say_when_an_operator_paused_a_marketplace(bot: Interactions, commands: Commands,
                                                                       repo: Repository) -> None:
    search = await saved(commands)
    await repo.set_marketplace_status("fakebay", status="paused", reason="captcha wall", actor="op",
                                      now=search.created_at)
    for callback in (await bot.send(bot.slash("search show", {"search": str(search.id)})),
                     await bot.send(bot.slash("search list"))):
        assert "FakeBay is paused by the operators: captcha wall" in reply_text(callback)
