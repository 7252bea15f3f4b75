"""Fixtures for the Discord front end: the fake Discord, the shared commands over a real database, a logged-in bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.commands import Commands
from bot.discord.frontend import DiscordFrontEnd, build_discord_front_end
from scout.config import Settings, load_settings
from storage.repo import Repository
from tests.bot.discord.harness import (
    CHANNEL_ID,
    GUILD_ID,
    LOCKED_CHANNEL_ID,
    MANAGER_ROLE_ID,
    OPERATOR_ID,
    OTHER_CHANNEL_ID,
    Interactions,
    VirtualClock,
)
from tests.fakes.adapters import TableAdapter
from tests.fakes.discord_api import BOT_ID, FakeDiscord


def discord_settings(**extra: str) -> Settings:
    env = {"DISCORD_TOKEN": "test-token-not-secret", "DISCORD_OPERATOR_IDS": str(OPERATOR_ID),
           "DISCORD_MANAGER_ROLE": "Deal Wranglers", **extra}
    return load_settings(env, env_file=None)


def adapters() -> dict[str, TableAdapter]:
    return {"fakebay": TableAdapter(),
            "slowlist": TableAdapter(key="slowlist", name="SlowList", min_interval_minutes=30)}


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def fake(vclock: VirtualClock) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(clock=vclock.monotonic) as server:
        server.add_channel(GUILD_ID, CHANNEL_ID)
        server.add_channel(GUILD_ID, OTHER_CHANNEL_ID, name="other")
        # #locked: @everyone may read but not post, so the bot cannot post there either.
        server.add_channel(GUILD_ID, LOCKED_CHANNEL_ID, name="locked", overwrites=[
            {"id": str(GUILD_ID), "type": 0, "allow": "0", "deny": str(1 << 11)}])
        server.add_role(GUILD_ID, MANAGER_ROLE_ID, name="Deal Wranglers", permissions=0)
        yield server


@pytest.fixture
def commands(repo: Repository, vclock: VirtualClock) -> Commands:
    return Commands(repo, adapters(), clock=vclock)


async def start_front(settings: Settings, commands: Commands, vclock: VirtualClock, **kwargs: Any) -> DiscordFrontEnd:
    front = build_discord_front_end(settings, commands, clock=vclock, pacing_clock=vclock.monotonic,
                                    pacing_sleep=vclock.sleep, **kwargs)
    await front.login()
    return front


@pytest.fixture
async def front(fake: FakeDiscord, commands: Commands, vclock: VirtualClock) -> AsyncIterator[DiscordFrontEnd]:
    started = await start_front(discord_settings(), commands, vclock)
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
def bot(front: DiscordFrontEnd, fake: FakeDiscord) -> Interactions:
    assert front.client is not None and front.client.user is not None and front.client.user.id == BOT_ID
    return Interactions(front.client, fake)
