"""Alert buttons work after a restart (a new client and tree over the same database) and check who presses."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import discord
import pytest

from bot.buttons import encode_stamp
from bot.commands import Actor, Commands
from bot.discord.frontend import DiscordFrontEnd
from scout.delivery import Dispatcher
from scout.models import Destination, SavedSearch, SearchStatus
from storage.repo import Repository
from tests.bot.discord.conftest import discord_settings, start_front
from tests.bot.discord.harness import (
    CHANNEL_ID,
    GUILD_ID,
    MANAGER,
    MANAGER_ID,
    MEMBER,
    OTHER_USER_ID,
    USER_ID,
    Interactions,
    VirtualClock,
    is_ephemeral,
    queue_alerts,
    reply_text,
)
from tests.bot.reused_ids import give_removed_id
from tests.fakes.discord_api import FakeDiscord


async def alert_message(front: DiscordFrontEnd, repo: Repository, vclock: VirtualClock, fake: FakeDiscord,
                        search: SavedSearch) -> dict[str, Any]:
    """Deliver one alert of `search` through the real dispatcher; returns the message as Discord stored it."""
    await queue_alerts(repo, search, ["Lego Technic 42056"], now=vclock())
    dispatcher = Dispatcher(repo, {"discord": front.notifier}, clock=vclock, rng=random.Random(1))
    assert (await dispatcher.drain()).sent == 1
    return fake.messages_in(CHANNEL_ID)[-1].message


def button(message: dict[str, Any], label: str) -> str:
    return next(b["custom_id"] for row in message["components"] for b in row["components"] if b["label"] == label)


@pytest.fixture
async def restarted(front: DiscordFrontEnd, commands: Commands, vclock: VirtualClock, repo: Repository,
                    fake: FakeDiscord) -> Any:
    """An alert sent by one bot process, then that process gone and a new one answering its buttons."""
    search = await commands.add_search(Actor(str(USER_ID)), Destination("discord", str(CHANNEL_ID)),
                                       scope=str(GUILD_ID), query="lego technic", marketplaces="fakebay")
    message = await alert_message(front, repo, vclock, fake, search)
    await front.stop()
    again = await start_front(discord_settings(), commands, vclock)
    assert again.client is not front.client
    yield search, message, Interactions(again.client, fake)  # type: ignore[arg-type]
    await again.stop()


async def test_the_owner_pauses_from_the_alert_after_a_restart(restarted: Any, repo: Repository) -> None:
    search, message, bot = restarted
    # The alert was queued, and the search made, at vclock's start: the button carries that moment (bot.buttons).
    assert button(message, "Pause search") == f"dealscout:pause:{search.id}:{encode_stamp(search.created_at)}"
    callback = await bot.send(bot.press(button(message, "Pause search"), message))
    assert is_ephemeral(callback) and f"Paused \\#{search.id}" in reply_text(callback)
    assert f"/search resume {search.id}" in reply_text(callback)
    assert (await repo.load_search(search.id)).status is SearchStatus.PAUSED  # type: ignore[union-attr]


async def test_someone_else_is_refused_and_nothing_changes(restarted: Any, repo: Repository) -> None:
    search, message, bot = restarted
    for label in ("Pause search", "Remove search"):
        callback = await bot.send(bot.press(button(message, label), message, user=OTHER_USER_ID))
        assert is_ephemeral(callback)
        verb = "pause" if label == "Pause search" else "remove"
        assert f"Only the owner of search #{search.id} or a server manager can {verb} it." in reply_text(callback)
    after = await repo.load_search(search.id)
    assert after is not None and after.status is SearchStatus.ACTIVE and after.spec == search.spec


async def test_a_server_manager_may_pause_anyones(restarted: Any, repo: Repository) -> None:
    search, message, bot = restarted
    callback = await bot.send(bot.press(button(message, "Pause search"), message, user=MANAGER_ID,
                                        permissions=MANAGER))
    assert "Paused" in reply_text(callback)
    assert (await repo.load_search(search.id)).status is SearchStatus.PAUSED  # type: ignore[union-attr]


async def test_remove_asks_first_then_removes(restarted: Any, repo: Repository, fake: FakeDiscord) -> None:
    search, message, bot = restarted
    ask = await bot.send(bot.press(button(message, "Remove search"), message))
    assert "This cannot be undone" in reply_text(ask) and is_ephemeral(ask)
    assert await repo.load_search(search.id) is not None
    prompt = fake.message_from(CHANNEL_ID, ask["data"])
    assert button(prompt, "Yes, remove it") == f"dealscout:remove-yes:{search.id}:{encode_stamp(search.created_at)}"
    done = await bot.send(bot.press(button(prompt, "Yes, remove it"), prompt))
    assert done["type"] == 7 and "Removed" in done["data"]["content"] and done["data"]["components"] == []
    assert await repo.load_search(search.id) is None
    gone = await bot.send(bot.press(button(message, "Pause search"), message))
    assert f"Search #{search.id} no longer exists." in reply_text(gone)


async def test_list_pages_turn_with_buttons(bot: Interactions, commands: Commands, fake: FakeDiscord) -> None:
    for n in range(25):
        await commands.add_search(Actor(str(USER_ID)), Destination("discord", str(CHANNEL_ID)),
                                  scope=str(GUILD_ID), query=f"set {n}", marketplaces="fakebay")
    first = await bot.send(bot.slash("search list"))
    listing = fake.message_from(CHANNEL_ID, first["data"])
    turned = await bot.send(bot.press(button(listing, "Next"), listing))
    assert turned["type"] == 7
    assert "Page 2 of 3" in reply_text(turned) and "set 10" in reply_text(turned) and "set 9\u201d" not in \
        reply_text(turned)


def posted_at(message: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """`message` with the id Discord would have given it at `moment`: a message's id tells when it was posted."""
    return {**message, "id": str(discord.utils.time_snowflake(moment))}


