"""TelegramNotifier on its own against the fake Bot API: what each Telegram answer becomes as a DeliveryResult."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.telegram.notifier import TelegramNotifier
from scout.delivery import DeliveryResult, DigestNotifier
from scout.models import Alert, Destination, Listing, Money, Notice, NoticeKind
from tests.bot.telegram.helpers import buttons, quick_notifier, visible
from tests.fakes.telegram_api import FakeBotApi

CHAT = Destination("telegram", "42")


def alert(n: int = 1, *, image: bool = True, attempts: int = 0) -> Alert:
    item = Listing("ebay", str(n), f"Lego <set> {n} & more", f"https://www.ebay.com/itm/{n}",
                   Money(Decimal("25"), "USD"), image_url=f"https://i.ebayimg.com/{n}.jpg" if image else None)
    return Alert(n, CHAT, item, 7, "lego", attempts)


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, request=HTTPXRequest(read_timeout=0.2)) as started:
        yield started


@pytest.fixture
def notifier(bot: Bot) -> TelegramNotifier:
    return quick_notifier(bot=bot)


def test_it_is_a_digest_notifier(notifier: TelegramNotifier) -> None:
    assert isinstance(notifier, DigestNotifier)
    assert notifier.platform == "telegram"


async def test_a_photo_alert_and_a_text_alert(api: FakeBotApi, notifier: TelegramNotifier) -> None:
    assert await notifier.send_alert(CHAT, alert(1)) == DeliveryResult.ok()
    assert await notifier.send_alert(CHAT, alert(2, image=False)) == DeliveryResult.ok()
    photo, text = api.sent
    assert (photo.method, photo.params["photo"], photo.params["parse_mode"]) == (
        "sendPhoto", "https://i.ebayimg.com/1.jpg", "HTML")
    assert visible(photo.params["caption"]).startswith("Lego <set> 1 & more\n")
    assert "&lt;set&gt;" in photo.params["caption"]
    assert ("\u23f8 Pause #7", "ds:pause:7") in buttons(photo)
    assert (text.method, visible(text.params["text"]).splitlines()[0]) == ("sendMessage", "Lego <set> 2 & more")


@pytest.mark.parametrize("refusal", ["Bad Request: wrong file identifier/HTTP URL specified",
                                     "Bad Request: failed to get HTTP URL content",
                                     "Bad Request: not enough rights to send photos to the chat"])
async def test_an_image_telegram_will_not_take_falls_back_to_text(api: FakeBotApi, notifier: TelegramNotifier,
                                                                 refusal: str) -> None:
    api.fail("sendPhoto", 400, refusal)
    assert await notifier.send_alert(CHAT, alert(1)) == DeliveryResult.ok()
    assert [c.method for c in api.sent] == ["sendMessage"]
    assert buttons(api.sent[0])[0] == ("\U0001f517 Open listing", "https://www.ebay.com/itm/1")


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda api: api.flood("sendPhoto", 7), DeliveryResult.wait("flood control: retry in 7 s", 7)),
    (lambda api: api.block(42), DeliveryResult.gone("Telegram refused: Forbidden: bot was blocked by the user")),
    (lambda api: api.block(42, "Forbidden: bot was kicked from the group chat"),
     DeliveryResult.gone("Telegram refused: Forbidden: bot was kicked from the group chat")),
    (lambda api: api.migrate(42, -1009), DeliveryResult.moved("-1009")),
    (lambda api: api.chat_not_found(42), DeliveryResult.gone("Telegram refused: Chat not found")),
    (lambda api: [api.fail(m, 400, "Bad Request: not enough rights to send text messages to the chat", times=None)
                  for m in ("sendPhoto", "sendMessage")],
     DeliveryResult.gone("Telegram refused: Not enough rights to send text messages to the chat")),
    (lambda api: api.fail("sendPhoto", 400, "Bad Request: message caption is too long"),
     DeliveryResult.dead("Telegram refused the message: Message caption is too long")),
    (lambda api: api.fail("sendPhoto", 500, "Internal Server Error"),
     DeliveryResult.retry("Telegram unavailable: Internal Server Error", retry_after=5.0)),
    (lambda api: api.fail("sendPhoto", 502, "Bad Gateway"),
     DeliveryResult.retry("Telegram unavailable: Bad Gateway", retry_after=5.0)),
])
async def test_what_each_failure_becomes(api: FakeBotApi, notifier: TelegramNotifier, setup, expected) -> None:
    setup(api)
    assert await notifier.send_alert(CHAT, alert(1)) == expected


async def test_outage_waits_grow_with_attempts_to_outlast_a_long_outage(api: FakeBotApi,
                                                                       notifier: TelegramNotifier) -> None:
    api.fail("sendPhoto", 503, "Service Unavailable", times=None)
    waits = [(await notifier.send_alert(CHAT, alert(1, attempts=n))).retry_after for n in range(8)]
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300]
    assert sum(waits[:7]) > 10 * 60  # the 8th attempt, the last by default, comes after 10 minutes


async def test_a_timed_out_send_may_have_arrived_and_is_retried_only_after_a_cool_down(
    api: FakeBotApi, notifier: TelegramNotifier
) -> None:
    release = asyncio.Event()
    api.slow("sendPhoto", release)
    result = await notifier.send_alert(CHAT, alert(1))
    release.set()
    assert (result.delivered, result.retry_after, result.error) == (
        False, 60.0, "timed out; it may have been delivered")
    assert len(api.sent) == 1  # Telegram did get it


async def test_not_started_yet_means_come_back_later() -> None:
    result = await TelegramNotifier().send_alert(CHAT, alert(1))
    assert (result.delivered, result.retry_after) == (False, 5.0)


async def test_a_target_that_is_not_a_chat_id_is_dead(notifier: TelegramNotifier) -> None:
    result = await notifier.send_alert(Destination("telegram", "general"), alert(1))
    assert result == DeliveryResult.dead("'general' is not a Telegram chat id")


async def test_a_digest_is_one_message_linking_every_listing(api: FakeBotApi, notifier: TelegramNotifier) -> None:
    alerts = [alert(n) for n in range(1, 16)]
    assert await notifier.send_digest(CHAT, alerts) == DeliveryResult.ok()
    (call,) = api.sent
    assert call.method == "sendMessage" and call.params["link_preview_options"] == {"is_disabled": True}
    assert all(f'href="https://www.ebay.com/itm/{n}"' in call.params["text"] for n in range(1, 16))


def test_digests_start_when_one_by_one_would_trail_behind(notifier: TelegramNotifier) -> None:
    real = TelegramNotifier()  # Telegram's own limits: 1.1 s apart in a chat, 3.3 s in a group
    group, private = Destination("telegram", "-100"), Destination("telegram", "42")
    assert not real.wants_digest(group, 10) and real.wants_digest(group, 11)
    assert not real.wants_digest(private, 28) and real.wants_digest(private, 29)
    assert not real.wants_digest(Destination("telegram", "x"), 500)


async def test_ops_messages_go_as_plain_text(api: FakeBotApi, bot: Bot) -> None:
    ops = Destination("telegram", "-5")
    notice = Notice(3, ops, "db slow: <5 ms> & rising", kind=NoticeKind.OPS)
    assert await quick_notifier(bot=bot).send_notice(ops, notice) == DeliveryResult.ok()
    assert (api.sent[0].params["chat_id"], api.sent[0].params["text"]) == (-5, "db slow: <5 ms> & rising")
    assert "parse_mode" not in api.sent[0].params

