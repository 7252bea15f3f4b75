"""Command replies and alert traffic to the same chat, at Telegram's real limits on a virtual clock."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from telegram import Bot
from telegram.error import RetryAfter

from bot.telegram.notifier import REPLY_ATTEMPTS, TelegramNotifier
from scout.models import Alert, Destination, Listing, Money
from tests.bot.telegram.helpers import HANG, visible
from tests.bot.telegram.virtual_time import VirtualRequest, VirtualTime
from tests.fakes.telegram_api import FakeBotApi

GROUP = -100200300
PRIVATE = 4242


@pytest.fixture
async def notifier(strict_api: FakeBotApi, vt: VirtualTime) -> AsyncIterator[TelegramNotifier]:
    async with Bot(strict_api.token, base_url=strict_api.base_url, request=VirtualRequest(vt)) as bot:
        yield TelegramNotifier(bot, clock=vt.clock, sleep=vt.sleep)  # Telegram's real limits


def alert(chat_id: int, n: int) -> Alert:
    item = Listing("ebay", str(n), f"lego {n}", f"https://www.ebay.com/itm/{n}", Money(Decimal("10"), "USD"))
    return Alert(n, Destination("telegram", str(chat_id)), item, 7, "lego")


async def send_burst(notifier: TelegramNotifier, chat_id: int, count: int) -> None:
    """What delivery does for one chat: one alert after another, each paced."""
    for n in range(count):
        assert (await notifier.send_alert(Destination("telegram", str(chat_id)), alert(chat_id, n))).delivered


@pytest.mark.parametrize("chat_id", [GROUP, PRIVATE])
async def test_a_reply_goes_ahead_of_the_alerts_waiting_for_its_chat(
    strict_api: FakeBotApi, notifier: TelegramNotifier, vt: VirtualTime, chat_id: int
) -> None:
    """Pins: a reply queued behind the alerts to its chat (`/list` was answered after 46 s in a 300-alert burst).

    The next alert is already waiting for the chat's next slot when the reply is asked for; the reply takes that
    slot. Before, the waiting alert went first and the reply raced every alert after it for the slots.
    """
    burst = asyncio.create_task(send_burst(notifier, chat_id, 40))
    await asyncio.wait_for(strict_api.wait_for_call("sendMessage", chat_id=chat_id, count=3), HANG)
    await vt.sleep(0.5)  # the burst's next alert is now waiting for the chat's next slot
    before = len(strict_api.sent_to(chat_id))
    asked_at = vt.now
    await asyncio.wait_for(notifier.send_text(chat_id, "your searches"), HANG)
    await asyncio.wait_for(burst, HANG)

    sent = strict_api.sent_to(chat_id)
    assert [call.text for call in sent].index("your searches") == before  # no alert went in between
    assert sent[before].at - asked_at <= 3.3  # within the chat's own spacing (a group's: 20 a minute)
    assert len(sent) == 41 and strict_api.flood_429s == 0  # every alert still went, within Telegram's limits


async def test_a_reply_that_meets_flood_control_is_sent_after_the_wait_still_ahead_of_alerts(
    strict_api: FakeBotApi, notifier: TelegramNotifier, vt: VirtualTime
) -> None:
    """Pins: a command reply answered 429 with retry_after was dropped with a traceback, never sent.

    It is sent again exactly when Telegram said, and an alert for the chat asked for meanwhile comes after it.
    """
    strict_api.flood("sendMessage", 9, chat_id=PRIVATE)
    reply = asyncio.create_task(notifier.send_text(PRIVATE, "your searches"))
    await asyncio.wait_for(strict_api.wait_for_call("sendMessage", chat_id=PRIVATE, status=429), HANG)
    alerts = asyncio.create_task(send_burst(notifier, PRIVATE, 2))
    await asyncio.wait_for(reply, HANG)
    await asyncio.wait_for(alerts, HANG)

    refused, accepted = [call for call in strict_api.calls_to("sendMessage", chat_id=PRIVATE)
                         if call.text == "your searches"]
    assert (refused.status, accepted.status) == (429, 200)
    assert accepted.at - refused.at == pytest.approx(9.0)
    assert [visible(call.text).splitlines()[0] for call in strict_api.sent_to(PRIVATE)] == [
        "your searches", "lego 0", "lego 1"]


async def test_a_reply_flood_control_keeps_refusing_is_given_up_after_a_few_waits_and_logged(
    strict_api: FakeBotApi, notifier: TelegramNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    """Bounded: each send after the wait Telegram gave, then the caller hears of it, and so does the log."""
    strict_api.flood("sendMessage", 3, chat_id=PRIVATE, times=None)
    with pytest.raises(RetryAfter):
        await asyncio.wait_for(notifier.send_text(PRIVATE, "your searches"), HANG)
    tries = strict_api.calls_to("sendMessage", chat_id=PRIVATE)
    assert len(tries) == REPLY_ATTEMPTS
    assert [later.at - earlier.at for earlier, later in itertools.pairwise(tries)] == [3.0] * (REPLY_ATTEMPTS - 1)
    assert f"turned a command reply away {REPLY_ATTEMPTS} times" in caplog.text
