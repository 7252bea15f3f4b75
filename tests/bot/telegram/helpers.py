"""Shared pieces of the Telegram tests: a fixed adapter set, settings, a front end on the fake API, and `ask`."""

from __future__ import annotations

import asyncio
import re
from html import unescape
from typing import Any

from bot.telegram.notifier import TelegramNotifier
from scout.config import Settings, load_settings
from scout.pacing import Rate
from scrapers.craigslist.adapter import CraigslistAdapter
from scrapers.ebay.adapter import EbayAdapter
from tests.fakes.telegram_api import ApiCall, FakeBotApi

# Fixed, so messages that list marketplaces do not change as adapters are added to the registry.
ADAPTERS = {"ebay": EbayAdapter(), "craigslist": CraigslistAdapter()}
OPERATOR = 1
# A test waits for an event, not for time; this only turns a hang into a failure.
HANG = 10.0


def settings_for(api: FakeBotApi, **extra: str) -> Settings:
    env = {"TELEGRAM_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url, "TELEGRAM_OPERATOR_IDS": str(OPERATOR),
           **extra}
    return load_settings(env, env_file=None)


def quick_notifier(**options: Any) -> TelegramNotifier:
    """Telegram's limits scaled down 1000 times: tests of commands are not about pacing."""
    return TelegramNotifier(per_chat=Rate(1, 0.001), per_group=Rate(20, 0.06), overall=Rate(30, 0.001), **options)


async def ask(api: FakeBotApi, text: str, *, chat_id: int, user_id: int | None = None, **extra: Any) -> ApiCall:
    """Type `text` into a chat and return the bot's reply there."""
    mark = len(api.calls)
    api.type(text, chat_id=chat_id, user_id=user_id, **extra)
    return await asyncio.wait_for(api.wait_for_call("sendMessage", chat_id=chat_id, after=mark), HANG)


async def answer(api: FakeBotApi, method: str, **match: Any) -> ApiCall:
    return await asyncio.wait_for(api.wait_for_call(method, **match), HANG)


def visible(html_text: str) -> str:
    """What a person sees of Telegram HTML: tags dropped, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", "", html_text))


def buttons(call: ApiCall) -> list[tuple[str, str]]:
    """(text, callback data or url) of each inline button of a sent message."""
    markup = call.params.get("reply_markup") or {}
    return [(b["text"], b.get("callback_data") or b.get("url")) for row in markup.get("inline_keyboard", [])
            for b in row]


async def queue_alerts(repo: Any, now: Any, search: Any, count: int, *, start: int = 0,
                       image: bool = True) -> list[Any]:
    """`count` new eBay listings matched by `search`, saved as a scan would: one pending alert each."""
    from datetime import timedelta
    from decimal import Decimal

    from scout.models import FetchOutcome, Listing, Money, SearchRun

    listings = tuple(
        Listing("ebay", str(n), f"lego {n}", f"https://www.ebay.com/itm/{n}", Money(Decimal("10"), "USD"),
                image_url=f"https://i.ebayimg.com/{n}.jpg" if image else None)
        for n in range(start, start + count)
    )
    fetch = FetchOutcome("ebay", search.query, "success", 1, listings, matches={search.id: listings})
    run = SearchRun(search.id, now + timedelta(minutes=5), frozenset({"ebay"}))
    await repo.save_scan(now=now, fetches=[fetch], runs=[run], searches={search.id: search},
                         baseline_first_scan=False)
    return list(listings)
