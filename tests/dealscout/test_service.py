"""The assembled service: scheduler, scan, real eBay adapter and fetcher against the fake site, console delivery."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from bot.commands import Actor
from bot.console import ConsoleNotifier
from dealscout.app import Service, build_service, start_service
from scout.config import load_settings
from scout.models import Destination
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.marketplace import FakeMarketplace
from tests.fakes.notifier import RecordingNotifier


def settings_for(tmp_path: Path, **extra: str):  # type: ignore[no-untyped-def]
    env = {"DEALSCOUT_DATA_DIR": str(tmp_path), "SCAN_TICK_SECONDS": "0.05", "DELIVERY_TICK_SECONDS": "0.05",
           "HTTP_MAX_RETRIES": "0", "OPS_HTTP_PORT": "0", **extra}
    return load_settings(env, env_file=None)


def fast(service: Service) -> None:
    """Lift eBay's request budget: the fake site does not mind, and the test need not wait 20 s between requests."""
    service.fetcher.set_host_rate("www.ebay.com", float("inf"))


async def test_the_service_scans_on_schedule_and_delivers(tmp_path: Path) -> None:
    page = ebay_results_page([(101, "Nintendo Switch OLED", "199.99"), (102, "Nintendo Switch Lite broken", "40"),
                              (103, "Nintendo Switch games lot", "250.00")])
    notifier = RecordingNotifier()
    async with FakeMarketplace() as market:
        market.route("/sch/i.html", body=page)
        settings = settings_for(tmp_path, BASELINE_FIRST_SCAN="false")
        async with build_service(settings, resolve=market.resolving("www.ebay.com"),
                                 notifiers={"console": notifier}) as service:
            fast(service)
            await service.commands.add_search(Actor("cli"), Destination("console", "main"), query="nintendo switch",
                                              marketplaces="ebay", exclude="broken", max_price="200")
            await start_service(service)
            await asyncio.wait_for(notifier.wait_for(1), timeout=30)
            assert notifier.delivered_ids() == ["101"]
            alert = notifier.sent[0][1]
            assert alert.listing.title == "Nintendo Switch OLED"
            assert str(alert.listing.price) == "199.99 USD"
            assert alert.listing.url == "https://www.ebay.com/itm/101"
        request = market.requests_to("/sch/i.html")[0]
        assert request.query["_nkw"] == "nintendo switch"


async def test_the_console_notifier_prints_a_readable_alert(tmp_path: Path) -> None:
    out = io.StringIO()
    page = ebay_results_page([(7, "Game Boy Color <Atomic Purple> & box", "55.00")])
    async with FakeMarketplace() as market:
        market.route("/sch/i.html", body=page)
        settings = settings_for(tmp_path, BASELINE_FIRST_SCAN="false")
        async with build_service(settings, resolve=market.resolving("www.ebay.com"),
                                 notifiers={"console": ConsoleNotifier(out)}) as service:
            fast(service)
            search = await service.commands.add_search(Actor("cli"), Destination("console", "main"),
                                                       query="game boy", marketplaces="ebay")
            assert (await service.scanner.run_until_idle()).alerts_queued == 1
            assert (await service.dispatcher.drain()).sent == 1
    assert out.getvalue().splitlines() == [
        "DEAL [ebay] Game Boy Color <Atomic Purple> & box | 55.00 USD | Located in United States",
        "     https://www.ebay.com/itm/7",
        f"     matched search #{search.id} 'game boy' -> console:main",
    ]


async def test_a_built_service_keeps_start_up_out_of_collections_and_the_gil_turns_short(tmp_path: Path) -> None:
    """Regression: full garbage collections walked every object start-up built, stopping the event loop ~100 ms
    each during a scan, and a parsing thread kept the loop's thread waiting 5 ms turns for the GIL."""
    import gc
    import sys

    from dealscout.app import LOOP_SWITCH_INTERVAL_S

    gc.unfreeze()
    before = sys.getswitchinterval()
    try:
        async with build_service(settings_for(tmp_path)):
            assert gc.get_freeze_count() > 10_000  # the modules, mappings and adapters at least
            assert sys.getswitchinterval() == LOOP_SWITCH_INTERVAL_S
    finally:
        gc.unfreeze()
        sys.setswitchinterval(before)
