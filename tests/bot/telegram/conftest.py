"""Fixtures of the Telegram tests: the fake Bot API, the shared command layer on a real database, a started bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.commands import Commands
from bot.telegram.frontend import TelegramFrontEnd
from storage.repo import Repository
from tests.bot.telegram.helpers import ADAPTERS, quick_notifier, settings_for
from tests.bot.telegram.virtual_time import VirtualTime
from tests.fakes.telegram_api import FakeBotApi, FloodLimits
from tests.scout.clock import ManualClock


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
async def vt() -> AsyncIterator[VirtualTime]:
    async with VirtualTime() as clock:
        yield clock


@pytest.fixture
async def strict_api(vt: VirtualTime) -> AsyncIterator[FakeBotApi]:
    """A fake that answers 429 to any send over 1/s per chat, 20/min per group or 30/s overall."""
    async with FakeBotApi(clock=vt.clock, limits=FloodLimits()) as fake:
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
