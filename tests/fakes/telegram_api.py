"""A local fake Telegram Bot API (aiohttp on 127.0.0.1) for the real python-telegram-bot, and a virtual clock.

    async with FakeBotApi() as api:                  # or FakeBotApi(clock=vt.clock, limits=FloodLimits())
        api.base_url                                  # "http://127.0.0.1:PORT/bot": PTB's base_url
        api.type("/add lego <50", chat_id=42)         # queue a message update for getUpdates (long polling)
        api.press("ds:pause:1", chat_id=42, user_id=42, message_id=3)   # queue a callback query
        call = await api.wait_for_call("sendMessage", chat_id=42, after=mark)   # await, never sleep
        api.calls, api.sent, api.flood_429s           # every call; messages delivered; 429s it answered

Failures on cue: `fail(method, status, description, chat_id=, times=, parameters=)`, `flood(...)` (429 with
parameters.retry_after), `block(chat)` (403), `migrate(old, new)` (400 with parameters.migrate_to_chat_id),
`chat_not_found(chat)`, `outage(until)` (502 for every call until the clock passes `until`), `slow(method, hold)`
(the message is recorded, the answer waits for `hold`: a client timeout then means "possibly delivered").
`hold_answers(from_send=k)` does that for `sent[k]` and every later send, until `release_answers()`; `await
wait_for(predicate)` returns once the predicate holds, checked after every call and every recorded send.
`limits=FloodLimits()` enforces Telegram's limits on sends (1/s per chat, 20/min per group, 30/s overall) as
sliding windows on `clock`, answering 429 when exceeded. PTB posts form fields with nested JSON strings; both form
and JSON bodies are read.

For pacing tests give it `clock=VirtualTime().clock` (tests/bot/telegram/virtual_time.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-fake-token-not-a-secret"
SEND_METHODS = {"sendmessage", "sendphoto", "senddocument", "sendanimation", "sendmediagroup", "copymessage",
                "forwardmessage"}
_JSON_FIELDS = {"reply_markup", "commands", "allowed_updates", "entities", "caption_entities", "link_preview_options",
                "reply_parameters", "scope", "media"}
_INT_FIELDS = {"chat_id", "user_id", "message_id", "offset", "limit", "timeout", "from_chat_id", "cache_time"}
_BOOL_FIELDS = {"show_alert", "disable_notification", "drop_pending_updates", "protect_content", "has_spoiler"}


@dataclass(frozen=True)
class FloodLimits:
    per_chat: tuple[int, float] = (1, 1.0)
    per_group: tuple[int, float] = (20, 60.0)
    overall: tuple[int, float] = (30, 1.0)

    def scaled(self, factor: float) -> FloodLimits:
        return replace(self, **{k: (n, w * factor) for k, (n, w) in
                                (("per_chat", self.per_chat), ("per_group", self.per_group), ("overall", self.overall))})


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200

    @property
    def chat_id(self) -> int | None:
        return self.params.get("chat_id")

    @property
    def text(self) -> str:
        return self.params.get("text") or self.params.get("caption") or ""


@dataclass
class Failure:
    status: int
    description: str
    parameters: dict[str, Any] | None = None
    chat_id: int | None = None
    times: int | None = 1  # None: until removed
    hold: asyncio.Event | None = None


class FakeBotApi:
    """See the module docstring."""

    def __init__(self, *, token: str = TOKEN, username: str = "DealScoutBot", bot_id: int = 777000,
                 clock: Callable[[], float] = time.monotonic, limits: FloodLimits | None = None,
                 port: int = 0) -> None:
        self.token, self.username, self.bot_id = token, username, bot_id
        self.port = port  # 0: any free port; a fixed one lets a Telegram come up where a client already looks
        self.clock = clock
        self.limits = limits
        self.calls: list[ApiCall] = []
        self.sent: list[ApiCall] = []  # sends that were accepted
        self.flood_429s = 0
        self.members: dict[tuple[int, int], str] = {}
        self.webhook: dict[str, Any] = {}
        self.commands: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._failures: dict[str, list[Failure]] = {}
        self._outage_until: float | None = None
        self._windows: dict[Any, deque[float]] = {}
        self._changed: asyncio.Condition | None = None
        self._closing = asyncio.Event()
        self._hold_from: int | None = None
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> FakeBotApi:
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        self._closing.set()
        self._notify()
        self.release_answers()
        for failures in self._failures.values():
            for failure in failures:
                if failure.hold is not None:
                    failure.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    # -- updates ---------------------------------------------------------------------------------------------

    def queue_update(self, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **payload})
        self._notify()
        return update_id

    def type(self, text: str | None, *, chat_id: int, user_id: int | None = None, chat_type: str | None = None,
             username: str | None = None, reply_to: int | None = None, sender_chat: bool = False,
             edited: bool = False, **extra: Any) -> dict[str, Any]:
        """A person sends `text` (a command when it starts with '/'; None for no text); returns the message."""
        message: dict[str, Any] = {
            "message_id": next(self._ids(chat_id)), "date": int(time.time()), "chat": self.chat(chat_id, chat_type),
            **({"text": text} if text is not None else {}), **extra,
        }
        if user_id is not None or chat_id > 0:
            uid = user_id if user_id is not None else chat_id
            message["from"] = {"id": uid, "is_bot": False, "first_name": f"User{uid}",
                               **({"username": username} if username else {})}
        if sender_chat:
            message["sender_chat"] = self.chat(chat_id, chat_type)
        if text and text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            message["reply_to_message"] = self._messages.get((chat_id, reply_to)) or {
                "message_id": reply_to, "date": int(time.time()), "chat": self.chat(chat_id, chat_type)}
        self.queue_update({"edited_message" if edited else "message": message})
        return message

    def press(self, data: str, *, chat_id: int, user_id: int, message_id: int) -> str:
        """A person presses an inline button on one of the bot's messages."""
        query_id = f"cb{next(self._update_ids)}"
        message = self._messages.get((chat_id, message_id)) or {
            "message_id": message_id, "date": int(time.time()), "chat": self.chat(chat_id)}
        self.queue_update({"callback_query": {
            "id": query_id, "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "chat_instance": str(chat_id), "data": data, "message": message}})
        return query_id

    @staticmethod
    def chat(chat_id: int, chat_type: str | None = None) -> dict[str, Any]:
        kind = chat_type or ("private" if chat_id > 0 else "supergroup" if chat_id < -10**12 else "group")
        return {"id": chat_id, "type": kind, **({"first_name": "Pat"} if kind == "private" else {"title": "Deals"})}

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        self.members[(chat_id, user_id)] = status

    # -- failures --------------------------------------------------------------------------------------------

    def fail(self, method: str, status: int = 500, description: str = "Internal Server Error", *,
             chat_id: int | None = None, times: int | None = 1, parameters: dict[str, Any] | None = None,
             hold: asyncio.Event | None = None) -> None:
        self._failures.setdefault(method.lower(), []).append(
            Failure(status, description, parameters, chat_id, times, hold))

    def flood(self, method: str, retry_after: int, *, chat_id: int | None = None, times: int | None = 1) -> None:
        self.fail(method, 429, f"Too Many Requests: retry after {retry_after}", chat_id=chat_id, times=times,
                  parameters={"retry_after": retry_after})

    def block(self, chat_id: int, description: str = "Forbidden: bot was blocked by the user") -> None:
        for method in SEND_METHODS:
            self.fail(method, 403, description, chat_id=chat_id, times=None)

    def migrate(self, old: int, new: int) -> None:
        for method in SEND_METHODS:
            self.fail(method, 400, "Bad Request: group chat was upgraded to a supergroup chat", chat_id=old,
                      times=None, parameters={"migrate_to_chat_id": new})

    def chat_not_found(self, chat_id: int) -> None:
        for method in SEND_METHODS:
            self.fail(method, 400, "Bad Request: chat not found", chat_id=chat_id, times=None)

    def outage(self, until: float) -> None:
        self._outage_until = until

    def slow(self, method: str, hold: asyncio.Event, *, times: int = 1) -> None:
        self.fail(method, 200, "", times=times, hold=hold)

    def hold_answers(self, *, from_send: int) -> None:
        """Accept sends as usual, but hold the answer to `sent[from_send]` and every later one until
        release_answers(): the chat has the message while the bot has not heard so."""
        self._hold_from = from_send
        self._release = asyncio.Event()

    def release_answers(self) -> None:
        """Answer every held send and hold no more."""
        self._hold_from = None
        self._release.set()

    # -- reading what happened -------------------------------------------------------------------------------

    def calls_to(self, method: str, *, chat_id: int | None = None, after: int = 0) -> list[ApiCall]:
        return [c for c in self.calls[after:] if c.method.lower() == method.lower()
                and (chat_id is None or c.chat_id == chat_id)]

    def sent_to(self, chat_id: int) -> list[ApiCall]:
        return [c for c in self.sent if c.chat_id == chat_id]

    async def wait_for_call(self, method: str, *, chat_id: int | None = None, after: int = 0,
                            status: int | None = 200, count: int = 1) -> ApiCall:
        """The `count`-th call (from index `after`) to `method` for `chat_id` with that answer status."""

        def found() -> list[ApiCall]:
            return [c for c in self.calls_to(method, chat_id=chat_id, after=after)
                    if status is None or c.status == status]

        assert self._changed is not None
        async with self._changed:
            await self._changed.wait_for(lambda: len(found()) >= count)
        return found()[count - 1]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        assert self._changed is not None
        async with self._changed:
            await self._changed.wait_for(predicate)

    def _notify(self) -> None:
        if self._changed is None:
            return

        async def wake() -> None:
            assert self._changed is not None
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(wake())

    # -- serving ---------------------------------------------------------------------------------------------

    def _ids(self, chat_id: int) -> itertools.count[int]:
        return self._message_ids.setdefault(chat_id, itertools.count(1))

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await _read_params(request)
        except ConnectionResetError:
            return web.Response(status=400)  # the client went away (a test ending): no one reads this
        call = ApiCall(method, params, self.clock())
        self.calls.append(call)
        try:
            if request.match_info["token"] != self.token:
                return self._error(call, 401, "Unauthorized")
            return await self._answer(call)
        finally:
            self._notify()

    async def _answer(self, call: ApiCall) -> web.Response:
        name = call.method.lower()
        if self._outage_until is not None and call.at < self._outage_until:
            return self._error(call, 502, "Bad Gateway")
        failure = self._failure(name, call.chat_id)
        if failure is not None and failure.hold is None:
            return self._error(call, failure.status, failure.description, failure.parameters)
        if name in SEND_METHODS and self.limits is not None:
            wait = self._flood_wait(call.chat_id or 0, call.at)
            if wait is not None:
                self.flood_429s += 1
                return self._error(call, 429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        result = await self._long_poll(call.params) if name == "getupdates" else self._result(name, call)
        if result is None:
            return self._error(call, 404, "Not Found")
        if name in SEND_METHODS:
            self.sent.append(call)
            if self._hold_from is not None and len(self.sent) > self._hold_from:
                self._notify()  # the chat has the message: whoever waits for it may act before the answer goes
                await self._release.wait()
        if failure is not None and failure.hold is not None:
            await failure.hold.wait()
        return web.json_response({"ok": True, "result": result})

    def _failure(self, name: str, chat_id: int | None) -> Failure | None:
        for failure in self._failures.get(name, []):
            if failure.chat_id is None or failure.chat_id == chat_id:
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures[name].remove(failure)
                return failure
        return None

    def _error(self, call: ApiCall, status: int, description: str,
               parameters: dict[str, Any] | None = None) -> web.Response:
        call.status = status
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    def _flood_wait(self, chat_id: int, now: float) -> int | None:
        """Seconds until this send would fit every window, or None when it fits now (and is then counted)."""
        assert self.limits is not None
        rules = [(("chat", chat_id), self.limits.per_chat), (("all",), self.limits.overall)]
        if chat_id < 0:
            rules.append((("group", chat_id), self.limits.per_group))
        worst = 0.0
        for key, (count, window) in rules:
            stamps = self._windows.setdefault(key, deque())
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) >= count:
                worst = max(worst, stamps[0] + window - now)
        if worst > 0:
            return max(1, math.ceil(worst))
        for key, _ in rules:
            self._windows[key].append(now)
        return None

    def _result(self, name: str, call: ApiCall) -> Any:
        params = call.params
        if name == "getme":
            return {"id": self.bot_id, "is_bot": True, "first_name": "Deal Scout", "username": self.username,
                    "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        if name in ("deletewebhook", "setwebhook", "setmycommands", "answercallbackquery", "sendchataction",
                    "close", "logout"):
            if name == "setwebhook":
                self.webhook = dict(params)
            if name == "setmycommands":
                self.commands = list(params.get("commands") or [])
            return True
        if name in ("sendmessage", "sendphoto"):
            return self._store_message(call)
        if name in ("editmessagereplymarkup", "editmessagetext"):
            stored = self._messages.get((params.get("chat_id"), params.get("message_id")))
            if stored is None:
                return None
            stored["reply_markup"] = params.get("reply_markup") or {"inline_keyboard": []}
            if name == "editmessagetext":
                stored["text"] = params.get("text")
            return stored
        if name == "getchatmember":
            return self._member(params.get("chat_id"), params.get("user_id"))
        if name == "getchat":
            return self.chat(params.get("chat_id") or 0)
        return None

    def _store_message(self, call: ApiCall) -> dict[str, Any]:
        chat_id = int(call.params["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._ids(chat_id)), "date": int(time.time()), "chat": self.chat(chat_id),
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Deal Scout", "username": self.username},
        }
        if call.method.lower() == "sendphoto":
            message["photo"] = [{"file_id": "p1", "file_unique_id": "u1", "width": 500, "height": 500}]
            message["caption"] = call.params.get("caption", "")
        else:
            message["text"] = call.params.get("text", "")
        if (call.params.get("reply_markup") or {}).get("inline_keyboard"):
            message["reply_markup"] = call.params["reply_markup"]  # only inline keyboards stay on a message
        self._messages[(chat_id, message["message_id"])] = message
        call.params["_message_id"] = message["message_id"]
        return message

    def _member(self, chat_id: int | None, user_id: int | None) -> dict[str, Any]:
        status = self.members.get((chat_id or 0, user_id or 0), "member")
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        if status == "administrator":
            rights = ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
                      "can_manage_video_chats", "can_restrict_members", "can_promote_members", "can_change_info",
                      "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories")
            return {"status": status, "user": user, **{right: right != "is_anonymous" for right in rights}}
        if status == "creator":
            return {"status": status, "user": user, "is_anonymous": False}
        return {"status": status, "user": user}

    async def _long_poll(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """getUpdates: drop what `offset` confirms; with nothing new, hold the request until an update comes."""
        offset = params.get("offset") or 0
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        if not self._updates and timeout > 0 and self._changed is not None:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self._updates) or self._closing.is_set()), timeout)
        return self._updates[: params.get("limit") or 100]


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        raw = await request.read()
        if raw:
            params.update(json.loads(raw))
    elif request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            params[key] = value if isinstance(value, str) else getattr(value, "filename", "file")
    for key, value in list(params.items()):
        if isinstance(value, str):
            if key in _JSON_FIELDS:
                params[key] = json.loads(value)
            elif key in _INT_FIELDS and value.lstrip("-").isdigit():
                params[key] = int(value)
            elif key in _BOOL_FIELDS and value in ("true", "false"):
                params[key] = value == "true"
    return params
