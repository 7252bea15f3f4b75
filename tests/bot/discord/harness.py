"""Test helpers for the Discord front end: one virtual clock, synthetic interaction payloads as Discord sends them."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from bot.discord.client import DiscordRest, RestResponse
from scout.models import FetchOutcome, Listing, SavedSearch, SearchRun
from storage.repo import Repository
from tests.fakes.adapters import make_listing
from tests.fakes.discord_api import APPLICATION_ID

GUILD_ID = 700000000000000001
CHANNEL_ID = 700000000000000010
OTHER_CHANNEL_ID = 700000000000000011
LOCKED_CHANNEL_ID = 700000000000000012
USER_ID = 710000000000000001
OTHER_USER_ID = 710000000000000002
MANAGER_ID = 710000000000000003
OPERATOR_ID = 710000000000000004
MANAGER_ROLE_ID = 720000000000000001

MEMBER = discord.Permissions(view_channel=True, send_messages=True, embed_links=True, read_message_history=True,
                             use_application_commands=True)
MANAGER = MEMBER | discord.Permissions(manage_guild=True)
READ_ONLY = discord.Permissions(view_channel=True, read_message_history=True, use_application_commands=True)
BOT_CAN_POST = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)


MIN_TICK = 1e-6


class VirtualClock:
    """One virtual time for the dispatcher (datetime), the pacer and the fake Discord (seconds).

    `sleep` lets the other tasks run, then moves time forward to the sleeper's wake-up (never back): tasks that
    sleep side by side overlap as they would in real time, and no test waits for real. Requests made through
    `ClockedRest` take no virtual time: the clock holds still while one is on the wire, so the fake sees each
    request at the moment the pacer let it go.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        self.elapsed = 0.0
        self.slept: list[float] = []
        self.in_flight = 0
        self._settled = asyncio.Condition()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return 1000.0 + self.elapsed

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        # A real clock always moves on; without this floor a wait of 1e-17 s would never end.
        wake = self.elapsed + (max(seconds, MIN_TICK) if seconds > 0 else 0.0)
        await asyncio.sleep(0)
        async with self._settled:
            await self._settled.wait_for(lambda: self.in_flight == 0)
        self.elapsed = max(self.elapsed, wake)

    async def request_done(self) -> None:
        async with self._settled:
            self._settled.notify_all()

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


class ClockedRest(DiscordRest):
    """The real REST caller, telling the virtual clock when a request is on the wire."""

    def __init__(self, token: str, clock: VirtualClock) -> None:
        super().__init__(token)
        self._virtual = clock

    async def request(self, method: str, path: str, *, payload: Any = None) -> RestResponse:
        self._virtual.in_flight += 1
        try:
            return await super().request(method, path, payload=payload)
        finally:
            self._virtual.in_flight -= 1
            await self._virtual.request_done()


@dataclass
class ChannelOption:
    """A channel picked in a channel option, with what the caller may do there."""

    id: int
    permissions: discord.Permissions = MEMBER
    kind: int = 0


