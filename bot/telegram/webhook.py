"""The Telegram webhook endpoint as a FastAPI router for the app's API: secret checked, body queued as an Update."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_PATH = "/telegram/webhook"
# Updates are small JSON documents; anything this large is not from Telegram.
MAX_BODY_BYTES = 1024 * 1024


def build_webhook_router(path: str, secret: str | None,
                         application: Callable[[], Application | None]) -> APIRouter:
    """POST `path`: 403 without the right secret, 400 for a body that is not an update, 503 while not running.

    `application` returns the running PTB Application (None before start), whose update_queue the update joins.
    """
    expected = (secret or "").encode()
    router = APIRouter()

    # Not in the API's schema: Telegram is its only caller, and it takes no parameters FastAPI would check.
    @router.post(path, include_in_schema=False)
    async def receive(request: Request) -> PlainTextResponse:
        given = request.headers.get(SECRET_HEADER, "").encode()
        # Constant time, so the secret cannot be guessed byte by byte from response times; no secret, no entry.
        if not expected or not hmac.compare_digest(given, expected):
            log.warning("Telegram webhook call refused: wrong or missing secret token")
            return PlainTextResponse("forbidden", status_code=403)
        if _declared_length(request) > MAX_BODY_BYTES:
            return PlainTextResponse("too large", status_code=413)
        app = application()
        if app is None or not app.running:
            return PlainTextResponse("not running", status_code=503, headers={"Retry-After": "5"})
        try:
            data = json.loads(await request.body())
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise TypeError("not an update")
            update = Update.de_json(data, app.bot)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as err:
            log.warning("Telegram webhook call refused: malformed update (%s)", type(err).__name__)
            return PlainTextResponse("malformed update", status_code=400)
        await app.update_queue.put(update)
        return PlainTextResponse("ok")

    return router


def _declared_length(request: Request) -> int:
    """The Content-Length the caller declared; 0 when absent or unreadable (the body read is bounded anyway)."""
    try:
        return int(request.headers.get("content-length", "0"))
    except ValueError:
        return 0
