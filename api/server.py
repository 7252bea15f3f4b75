"""Serves the API with uvicorn inside the running event loop: host and port from settings, a free port for 0,
SO_REUSEPORT for several processes, a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from api.protocol import QuietH11Protocol
from scout.errors import ConfigError

log = logging.getLogger(__name__)

# Requests still running at stop get this long to finish; then they are cancelled.
GRACEFUL_STOP_SECONDS = 5.0
BACKLOG = 2048  # uvicorn's and aiohttp's default


def bind_sockets(host: str, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """Listening sockets for every address `host` names (all interfaces for an empty host), on one port.

    ConfigError names the settings when the address cannot be had (taken, not ours, unknown name).
    """
    sockets: list[socket.socket] = []
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # every address on the one port the first was given
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as err:
        for sock in sockets:
            sock.close()
        raise ConfigError(f"the ops API cannot listen on {host}:{port} ({err.strerror}); "
                          "set OPS_HTTP_HOST / OPS_HTTP_PORT (0 picks a free port)") from err
    return sockets


def uvicorn_config(app: ASGIApp | str, *, factory: bool = False, workers: int | None = None) -> uvicorn.Config:
    """uvicorn as the service runs it: the service's own logging, no access log (the metrics count requests),
    plain HTTP/1.1 (h11) that logs clients' mistakes at DEBUG, no WebSockets, no proxy headers (nothing reads the
    client address). An import-string `factory` app gets a lifespan: it opens what it needs there."""
    return uvicorn.Config(app, factory=factory, workers=workers, lifespan="on" if factory else "off",
                          log_config=None, access_log=False, http=QuietH11Protocol, ws="none", proxy_headers=False,
                          timeout_graceful_shutdown=GRACEFUL_STOP_SECONDS)


class _InLoopServer(uvicorn.Server):
    """uvicorn.Server that tells when it listens, and leaves SIGINT/SIGTERM to the service that runs it."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """Runs the API application on the configured address, in the running event loop."""

    def __init__(self, app: ASGIApp, host: str, port: int, *, reuse_port: bool = False) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._reuse_port = reuse_port  # several processes serve one port (dealscout api --workers N)
        self._server: _InLoopServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        sockets = bind_sockets(self._host, self._port, reuse_port=self._reuse_port)
        self.port = sockets[0].getsockname()[1]
        server = self._server = _InLoopServer(uvicorn_config(self._app))
        self._serving = asyncio.create_task(server.serve(sockets=sockets), name="api-server")
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait({self._serving, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not server.listening.is_set():
            listening.cancel()
            for sock in sockets:
                sock.close()
            await self._serving  # raises what stopped it
            raise ConfigError(f"the ops API stopped while starting on {self._host}:{self.port}")
        log.info("ops API listening on http://%s:%s", self._host, self.port)

    async def stop(self) -> None:
        """Stops taking connections, lets running requests finish (GRACEFUL_STOP_SECONDS at most), then returns."""
        server, serving = self._server, self._serving
        self._server = self._serving = None
        if server is None or serving is None:
            return
        server.should_exit = True
        await serving
