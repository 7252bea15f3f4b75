"""The deal features through the real PTB Application and the fake Bot API: the deal options of /add and /edit,
pasted search addresses, /snooze, /quiet, /layout and /history (a chart uploaded as a photo)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from bot.history import History
from bot.telegram.frontend import TelegramFrontEnd
from bot.telegram.handlers import BOT_COMMANDS
from bot.telegram.render import CAPTION_LIMIT, MESSAGE_LIMIT, utf16_len
from scout.deals import comparable_words
from scout.delivery import Dispatcher
from scout.models import Destination, FetchOutcome, Layout, Listing, Money, SavedSearch, SearchRun
from scout.quiet import QuietHours
from storage.repo import DestinationSettings, Repository
from tests.bot.telegram.helpers import HANG, answer, ask, queue_alerts, visible
from tests.fakes.telegram_api import FakeBotApi
from tests.scout.clock import ManualClock

pytestmark = pytest.mark.usefixtures("front")
GROUP = -100200300
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SEARCH_ADDRESS = "https://www.ebay.com/sch/i.html?_nkw=lego&_udhi=50&LH_BIN=1"


class UploadingBotApi(FakeBotApi):
    """The fake Bot API, keeping the bytes of each uploaded file as well (the fake records only their names)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.uploads: list[tuple[str, str, bytes]] = []  # (method, form field, content)

    async def _handle(self, request: web.Request) -> web.Response:
        response = await super()._handle(request)
        if request.content_type == "multipart/form-data":
            # The form the fake read (aiohttp keeps it), so this awaits nothing: the upload is recorded before
            # anyone waiting for the call runs.
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    value.file.seek(0)
                    self.uploads.append((request.match_info["method"], name, value.file.read()))
        return response


@pytest.fixture
async def api() -> AsyncIterator[UploadingBotApi]:
    async with UploadingBotApi() as fake:
        yield fake


async def saved(repo: Repository, number: int = 1) -> SavedSearch:
    search = await repo.load_search(number)
    assert search is not None
    return search


async def save_prices(repo: Repository, search: SavedSearch, prices: dict[str, str], *, at: Any) -> None:
    """A scan that found eBay listings `external id -> price (USD)`, all matched by `search`."""
    listings = tuple(Listing("ebay", number, f"lego castle {number}", f"https://www.ebay.com/itm/{number}",
                             Money(Decimal(price), "USD")) for number, price in prices.items())
    # `carrying`: the listings kept as comparables of the search's words, as a scan records them.
    fetch = FetchOutcome("ebay", search.query, "success", len(listings), listings, matches={search.id: listings},
                         carrying={comparable_words(search.query): listings})
    await repo.save_scan(now=at, fetches=[fetch], runs=[SearchRun(search.id, at + timedelta(minutes=5),
                                                                  frozenset({"ebay"}))],
                         searches={search.id: search}, baseline_first_scan=False)


# --- the deal options of the one-line grammar -------------------------------------------------------------------


async def test_deal_options_in_add_and_edit(api: FakeBotApi, repo: Repository) -> None:
    reply = await ask(api, "/add lego deal:good drop:15% seller:-BadShop seller:-junk_dealer rating:98 @ebay",
                      chat_id=42)
    assert visible(reply.text).startswith(
        "Saved #1 \u201clego\u201d on eBay, every 5 min; good deals only; price drops of 15% or more; not from "
        "badshop, junk_dealer; sellers rated 98% or better; active.")
    spec = (await saved(repo)).spec
    assert (spec.min_deal, spec.price_drop_share, spec.exclude_sellers, spec.min_seller_rating) == (
        "good", Decimal("0.15"), ("badshop", "junk_dealer"), Decimal(98))

    edited = await ask(api, "/edit 1 deal:great drops:off", chat_id=42)
    assert "great deals only; no price-drop alerts; not from badshop, junk_dealer" in visible(edited.text)
    await ask(api, "/edit 1 deal:any drop:10% seller:any rating:any", chat_id=42)
    spec = (await saved(repo)).spec
    assert (spec.min_deal, spec.price_drop_share, spec.exclude_sellers, spec.min_seller_rating) == (
        None, Decimal("0.1"), (), None)


