"""Chat commands through the real PTB Application and the fake Bot API: private chats, groups, bad input."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bot.buttons import encode_stamp
from bot.telegram.handlers import BOT_COMMANDS
from scout.models import Destination, SearchStatus
from storage.repo import Repository
from tests.bot.outcomes import outcome, record_outcomes
from tests.bot.telegram.helpers import OPERATOR, ask, buttons, queue_alerts, visible
from tests.fakes.telegram_api import FakeBotApi
from tests.scout.clock import ManualClock

pytestmark = pytest.mark.usefixtures("front")
GROUP = -100200300


async def test_commands_are_registered_and_start_and_help_explain(api: FakeBotApi) -> None:
    assert [c["command"] for c in api.commands] == [name for name, _ in BOT_COMMANDS]
    assert "/add nintendo switch <200" in visible((await ask(api, "/start", chat_id=42)).text)
    text = visible((await ask(api, "/help", chat_id=42)).text)
    assert "/add rtx 3080 -broken <500 >100 @ebay,craigslist every 10m" in text
    assert "craigslist, ebay" in text and "/edit 12 <400 every 30m" in text


async def test_a_search_from_add_to_remove_in_a_private_chat(api: FakeBotApi, repo: Repository,
                                                            clock: ManualClock) -> None:
    reply = await ask(api, "/add rtx 3080 -broken <500 >100 @ebay every 10m", chat_id=42)
    assert visible(reply.text).startswith(
        "Saved #1 \u201crtx 3080\u201d on eBay, every 10 min; excluding broken; price 100\u2013500; active.")
    # The buttons carry when the search was made (see bot.buttons).
    stamp = encode_stamp(clock())
    assert buttons(reply) == [("\u23f8 Pause #1", f"ds:pause:1:{stamp}"),
                              ("\U0001f5d1 Remove #1", f"ds:remove:1:{stamp}")]
    search = await repo.load_search(1)
    assert search is not None
    assert (search.owner, search.destination, search.scope) == ("42", Destination("telegram", "42"), "42")
    assert (search.spec.min_price, search.spec.max_price) == (Decimal("100"), Decimal("500"))

    assert "#1 \u201crtx 3080\u201d" in visible((await ask(api, "/list", chat_id=42)).text)
    assert visible((await ask(api, "/show 1", chat_id=42)).text).startswith("#1 \u201crtx 3080\u201d on eBay")
    edited = await ask(api, "/edit 1 <400 every 30m", chat_id=42)
    # describe_search prints prices as stored (Numeric(18, 4)): "100.0000" on some databases; see the report.
    assert "every 30 min" in visible(edited.text) and "\u2013400;" in visible(edited.text)
    paused = await ask(api, "/pause 1", chat_id=42, username="ann_b")
    assert "paused (paused by @ann_b)" in visible(paused.text)
    assert buttons(paused)[0] == ("\u25b6\ufe0f Resume #1", f"ds:resume:1:{stamp}")
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
    await ask(api, "/resume #1", chat_id=42)
    assert (await repo.load_search(1)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]
    assert visible((await ask(api, "/deals 1", chat_id=42)).text) == "Search #1 has not found anything new yet."
    assert visible((await ask(api, "/remove 1", chat_id=42)).text) == "Removed search #1 \u201crtx 3080\u201d."
    assert await repo.load_search(1) is None
    assert visible((await ask(api, "/list", chat_id=42)).text).startswith("No searches in this chat yet.")


BAD_INPUT = [
    ("/add lego <abc", "The maximum price 'abc' is not a number."),
    ("/add lego @amazon", "Unknown marketplace 'amazon'. Choose from: craigslist, ebay."),
    ("/add lego every 1m", "The check interval must be at least 10 minutes for Craigslist."),
    ("/add lego <", "'<' needs a price after it, as in <500."),
    ("/add <500", "The query needs at least one word to search for."),
    ("/pause", "Which search? Send /pause 12 (see /list for the numbers)."),
    ("/pause abc", "'abc' is not a search number."),
    ("/pause 999", "You have no search #999."),
    ("/resume 99999999999999", "You have no search #99999999999999."),
    ("/edit 1", "Tell me what to change, as in: /edit 1 <400 every 30m."),
    ("/edit 1 <abc", "The maximum price 'abc' is not a number."),
    ("/edit 1 every 2m", "The check interval must be at least 5 minutes for eBay."),
    ("/edit", "Tell me which search to change and how, as in: /edit 12 <400 every 30m."),
    ("/show 2", "You have no search #2."),
    ("/deals x", "'x' is not a search number."),
    ("/frobnicate now", "I don't know /frobnicate. Send /help to see what I understand."),
    ("/cancel", "There is nothing to cancel."),
    ("hello there", "I only understand commands. Send /help to see them, or /add to save a search."),
    ("/admin status", "Only Deal Scout operators can run admin commands."),
    ("/admin pause ebay", "Only Deal Scout operators can run admin commands."),
    ("/admin resume ebay", "Only Deal Scout operators can run admin commands."),
    ("/admin backoff ebay", "Only Deal Scout operators can run admin commands."),
    ("/admin failures", "Only Deal Scout operators can run admin commands."),
]


async def test_bad_input_gets_a_clear_reply_and_changes_nothing(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add lego <50 @ebay", chat_id=42)
    before = await repo.load_searches()
    for line, reply in BAD_INPUT:
        assert (line, visible((await ask(api, line, chat_id=42)).text)) == (line, reply)
        assert await repo.load_searches() == before, line


async def test_a_query_without_letters_or_with_html_is_refused_with_a_message_about_the_query(
    api: FakeBotApi, repo: Repository
) -> None:
    """Pins: `/add **_~~` saved a search, and `/add <b>rtx</b>` or `/add <script>` got a message about a price."""
    await ask(api, "/add lego @ebay", chat_id=42)
    before = await repo.load_searches()
    html_query = "The query looks like HTML: send just the words to search for, without tags such as <b>."
    for line, reply in [("/add **_~~", "The query needs at least one word to search for."),
                        ("/add <b>rtx</b>", html_query), ("/add <script>", html_query),
                        ("/add rtx <i>3080</i> <500 @ebay", html_query), ("/edit 1 <b>rtx</b>", html_query)]:
        assert (line, visible((await ask(api, line, chat_id=42)).text)) == (line, reply)
    assert await repo.load_searches() == before


async def test_someone_elses_search_is_not_revealed(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    assert visible((await ask(api, "/show 1", chat_id=43)).text) == "You have no search #1."
    assert visible((await ask(api, "/pause 1", chat_id=43)).text) == "You have no search #1."
    assert (await repo.load_search(1)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]


async def test_commands_addressed_to_the_bot_work_in_groups_and_others_bots_commands_are_left_alone(
    api: FakeBotApi, repo: Repository
) -> None:
    reply = await ask(api, "/add@DealScoutBot lego <50 @ebay", chat_id=GROUP, user_id=10)
    assert visible(reply.text).startswith("Saved #1 \u201clego\u201d")
    assert reply.params["reply_parameters"]["message_id"] > 0  # answers quote the command in a group
    mark = len(api.calls)
    api.type("/add@OtherBot lego", chat_id=GROUP, user_id=10)
    api.type("/frobnicate@OtherBot", chat_id=GROUP, user_id=10)
    last = await ask(api, "/list@DealScoutBot", chat_id=GROUP, user_id=10)
    assert [c.text for c in api.calls_to("sendMessage", after=mark)] == [last.text]  # nothing for the others
    assert len(await repo.load_searches()) == 1


async def test_an_edited_command_does_not_run_again(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    mark = len(api.calls)
    api.type("/add lego @ebay", chat_id=42, edited=True)
    reply = await ask(api, "/list", chat_id=42)
    assert api.calls_to("sendMessage", after=mark) == [reply]
    assert len(await repo.load_searches()) == 1


async def test_a_message_with_no_sender_is_answered_and_ignored(api: FakeBotApi, repo: Repository) -> None:
    reply = await ask(api, "/add lego", chat_id=GROUP)  # no "from": not a person we can name
    assert visible(reply.text) == "I cannot tell who sent that, so I did nothing."
    assert await repo.load_searches() == []


async def test_in_groups_only_the_owner_or_an_admin_may_change_a_search(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add lego @ebay", chat_id=GROUP, user_id=10)
    api.set_member(GROUP, 12, "administrator")
    api.set_member(GROUP, 13, "creator")
    # Any member may look: the alerts come to the whole group.
    assert visible((await ask(api, "/show 1", chat_id=GROUP, user_id=11)).text).startswith("#1 \u201clego\u201d")
    assert "#1 \u201clego\u201d" in visible((await ask(api, "/list", chat_id=GROUP, user_id=11)).text)
    for line in ("/pause 1", "/edit 1 <5", "/remove 1"):
        refused = await ask(api, line, chat_id=GROUP, user_id=11)
        assert visible(refused.text) == "Only the owner of search #1 or a group admin can change it."
    assert api.calls_to("getChatMember")[-1].params == {"chat_id": GROUP, "user_id": 11}
    assert (await repo.load_search(1)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]

    await ask(api, "/pause 1", chat_id=GROUP, user_id=12)
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
    await ask(api, "/resume 1", chat_id=GROUP, user_id=13)
    assert (await repo.load_search(1)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]
    checks = len(api.calls_to("getChatMember"))
    await ask(api, "/pause 1", chat_id=GROUP, user_id=10)  # the owner needs no check
    assert len(api.calls_to("getChatMember")) == checks
    # An anonymous admin writes as the group itself.
    await ask(api, "/resume 1", chat_id=GROUP, user_id=1087968824, sender_chat=True)
    assert (await repo.load_search(1)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]
    assert len(api.calls_to("getChatMember")) == checks


async def test_operators_run_admin_commands(api: FakeBotApi, repo: Repository) -> None:
    assert "/admin status" in visible((await ask(api, "/admin", chat_id=OPERATOR)).text)
    status = visible((await ask(api, "/admin status", chat_id=OPERATOR)).text)
    assert status.startswith("Deal Scout status at") and "eBay: active, not scanned yet" in status
    paused = await ask(api, "/admin pause ebay <blocked> since 10:00", chat_id=OPERATOR)
    assert visible(paused.text) == ("eBay paused by 1: <blocked> since 10:00. Its searches are skipped until "
                                    "resumed.")
    assert (await repo.load_marketplace_states())["ebay"].paused
    await ask(api, "/add lego @ebay", chat_id=OPERATOR)
    shown = visible((await ask(api, "/show 1", chat_id=OPERATOR)).text)
    assert "eBay is paused by the operators: <blocked> since 10:00" in shown
    assert "eBay is paused by the operators" in visible((await ask(api, "/list", chat_id=OPERATOR)).text)
    assert visible((await ask(api, "/admin failures x", chat_id=OPERATOR)).text).startswith("Give the hours")
    assert visible((await ask(api, "/admin resume nope", chat_id=OPERATOR)).text).startswith(
        "Unknown marketplace 'nope'")


async def test_a_group_that_becomes_a_supergroup_keeps_its_searches(api: FakeBotApi, repo: Repository) -> None:
    """Pins: searches moved to the supergroup kept their old scope, and the new chat could not see them."""
    await ask(api, "/add lego @ebay", chat_id=GROUP, user_id=10)
    supergroup = -1001234567890
    mark = len(api.calls)
    # Telegram posts the migration in both chats; updates of one chat are handled in order, so the /list that
    # follows in the supergroup runs after the move.
    api.type(None, chat_id=supergroup, user_id=10, migrate_from_chat_id=GROUP)
    listed = await ask(api, "/list", chat_id=supergroup, user_id=11)
    search = await repo.load_search(1)
    assert search is not None and search.destination == Destination("telegram", str(supergroup))
    assert "#1 \u201clego\u201d" in visible(listed.text)
    await ask(api, "/pause 1", chat_id=supergroup, user_id=10)
    assert (await repo.load_search(1)).status is SearchStatus.PAUSED  # type: ignore[union-attr]
    assert api.calls_to("sendMessage", chat_id=GROUP, after=mark) == []


async def test_deals_lists_what_a_search_found(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    search = await repo.load_search(1)
    assert search is not None
    await queue_alerts(repo, search.created_at, search, 2)
    text = visible((await ask(api, "/deals 1", chat_id=42)).text)
    assert text.splitlines()[0] == "Latest deals of #1:"
    assert "lego 1" in text and "(pending)" in text


async def test_show_gives_the_last_outcome_per_marketplace(api: FakeBotApi, clock: ManualClock,
                                                           database_url: str) -> None:
    """Regression: /show said nothing of how the marketplaces answered, so a search whose marketplace failed at
    every check looked like one that found nothing."""
    await ask(api, "/add lego @ebay,craigslist", chat_id=42)
    await record_outcomes(database_url, 1, {
        "ebay": outcome("empty", clock() - timedelta(seconds=20)),
        "craigslist": outcome("failed", clock() - timedelta(minutes=90), error="connection refused <b>")})
    shown = await ask(api, "/show 1", chat_id=42)
    assert visible(shown.text).splitlines()[1:] == [
        "Last checks", "\u2022 eBay: no listings, just now",
        "\u2022 Craigslist: failed, 90 min ago (connection refused <b>)"]
    assert "<b>Last checks</b>" in shown.text and "&lt;b&gt;" in shown.text
