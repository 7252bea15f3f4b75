"""A local fake notification service (aiohttp on 127.0.0.1): records each request with its body, answers from a
script (status, headers), 200 once the script is used up."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeService:
    received: list[Received] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    port: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def answer(self, status: int, times: int = 1, **headers: str) -> None:
        self.script.extend([(status, dict(headers))] * times)

    def at(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.method, request.path, dict(request.query), dict(request.headers),
                                      await request.read()))
        status, headers = self.script.popleft() if self.script else (200, {})
        return web.Response(status=status, text="{}" if status < 300 else f"HTTP {status}",
                            content_type="application/json", headers=headers)
