"""End to end: a user adds a search in Telegram, a scan finds a listing, the photo alert arrives, "pause" works."""

from __future__ import annotations

from pathlib import Path

from bot.telegram.frontend import TelegramFrontEnd
from dealscout.app import build_service
from scout.config import load_settings
from scout.models import SearchStatus
from scout.pacing import Rate
from tests.bot.telegram.helpers import answer, ask, buttons, visible
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.marketplace import FakeMarketplace
from tests.fakes.telegram_api import FakeBotApi


async def test_add_scan_alert_pause(database_url: str, tmp_path: Path) -> None:
    page = ebay_results_page([(101, "Nintendo Switch OLED <mint> & boxed", "199.99"),
                              (102, "Nintendo Switch Lite broken", "40.00")])
    async with FakeMarketplace() as market, FakeBotApi() as api:
        market.route("/sch/i.html", body=page)
        settings = load_settings({
            "DEALSCOUT_DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "BASELINE_FIRST_SCAN": "false",
            "HTTP_MAX_RETRIES": "0", "TELEGRAM_TOKEN": api.token, "TELEGRAM_API_URL": api.base_url,
        }, env_file=None)
        # TELEGRAM_TOKEN is set, so the service builds the Telegram front end itself, as in production.
        async with build_service(settings, resolve=market.resolving("www.ebay.com")) as service:
            service.fetcher.set_host_rate("www.ebay.com", float("inf"))
            (front,) = service.front_ends
            assert isinstance(front, TelegramFrontEnd) and service.notifiers["telegram"] is front.notifier
            # Like the eBay rate above: the fake does not mind, and the test need not wait a second per message.
            front.notifier.set_limits(per_chat=Rate(1, 0.001), per_group=Rate(20, 0.06), overall=Rate(30, 0.001))
            await front.start()
            assert front.connection.connected

            saved = await ask(api, "/add nintendo switch -broken <300 @ebay", chat_id=42)
            assert visible(saved.text).startswith("Saved #1 \u201cnintendo switch\u201d on eBay")
            assert (await service.scanner.run_until_idle()).alerts_queued == 1
            assert (await service.dispatcher.drain()).sent == 1

            (alert,) = api.calls_to("sendPhoto", chat_id=42)
            assert alert.params["photo"] == "https://i.ebayimg.com/images/g/101/s-l500.webp"
            caption = visible(alert.params["caption"])
            assert caption.startswith("Nintendo Switch OLED <mint> & boxed\n\U0001f4b0 199.99 USD \u00b7 eBay")
            (link, (label, pause)) = buttons(alert)[:2]
            assert link == ("\U0001f517 Open listing", "https://www.ebay.com/itm/101")
            assert label == "\u23f8 Pause #1" and pause.startswith("ds:pause:1:")

            mark = len(api.calls)
            api.press(pause, chat_id=42, user_id=42, message_id=alert.params["_message_id"])
            pressed = await answer(api, "answerCallbackQuery", after=mark)
            assert pressed.params["text"] == "Search #1 paused."
            search = await service.store.repo.load_search(1)
            assert search is not None and search.status is SearchStatus.PAUSED
        assert market.requests_to("/sch/i.html")[0].query["_nkw"] == "nintendo switch"
