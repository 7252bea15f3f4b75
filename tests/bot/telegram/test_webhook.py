"""Webhook mode: the secret-token check, malformed bodies, and an update that reaches the handlers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fastapi import FastAPI

from api.server import ApiServer
from bot.commands import Commands
from bot.telegram.frontend import TelegramFrontEnd
from bot.telegram.webhook import SECRET_HEADER
from tests.bot.telegram.helpers import HANG, quick_notifier, settings_for, visible
from tests.fakes.telegram_api import FakeBotApi
from tests.scout.clock import ManualClock

SECRET = "s3cret-Token_value"
URL = "https://bot.example.org/tg/hook"


@pytest.fixture
async def hooked(api: FakeBotApi, commands: Commands,
                 clock: ManualClock) -> AsyncIterator[tuple[TelegramFrontEnd, aiohttp.ClientSession]]:
    settings = settings_for(api, TELEGRAM_MODE="webhook", TELEGRAM_WEBHOOK_URL=URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    end = TelegramFrontEnd(settings, commands, clock=clock, notifier=quick_notifier())
    app = FastAPI()
    for router in end.routers:  # what the app's API does with them
        app.include_router(router)
    server = ApiServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.port}") as client:
            yield end, client
    finally:
        await end.stop()
        await server.stop()


def update(text: str, chat_id: int = 42) -> dict:
    return {"update_id": 501, "message": {
        "message_id": 9, "date": 1, "chat": {"id": chat_id, "type": "private", "first_name": "Pat"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Pat"}, "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}}


async def test_the_webhook_is_set_with_the_secret_and_updates_reach_the_handlers(
    api: FakeBotApi, hooked: tuple[TelegramFrontEnd, aiohttp.ClientSession]
) -> None:
    end, client = hooked
    assert end.webhook_path == "/tg/hook"
    early = await client.post("/tg/hook", json=update("/start"), headers={SECRET_HEADER: SECRET})
    assert early.status == 503  # not started: Telegram keeps the update and retries
    await end.start()
    assert api.webhook == {"url": URL, "secret_token": SECRET, "allowed_updates": ["message", "callback_query"]}
    assert api.calls_to("getUpdates") == [] and api.calls_to("deleteWebhook") == []
    response = await client.post("/tg/hook", json=update("/start"), headers={SECRET_HEADER: SECRET})
    assert response.status == 200
    reply = await asyncio.wait_for(api.wait_for_call("sendMessage", chat_id=42), HANG)
    assert visible(reply.text).startswith("Hello!")


async def test_a_wrong_or_missing_secret_is_refused(api: FakeBotApi,
                                                    hooked: tuple[TelegramFrontEnd, aiohttp.ClientSession]) -> None:
    end, client = hooked
    await end.start()
    for headers in ({}, {SECRET_HEADER: ""}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"},
                    {SECRET_HEADER: SECRET[:-1]}, {SECRET_HEADER.lower(): SECRET.upper()}):
        response = await client.post("/tg/hook", json=update("/add lego"), headers=headers)
        assert (headers, response.status) == (headers, 403)
    assert api.calls_to("sendMessage") == []


async def test_a_body_that_is_not_an_update_is_a_bad_request(
    api: FakeBotApi, hooked: tuple[TelegramFrontEnd, aiohttp.ClientSession]
) -> None:
    end, client = hooked
    await end.start()
    for body in (b"{not json", b"[1, 2]", b'"text"', b'{"message": {}}', b"\xff\xfe",
                 json.dumps({"update_id": 1, "message": {"text": "no chat"}}).encode()):
        response = await client.post("/tg/hook", data=body, headers={SECRET_HEADER: SECRET,
                                                                     "Content-Type": "application/json"})
        assert (body, response.status) == (body, 400)
    assert api.calls_to("sendMessage") == []


async def test_polling_mode_has_no_webhook_route(api: FakeBotApi, commands: Commands, clock: ManualClock) -> None:
    assert TelegramFrontEnd(settings_for(api), commands, clock=clock).routers == []
