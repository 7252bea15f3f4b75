"""Apprise rendering: within the limits, scraped text cleaned, mentions neutralised, links whole or left out."""

from __future__ import annotations

from decimal import Decimal

from bot.apprise.render import BODY_LIMIT, TITLE_LIMIT, ZERO_WIDTH_SPACE, render_alert, render_digest, render_notice
from scout.models import Alert, Destination, Listing, Money, Notice, NoticeKind

DEST = Destination("apprise", "ntfys://ntfy.sh/topic")


def alert(title: str = "Lego 10497", *, url: str = "https://www.ebay.com/itm/1", query: str = "lego",
          location: str | None = None, n: int = 1) -> Alert:
    listing = Listing("ebay", str(n), title, url, Money(Decimal(10), "USD"), location=location)
    return Alert(n, DEST, listing, 7, query)


def test_an_alert_is_a_title_and_a_body_with_its_link() -> None:
    message = render_alert(alert(location="Berlin"), marketplace_names={"ebay": "eBay"})
    assert message.title == "Lego 10497"
    assert message.body == "10.00 USD \u00b7 eBay\nnear Berlin\nsearch #7 \u201clego\u201d\nhttps://www.ebay.com/itm/1"


def test_mentions_are_neutralised_and_control_characters_dropped() -> None:
    message = render_alert(alert("@everyone FREE <@123> <!channel> @here\x00\u202e", query="@room"))
    assert "@everyone" not in message.title and "@here" not in message.title
    assert f"@{ZERO_WIDTH_SPACE}everyone" in message.title
    assert "<@" not in message.title and "<!" not in message.title
    assert "\x00" not in message.title and "\u202e" not in message.title
    assert f"@{ZERO_WIDTH_SPACE}room" in message.body


def test_markup_in_scraped_text_stays_plain_text() -> None:
    """Sent as Apprise's TEXT format: Apprise escapes it for HTML and Markdown services, so it is left as written."""
    message = render_alert(alert("<b>bold</b> *deal* [x](https://evil.example)"))
    assert message.title == "<b>bold</b> *deal* [x](https://evil.example)"


def test_long_text_is_cut_to_the_limits_and_the_link_kept_whole() -> None:
    url = "https://www.ebay.com/itm/" + "9" * 300
    message = render_alert(alert("x" * 5000, url=url, query="q" * 190, location="y" * 2000))
    assert len(message.title) == TITLE_LIMIT and message.title.endswith("\u2026")
    assert len(message.body) <= BODY_LIMIT and message.body.endswith("\n" + url)


def test_a_link_that_is_no_web_address_or_too_long_is_left_out() -> None:
    assert "javascript" not in render_alert(alert(url="javascript:alert(1)")).body
    assert "https" not in render_alert(alert(url="https://e.example/" + "a" * 700)).body


def test_a_digest_lists_what_fits_and_counts_the_rest() -> None:
    alerts = [alert("t" * 200, url=f"https://www.ebay.com/itm/{n}", n=n) for n in range(40)]
    message = render_digest(alerts)
    assert message.title == "40 new deals for #7 \u201clego\u201d"
    assert len(message.body) <= BODY_LIMIT
    assert message.body.startswith("1. ") and message.body.endswith("more")
    shown = message.body.count("https://www.ebay.com/itm/")
    assert 0 < shown < 40 and message.body.endswith(f"\u2026 and {40 - shown} more")


def test_a_notice_keeps_its_lines_within_the_limit() -> None:
    ops = render_notice(Notice(1, DEST, "WARNING: outbox\nbacklog @channel " + "z" * 3000, NoticeKind.OPS))
    assert ops.title == "Deal Scout ops"
    assert ops.body.startswith("WARNING: outbox\nbacklog @\u200bchannel") and len(ops.body) == BODY_LIMIT
