"""Bursts and outages at Telegram's real limits on a virtual clock: zero 429s, nothing lost, nothing twice."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.telegram.notifier import TelegramNotifier
from scout.delivery import Dispatcher
from scout.models import Destination, SavedSearch, SearchSpec
from storage.repo import Repository
from tests.bot.telegram.helpers import queue_alerts
from tests.bot.telegram.virtual_time import VirtualRequest, VirtualTime
from tests.fakes.telegram_api import ApiCall, FakeBotApi

GROUP = -100200300
SPEC = SearchSpec(query="lego", marketplaces=("ebay",), check_interval_minutes=5)


@pytest.fixture
async def dispatcher(repo: Repository, strict_api: FakeBotApi, vt: VirtualTime) -> AsyncIterator[Dispatcher]:
    async with Bot(strict_api.token, base_url=strict_api.base_url, request=VirtualRequest(vt)) as bot:
        notifier = TelegramNotifier(bot, clock=vt.clock, sleep=vt.sleep)  # Telegram's real limits
        yield Dispatcher(vt.track(repo), {"telegram": notifier}, clock=vt.datetime)


async def search_for(repo: Repository, vt: VirtualTime, chat_id: int) -> SavedSearch:
    return await repo.save_search(owner=str(abs(chat_id)), destination=Destination("telegram", str(chat_id)),
                                  scope=str(chat_id), spec=SPEC, now=vt.datetime(), first_run_at=vt.datetime())


def delivered(calls: list[ApiCall]) -> Counter[str]:
    return Counter(n for call in calls for n in re.findall(r"/itm/(\d+)", call.text))


async def test_a_burst_to_one_group_and_thirty_private_chats(repo: Repository, strict_api: FakeBotApi,
                                                             dispatcher: Dispatcher, vt: VirtualTime) -> None:
    await queue_alerts(repo, vt.datetime(), await search_for(repo, vt, GROUP), 300, image=True)
    chats = list(range(5001, 5031))
    for index, chat in enumerate(chats):
        await queue_alerts(repo, vt.datetime(), await search_for(repo, vt, chat), 10, start=1000 + 10 * index)
    start = vt.now
    await dispatcher.drain()

    assert strict_api.flood_429s == 0
    group = strict_api.sent_to(GROUP)
    assert delivered(group) == Counter({str(n): 1 for n in range(300)})
    assert max(call.at for call in group) - start <= 120  # every group alert within two minutes
    assert len(group) <= 25  # as digests, not 300 messages trailing for 15 minutes
    for index, chat in enumerate(chats):
        calls = strict_api.sent_to(chat)
        assert delivered(calls) == Counter({str(1000 + 10 * index + n): 1 for n in range(10)})
        assert all(call.method == "sendPhoto" for call in calls)  # 10 fit within "soon": one by one, with photos
        # In about the 10 s they need on their own: the group's digests, a minute of them, hold up no other chat.
        assert max(call.at for call in calls) - start <= 15
    summary = await repo.outbox_summary()
    assert (summary.pending, summary.dead, summary.sent) == (0, 0, 600)


async def test_a_five_minute_outage_loses_nothing_and_sends_nothing_twice(
    repo: Repository, strict_api: FakeBotApi, dispatcher: Dispatcher, vt: VirtualTime
) -> None:
    await queue_alerts(repo, vt.datetime(), await search_for(repo, vt, GROUP), 40)
    for index, chat in enumerate((5001, 5002, 5003)):
        await queue_alerts(repo, vt.datetime(), await search_for(repo, vt, chat), 5, start=1000 + 10 * index)
    end = vt.now + 300
    strict_api.outage(until=end)
    while (await repo.outbox_summary()).pending and vt.now < 3600:
        await dispatcher.drain()
        vt.advance(5)

    summary = await repo.outbox_summary()
    assert (summary.pending, summary.dead, summary.sent) == (0, 0, 55)
    assert strict_api.flood_429s == 0
    assert delivered(strict_api.sent) == Counter(
        {**{str(n): 1 for n in range(40)}, **{str(1000 + 10 * i + n): 1 for i in range(3) for n in range(5)}})
    assert min(call.at for call in strict_api.sent) >= end
    refused = Counter(call.chat_id for call in strict_api.calls if call.status == 502)
    assert refused and max(refused.values()) <= 7  # each chat was tried a few times, not in a tight loop
