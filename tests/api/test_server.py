"""ApiServer: uvicorn in the running loop, a free port for 0, a taken port named, shared ports, a graceful stop, and
the Telegram webhook on the real application."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import aiohttp
import pytest
from fastapi import APIRouter, FastAPI

from api.server import ApiServer
from bot.telegram.webhook import SECRET_HEADER, build_webhook_router
from scout.errors import ConfigError
from tests.api.helpers import running_api

SECRET = "s3cret-Token_value"


async def test_port_0_serves_on_a_free_port_in_this_loop_without_a_thread() -> None:
    threads = threading.active_count()
    async with running_api() as api:
        assert api.server.port and api.server.port > 0
        assert threading.active_count() == threads
        async with api.client.get("/health") as response:
            assert response.status == 200


async def test_a_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as refused:
            await ApiServer(FastAPI(), "127.0.0.1", port).start()
    assert str(refused.value).startswith(f"the ops API cannot listen on 127.0.0.1:{port} (")
    assert "set OPS_HTTP_HOST / OPS_HTTP_PORT (0 picks a free port)" in str(refused.value)


async def test_reuse_port_lets_several_servers_share_one_port() -> None:
    first = ApiServer(FastAPI(), "127.0.0.1", 0, reuse_port=True)
    await first.start()
    assert first.port is not None
    second = ApiServer(FastAPI(), "127.0.0.1", first.port, reuse_port=True)
    try:
        await second.start()
        assert second.port == first.port
    finally:
        await second.stop()
        await first.stop()


async def test_stop_lets_a_running_request_finish_and_then_takes_no_more() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    router = APIRouter()

    @router.get("/slow")
    async def slow() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"done": "yes"}

    app = FastAPI()
    app.include_router(router)
    server = ApiServer(app, "127.0.0.1", 0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as session:
        async def fetch() -> tuple[int, Any]:
            async with session.get(base + "/slow") as response:
                return response.status, await response.json()

        request = asyncio.create_task(fetch())
        await entered.wait()
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0)  # let stop() begin before the handler may finish
        release.set()
        assert await request == (200, {"done": "yes"})
        await stopping
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(base + "/slow"):
                pass


class StandInApplication:
    """The parts of PTB's Application the webhook uses."""

    def __init__(self) -> None:
        self.running = True
        self.bot = None
        self.update_queue: asyncio.Queue[Any] = asyncio.Queue()


async def test_the_telegram_webhook_is_served_by_the_api_with_its_limits() -> None:
    ptb = StandInApplication()
    router = build_webhook_router("/tg/hook", SECRET, lambda: ptb)  # type: ignore[arg-type, return-value]
    async with running_api([router]) as api:
        update = {"update_id": 7, "message": {"message_id": 1, "date": 1, "text": "/start",
                                              "chat": {"id": 42, "type": "private"}}}
        async with api.client.post("/tg/hook", json=update, headers={SECRET_HEADER: "wrong"}) as response:
            assert (response.status, await response.text()) == (403, "forbidden")
        async with api.client.post("/tg/hook", json=update, headers={SECRET_HEADER: SECRET}) as response:
            assert (response.status, await response.text()) == (200, "ok")
        assert (await ptb.update_queue.get()).update_id == 7

        async def flood() -> Any:
            for _ in range(20):
                yield b"x" * (64 * 1024)

        async with api.client.post("/tg/hook", data=flood(), headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 413
        ptb.running = False
        async with api.client.post("/tg/hook", json=update, headers={SECRET_HEADER: SECRET}) as response:
            assert (response.status, response.headers["Retry-After"]) == (503, "5")
        assert api.durations()[("POST", "/tg/hook", "200")] == 1
        assert ptb.update_queue.empty()