async def test_a_pasted_search_address_is_saved_with_what_follows_it(api: FakeBotApi, repo: Repository) -> None:
    reply = await ask(api, f"/add {SEARCH_ADDRESS} every 30m deal:good", chat_id=42)
    assert visible(reply.text).splitlines()[0].startswith(
        "Saved #1 \u201clego\u201d on eBay, every 30 min; price 0\u201350 USD; good deals only; active.")
    assert visible(reply.text).splitlines()[-1] == (
        "Not kept from the address (a saved search cannot filter by them): buy it now only.")
    search = await saved(repo)
    assert (search.spec.query, search.spec.marketplaces, search.spec.max_price, search.spec.currency,
            search.spec.check_interval_minutes, search.spec.min_deal) == (
        "lego", ("ebay",), Decimal(50), "USD", 30, "good")
    # Words after the address replace the address's own.
    reply = await ask(api, "/add https://www.ebay.com/sch/i.html?_nkw=lego duplo <20", chat_id=42)
    assert visible(reply.text).startswith("Saved #2 \u201cduplo\u201d on eBay")
    assert "Not kept" not in visible(reply.text)


async def test_a_search_address_pasted_into_the_guided_add_answers_every_question(
    api: FakeBotApi, repo: Repository
) -> None:
    await ask(api, "/add", chat_id=42)
    again = await ask(api, "https://www.ebay.com/itm/1234567890", chat_id=42)
    assert visible(again.text) == ("That is one listing, not a search: paste the address of a eBay search results "
                                   "page instead.\nTry again, or /cancel.")
    reply = await ask(api, SEARCH_ADDRESS, chat_id=42)
    assert visible(reply.text).startswith("Saved #1 \u201clego\u201d on eBay")
    assert (await saved(repo)).spec.max_price == Decimal(50)


# --- bad input ----------------------------------------------------------------------------------------------------

BAD_INPUT = [
    ("/add lego deal:superb", "'deal:superb' is not a choice: write deal:great, deal:good, deal:fair or deal:any."),
    ("/add lego rating:150", "The seller rating is a share of positive feedback from 1% to 100%."),
    ("/add lego drop:95%", "A price drop worth telling is from 1% to 90% of the price."),
    ("/add lego seller:bob", "To leave out a seller, put '-' before the name, as in seller:-bob."),
    ("/edit 1 rating:150", "The seller rating is a share of positive feedback from 1% to 100%."),
    ("/edit 1 deal:superb", "'deal:superb' is not a choice: write deal:great, deal:good, deal:fair or deal:any."),
    ("/add https://example.com/search?q=lego",
     ("example.com is not a marketplace whose searches can be read. Paste a search from eBay, Craigslist, Facebook "
      "Marketplace, Vinted, Kleinanzeigen or Kijiji.")),
    ("/add https://www.ebay.com/itm/1234567890",
     "That is one listing, not a search: paste the address of a eBay search results page instead."),
    ("/add https://www.vinted.de/catalog?search_text=lego", "vinted is not enabled on this service."),
    ("/add https://www.ebay.com/sch/i.html?_nkw=lego every 1m",
     "The check interval must be at least 5 minutes for eBay."),
    (f"/edit 1 {SEARCH_ADDRESS}", ("A pasted search address starts a new search: send it with /add. /edit changes "
                                   "a search with words such as <400 every 30m.")),
    ("/snooze 1 -2h", "'-2h' is not a duration: write it as 30m, 2h, 1d or 1w."),
    ("/snooze 1 45d", "Snooze for 1 minute up to 30 days; to stop a search for longer, pause it."),
    ("/snooze 1 soon", "'soon' is not a duration: write it as 30m, 2h, 1d or 1w."),
    ("/snooze 1", "For how long? Send /snooze 1 2h, 1d or 1w, or /snooze 1 off to wake it."),
    ("/snooze", "Which search, and for how long? Send /snooze 12 2h (or /snooze 12 off to wake it)."),
    ("/snooze 99 2h", "You have no search #99."),
    ("/snooze x 2h", "'x' is not a search number."),
    ("/quiet 25:00-07:00", "'25:00' is not a time of day such as 22:00 or 7."),
    ("/quiet 22:00-07:00 Mars/Olympus",
     "Unknown time zone 'Mars/Olympus': use a name such as Europe/Berlin or America/New_York."),
    ("/quiet 22:00", "Write quiet hours as a window such as 22:00-07:00, or 'off'."),
    ("/quiet 22:00-22:00", "Quiet hours need a start and an end that differ."),
    ("/quiet 22:00-07:00 Europe/Berlin please", ("Send quiet hours as /quiet 22:00-07:00 with your time zone, as in "
                                                 "/quiet 22:00-07:00 Europe/Berlin, or /quiet off.")),
    ("/layout fancy", "The alert layout is 'full' (a card with picture and buttons) or 'compact' (one line)."),
    ("/history", "Which search or listing? Send /history 12, or /history ebay:1234567890 for one listing."),
    ("/history 99", "You have no search #99."),
    ("/history ebay:999", "None of your searches found ebay:999."),
    ("/history what?", ("'what?' names no search or listing. Name a search by its number (12) or a listing by "
                        "marketplace and id (ebay:1234567890).")),
    ("/history 1", "Search #1 has seen no priced listings in the last 90 days yet."),
]


