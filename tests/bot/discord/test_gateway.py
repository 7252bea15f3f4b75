"""The smoke test: start() logs in, syncs the commands, connects the gateway, and answers an interaction from it."""

from __future__ import annotations

import asyncio

from bot.commands import Commands
from bot.discord.frontend import build_discord_front_end
from storage.repo import Repository
from tests.bot.discord.conftest import discord_settings
from tests.bot.discord.harness import CHANNEL_ID, GUILD_ID, Interactions, VirtualClock, reply_text
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_gateway import FakeGateway


async def test_hello_identify_ready_interaction_response(commands: Commands, repo: Repository,
                                                         vclock: VirtualClock) -> None:
    gateway = FakeGateway()
    async with FakeDiscord(clock=vclock.monotonic, gateway=gateway) as fake:
        fake.add_channel(GUILD_ID, CHANNEL_ID)
        front = build_discord_front_end(discord_settings(DISCORD_GUILD_ID=str(GUILD_ID)), commands, clock=vclock)
        await front.start()
        try:
            await asyncio.wait_for(gateway.identified.wait(), timeout=10)
            assert gateway.identify is not None
            assert gateway.identify["token"] == "test-token-not-secret"
            assert gateway.identify["intents"] == 1, "guilds only: no privileged intents"
            assert ("GET", "/gateway/bot") in fake.requests
            # DISCORD_GUILD_ID set: the commands went to that server, not globally.
            assert {command["name"] for command in fake.synced[str(GUILD_ID)]} == {
                "search", "deals", "settings", "admin"}
            assert "global" not in fake.synced
            assert front.client is not None
            payload = Interactions(front.client, fake).slash("search add", {"query": "lego technic"})
            payload["data"]["guild_id"] = str(GUILD_ID)
            await gateway.dispatch("INTERACTION_CREATE", payload)
            callback = await asyncio.wait_for(fake.wait_for_callback(payload["id"]), timeout=10)
            assert "Saved search" in reply_text(callback)
            assert [s.query for s in await repo.load_searches(platform="discord")] == ["lego technic"]
        finally:
            await front.stop()
