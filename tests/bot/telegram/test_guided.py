"""The guided /add: three questions, each answer checked as it comes, in private chats and in groups."""

from __future__ import annotations

from decimal import Decimal

import pytest

from storage.repo import Repository
from tests.bot.telegram.helpers import ask, visible
from tests.fakes.telegram_api import FakeBotApi

pytestmark = pytest.mark.usefixtures("front")
GROUP = -100200300


async def test_three_questions_with_mistakes_along_the_way(api: FakeBotApi, repo: Repository) -> None:
    question = await ask(api, "/add", chat_id=42)
    assert visible(question.text).startswith("What should I look for?")
    assert question.params["reply_markup"] == {"force_reply": True, "selective": True}
    assert visible((await ask(api, "-broken", chat_id=42)).text) == (
        "The query needs at least one word to search for.\nTry again, or /cancel.")
    assert visible((await ask(api, "rtx 3080 -broken", chat_id=42)).text).startswith("Any price limits?")
    assert visible((await ask(api, None, chat_id=42, location={"latitude": 1.0, "longitude": 2.0})).text) == (
        "Please answer with text, or send /cancel.")
    assert visible((await ask(api, "<abc", chat_id=42)).text) == (
        "The maximum price 'abc' is not a number.\nTry again, or /cancel.")
    assert visible((await ask(api, "100-500", chat_id=42)).text) == (
        "Where should I look? Send some of: craigslist, ebay, or all.")
    assert visible((await ask(api, "amazon", chat_id=42)).text).startswith("Unknown marketplace 'amazon'.")
    saved = await ask(api, "ebay", chat_id=42)
    assert visible(saved.text).startswith("Saved #1 \u201crtx 3080\u201d on eBay, every 5 min; excluding broken")
    search = await repo.load_search(1)
    assert search is not None
    assert (search.spec.exclude, search.spec.min_price, search.spec.max_price, search.spec.marketplaces) == (
        ("broken",), Decimal("100"), Decimal("500"), ("ebay",))
    # The conversation is over: plain text is chatter again.
    assert visible((await ask(api, "ebay", chat_id=42)).text).startswith("I only understand commands.")


async def test_a_full_line_answers_every_question_at_once(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add", chat_id=42)
    saved = await ask(api, "lego <50 @ebay every 15m", chat_id=42)
    assert visible(saved.text).startswith("Saved #1 \u201clego\u201d on eBay, every 15 min; price 0\u201350")


async def test_any_price_and_all_marketplaces(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add", chat_id=42)
    await ask(api, "desk", chat_id=42)
    await ask(api, "any", chat_id=42)
    saved = await ask(api, "all", chat_id=42)
    assert visible(saved.text).startswith("Saved #1 \u201cdesk\u201d on eBay, Craigslist, every 10 min; active.")


async def test_cancel_saves_nothing(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add", chat_id=42)
    await ask(api, "lego", chat_id=42)
    assert visible((await ask(api, "/cancel", chat_id=42)).text) == "Cancelled; nothing was saved."
    assert await repo.load_searches() == []
    assert visible((await ask(api, "ebay", chat_id=42)).text).startswith("I only understand commands.")


async def test_a_one_line_add_during_the_questions_starts_over(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add", chat_id=42)
    await ask(api, "lego", chat_id=42)
    saved = await ask(api, "/add desk @ebay", chat_id=42)
    assert visible(saved.text).startswith("Saved #1 \u201cdesk\u201d")
    assert visible((await ask(api, "<50", chat_id=42)).text).startswith("I only understand commands.")


async def test_in_a_group_answers_are_replies_and_each_member_has_their_own_questions(
    api: FakeBotApi, repo: Repository
) -> None:
    question = await ask(api, "/add@DealScoutBot", chat_id=GROUP, user_id=10)
    asked = question.params["_message_id"]
    assert question.params["reply_markup"]["selective"] is True
    mark = len(api.calls)
    api.type("just chatting", chat_id=GROUP, user_id=10)  # not a reply: not an answer
    api.type("lego", chat_id=GROUP, user_id=11, reply_to=asked)  # someone else's reply: not their conversation
    price = await ask(api, "lego -duplo", chat_id=GROUP, user_id=10, reply_to=asked)
    assert api.calls_to("sendMessage", after=mark) == [price]
    assert visible(price.text).startswith("Any price limits?")
    markets = await ask(api, "<40", chat_id=GROUP, user_id=10, reply_to=price.params["_message_id"])
    saved = await ask(api, "@ebay", chat_id=GROUP, user_id=10, reply_to=markets.params["_message_id"])
    assert visible(saved.text).startswith("Saved #1 \u201clego\u201d on eBay, every 5 min; excluding duplo")
    search = await repo.load_search(1)
    assert search is not None and (search.owner, search.scope) == ("10", str(GROUP))
