"""A local fake of Discord's REST API (aiohttp on 127.0.0.1): Discord's rate limits, failures on demand, a record.

    async with FakeDiscord(clock=time.clock) as fake:   # sets discord.http.Route.BASE, restores it on exit
        fake.add_channel(guild_id, channel_id, overwrites=[...]); fake.add_role(guild_id, role_id, permissions)
        fake.outage(until=t, status=503)        # every message POST fails until the clock reaches t
        fake.lose_responses(2)                  # the next 2 messages are created, but the answer is a 502
        fake.delete_channel(channel_id)         # 404 Unknown Channel from now on; fake.revoke(channel_id): 403
        fake.exhaust(channel_id)                # someone else used up the channel's rate-limit window
        fake.hold_answers(from_message=k)       # messages[k] and later are created, their answers wait...
        fake.release_answers()                  # ...until this (or exit): the bot may die knowing nothing
        await fake.wait_for_callback(interaction_id)   # the recorded interaction callback payload
        fake.messages, fake.statuses, fake.rate_limited, fake.synced, fake.dms
        fake.uploads                            # requests that carried files (multipart): raw body, payload, files

Rate limits, as Discord documents them in its headers: each channel's messages go in fixed windows of
`channel_limit` per `channel_window` seconds starting at the window's first request (X-RateLimit-Limit, -Remaining,
-Reset, -Reset-After, -Bucket on every answer); all requests of the bot but interaction responses share a global
limit of `global_limit` in any `global_window` span (Discord says "50 per second" and not how it counts, so the
strictest reading). A 429 carries retry_after in the body, Retry-After, X-RateLimit-Scope, and the `Via` header
without which discord.py takes it for a Cloudflare ban. Answers are `Content-Type: application/json`, exactly, as
discord.py checks for that string.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import json
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import discord
from aiohttp import web

APPLICATION_ID = 900000000000000001
BOT_ID = 900000000000000002
OWNER_ID = 900000000000000003
BOT_USER = {"id": str(BOT_ID), "username": "Deal Scout", "discriminator": "0", "avatar": None, "bot": True,
            "global_name": None}
API_PREFIX = "/api/v10"


@dataclass(frozen=True)
class Posted:
    """A message that reached a channel: what we sent and what Discord made of it."""

    channel_id: str
    payload: dict[str, Any]
    message: dict[str, Any]

    @property
    def nonce(self) -> str | None:
        return self.payload.get("nonce")


@dataclass(frozen=True)
class Upload:
    """A request that carried files, as discord.py sends them: multipart/form-data with a `payload_json` part."""

    path: str
    raw: bytes  # the whole body as it arrived
    payload: dict[str, Any]
    files: dict[str, tuple[str, bytes]]  # form field ("files[0]") -> (file name, content)


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass
class FakeDiscord:
    clock: Callable[[], float] = time.monotonic
    channel_limit: int = 5
    channel_window: float = 5.0
    global_limit: int = 50
    global_window: float = 1.0
    nonce_window: float = 300.0
    gateway: Any = None  # tests.fakes.discord_gateway.FakeGateway, for the smoke test

    messages: list[Posted] = field(default_factory=list)
    callbacks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    callback_at: dict[str, float] = field(default_factory=dict)  # time.perf_counter() when each arrived
    followups: list[dict[str, Any]] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    synced: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)  # answers to message POSTs, by status
    rate_limited: list[tuple[str, str]] = field(default_factory=list)  # (scope, route) of every 429
    nonce_repeats: int = 0
    dms: dict[str, str] = field(default_factory=dict)  # user id -> DM channel id
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.channels: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, list[dict[str, Any]]] = {}
        self.member_roles: dict[tuple[str, str], list[str]] = {}
        self._windows: dict[str, _Window] = {}
        self._global: deque[float] = deque()
        self._nonces: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._outage: tuple[float, int] | None = None
        self._lose = 0
        self._hold_from: int | None = None
        self._release = asyncio.Event()
        self._gone: dict[str, tuple[int, int, str]] = {}
        self._next_id = 1_100_000_000_000_000_000
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._saved_base = discord.http.Route.BASE
        self.url = ""

    # --- the world the bot lives in ------------------------------------------------------------------------------

    def add_channel(self, guild_id: int | str, channel_id: int | str, *, name: str = "deals", kind: int = 0,
                    overwrites: Iterable[dict[str, Any]] = ()) -> None:
        self.channels[str(channel_id)] = {"id": str(channel_id), "guild_id": str(guild_id), "name": name,
                                          "type": kind, "permission_overwrites": list(overwrites)}
        self.roles.setdefault(str(guild_id), [self._role(guild_id, "@everyone", _DEFAULT_EVERYONE)])

    def add_role(self, guild_id: int | str, role_id: int | str, *, name: str, permissions: int,
                 bot_has_it: bool = False) -> None:
        self.roles.setdefault(str(guild_id), [self._role(guild_id, "@everyone", _DEFAULT_EVERYONE)])
        self.roles[str(guild_id)].append(self._role(role_id, name, permissions))
        if bot_has_it:
            self.member_roles.setdefault((str(guild_id), str(BOT_ID)), []).append(str(role_id))

    @staticmethod
    def _role(role_id: int | str, name: str, permissions: int) -> dict[str, Any]:
        return {"id": str(role_id), "name": name, "permissions": str(permissions), "position": 0, "color": 0,
                "hoist": False, "managed": False, "mentionable": False, "flags": 0}

    # --- failures ------------------------------------------------------------------------------------------------

    def outage(self, *, until: float, status: int = 503) -> None:
        self._outage = (until, status)

    def lose_responses(self, count: int) -> None:
        self._lose = count

    def exhaust(self, channel_id: int | str) -> None:
        """Another process (or a bot sharing the token) just used up this channel's window."""
        self._windows[str(channel_id)] = _Window(self.clock(), self.channel_limit)

    def hold_answers(self, *, from_message: int) -> None:
        """Create messages as usual, but hold the answer to `messages[from_message]` and every later one until
        release_answers(): Discord has the message while the bot has not heard so."""
        self._hold_from = from_message
        self._release = asyncio.Event()

    def release_answers(self) -> None:
        """Answer every held message and hold no more."""
        self._hold_from = None
        self._release.set()

    def delete_channel(self, channel_id: int | str) -> None:
        self._gone[str(channel_id)] = (404, 10003, "Unknown Channel")

    def revoke(self, channel_id: int | str) -> None:
        self._gone[str(channel_id)] = (403, 50001, "Missing Access")

    # --- what arrived --------------------------------------------------------------------------------------------

    def messages_in(self, channel_id: int | str) -> list[Posted]:
        return [posted for posted in self.messages if posted.channel_id == str(channel_id)]

    async def wait_for_callback(self, interaction_id: int | str) -> dict[str, Any]:
        async with self._changed:
            await self._changed.wait_for(lambda: str(interaction_id) in self.callbacks)
        return self.callbacks[str(interaction_id)][0]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- the server ----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._dispatch)
        if self.gateway is not None:
            app.router.add_get("/gateway", self.gateway.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        discord.http.Route.BASE = self.url + API_PREFIX
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        discord.http.Route.BASE = self._saved_base
        self.release_answers()
        if self.gateway is not None:
            await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def snowflake(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    async def _dispatch(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        parts = path.strip("/").split("/")
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "multipart/form-data":
                upload = read_upload(path, raw, request.headers["Content-Type"])
                self.uploads.append(upload)
                body = upload.payload
            else:
                body = json.loads(raw or b"null")
        self.requests.append((request.method, path))
        is_interaction = parts[0] in ("interactions", "webhooks")
        if not is_interaction:
            limited = self._global_limit()
            if limited is not None:
                return limited
        route = (request.method, parts[0], len(parts))
        handlers = {
            ("GET", "users", 2): self._me, ("GET", "oauth2", 3): self._application,
            ("GET", "gateway", 2): self._gateway_bot, ("POST", "interactions", 4): self._callback,
            ("POST", "webhooks", 3): self._followup, ("PATCH", "webhooks", 5): self._edit,
            ("PUT", "applications", 3): self._sync, ("PUT", "applications", 5): self._sync,
            ("POST", "channels", 3): self._create_message, ("GET", "channels", 2): self._get_channel,
            ("GET", "guilds", 3): self._get_roles, ("GET", "guilds", 4): self._get_member,
            ("POST", "users", 3): self._open_dm,
        }
        handler = handlers.get(route)
        if handler is None:
            return _json({"message": "404: Not Found", "code": 0}, status=404)
        response = await handler(parts, body)
        await self._notify()
        return response

    def _global_limit(self) -> web.Response | None:
        now = self.clock()
        while self._global and self._global[0] <= now - self.global_window:
            self._global.popleft()
        if len(self._global) >= self.global_limit:
            retry = self._global[0] + self.global_window - now
            self.rate_limited.append(("global", ""))
            return _json({"message": "You are being rate limited.", "retry_after": round(retry, 3), "global": True},
                         status=429, headers={"Retry-After": str(math.ceil(retry)), "X-RateLimit-Global": "true",
                                              "X-RateLimit-Scope": "global", "Via": "1.1 google"})
        self._global.append(now)
        return None

    async def _me(self, parts: list[str], body: Any) -> web.Response:
        return _json({**BOT_USER, "verified": True, "mfa_enabled": False, "flags": 0})

    async def _application(self, parts: list[str], body: Any) -> web.Response:
        owner = {"id": str(OWNER_ID), "username": "owner", "discriminator": "0", "avatar": None}
        return _json({"id": str(APPLICATION_ID), "name": "Deal Scout", "description": "", "icon": None,
                      "bot_public": True, "bot_require_code_grant": False, "owner": owner, "verify_key": "00",
                      "flags": 0})

    async def _gateway_bot(self, parts: list[str], body: Any) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.url.replace("http", "ws", 1) + "/gateway", "shards": 1,
                      "session_start_limit": limit})

    async def _sync(self, parts: list[str], body: Any) -> web.Response:
        scope = parts[3] if len(parts) == 5 else "global"
        self.synced[scope] = body
        made = [{**command, "id": self.snowflake(), "application_id": str(APPLICATION_ID), "version": "1",
                 "default_member_permissions": None, **({"guild_id": scope} if scope != "global" else {})}
                for command in body]
        return _json(made)

    async def _callback(self, parts: list[str], body: Any) -> web.Response:
        self.callback_at.setdefault(parts[1], time.perf_counter())
        self.callbacks.setdefault(parts[1], []).append(body)
        data = body.get("data") or {}
        return _json({"interaction": {"id": parts[1], "type": 2, "response_message_id": self.snowflake(),
                                      "response_message_loading": False,
                                      "response_message_ephemeral": bool(int(data.get("flags", 0)) & 64)}})

    async def _followup(self, parts: list[str], body: Any) -> web.Response:
        self.followups.append(body)
        return _json(self._message("0", body))

    async def _edit(self, parts: list[str], body: Any) -> web.Response:
        self.edits.append(body)
        return _json(self._message("0", body))

    async def _get_channel(self, parts: list[str], body: Any) -> web.Response:
        channel = self.channels.get(parts[1])
        if channel is None or parts[1] in self._gone:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        return _json(channel)

    async def _get_roles(self, parts: list[str], body: Any) -> web.Response:
        return _json(self.roles.get(parts[1], []))

    async def _get_member(self, parts: list[str], body: Any) -> web.Response:
        roles = self.member_roles.get((parts[1], parts[3]), [])
        return _json({"user": BOT_USER, "roles": roles, "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False,
                      "mute": False, "flags": 0})

    async def _open_dm(self, parts: list[str], body: Any) -> web.Response:
        user = str(body["recipient_id"])
        channel = self.dms.setdefault(user, self.snowflake())
        return _json({"id": channel, "type": 1, "recipients": [{"id": user, "username": "u", "discriminator": "0",
                                                               "avatar": None}]})

    def message_from(self, channel_id: int | str, payload: dict[str, Any]) -> dict[str, Any]:
        """A message object as Discord would store `payload` (say, an interaction reply the test presses on)."""
        return self._message(str(channel_id), payload)

    def _message(self, channel_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.snowflake(), "channel_id": channel_id, "type": 0, "author": BOT_USER,
                "content": payload.get("content") or "", "embeds": payload.get("embeds") or [],
                "components": payload.get("components") or [], "timestamp": "2026-11-28T12:00:00+00:00",
                "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
                "mention_roles": [], "attachments": [], "pinned": False, "flags": 0,
                "nonce": payload.get("nonce"), "application_id": str(APPLICATION_ID)}

    async def _create_message(self, parts: list[str], body: Any) -> web.Response:
        channel_id, now = parts[1], self.clock()
        if self._outage is not None and now < self._outage[0]:
            return self._answer(_json({"message": "Service Unavailable"}, status=self._outage[1]))
        if channel_id in self._gone:
            status, code, message = self._gone[channel_id]
            return self._answer(_json({"message": message, "code": code}, status=status))
        window = self._windows.get(channel_id)
        if window is None or now >= window.start + self.channel_window:
            window = self._windows[channel_id] = _Window(now)
        reset_after = window.start + self.channel_window - now
        headers = {"X-RateLimit-Limit": str(self.channel_limit), "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                   "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}", "X-RateLimit-Bucket": "fake-messages"}
        if window.count >= self.channel_limit:
            self.rate_limited.append(("user", f"/channels/{channel_id}/messages"))
            return self._answer(_json(
                {"message": "You are being rate limited.", "retry_after": round(reset_after, 3), "global": False},
                status=429, headers={**headers, "X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user",
                                     "Retry-After": str(math.ceil(reset_after)), "Via": "1.1 google"}))
        window.count += 1
        headers["X-RateLimit-Remaining"] = str(self.channel_limit - window.count)
        nonce = body.get("nonce")
        key = (channel_id, str(nonce))
        if nonce is not None and body.get("enforce_nonce") and key in self._nonces \
                and now - self._nonces[key][0] < self.nonce_window:
            self.nonce_repeats += 1
            return self._answer(_json(self._nonces[key][1], headers=headers))
        message = self._message(channel_id, body)
        self.messages.append(Posted(channel_id, body, message))
        if nonce is not None:
            self._nonces[key] = (now, message)
        if self._hold_from is not None and len(self.messages) > self._hold_from:
            await self._notify()  # the message exists: whoever waits for it may act before the answer goes
            await self._release.wait()
        if self._lose:
            self._lose -= 1
            return self._answer(_json({"message": "Bad Gateway"}, status=502))
        return self._answer(_json(message, headers=headers))

    def _answer(self, response: web.Response) -> web.Response:
        self.statuses[response.status] += 1
        return response


# What @everyone may do in a new server, as far as alerts are concerned.
_DEFAULT_EVERYONE = discord.Permissions(view_channel=True, send_messages=True, embed_links=True,
                                        read_message_history=True, use_application_commands=True).value


def read_upload(path: str, raw: bytes, content_type: str) -> Upload:
    """Split a multipart/form-data body at its boundary, keeping each part's bytes exactly as sent."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = str(header.get_param("boundary"))
    payload: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for chunk in raw.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        part = email.message_from_bytes(head + b"\r\n\r\n")
        name = str(part.get_param("name", header="content-disposition"))
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, content)
        elif name == "payload_json":
            payload = json.loads(content)
    return Upload(path, raw, payload, files)


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})
