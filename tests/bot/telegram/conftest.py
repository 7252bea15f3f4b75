"""Fixtures of the Telegram tests: the fake Bot API, the shared command layer on a real database, a started bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.commands import Commands
from bot.telegram.frontend import TelegramFrontEnd
from storage.repo import Repository
from tests.bot.telegram.helpers import ADAPTERS, quick_notifier, settings_for
from tests.fakes.telegram_api import FakeBotApi
from tests.scout.clock import ManualClock


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def commands(repo: Repository, clock: ManualClock) -> Commands:
    return Commands(repo, ADAPTERS, clock=clock)


@pytest.fixture
async def front(api: FakeBotApi, commands: Commands, clock: ManualClock) -> AsyncIterator[TelegramFrontEnd]:
    """The real PTB Application, long polling the fake API."""
    end = TelegramFrontEnd(settings_for(api), commands, clock=clock, notifier=quick_notifier())
    await end.start()
    try:
        yield end
    finally:
        await end.stop()
