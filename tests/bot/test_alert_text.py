"""The words every front end adds to an alert (a drop, a relist, the verdict, the trend, other links) and the
compact layout, on the console and Apprise; Discord and Telegram have theirs in their own tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from bot.alert_text import compact_line, extra_lines, headline
from bot.apprise.render import BODY_LIMIT, ZERO_WIDTH_SPACE
from bot.apprise.render import render_alert as apprise_alert
from bot.console import render_console_alert
from scout.models import Alert, AlertKind, DealFacts, Destination, Layout, Listing, Money

FACTS = DealFacts(deal="31% below the median of 41 similar listings", verdict="great", trend="\u2581\u2583\u2588 x")


def alert(**changes: object) -> Alert:
    listing = Listing("ebay", "1", "Lego 10497 @everyone", "https://www.ebay.com/itm/1", Money(Decimal("89"), "EUR"))
    return replace(Alert(1, Destination("apprise", "ntfys://ntfy.sh/t"), listing, 7, "lego"), **changes)


def test_a_drop_a_relist_and_news_have_their_own_first_line() -> None:
    drop = alert(kind=AlertKind.DROP, facts=replace(FACTS, old_price=Money(Decimal("120"), "EUR")))
    assert headline(drop) == "Price drop: 120.00 EUR \u2192 89.00 EUR (-26%)"
    relist = alert(kind=AlertKind.RELIST, facts=DealFacts(first_seen_at=datetime(2026, 11, 2, tzinfo=UTC),
                                                          old_price=Money(Decimal("95"), "EUR")))
    assert headline(relist) == "Back on sale, first seen 02 Nov 2026, was 95.00 EUR"
    assert headline(alert()) is None
    assert extra_lines(alert(facts=replace(FACTS, also=(("kleinanzeigen", "https://k.example/1"),))),
                       {"kleinanzeigen": "Kleinanzeigen"}) == [
        "\U0001f525 great deal: 31% below the median of 41 similar listings", "\u2581\u2583\u2588 x",
        "Also on Kleinanzeigen: https://k.example/1"]


def test_the_compact_layout_is_one_line() -> None:
    line = compact_line(alert(facts=FACTS), {"ebay": "eBay"})
    assert line == "[eBay] Lego 10497 @everyone \u00b7 89.00 EUR \u00b7 great deal"
    console = render_console_alert(alert(facts=FACTS, layout=Layout.COMPACT))
    assert "\n" not in console and console.endswith("https://www.ebay.com/itm/1")


def test_apprise_shows_the_deal_lines_and_the_compact_line_cleaned_and_within_its_limit() -> None:
    full = apprise_alert(alert(facts=FACTS), marketplace_names={"ebay": "eBay"})
    assert full.body.startswith("\U0001f525 great deal: 31% below the median of 41 similar listings\n")
    compact = apprise_alert(alert(facts=replace(FACTS, deal="x" * 5000), layout=Layout.COMPACT))
    assert compact.body.count("\n") == 1 and compact.body.endswith("\nhttps://www.ebay.com/itm/1")
    assert f"@{ZERO_WIDTH_SPACE}everyone" in compact.body and len(compact.body) <= BODY_LIMIT
