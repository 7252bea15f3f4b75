"""Discord's permission arithmetic for 'may the bot post there', and the REST path when the guild is not cached."""

from __future__ import annotations

import discord
import pytest

from bot.discord.access import compute_permissions, missing_to_post
from storage.repo import Repository
from tests.bot.discord.harness import GUILD_ID, LOCKED_CHANNEL_ID, ChannelOption, Interactions, reply_text
from tests.fakes.discord_api import BOT_ID, FakeDiscord

EVERYONE = discord.Permissions(view_channel=True, send_messages=True, embed_links=True).value
SEND = discord.Permissions(send_messages=True).value
VIEW = discord.Permissions(view_channel=True).value
ROLE = 42
SCOUT_ROLE = 43


def permissions(overwrites: list[dict[str, object]], roles: tuple[int, ...] = (ROLE,),
                role_bits: int = 0) -> discord.Permissions:
    return compute_permissions(guild_id=GUILD_ID, member_id=BOT_ID, member_roles=roles,
                               role_permissions={GUILD_ID: EVERYONE, ROLE: role_bits}, overwrites=overwrites)


@pytest.mark.parametrize(("overwrites", "role_bits", "missing"), [
    ([], 0, []),
    ([{"id": GUILD_ID, "type": 0, "allow": 0, "deny": SEND}], 0, ["Send Messages"]),
    ([{"id": GUILD_ID, "type": 0, "allow": 0, "deny": SEND}, {"id": ROLE, "type": 0, "allow": SEND, "deny": 0}],
     0, []),
    ([{"id": ROLE, "type": 0, "allow": SEND, "deny": 0}, {"id": BOT_ID, "type": 1, "allow": 0, "deny": VIEW}],
     0, ["View Channel"]),
    ([{"id": GUILD_ID, "type": 0, "allow": 0, "deny": SEND | VIEW}],
     discord.Permissions(administrator=True).value, []),
], ids=["defaults", "everyone-denied", "role-allows-back", "member-deny-wins", "administrator"])
def test_overwrites_apply_in_discords_order(overwrites: list[dict[str, object]], role_bits: int,
                                            missing: list[str]) -> None:
    assert missing_to_post(permissions(overwrites, role_bits=role_bits)) == missing


async def test_a_role_overwrite_for_the_bot_opens_a_locked_channel(bot: Interactions, fake: FakeDiscord,
                                                                   repo: Repository) -> None:
    fake.add_role(GUILD_ID, SCOUT_ROLE, name="Deal Scout", permissions=0, bot_has_it=True)
    fake.channels[str(LOCKED_CHANNEL_ID)]["permission_overwrites"].append(
        {"id": str(SCOUT_ROLE), "type": 0, "allow": str(SEND), "deny": "0"})
    callback = await bot.send(bot.slash("search add", {"query": "lego", "channel": ChannelOption(LOCKED_CHANNEL_ID)}))
    assert "Saved search" in reply_text(callback)
    assert len(await repo.load_searches()) == 1


async def test_a_deleted_channel_is_refused(bot: Interactions, fake: FakeDiscord, repo: Repository) -> None:
    fake.delete_channel(LOCKED_CHANNEL_ID)
    callback = await bot.send(bot.slash("search add", {"query": "lego", "channel": ChannelOption(LOCKED_CHANNEL_ID)}))
    assert "I am missing View Channel, Send Messages, Embed Links there" in reply_text(callback)
    assert await repo.load_searches() == []
