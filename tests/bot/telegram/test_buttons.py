"""The buttons under an alert: they check who pressed them, work after a restart, and refuse what they don't know."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from bot.buttons import encode_stamp
from bot.commands import Commands
from bot.telegram.frontend import TelegramFrontEnd
from scout.delivery import Dispatcher
from scout.models import SearchStatus
from storage.repo import Repository
from tests.bot.reused_ids import give_removed_id
from tests.bot.telegram.helpers import answer, ask, buttons, queue_alerts, quick_notifier, settings_for
from tests.fakes.telegram_api import ApiCall, FakeBotApi
from tests.scout.clock import ManualClock

GROUP = -100200300


async def deliver_one(api: FakeBotApi, repo: Repository, front: TelegramFrontEnd, clock: ManualClock,
                      chat_id: int) -> ApiCall:
    search = (await repo.load_searches())[-1]
    await queue_alerts(repo, clock(), search, 1)
    await Dispatcher(repo, {"telegram": front.notifier}, clock=clock).drain()
    return api.sent_to(chat_id)[-1]


async def press(api: FakeBotApi, data: str, *, chat_id: int, user_id: int, message_id: int) -> ApiCall:
    mark = len(api.calls)
    api.press(data, chat_id=chat_id, user_id=user_id, message_id=message_id)
    return await answer(api, "answerCallbackQuery", after=mark)


async def test_pause_then_resume_then_remove_from_the_alert(api: FakeBotApi, repo: Repository,
                                                           front: TelegramFrontEnd, clock: ManualClock) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    alert = await deliver_one(api, repo, front, clock, 42)
    assert alert.method == "sendPhoto"
    message_id = alert.params["_message_id"]
    # The alert was queued, and the search made, at clock(): its buttons carry that moment (see bot.buttons).
    stamp = encode_stamp(clock())
    assert buttons(alert) == [("\U0001f517 Open listing", "https://www.ebay.com/itm/0"),
                              ("\u23f8 Pause #1", f"ds:pause:1:{stamp}"),
                              ("\U0001f5d1 Remove #1", f"ds:remove:1:{stamp}")]

    reply = await press(api, f"ds:pause:1:{stamp}", chat_id=42, user_id=42, message_id=message_id)
    assert reply.params["text"] == "Search #1 paused."
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
    edit = await answer(api, "editMessageReplyMarkup")
    assert [b["callback_data"] for b in edit.params["reply_markup"]["inline_keyboard"][1]] == [
        f"ds:resume:1:{stamp}", f"ds:remove:1:{stamp}"]
    assert edit.params["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://www.ebay.com/itm/0"

    await press(api, f"ds:resume:1:{stamp}", chat_id=42, user_id=42, message_id=message_id)
    assert (await repo.load_search(1)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]
    mark = len(api.calls)
    reply = await press(api, f"ds:remove:1:{stamp}", chat_id=42, user_id=42, message_id=message_id)
    assert reply.params["text"] == "Search #1 removed."
    assert await repo.load_search(1) is None
    edit = await answer(api, "editMessageReplyMarkup", after=mark)
    assert edit.params["reply_markup"]["inline_keyboard"] == [[{"text": "\U0001f517 Open listing",
                                                               "url": "https://www.ebay.com/itm/0"}]]
    gone = await press(api, f"ds:pause:1:{stamp}", chat_id=42, user_id=42, message_id=message_id)
    assert (gone.params["text"], gone.params["show_alert"]) == ("You have no search #1.", True)


async def test_in_a_group_the_button_checks_who_pressed_it(api: FakeBotApi, repo: Repository,
                                                          front: TelegramFrontEnd, clock: ManualClock) -> None:
    await ask(api, "/add lego @ebay", chat_id=GROUP, user_id=10)
    alert = await deliver_one(api, repo, front, clock, GROUP)
    message_id, (_, (_, pause), (_, remove)) = alert.params["_message_id"], buttons(alert)
    refused = await press(api, remove, chat_id=GROUP, user_id=11, message_id=message_id)
    assert refused.params["text"] == "Only the owner of search #1 or a group admin can change it."
    assert refused.params["show_alert"] is True
    assert await repo.load_search(1) is not None
    api.set_member(GROUP, 12, "administrator")
    await press(api, pause, chat_id=GROUP, user_id=12, message_id=message_id)
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]


async def test_buttons_still_work_after_a_restart(api: FakeBotApi, repo: Repository, front: TelegramFrontEnd,
                                                 commands: Commands, clock: ManualClock) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    alert = await deliver_one(api, repo, front, clock, 42)
    await front.stop()
    again = TelegramFrontEnd(settings_for(api), commands, clock=clock, notifier=quick_notifier())
    await again.start()
    try:
        reply = await press(api, buttons(alert)[1][1], chat_id=42, user_id=42, message_id=alert.params["_message_id"])
    finally:
        await again.stop()
    assert reply.params["text"] == "Search #1 paused."
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]


async def test_a_button_we_do_not_know_is_answered_and_changes_nothing(api: FakeBotApi, repo: Repository,
                                                                      front: TelegramFrontEnd) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    before = await repo.load_searches()
    for data in ("hello", "ds:pause:abc", "ds:explode:1", "ds:pause:0", ""):
        reply = await press(api, data, chat_id=42, user_id=42, message_id=1)
        assert (data, reply.params["text"]) == (data, "This button does not work any more.")
    assert await repo.load_searches() == before


PRESSES = itertools.count(1)


async def press_posted(api: FakeBotApi, data: str, *, chat_id: int, user_id: int,
                       posted: datetime | None) -> ApiCall:
    """A press on a message the bot posted at `posted`; None: a message Telegram no longer shows the bot (date 0)."""
    mark = len(api.calls)
    api.queue_update({"callback_query": {
        "id": f"posted{next(PRESSES)}", "from": {"id": user_id, "is_bot": False, "first_name": "Pat"},
        "chat_instance": str(chat_id), "data": data,
        "message": {"message_id": 1, "date": int(posted.timestamp()) if posted else 0, "chat": api.chat(chat_id),
                    "text": "an alert"}}})
    return await answer(api, "answerCallbackQuery", after=mark)


@pytest.mark.parametrize("old_release", [False, True], ids=["stamped", "unstamped"])
async def test_an_old_alerts_buttons_never_act_on_a_newer_search_given_its_id(
        api: FakeBotApi, repo: Repository, front: TelegramFrontEnd, commands: Commands, clock: ManualClock,
        database_url: str, old_release: bool) -> None:
    """Regression: SQLite gave a removed search's id to the next new search, and the old alert's Pause and Remove
    buttons (which named only the id) then paused or removed that newer search."""
    await ask(api, "/add lego @ebay", chat_id=42)
    alert = await deliver_one(api, repo, front, clock, 42)
    posted = clock()
    await ask(api, "/remove 1", chat_id=42)
    clock.advance(hours=1)
    await ask(api, "/add pokemon cards @ebay", chat_id=42)
    await give_removed_id(database_url, 2, 1)
    for (_, data) in buttons(alert)[1:]:
        if old_release:
            data = ":".join(data.split(":")[:3])  # as the previous release made them: the id alone
        reply = await press_posted(api, data, chat_id=42, user_id=42, posted=posted)
        assert (reply.params["text"], reply.params["show_alert"]) == ("You have no search #1.", True)
    newer = await repo.load_search(1)
    assert newer is not None and newer.query == "pokemon cards" and newer.status is SearchStatus.ACTIVE


async def test_an_unstamped_button_works_where_it_is_unambiguous(api: FakeBotApi, repo: Repository,
                                                                front: TelegramFrontEnd, clock: ManualClock) -> None:
    """Buttons posted before they carried a stamp keep working for the search that existed when they were posted;
    on a message whose date Telegram no longer gives, they cannot tell and say what to send instead."""
    await ask(api, "/add lego @ebay", chat_id=42)
    unknown = await press_posted(api, "ds:pause:1", chat_id=42, user_id=42, posted=None)
    assert unknown.params["text"] == ("This button is too old to tell which search it was for: send /pause 1 "
                                      "instead.")
    assert (await repo.load_search(1)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]
    # Telegram dates messages to the second, by its own clock: a message of the same second as the search is its.
    reply = await press_posted(api, "ds:pause:1", chat_id=42, user_id=42, posted=clock())
    assert reply.params["text"] == "Search #1 paused."
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
