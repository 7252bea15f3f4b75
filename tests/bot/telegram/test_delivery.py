"""The real Dispatcher delivering through Telegram: a blocked bot, a migrated group, a send that timed out."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.telegram.frontend import TelegramFrontEnd
from scout.delivery import Dispatcher
from scout.models import Destination, SearchStatus
from storage.repo import Repository
from tests.bot.telegram.helpers import ask, queue_alerts, quick_notifier, visible
from tests.fakes.telegram_api import ApiCall, FakeBotApi
from tests.scout.clock import ManualClock

GROUP = -100200300
SUPERGROUP = -1001234567890


def listing_ids(calls: list[ApiCall]) -> list[str]:
    return [n for call in calls for n in re.findall(r"/itm/(\d+)", call.text)]


@pytest.fixture
def dispatcher(repo: Repository, front: TelegramFrontEnd, clock: ManualClock) -> Dispatcher:
    return Dispatcher(repo, {"telegram": front.notifier}, clock=clock, on_destination_gone=front.destination_gone)


async def test_a_group_that_removed_the_bot_gets_nothing_more_and_the_owner_is_told(
    api: FakeBotApi, repo: Repository, dispatcher: Dispatcher, clock: ManualClock
) -> None:
    await ask(api, "/add lego @ebay", chat_id=GROUP, user_id=10)
    search = await repo.load_search(1)
    await queue_alerts(repo, clock(), search, 3)
    api.block(GROUP, "Forbidden: bot was kicked from the group chat")
    mark = len(api.calls)
    report = await dispatcher.drain()
    assert (report.sent, report.held) == (0, 3)
    assert len(api.calls_to("sendPhoto", chat_id=GROUP, after=mark)) == 1  # it stopped at the first refusal
    paused = await repo.load_search(1)
    assert paused is not None and paused.status is SearchStatus.PAUSED
    assert paused.paused_reason == ("alerts cannot reach this chat: Telegram refused: Forbidden: bot was kicked "
                                    "from the group chat")
    told = api.sent_to(10)[-1]
    assert visible(told.text) == (
        f"I can no longer post in chat {GROUP} (Telegram refused: Forbidden: bot was kicked from the group chat), "
        "so I paused your searches there: #1 \u201clego\u201d.\nAdd me back to that chat, then /resume them there.")
    mark = len(api.calls)
    assert (await dispatcher.drain()).sent == 0
    assert api.calls_to("sendPhoto", after=mark) == []


async def test_a_user_who_blocked_the_bot_gets_the_held_alerts_after_resuming(
        api: FakeBotApi, repo: Repository, dispatcher: Dispatcher, clock: ManualClock) -> None:
    """Regression: alerts pending for a user who blocked the bot were marked dead; after unblocking it and
    resuming the search, the user never got them."""
    await ask(api, "/add lego @ebay", chat_id=42)
    await queue_alerts(repo, clock(), await repo.load_search(1), 2)
    api.fail("sendPhoto", 403, "Forbidden: bot was blocked by the user", chat_id=42)
    mark = len(api.calls)
    assert (await dispatcher.drain()).held == 2
    assert [c.method for c in api.calls[mark:]] == ["sendPhoto"]  # no notice to the chat that blocked us
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
    assert (await dispatcher.drain()).sent == 0

    # The user unblocks the bot and resumes the search: what waited arrives, in order.
    await ask(api, "/resume 1", chat_id=42)
    mark = len(api.calls)
    assert (await dispatcher.drain()).sent == 2
    assert listing_ids(api.calls[mark:]) == ["0", "1"]


async def test_alerts_follow_a_group_that_became_a_supergroup(api: FakeBotApi, repo: Repository,
                                                              dispatcher: Dispatcher, clock: ManualClock) -> None:
    await ask(api, "/add lego @ebay", chat_id=GROUP, user_id=10)
    await queue_alerts(repo, clock(), await repo.load_search(1), 3)
    api.migrate(GROUP, SUPERGROUP)
    await dispatcher.drain()  # the first send learns the new id; the alerts move with the search
    await dispatcher.drain()
    assert sorted(listing_ids(api.sent_to(SUPERGROUP))) == ["0", "1", "2"]
    assert listing_ids(api.sent_to(GROUP)) == []
    moved = await repo.load_search(1)
    assert moved is not None and moved.destination == Destination("telegram", str(SUPERGROUP))
    assert "#1 \u201clego\u201d" in visible((await ask(api, "/list", chat_id=SUPERGROUP, user_id=10)).text)


@pytest.fixture
async def impatient_bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, request=HTTPXRequest(read_timeout=0.2)) as bot:
        yield bot


async def test_a_timed_out_send_is_retried_after_a_cool_down_not_in_a_tight_loop(
    api: FakeBotApi, repo: Repository, clock: ManualClock, impatient_bot: Bot, front: TelegramFrontEnd
) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    await queue_alerts(repo, clock(), await repo.load_search(1), 1)
    dispatcher = Dispatcher(repo, {"telegram": quick_notifier(bot=impatient_bot)}, clock=clock)
    release = asyncio.Event()
    api.slow("sendPhoto", release)
    mark = len(api.calls)
    assert (await dispatcher.drain()).retried == 1
    release.set()
    for _ in range(3):
        await dispatcher.drain()
    assert len(api.calls_to("sendPhoto", after=mark)) == 1  # no resend before the cool-down
    clock.advance(seconds=59)
    assert (await dispatcher.drain()).sent == 0
    clock.advance(seconds=1)
    assert (await dispatcher.drain()).sent == 1
    # Telegram had the first one: "possibly delivered" means a possible duplicate, never a lost alert.
    assert listing_ids(api.sent_to(42)) == ["0", "0"]