async def test_bad_input_gets_a_clear_reply_and_changes_nothing(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    before = await repo.load_searches()
    here = Destination("telegram", "42")
    for line, reply in BAD_INPUT:
        assert (line, visible((await ask(api, line, chat_id=42)).text)) == (line, reply)
        assert await repo.load_searches() == before, line
        assert await repo.load_destination_settings(here) == DestinationSettings(here), line
    assert api.calls_to("sendPhoto") == []


async def test_someone_elses_search_reads_as_no_search(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    for line in ("/snooze 1 2h", "/snooze 1 off", "/history 1", "/history #1"):
        assert (line, visible((await ask(api, line, chat_id=43)).text)) == (line, "You have no search #1.")
    assert (await saved(repo)).snoozed_until is None


# --- /snooze ------------------------------------------------------------------------------------------------------


async def test_snooze_and_wake_a_search(api: FakeBotApi, repo: Repository, clock: ManualClock) -> None:
    await ask(api, "/add lego @ebay", chat_id=42)
    reply = await ask(api, "/snooze 1 2h", chat_id=42)
    assert visible(reply.text) == ("Snoozed #1 \u201clego\u201d until 2026-11-28 14:00 UTC. It keeps checking, and "
                                   "what it finds meanwhile is not posted later. /snooze 1 off wakes it sooner.")
    assert (await saved(repo)).snoozed_until == clock() + timedelta(hours=2)
    await ask(api, "/snooze #1 3 days", chat_id=42)
    assert (await saved(repo)).snoozed_until == clock() + timedelta(days=3)
    assert "snoozed until 2026-12-01 12:00 UTC" in visible((await ask(api, "/show 1", chat_id=42)).text)
    woken = await ask(api, "/snooze 1 off", chat_id=42)
    assert visible(woken.text) == "Search #1 \u201clego\u201d is awake: new matches are posted here again."
    assert (await saved(repo)).snoozed_until is None


async def test_in_groups_only_the_owner_or_an_admin_may_snooze(api: FakeBotApi, repo: Repository) -> None:
    await ask(api, "/add lego @ebay", chat_id=GROUP, user_id=10)
    refused = await ask(api, "/snooze 1 2h", chat_id=GROUP, user_id=11)
    assert visible(refused.text) == "Only the owner of search #1 or a group admin can change it."
    assert (await saved(repo)).snoozed_until is None
    api.set_member(GROUP, 12, "administrator")
    await ask(api, "/snooze 1 2h", chat_id=GROUP, user_id=12)
    assert (await saved(repo)).snoozed_until is not None
    await ask(api, "/snooze 1 off", chat_id=GROUP, user_id=10)
    assert (await saved(repo)).snoozed_until is None


# --- /quiet and /layout -------------------------------------------------------------------------------------------


async def test_quiet_hours_for_a_chat(api: FakeBotApi, repo: Repository) -> None:
    here = Destination("telegram", "42")
    shown = await ask(api, "/quiet", chat_id=42)
    assert visible(shown.text) == ("No quiet hours here: alerts are posted as they come.\nSet them with /quiet "
                                   "22:00-07:00 Europe/Berlin, stop them with /quiet off.")
    reply = await ask(api, "/quiet 22:00-07:00 europe/berlin", chat_id=42)
    assert visible(reply.text) == ("Quiet hours here: 22:00\u201307:00 Europe/Berlin. Alerts that come meanwhile "
                                   "are posted when they end.")
    assert (await repo.load_destination_settings(here)).quiet_hours == QuietHours(22 * 60, 7 * 60, "Europe/Berlin")
    await ask(api, "/quiet 23 - 6", chat_id=42)
    assert (await repo.load_destination_settings(here)).quiet_hours == QuietHours(23 * 60, 6 * 60, "UTC")
    assert visible((await ask(api, "/quiet", chat_id=42)).text).startswith("Quiet hours here: 23:00\u201306:00 UTC.")
    off = await ask(api, "/quiet off", chat_id=42)
    assert visible(off.text) == "No quiet hours here any more: alerts are posted as they come."
    assert (await repo.load_destination_settings(here)).quiet_hours is None


async def test_layout_for_a_chat_and_a_compact_alert_is_one_line(
    api: FakeBotApi, repo: Repository, front: TelegramFrontEnd, clock: ManualClock
) -> None:
    here = Destination("telegram", "42")
    assert visible((await ask(api, "/layout", chat_id=42)).text) == (
        "Alerts here come as a card each, with picture, details and buttons. /layout compact makes them one line "
        "each, without picture or buttons.")
    reply = await ask(api, "/layout COMPACT", chat_id=42)
    assert visible(reply.text) == "From now on alerts here come as one line each, without picture or buttons."
    assert (await repo.load_destination_settings(here)).layout is Layout.COMPACT

    await ask(api, "/add lego @ebay", chat_id=42)
    await queue_alerts(repo, clock(), await saved(repo), 1)
    mark = len(api.calls)
    report = await Dispatcher(repo, {"telegram": front.notifier}, clock=clock).drain()
    assert report.sent == 1
    assert api.calls_to("sendPhoto", after=mark) == []
    [alert] = api.calls_to("sendMessage", chat_id=42, after=mark)
    assert visible(alert.text) == "[eBay] lego 0 \u00b7 10.00 USD open"
    assert utf16_len(visible(alert.text)) <= MESSAGE_LIMIT and "reply_markup" not in alert.params

    await ask(api, "/layout full", chat_id=42)
    assert (await repo.load_destination_settings(here)).layout is Layout.FULL


async def test_in_groups_only_admins_change_the_chat_settings(api: FakeBotApi, repo: Repository) -> None:
    group = Destination("telegram", str(GROUP))
    for line in ("/quiet 22:00-07:00", "/quiet off", "/layout compact"):
        refused = await ask(api, line, chat_id=GROUP, user_id=11)
        assert (line, visible(refused.text)) == (line, "Only a group admin can change how alerts come to this chat.")
    assert api.calls_to("getChatMember")[-1].params == {"chat_id": GROUP, "user_id": 11}
    assert await repo.load_destination_settings(group) == DestinationSettings(group)
    # Anyone may look.
    assert visible((await ask(api, "/layout", chat_id=GROUP, user_id=11)).text).startswith("Alerts here come as")

    api.set_member(GROUP, 12, "administrator")
    await ask(api, "/layout compact", chat_id=GROUP, user_id=12)
    api.set_member(GROUP, 13, "creator")
    await ask(api, "/quiet 22:00-07:00 America/New_York", chat_id=GROUP, user_id=13)
    # An anonymous admin writes as the group itself.
    await ask(api, "/quiet 21:00-06:00 America/New_York", chat_id=GROUP, user_id=1087968824, sender_chat=True)
    assert await repo.load_destination_settings(group) == DestinationSettings(
        group, QuietHours(21 * 60, 6 * 60, "America/New_York"), Layout.COMPACT)


# --- /history -----------------------------------------------------------------------------------------------------


async def history_reply(api: UploadingBotApi, text: str, *, chat_id: int, **extra: Any) -> Any:
    """Send `text`; the photo the bot answers with, and the files uploaded with it."""
    mark, uploads = len(api.calls), len(api.uploads)
    api.type(text, chat_id=chat_id, **extra)
    photo = await asyncio.wait_for(api.wait_for_call("sendPhoto", chat_id=chat_id, after=mark), HANG)
    return photo, api.uploads[uploads:]


async def test_history_of_a_search_is_a_chart_with_its_summary(api: UploadingBotApi, repo: Repository,
                                                              clock: ManualClock) -> None:
    await ask(api, "/add lego castle @ebay", chat_id=42)
    prices = {str(n): str(price) for n, price in enumerate((40, 55, 60, 62, 70, 75, 90, 120), 1)}
    await save_prices(repo, await saved(repo), prices, at=clock())
    photo, uploads = await history_reply(api, "/history 1", chat_id=42)

    [(method, field, content)] = uploads
    assert (method, field) == ("sendPhoto", "photo")
    assert content.startswith(PNG_SIGNATURE) and len(content) > 1000
    assert photo.params["photo"] == "history.png" and photo.params["parse_mode"] == "HTML"
    caption = visible(photo.params["caption"]).splitlines()
    assert caption[0] == "#1 \u201clego castle\u201d: 8 comparable listings, last 90 days"
    assert caption[1].endswith(" 40.00\u2013120.00 USD, median 66.00")
    assert "reply_parameters" not in photo.params  # a private chat: no quote


async def test_history_of_a_listing_in_a_group_quotes_the_command(api: UploadingBotApi, repo: Repository,
                                                                 clock: ManualClock) -> None:
    await ask(api, "/add lego castle @ebay", chat_id=GROUP, user_id=10)
    search = await saved(repo)
    await save_prices(repo, search, {"7": "80"}, at=clock())
    await save_prices(repo, search, {"7": "65"}, at=clock.advance(days=2))
    photo, uploads = await history_reply(api, "/history ebay:7", chat_id=GROUP, user_id=10)
    assert uploads[0][2].startswith(PNG_SIGNATURE)
    assert visible(photo.params["caption"]).splitlines()[0] == "lego castle 7"
    assert photo.params["reply_parameters"]["message_id"] > 0
    # Another member did not see it found by a search of theirs.
    refused = await ask(api, "/history ebay:7", chat_id=GROUP, user_id=11)
    assert visible(refused.text) == "None of your searches found ebay:7."


async def test_a_long_history_summary_is_cut_to_the_caption_limit(
    api: UploadingBotApi, repo: Repository, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ask(api, "/add lego castle @ebay", chat_id=42)
    await save_prices(repo, await saved(repo), {"1": "10", "2": "20"}, at=clock())

    async def long_history(*args: Any, **kwargs: Any) -> History:
        return History("lego", "USD", "<b>lego</b> & " * 300, prices=[Decimal(10), Decimal(20)])

    monkeypatch.setattr("bot.telegram.deal_handlers.load_history", long_history)
    photo, _ = await history_reply(api, "/history 1", chat_id=42)
    shown = visible(photo.params["caption"])
    assert utf16_len(shown) <= CAPTION_LIMIT and shown.startswith("<b>lego</b> & ") and shown.endswith("\u2026")


async def test_history_falls_back_to_text_when_the_chart_cannot_be_drawn(
    api: UploadingBotApi, repo: Repository, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ask(api, "/add lego castle @ebay", chat_id=42)
    await save_prices(repo, await saved(repo), {"1": "10", "2": "20"}, at=clock())

    async def undrawable(self: History) -> bytes:
        raise ValueError("an amount cannot be drawn")

    monkeypatch.setattr(History, "chart", undrawable)
    reply = await ask(api, "/history 1", chat_id=42)
    assert visible(reply.text).splitlines()[0] == "#1 \u201clego castle\u201d: 2 comparable listings, last 90 days"
    assert api.calls_to("sendPhoto") == [] and api.uploads == []


async def test_history_falls_back_to_text_when_telegram_refuses_the_photo(
    api: UploadingBotApi, repo: Repository, clock: ManualClock
) -> None:
    await ask(api, "/add lego castle @ebay", chat_id=42)
    await save_prices(repo, await saved(repo), {"1": "10", "2": "20"}, at=clock())
    api.fail("sendPhoto", 400, "Bad Request: not enough rights to send photos to the chat")
    reply = await ask(api, "/history 1", chat_id=42)
    assert visible(reply.text).startswith("#1 \u201clego castle\u201d: 2 comparable listings")
    await answer(api, "sendPhoto", status=400)


async def test_the_new_commands_are_in_the_menu_and_the_help(api: FakeBotApi) -> None:
    names = [name for name, _ in BOT_COMMANDS]
    assert {"snooze", "quiet", "layout", "history"} <= set(names)
    assert [c["command"] for c in api.commands] == names
    text = visible((await ask(api, "/help", chat_id=42)).text)
    for example in ("deal:good", "drop:15%", "drops:off", "seller:-name", "rating:98", "/snooze 12 2h",
                    "/history 12", "/quiet 22:00-07:00 Europe/Berlin", "/layout compact",
                    "/add https://www.ebay.com/sch/i.html?_nkw=lego every 30m"):
        assert example in text, example
    assert utf16_len(text) <= MESSAGE_LIMIT
