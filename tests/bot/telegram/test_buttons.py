"""The buttons under an alert: they check who pressed them, work after a restart, and refuse what they don't know."""

from __future__ import annotations

from bot.commands import Commands
from bot.telegram.frontend import TelegramFrontEnd
from scout.delivery import Dispatcher
from scout.models import SearchStatus
from storage.repo import Repository
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
    assert buttons(alert) == [("\U0001f517 Open listing", "https://www.ebay.com/itm/0"),
                              ("\u23f8 Pause #1", "ds:pause:1"), ("\U0001f5d1 Remove #1", "ds:remove:1")]

    reply = await press(api, "ds:pause:1", chat_id=42, user_id=42, message_id=message_id)
    assert reply.params["text"] == "Search #1 paused."
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
    edit = await answer(api, "editMessageReplyMarkup")
    assert [b["callback_data"] for b in edit.params["reply_markup"]["inline_keyboard"][1]] == [
        "ds:resume:1", "ds:remove:1"]
    assert edit.params["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://www.ebay.com/itm/0"

    await press(api, "ds:resume:1", chat_id=42, user_id=42, message_id=message_id)
    assert (await repo.load_search(1)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]
    mark = len(api.calls)
    reply = await press(api, "ds:remove:1", chat_id=42, user_id=42, message_id=message_id)
    assert reply.params["text"] == "Search #1 removed."
    assert await repo.load_search(1) is None
    edit = await answer(api, "editMessageReplyMarkup", after=mark)
    assert edit.params["reply_markup"]["inline_keyboard"] == [[{"text": "\U0001f517 Open listing",
                                                               "url": "https://www.ebay.com/itm/0"}]]
    gone = await press(api, "ds:pause:1", chat_id=42, user_id=42, message_id=message_id)
    assert (gone.params["text"], gone.params["show_alert"]) == ("You have no search #1.", True)


async def test_in_a_group_the_button_checks_who_pressed_it(api: FakeBotApi, repo: Repository,
                                                          front: TelegramFrontEnd, clock: ManualClock) -> None:
    await ask(api, "/add lego @ebay", chat_id=GROUP, user_id=10)
    message_id = (await deliver_one(api, repo, front, clock, GROUP)).params["_message_id"]
    refused = await press(api, "ds:remove:1", chat_id=GROUP, user_id=11, message_id=message_id)
    assert refused.params["text"] == "Only the owner of search #1 or a group admin can change it."
    assert refused.params["show_alert"] is True
    assert await repo.load_search(1) is not None
    api.set_member(GROUP, 12, "administrator")
    await press(api, "ds:pause:1", chat_id=GROUP, user_id=12, message_id=message_id)
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]


async def test_buttons_still_work_after_a_restart(api: FakeBotApi, repo: Repository, front: TelegramFrontEnd,
                                                 commands: Commands, clock: ManualClock) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    message_id = (await deliver_one(api, repo, front, clock, 42)).params["_message_id"]
    await front.stop()
    again = TelegramFrontEnd(settings_for(api), commands, clock=clock, notifier=quick_notifier())
    await again.start()
    try:
        reply = await press(api, "ds:pause:1", chat_id=42, user_id=42, message_id=message_id)
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