@dataclass
class Interactions:
    """Builds INTERACTION_CREATE payloads like Discord's; `send` feeds one to the real client and awaits the answer."""

    client: discord.Client
    fake: Any
    ids: itertools.count = field(default_factory=lambda: itertools.count(730000000000000001))

    def _base(self, kind: int, *, user: int, permissions: discord.Permissions, roles: tuple[int, ...],
              channel_id: int, app_permissions: discord.Permissions) -> dict[str, Any]:
        number = next(self.ids)
        return {
            "id": str(number), "application_id": str(APPLICATION_ID), "type": kind, "token": f"token-{number}",
            "version": 1, "guild_id": str(GUILD_ID), "guild": {"id": str(GUILD_ID), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": {"id": str(channel_id), "type": 0, "guild_id": str(GUILD_ID), "name": "deals", "position": 0,
                        "permission_overwrites": [], "nsfw": False, "parent_id": None},
            "member": {"user": {"id": str(user), "username": f"user{user % 1000}", "discriminator": "0",
                                "avatar": None, "global_name": None},
                       "roles": [str(role) for role in roles], "permissions": str(permissions.value),
                       "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False, "mute": False, "flags": 0},
            "app_permissions": str(app_permissions.value), "locale": "en-US", "guild_locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }

    def slash(self, command: str, options: dict[str, Any] | None = None, *, focused: str | None = None,
              user: int = USER_ID, permissions: discord.Permissions = MEMBER, roles: tuple[int, ...] = (),
              channel_id: int = CHANNEL_ID, app_permissions: discord.Permissions = BOT_CAN_POST) -> dict[str, Any]:
        """'/search add' with its options (`focused` names the option being typed: an autocomplete request)."""
        names = command.split()
        payload = self._base(4 if focused else 2, user=user, permissions=permissions, roles=roles,
                             channel_id=channel_id, app_permissions=app_permissions)
        resolved: dict[str, Any] = {}
        values = []
        for name, value in (options or {}).items():
            option: dict[str, Any] = {"name": name, "value": value}
            if isinstance(value, ChannelOption):
                option.update(type=7, value=str(value.id))
                resolved.setdefault("channels", {})[str(value.id)] = {
                    "id": str(value.id), "name": f"channel-{value.id % 100}", "type": value.kind,
                    "permissions": str(value.permissions.value), "guild_id": str(GUILD_ID)}
            else:
                option["type"] = 5 if isinstance(value, bool) else 4 if isinstance(value, int) else 3
            if name == focused:
                option["focused"] = True
            values.append(option)
        data: dict[str, Any] = {"id": str(next(self.ids)), "name": names[0], "type": 1}
        if len(names) > 1:
            data["options"] = [{"name": names[1], "type": 1, "options": values}]
        else:
            data["options"] = values
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        return payload

    def press(self, custom_id: str, message: dict[str, Any], *, user: int = USER_ID,
              permissions: discord.Permissions = MEMBER, roles: tuple[int, ...] = (),
              channel_id: int | None = None) -> dict[str, Any]:
        """A button press on `message` (as Discord stored it: the fake's record of what was posted)."""
        payload = self._base(3, user=user, permissions=permissions, roles=roles,
                             channel_id=channel_id or int(message.get("channel_id") or CHANNEL_ID),
                             app_permissions=BOT_CAN_POST)
        payload["message"] = message
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        return payload

    async def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Deliver the payload as the gateway would and return the interaction callback the bot made."""
        self.client._connection.parse_interaction_create(payload)
        return await asyncio.wait_for(self.fake.wait_for_callback(payload["id"]), timeout=10)


def reply_text(callback: dict[str, Any]) -> str:
    """Everything a person reads in a callback: content, embed titles, descriptions and fields."""
    data = callback.get("data") or {}
    parts = [data.get("content") or ""]
    for embed in data.get("embeds") or []:
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(part for part in parts if part)


def is_ephemeral(callback: dict[str, Any]) -> bool:
    return bool(int((callback.get("data") or {}).get("flags", 0)) & 64)


async def queue_alerts(repo: Repository, search: SavedSearch, titles: list[str], *, start: int = 0,
                       now: datetime | None = None) -> list[Listing]:
    """Record a scan in which `search` matched one new listing per title: one outbox row each."""
    moment = now or search.created_at
    listings = tuple(make_listing(start + n, title) for n, title in enumerate(titles))
    fetch = FetchOutcome("fakebay", search.query, "success", 1, listings, matches={search.id: listings})
    run = SearchRun(search.id, moment + timedelta(minutes=5), frozenset({"fakebay"}))
    await repo.save_scan(now=moment, fetches=[fetch], runs=[run], searches={search.id: search},
                         baseline_first_scan=False)
    return list(listings)

