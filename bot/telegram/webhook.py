"""The Telegram webhook endpoint as aiohttp routes for the app's server: secret checked, body queued as an Update."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable

from aiohttp import web
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_PATH = "/telegram/webhook"
# Updates are small JSON documents; anything this large is not from Telegram.
MAX_BODY_BYTES = 1024 * 1024


def build_webhook_routes(path: str, secret: str | None,
                         application: Callable[[], Application | None]) -> list[web.RouteDef]:
    """POST `path`: 403 without the right secret, 400 for a body that is not an update, 503 while not running.

    `application` returns the running PTB Application (None before start), whose update_queue the update joins.
    """
    expected = (secret or "").encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        # Constant time, so the secret cannot be guessed byte by byte from response times; no secret, no entry.
        if not expected or not hmac.compare_digest(given, expected):
            log.warning("Telegram webhook call refused: wrong or missing secret token")
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return web.Response(status=413, text="too large")
        app = application()
        if app is None or not app.running:
            return web.Response(status=503, text="not running", headers={"Retry-After": "5"})
        try:
            data = json.loads(await request.read())
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            update = Update.de_json(data, app.bot)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as err:
            log.warning("Telegram webhook call refused: malformed update (%s)", type(err).__name__)
            return web.Response(status=400, text="malformed update")
        await app.update_queue.put(update)
        return web.Response(status=200, text="ok")

    return [web.post(path, receive)]
