"""Who may do what in a Discord server: server managers, operators, and whether the bot may post in a channel."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import discord

from bot.commands import Actor

log = logging.getLogger(__name__)

# What an alert needs: to see the channel, to post in it, and to show embeds (without Embed Links they vanish).
POST_PERMISSIONS = {"view_channel": "View Channel", "send_messages": "Send Messages", "embed_links": "Embed Links"}
# Role names and permissions change rarely; a manager who was just given the role waits at most this long.
ROLE_CACHE_SECONDS = 300.0


def compute_permissions(*, guild_id: int, member_id: int, member_roles: Iterable[int],
                        role_permissions: Mapping[int, int],
                        overwrites: Iterable[Mapping[str, Any]]) -> discord.Permissions:
    """A member's permissions in a channel, as Discord computes them.

    https://discord.com/developers/docs/topics/permissions#permission-overwrites: @everyone's role (id = guild id),
    then the member's roles, Administrator short-cuts everything, then the channel's @everyone, role and member
    overwrites in that order.
    """
    roles = set(member_roles)
    value = role_permissions.get(guild_id, 0)
    for role in roles:
        value |= role_permissions.get(role, 0)
    if value & discord.Permissions(administrator=True).value:
        return discord.Permissions.all()
    by_id = {int(entry["id"]): entry for entry in overwrites}

    def apply(allow: int, deny: int) -> None:
        nonlocal value
        value = (value & ~deny) | allow

    everyone = by_id.get(guild_id)
    if everyone is not None:
        apply(int(everyone.get("allow", 0)), int(everyone.get("deny", 0)))
    allow = deny = 0
    for role in roles:
        entry = by_id.get(role)
        if entry is not None and int(entry.get("type", 0)) == 0:
            allow |= int(entry.get("allow", 0))
            deny |= int(entry.get("deny", 0))
    apply(allow, deny)
    member = by_id.get(member_id)
    if member is not None and int(member.get("type", 1)) == 1:
        apply(int(member.get("allow", 0)), int(member.get("deny", 0)))
    return discord.Permissions(value)


def missing_to_post(permissions: discord.Permissions) -> list[str]:
    """The names of the permissions an alert needs that `permissions` lacks."""
    return [name for flag, name in POST_PERMISSIONS.items() if not getattr(permissions, flag)]


def member_role_ids(member: discord.abc.User) -> set[int]:
    # Member.roles only lists roles found in the guild cache; the ids in the interaction payload are always there.
    return {int(role) for role in getattr(member, "_roles", ())}


class Access:
    """Turns an interaction into an Actor and checks channels, from the payload, the guild cache or the REST API."""

    def __init__(self, client: discord.Client, *, manager_role: str | None, operator_ids: frozenset[int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._manager_role = (manager_role or "").strip() or None
        self._operators = operator_ids
        self._clock = clock
        self._roles: dict[int, tuple[float, list[dict[str, Any]]]] = {}

    async def actor(self, interaction: discord.Interaction) -> Actor:
        user = interaction.user
        return Actor(str(user.id), is_admin=await self.is_manager(interaction),
                     is_operator=user.id in self._operators)

    async def is_manager(self, interaction: discord.Interaction) -> bool:
        """Manage Server (or Administrator) in this server, or the configured manager role."""
        if interaction.guild_id is None:
            return False
        permissions = interaction.permissions
        if permissions.manage_guild or permissions.administrator:
            return True
        if self._manager_role is None:
            return False
        mine = member_role_ids(interaction.user)
        if self._manager_role.isdigit():
            return int(self._manager_role) in mine
        wanted = self._manager_role.lstrip("@").casefold()
        roles = await self._guild_roles(interaction.guild_id)
        return any(int(role["id"]) in mine and str(role.get("name", "")).casefold() == wanted for role in roles)

    async def can_manage_channel(self, interaction: discord.Interaction) -> bool:
        """Manage Channels in this channel (Discord computed it into the interaction, overwrites included), or a
        server manager: who may change how the channel hears alerts."""
        if interaction.guild_id is None:
            return False
        return interaction.permissions.manage_channels or await self.is_manager(interaction)

    async def bot_missing_in(self, interaction: discord.Interaction, channel_id: int) -> list[str]:
        """What the bot lacks to post alerts in `channel_id` of this interaction's server (empty: all good)."""
        if channel_id == interaction.channel_id:
            return missing_to_post(interaction.app_permissions)
        guild = self._client.get_guild(interaction.guild_id or 0)
        channel = guild.get_channel(channel_id) if guild is not None and not guild.unavailable else None
        if guild is not None and channel is not None and guild.me is not None and guild.roles:
            return missing_to_post(channel.permissions_for(guild.me))
        return await self._bot_missing_by_rest(interaction.guild_id or 0, channel_id)

    async def _bot_missing_by_rest(self, guild_id: int, channel_id: int) -> list[str]:
        me = self._client.user
        if me is None:
            return list(POST_PERMISSIONS.values())
        try:
            channel = await self._client.http.get_channel(channel_id)
            member = await self._client.http.get_member(guild_id, me.id)
            roles = await self._guild_roles(guild_id)
        except (discord.NotFound, discord.Forbidden):
            return list(POST_PERMISSIONS.values())
        if int(channel.get("guild_id") or 0) != guild_id:
            return list(POST_PERMISSIONS.values())
        permissions = compute_permissions(
            guild_id=guild_id, member_id=me.id, member_roles=(int(r) for r in member.get("roles", ())),
            role_permissions={int(r["id"]): int(r.get("permissions", 0)) for r in roles},
            overwrites=channel.get("permission_overwrites", ()),
        )
        return missing_to_post(permissions)

    async def _guild_roles(self, guild_id: int) -> list[dict[str, Any]]:
        guild = self._client.get_guild(guild_id)
        if guild is not None and not guild.unavailable and guild.roles:
            return [{"id": role.id, "name": role.name, "permissions": role.permissions.value} for role in guild.roles]
        cached = self._roles.get(guild_id)
        now = self._clock()
        if cached is not None and now - cached[0] < ROLE_CACHE_SECONDS:
            return cached[1]
        roles = list(await self._client.http.get_roles(guild_id))
        self._roles[guild_id] = (now, roles)
        return roles
