"""The guided /add: three questions, each answer checked as it comes, in private chats and in groups.

The command layer here is shaped like production's: the marketplace registry includes the RSS feed (which needs a
feed address) and new searches default to eBay and Craigslist (DEFAULT_MARKETPLACES).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.commands import Commands
from scrapers.rss.adapter import RssAdapter
from storage.repo import Repository
from tests.bot.telegram.helpers import ADAPTERS, answer, ask, buttons, visible
from tests.fakes.telegram_api import ApiCall, FakeBotApi
from tests.scout.clock import ManualClock

pytestmark = pytest.mark.usefixtures("front")
GROUP = -100200300
EXPIRED = "Your /add expired after 10 minutes without an answer; nothing was saved. Send /add to start again."


@pytest.fixture
def commands(repo: Repository, clock: ManualClock) -> Commands:
    return Commands(repo, {**ADAPTERS, "rss": RssAdapter()}, clock=clock, default_marketplaces=("ebay", "craigslist"))


async def press(api: FakeBotApi, data: str, *, chat_id: int, user_id: int, message_id: int) -> ApiCall:
    mark = len(api.calls)
    api.press(data, chat_id=chat_id, user_id=user_id, message_id=message_id)
    return await answer(api, "answerCallbackQuery", after=mark)


async def replies(api: FakeBotApi, text: str, count: int, **where: int) -> list[str]:
    """Type `text` and return the bot's next `count` messages in that chat, as a person sees them."""
    mark = len(api.calls)
    api.type(text, **where)
    await answer(api, "sendMessage", chat_id=where["chat_id"], after=mark, count=count)
    return [visible(call.text) for call in api.calls_to("sendMessage", chat_id=where["chat_id"], after=mark)]


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
        "Where should I look? Tap a button, or send some of: ebay, craigslist (or all of them, or default).")
    refused = await ask(api, "amazon", chat_id=42)
    assert visible(refused.text).startswith("Unknown marketplace 'amazon'.")
    assert buttons(refused), "the buttons come again with the question"
    saved = await ask(api, "ebay", chat_id=42)
    assert visible(saved.text).startswith("Saved #1 \u201crtx 3080\u201d on eBay, every 5 min; excluding broken")
    search = await repo.load_search(1)
    assert search is not None
    assert (search.spec.exclude, search.spec.min_price, search.spec.max_price, search.spec.marketplaces) == (
        ("broken",), Decimal("100"), Decimal("500"), ("ebay",))
    # The conversation is over: plain text is chatter again.
    assert visible((await ask(api, "ebay", chat_id=42)).text).startswith("I only understand commands.")


async def test_plain_answers_save_a_search_on_the_default_marketplaces(api: FakeBotApi, repo: Repository) -> None:
    """Pins: every plain first answer was refused with the RSS feed-address error (no defaults were applied)."""
    await ask(api, "/add", chat_id=42)
    assert visible((await ask(api, "desk lamp", chat_id=42)).text).startswith("Any price limits?")
    where = await ask(api, "any", chat_id=42)
    assert visible(where.text).startswith("Where should I look?")
    saved = await ask(api, "default", chat_id=42)
    assert visible(saved.text).startswith("Saved #1 \u201cdesk lamp\u201d on eBay, Craigslist, every 10 min; active.")


async def test_where_to_look_has_a_button_per_marketplace_that_can_run_the_search(
    api: FakeBotApi, repo: Repository
) -> None:
    """Pins: the "where" question offered no buttons; the feed, which needs an address the questions do not ask
    for, gets none."""
    await ask(api, "/add", chat_id=42)
    await ask(api, "lego", chat_id=42)
    where = await ask(api, "<50", chat_id=42)
    assert buttons(where) == [("Default: eBay, Craigslist", "add:42:*"), ("eBay", "add:42:ebay"),
                              ("Craigslist", "add:42:craigslist")]
    pressed = await press(api, "add:42:craigslist", chat_id=42, user_id=42, message_id=where.params["_message_id"])
    assert pressed.params.get("text") is None  # the press is acknowledged; the answer comes in the chat
    saved = await answer(api, "sendMessage", chat_id=42, after=api.calls.index(pressed))
    assert visible(saved.text).startswith("Saved #1 \u201clego\u201d on Craigslist, every 10 min; price 0\u201350")
    # The question is closed now: its buttons say so instead of saving again.
    again = await press(api, "add:42:ebay", chat_id=42, user_id=42, message_id=where.params["_message_id"])
    assert (again.params["text"], again.params["show_alert"]) == (
        "This question is closed. Send /add to save a search.", True)
    assert len(await repo.load_searches()) == 1