def without_stamps(message: dict[str, Any]) -> dict[str, Any]:
    """`message` as the previous release posted it: its buttons name the search by its id alone."""
    rows = [{**row, "components": [{**b, "custom_id": ":".join(b["custom_id"].split(":")[:3])} if "custom_id" in b
                                   else b for b in row["components"]]} for row in message["components"]]
    return {**message, "components": rows}


@pytest.fixture
async def reused(front: DiscordFrontEnd, commands: Commands, vclock: VirtualClock, repo: Repository,
                 fake: FakeDiscord, database_url: str) -> Any:
    """An alert of a search since removed, and a newer search (another member's) that was given its id."""
    old = await commands.add_search(Actor(str(USER_ID)), Destination("discord", str(CHANNEL_ID)),
                                    scope=str(GUILD_ID), query="lego technic", marketplaces="fakebay")
    message = await alert_message(front, repo, vclock, fake, old)
    sent_at = vclock()
    await commands.remove_search(Actor(str(USER_ID)), old.id)
    vclock.advance(3600)
    newer = await commands.add_search(Actor(str(OTHER_USER_ID)), Destination("discord", str(CHANNEL_ID)),
                                      scope=str(GUILD_ID), query="pokemon cards", marketplaces="fakebay")
    await give_removed_id(database_url, newer.id, old.id)
    yield old.id, posted_at(message, sent_at), Interactions(front.client, fake)  # type: ignore[arg-type]


@pytest.mark.parametrize("old_release", [False, True], ids=["stamped", "unstamped"])
async def test_an_old_alerts_buttons_never_act_on_a_newer_search_given_its_id(
        reused: Any, repo: Repository, old_release: bool) -> None:
    """Regression: SQLite gave a removed search's id to the next new search, and the old alert's Pause and Remove
    buttons (which named only the id) then paused or removed that newer search, someone else's."""
    search_id, message, bot = reused
    if old_release:
        message = without_stamps(message)
    for label, user, permissions in (("Pause search", MANAGER_ID, MANAGER), ("Remove search", OTHER_USER_ID, MEMBER)):
        callback = await bot.send(bot.press(button(message, label), message, user=user, permissions=permissions))
        assert f"Search #{search_id} no longer exists." in reply_text(callback)
    newer = await repo.load_search(search_id)
    assert newer is not None and newer.query == "pokemon cards" and newer.status is SearchStatus.ACTIVE


async def test_an_unstamped_button_works_on_the_search_it_was_posted_for(restarted: Any, repo: Repository,
                                                                        vclock: VirtualClock) -> None:
    """Buttons posted before they carried a stamp keep working where their search existed when they were posted."""
    search, message, bot = restarted
    old = posted_at(without_stamps(message), vclock())
    assert button(old, "Pause search") == f"dealscout:pause:{search.id}"
    callback = await bot.send(bot.press(button(old, "Pause search"), old))
    assert f"Paused \\#{search.id}" in reply_text(callback)
    assert (await repo.load_search(search.id)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
