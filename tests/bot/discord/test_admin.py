"""/admin through the real CommandTree: operators only, every action answered, audited and echoed to the ops channel
through the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.admin import AdminCommands
from bot.commands import Actor, Commands
from bot.discord.frontend import DiscordFrontEnd
from ops.reporter import OpsOutbox
from scout.delivery import Dispatcher
from scout.models import Destination
from storage.repo import Repository
from tests.bot.discord.conftest import discord_settings, start_front
from tests.bot.discord.harness import (
    CHANNEL_ID,
    GUILD_ID,
    MANAGER,
    MANAGER_ID,
    OPERATOR_ID,
    OTHER_CHANNEL_ID,
    Interactions,
    VirtualClock,
    is_ephemeral,
    reply_text,
)
from tests.fakes.discord_api import FakeDiscord

OPS_CHANNEL = OTHER_CHANNEL_ID


@pytest.fixture
async def ops_front(fake: FakeDiscord, commands: Commands, vclock: VirtualClock) -> AsyncIterator[DiscordFrontEnd]:
    announce = OpsOutbox(commands.repo, [Destination("discord", str(OPS_CHANNEL))], clock=vclock)
    admin = AdminCommands(commands.repo, commands.adapters, clock=vclock, announce=announce)
    front = await start_front(discord_settings(OPS_DISCORD_CHANNEL_ID=str(OPS_CHANNEL)), commands, vclock,
                              admin=admin)
    yield front
    await front.stop()


def delivery(repo: Repository, front: DiscordFrontEnd, vclock: VirtualClock) -> Dispatcher:
    return Dispatcher(repo, {"discord": front.notifier}, clock=vclock)


@pytest.fixture
def ops(ops_front: DiscordFrontEnd, fake: FakeDiscord) -> Interactions:
    assert ops_front.client is not None
    return Interactions(ops_front.client, fake)


async def test_pause_and_resume_a_marketplace(ops: Interactions, ops_front: DiscordFrontEnd, repo: Repository,
                                              fake: FakeDiscord, vclock: VirtualClock) -> None:
    paused = await ops.send(ops.slash("admin pause", {"marketplace": "fakebay", "reason": "captcha wall"},
                                      user=OPERATOR_ID))
    assert is_ephemeral(paused)
    assert f"FakeBay paused by {OPERATOR_ID}: captcha wall" in reply_text(paused)
    assert (await repo.load_marketplace_states())["fakebay"].paused
    assert (await delivery(repo, ops_front, vclock).drain()).sent == 1
    assert "captcha wall" in fake.messages_in(OPS_CHANNEL)[0].payload["content"]
    resumed = await ops.send(ops.slash("admin resume", {"marketplace": "fakebay"}, user=OPERATOR_ID))
    assert "FakeBay resumed" in reply_text(resumed)
    assert not (await repo.load_marketplace_states())["fakebay"].paused


async def test_backoff_status_and_failures(ops: Interactions, commands: Commands) -> None:
    await commands.add_search(Actor("someone"), Destination("discord", str(CHANNEL_ID)), scope=str(GUILD_ID),
                              query="lego", marketplaces="fakebay", interval_minutes=10)
    backoff = await ops.send(ops.slash("admin backoff", {"marketplace": "fakebay"}, user=OPERATOR_ID))
    assert "doubled the check interval of 1 active searches" in reply_text(backoff)
    status = await ops.send(ops.slash("admin status", user=OPERATOR_ID))
    assert "Deal Scout status" in reply_text(status) and "Outbox: 1 pending" in reply_text(status)  # the echo
    failures = await ops.send(ops.slash("admin failures", {"hours": 2}, user=OPERATOR_ID))
    assert "No marketplace fetches in the last 2 h." in reply_text(failures)


@pytest.mark.parametrize("command", ["admin pause", "admin resume", "admin backoff", "admin status",
                                     "admin failures"])
async def test_everyone_else_is_refused(ops: Interactions, repo: Repository, fake: FakeDiscord,
                                        command: str) -> None:
    options = {"marketplace": "fakebay"} if command in ("admin pause", "admin resume", "admin backoff") else {}
    callback = await ops.send(ops.slash(command, options, user=MANAGER_ID, permissions=MANAGER))
    assert is_ephemeral(callback)
    assert "Only Deal Scout operators can run admin commands." in reply_text(callback)
    assert await repo.load_marketplace_states() == {}
    assert fake.messages_in(OPS_CHANNEL) == []


async def test_the_reply_never_waits_for_the_ops_channel(ops: Interactions, ops_front: DiscordFrontEnd,
                                                         repo: Repository, fake: FakeDiscord,
                                                         vclock: VirtualClock) -> None:
    """Regression: a slow or busy ops channel made the operator see "This interaction failed" although the action
    was applied: the reply waited for the echo. The echo is queued; the reply goes at once."""
    fake.hold_answers(from_message=0)  # the ops channel takes the message and never answers
    await ops.send(ops.slash("admin pause", {"marketplace": "fakebay"}, user=OPERATOR_ID))
    echo = asyncio.create_task(delivery(repo, ops_front, vclock).drain())
    await fake.wait_for(lambda: len(fake.messages_in(OPS_CHANNEL)) == 1)
    resumed = await ops.send(ops.slash("admin resume", {"marketplace": "fakebay"}, user=OPERATOR_ID))
    assert "FakeBay resumed" in reply_text(resumed), "answered while the ops channel still holds the first echo"
    fake.release_answers()
    assert (await echo).sent == 2, "both echoes, in order"
    assert [m.payload["content"].split(" by ")[0] for m in fake.messages_in(OPS_CHANNEL)] == [
        "FakeBay paused", "FakeBay resumed"]


async def test_unknown_marketplace_and_autocomplete(ops: Interactions) -> None:
    unknown = await ops.send(ops.slash("admin pause", {"marketplace": "nosuch"}, user=OPERATOR_ID))
    assert "Unknown marketplace 'nosuch'" in reply_text(unknown)
    choices = await ops.send(ops.slash("admin pause", {"marketplace": "slo"}, focused="marketplace",
                                       user=OPERATOR_ID))
    assert choices["data"]["choices"] == [{"name": "SlowList", "value": "slowlist"}]


async def test_admin_is_hidden_from_members_and_not_offered_in_dms(ops_front: DiscordFrontEnd,
                                                                   fake: FakeDiscord) -> None:
    """Pins: /admin was registered for everyone and for DMs, so every member saw it (and was refused)."""
    await ops_front.sync_commands()
    synced = {command["name"]: command for command in fake.synced["global"]}
    admin = synced["admin"]
    # No permission needed by default means nobody but server administrators, who can grant it to operators.
    assert str(admin["default_member_permissions"]) == "0"
    assert admin["dm_permission"] is False and admin["contexts"] == [0]  # guild only
    assert synced["search"]["default_member_permissions"] is None, "members' own commands stay visible"
