"""uvicorn's HTTP/1.1 protocol (h11), except that a client's mistake is one debug line instead of a warning or a 200."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("uvicorn.error")

# uvicorn's words for what a client did wrong; a flood of such requests must not fill the log with warnings.
MALFORMED = "Invalid HTTP request received."
# An Upgrade header we do not serve (no WebSockets here) is answered as a plain request.
CLIENT_MISTAKES = frozenset({"Unsupported upgrade request."})


class ConnectionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """uvicorn's per-connection log: a malformed request, answered with a 400, becomes
    "malformed request from <peer> answered 400: <h11's reason>" at DEBUG; every other line passes unchanged."""

    def __init__(self, logger: logging.Logger, peer: str) -> None:
        super().__init__(logger, {})
        self.peer = peer

    @property
    def level(self) -> int:
        """uvicorn reads its logger's level to skip building TRACE lines."""
        return self.logger.level

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if msg == MALFORMED:
            # uvicorn logs this inside its `except h11.RemoteProtocolError`: the error at hand says what was wrong.
            err = sys.exc_info()[1]
            reason = str(err).strip().splitlines()[0] if isinstance(err, h11.RemoteProtocolError) and str(err) else ""
            self.logger.debug("malformed request from %s answered 400: %s", self.peer, reason or "unreadable")
            return
        if msg in CLIENT_MISTAKES or str(msg).startswith("No supported WebSocket library"):
            self.logger.debug("request from %s: %s", self.peer, msg)
            return
        self.logger.log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


class QuietH11Protocol(H11Protocol):
    """H11Protocol whose log names the peer and keeps clients' mistakes at DEBUG (see ConnectionLog), with no access
    log: the request metrics count every request, and a line per request costs more than serving /health."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = self.client[0] if self.client else "?"
        self.logger = ConnectionLog(logging.getLogger("uvicorn.error"), peer)  # type: ignore[assignment]


# HTTP/1.0 and 1.1 are what h11 and this server speak; h11 reads any digit pair as a version.
SUPPORTED_VERSIONS = frozenset({"1.0", "1.1"})


class OnlyHttp1:
    """Answers a request line naming another HTTP version (`HTTP/9.9`) with a 400, logged like any malformed
    request, before it reaches the application."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["http_version"] in SUPPORTED_VERSIONS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        log.debug("malformed request from %s answered 400: unsupported HTTP version %s",
                  client[0] if client else "?", scope["http_version"])
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"Unsupported HTTP version"})
