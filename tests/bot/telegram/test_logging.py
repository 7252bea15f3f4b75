"""The bot token and the webhook secret never reach the logs, even at DEBUG."""

from __future__ import annotations

import logging

import pytest

from bot.commands import Commands
from bot.telegram.frontend import TelegramFrontEnd
from tests.bot.telegram.helpers import ask, quick_notifier, settings_for
from tests.fakes.telegram_api import FakeBotApi
from tests.scout.clock import ManualClock


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_no_token_or_secret_in_debug_logs(api: FakeBotApi, commands: Commands, clock: ManualClock,
                                                caplog: pytest.LogCaptureFixture, mode: str) -> None:
    """Pins: httpx logs each request URL at INFO, and PTB logs request parameters (the webhook secret) at DEBUG."""
    caplog.set_level(logging.DEBUG)
    secret = "webhook-secret-value-123"
    settings = settings_for(api, TELEGRAM_MODE=mode, TELEGRAM_WEBHOOK_URL="https://bot.example.org/hook",
                            TELEGRAM_WEBHOOK_SECRET=secret)
    end = TelegramFrontEnd(settings, commands, clock=clock, notifier=quick_notifier())
    await end.start()
    try:
        if mode == "polling":
            await ask(api, "/start", chat_id=42)
        else:
            assert api.webhook["secret_token"] == secret
    finally:
        await end.stop()
    assert caplog.records  # the logs were captured at DEBUG...
    text = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert api.token not in text and api.token.split(":")[1] not in text  # ...and the secrets are not in them
    assert secret not in text
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