async def test_a_line_that_gives_the_feed_address_makes_the_feed_a_choice(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add", chat_id=42)
    await ask(api, "deals near https://example.com/deals.rss", chat_id=42)
    where = await ask(api, "any", chat_id=42)
    assert ("RSS/Atom feed", "add:42:rss") in buttons(where)
    assert ("eBay", "add:42:ebay") not in buttons(where)  # eBay cannot search by location
    pressed = await press(api, "add:42:rss", chat_id=42, user_id=42, message_id=where.params["_message_id"])
    saved = await answer(api, "sendMessage", chat_id=42, after=api.calls.index(pressed))
    assert visible(saved.text).startswith("Saved #1 \u201cdeals\u201d on RSS/Atom feed")


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


async def test_cancel_saves_nothing_and_answers_once(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add", chat_id=42)
    await ask(api, "lego", chat_id=42)
    mark = len(api.calls)
    assert visible((await ask(api, "/cancel", chat_id=42)).text) == "Cancelled; nothing was saved."
    assert visible((await ask(api, "/cancel", chat_id=42)).text) == "There is nothing to cancel."
    await ask(api, "/help", chat_id=42)
    assert len(api.calls_to("sendMessage", chat_id=42, after=mark)) == 3  # one answer each, no second one
    assert await repo.load_searches() == []
    assert visible((await ask(api, "ebay", chat_id=42)).text).startswith("I only understand commands.")


async def test_another_command_ends_the_questions_and_still_runs(api: FakeBotApi, repo: Repository) -> None:
    """Pins: a command sent mid-conversation left it open, so the next plain message was taken for an answer."""
    await ask(api, "/add", chat_id=42)
    await ask(api, "lego", chat_id=42)
    assert await replies(api, "/list", 2, chat_id=42) == [
        "Stopped your /add; nothing was saved.", "No searches in this chat yet. Add one: "
        "/add rtx 3080 -broken <500 >100 @ebay,craigslist every 10m"]
    assert visible((await ask(api, "<50", chat_id=42)).text).startswith("I only understand commands.")
    assert await repo.load_searches() == []


async def test_a_one_line_add_during_the_questions_starts_over(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add", chat_id=42)
    await ask(api, "lego", chat_id=42)
    saved = await ask(api, "/add desk @ebay", chat_id=42)
    assert visible(saved.text).startswith("Saved #1 \u201cdesk\u201d")
    assert visible((await ask(api, "<50", chat_id=42)).text).startswith("I only understand commands.")


async def test_ten_minutes_of_silence_end_the_questions(api: FakeBotApi, repo: Repository,
                                                        clock: ManualClock) -> None:
    """Pins: a guided /add never expired, so an answer hours later still completed a forgotten search."""
    await ask(api, "/add", chat_id=42)
    clock.advance(minutes=9)
    await ask(api, "lego", chat_id=42)  # silence counts from the last question
    clock.advance(minutes=10, seconds=1)
    assert visible((await ask(api, "<50", chat_id=42)).text) == EXPIRED
    assert await repo.load_searches() == []
    # The stale conversation is gone: the next message is not taken for an answer.
    assert visible((await ask(api, "ebay", chat_id=42)).text).startswith("I only understand commands.")


async def test_an_expired_question_says_so_to_a_button_and_to_a_command(api: FakeBotApi, repo: Repository,
                                                                       clock: ManualClock) -> None:
    await ask(api, "/add", chat_id=42)
    await ask(api, "lego", chat_id=42)
    where = await ask(api, "any", chat_id=42)
    clock.advance(minutes=11)
    pressed = await press(api, "add:42:ebay", chat_id=42, user_id=42, message_id=where.params["_message_id"])
    told = await answer(api, "sendMessage", chat_id=42, after=api.calls.index(pressed))
    assert visible(told.text) == EXPIRED
    await ask(api, "/add", chat_id=42)
    clock.advance(minutes=11)
    assert await replies(api, "/cancel", 1, chat_id=42) == [EXPIRED]
    assert await repo.load_searches() == []


async def test_in_a_group_answers_are_replies_and_each_member_has_their_own_questions(
    api: FakeBotApi, repo: Repository
) -> None:
    question = await ask(api, "/add@DealScoutBot", chat_id=GROUP, user_id=10)
    asked = question.params["_message_id"]
    assert question.params["reply_markup"]["selective"] is True
    mark = len(api.calls)
    api.type("just chatting", chat_id=GROUP, user_id=10)  # not a reply: not an answer
    api.type("lego", chat_id=GROUP, user_id=11, reply_to=asked)  # someone else's reply: not their conversation
    api.type("/list@OtherBot", chat_id=GROUP, user_id=10)  # another bot's command ends nothing here
    price = await ask(api, "lego -duplo", chat_id=GROUP, user_id=10, reply_to=asked)
    assert api.calls_to("sendMessage", after=mark) == [price]
    assert visible(price.text).startswith("Any price limits?")
    markets = await ask(api, "<40", chat_id=GROUP, user_id=10, reply_to=price.params["_message_id"])
    assert visible(markets.text).startswith("Where should I look? Tap a button, or reply with some of:")
    saved = await ask(api, "@ebay", chat_id=GROUP, user_id=10, reply_to=markets.params["_message_id"])
    assert visible(saved.text).startswith("Saved #1 \u201clego\u201d on eBay, every 5 min; excluding duplo")
    search = await repo.load_search(1)
    assert search is not None and (search.owner, search.scope) == ("10", str(GROUP))


async def test_in_a_group_only_the_member_who_asked_can_press_the_buttons(api: FakeBotApi, repo: Repository) -> None:
    """A stranger's press is answered (with or without a question of their own open), and changes nothing."""
    asked = await ask(api, "/add", chat_id=GROUP, user_id=10)
    price = await ask(api, "lego", chat_id=GROUP, user_id=10, reply_to=asked.params["_message_id"])
    where = await ask(api, "any", chat_id=GROUP, user_id=10, reply_to=price.params["_message_id"])
    message_id = where.params["_message_id"]
    assert ("eBay", "add:10:ebay") in buttons(where)
    stranger = await press(api, "add:10:ebay", chat_id=GROUP, user_id=11, message_id=message_id)
    not_yours = "Only the member who started this /add can answer it. Send /add to save a search of your own."
    assert (stranger.params["text"], stranger.params["show_alert"]) == (not_yours, True)
    # A member at the same question of their own still cannot answer someone else's.
    theirs = await ask(api, "/add", chat_id=GROUP, user_id=11)
    theirs = await ask(api, "desk", chat_id=GROUP, user_id=11, reply_to=theirs.params["_message_id"])
    await ask(api, "any", chat_id=GROUP, user_id=11, reply_to=theirs.params["_message_id"])
    assert (await press(api, "add:10:ebay", chat_id=GROUP, user_id=11, message_id=message_id)).params["text"] == (
        not_yours)
    assert await repo.load_searches() == []

    pressed = await press(api, "add:10:*", chat_id=GROUP, user_id=10, message_id=message_id)
    saved = await answer(api, "sendMessage", chat_id=GROUP, after=api.calls.index(pressed))
    assert visible(saved.text).startswith("Saved #1 \u201clego\u201d on eBay, Craigslist")
    assert saved.params["reply_parameters"]["message_id"] == message_id
    assert [s.owner for s in await repo.load_searches()] == ["10"]
