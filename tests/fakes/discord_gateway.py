"""A fake Discord gateway (aiohttp websocket): HELLO, IDENTIFY -> READY, RESUME -> RESUMED, events on demand.

    gateway = FakeGateway()
    async with FakeDiscord(gateway=gateway) as fake:   # GET /gateway/bot now points discord.py here
        ...start the bot...
        await gateway.identified.wait()
        await gateway.dispatch("INTERACTION_CREATE", payload)
        await gateway.drop(4000)                      # close the connection with a gateway close code
        await gateway.wait_for_sessions(2)            # gateway.sessions: "identify" or "resume", per connection
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_api import APPLICATION_ID, BOT_USER

HELLO, IDENTIFY, RESUME, HEARTBEAT, HEARTBEAT_ACK, DISPATCH = 10, 2, 6, 1, 11, 0
# Long enough that the smoke test never sees a heartbeat beyond the first, which discord.py sends at once.
HEARTBEAT_INTERVAL_MS = 45_000


class FakeGateway:
    def __init__(self) -> None:
        self.identified = asyncio.Event()
        self.identify: dict[str, Any] | None = None
        self.heartbeats = 0
        self.sessions: list[str] = []
        self._socket: web.WebSocketResponse | None = None
        self._sequence = 0
        self._changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            if frame["op"] == HEARTBEAT:
                self.heartbeats += 1
                await socket.send_json({"op": HEARTBEAT_ACK})
            elif frame["op"] == IDENTIFY:
                self.identify = frame["d"]
                url = f"ws://{request.host}/gateway"
                await self.dispatch("READY", {
                    "v": 10, "user": BOT_USER, "guilds": [], "session_id": "fake-session",
                    "resume_gateway_url": url, "shard": [0, 1],
                    "application": {"id": str(APPLICATION_ID), "flags": 0}})
                self.identified.set()
                await self._began("identify")
            elif frame["op"] == RESUME:
                await self.dispatch("RESUMED", {})
                await self._began("resume")
        return socket

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._socket is not None, "nobody connected"
        self._sequence += 1
        await self._socket.send_json({"op": DISPATCH, "t": event, "s": self._sequence, "d": data})

    async def drop(self, code: int) -> None:
        """Close the connection as Discord does, with a gateway close code (discord.py resumes after some)."""
        assert self._socket is not None, "nobody connected"
        await self._socket.close(code=code)

    async def wait_for_sessions(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.sessions) >= count)

    async def _began(self, kind: str) -> None:
        async with self._changed:
            self.sessions.append(kind)
            self._changed.notify_all()

    async def close(self) -> None:
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()
