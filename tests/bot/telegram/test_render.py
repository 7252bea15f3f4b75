"""Rendering alerts for Telegram: escaping of scraped text, the caption and message limits, digests and buttons."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from bot.telegram.render import (
    CALLBACK_DATA_LIMIT,
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    ButtonPress,
    build_alert_keyboard,
    callback_data,
    cut,
    parse_callback_data,
    render_alert,
    render_deals,
    render_digest,
    render_lines,
    render_plain,
    render_search_detail,
    utf16_len,
)
from scout.models import Alert, AlertKind, DealFacts, Destination, Layout, Listing, Money, StoredAlert
from tests.bot.telegram.helpers import visible

ALLOWED_TAGS = {"b", "a", "code"}


def listing(title: str = "Nintendo Switch OLED", **extra: object) -> Listing:
    values: dict = {"marketplace": "ebay", "external_id": "1", "title": title, "url": "https://www.ebay.com/itm/1",
                    "price": Money(Decimal("199.99"), "USD"), "location": "Berlin",
                    "image_url": "https://i.ebayimg.com/1.jpg", "posted_at": datetime(2026, 11, 28, 9, 5, tzinfo=UTC)}
    values.update(extra)
    return Listing(**values)


def alert(item: Listing | None = None, search_id: int | None = 7, query: str = "switch") -> Alert:
    return Alert(1, Destination("telegram", "42"), item or listing(), search_id, query)


class TagChecker(HTMLParser):
    """Fails on any tag Telegram would not accept and on tags left open or closed twice."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        assert tag in ALLOWED_TAGS, tag
        self.stack.append(tag)
        if tag == "a":
            self.links.append(dict(attrs)["href"])

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag


def well_formed(text: str) -> TagChecker:
    # Every & must start an entity Telegram knows, or the whole message is refused.
    assert not re.search(r"&(?!lt;|gt;|amp;|quot;|#\d+;)", text), text
    checker = TagChecker()
    checker.feed(text)
    checker.close()
    assert checker.stack == []
    return checker


def test_a_photo_alert_has_everything_and_buttons() -> None:
    rendered = render_alert(alert(), marketplace_names={"ebay": "eBay"})
    assert rendered.photo_url == "https://i.ebayimg.com/1.jpg"
    assert visible(rendered.html).splitlines() == [
        "Nintendo Switch OLED", "\U0001f4b0 199.99 USD \u00b7 eBay", "\U0001f4cd Berlin",
        "\U0001f552 posted 2026-11-28 09:05 UTC", "\U0001f50e #7 \u201cswitch\u201d", "Open listing"]
    assert well_formed(rendered.html).links == ["https://www.ebay.com/itm/1"]
    assert [[(b.text, b.url or b.data) for b in row] for row in rendered.keyboard] == [
        [("\U0001f517 Open listing", "https://www.ebay.com/itm/1")],
        [("\u23f8 Pause #7", "ds:pause:7"), ("\U0001f5d1 Remove #7", "ds:remove:7")]]


def test_without_an_image_it_is_a_text_message_and_unpriced_listings_say_so() -> None:
    rendered = render_alert(alert(listing(image_url=None, price=None, price_text=" Make  an offer ", location=None,
                                          posted_at=None)))
    assert rendered.photo_url is None
    assert visible(rendered.html).splitlines()[1] == "\U0001f4b0 Make an offer \u00b7 ebay"


@pytest.mark.parametrize("title", [
    "<b>bold</b> & <i>more</i>", '<a href="https://evil.example">click</a>', "Tom & Jerry <3 &amp; &lt;",
    "</b><b>", "a & b; c &#1234", "@everyone look",
])
def test_scraped_text_cannot_break_the_message_or_add_links(title: str) -> None:
    item = listing(title, location="<script>&</script>", price=None, price_text="<1 €>")
    rendered = render_alert(alert(item, query="q <x> & y"))
    checker = well_formed(rendered.html)
    assert checker.links == ["https://www.ebay.com/itm/1"]  # only our own link
    assert visible(rendered.html).splitlines()[0] == title
    assert "<script>&</script>" in visible(rendered.html)


def test_links_that_are_not_http_are_left_out() -> None:
    rendered = render_alert(alert(listing(url="javascript:alert(1)", image_url="file:///etc/passwd")))
    assert rendered.photo_url is None
    assert well_formed(rendered.html).links == []
    assert all(b.url is None for row in rendered.keyboard for b in row)


@pytest.mark.parametrize("photo", [True, False])
@pytest.mark.parametrize("unit", ["a", "&", "<", "\u00e9", "\U0001f600", "\u4e2d"])
def test_long_text_is_cut_cleanly_at_the_limit(photo: bool, unit: str) -> None:
    item = listing(unit * 6000 + " END", location=unit * 3000,
                   image_url="https://i.ebayimg.com/1.jpg" if photo else None)
    rendered = render_alert(alert(item, query="q" * 200))
    limit = CAPTION_LIMIT if photo else MESSAGE_LIMIT
    shown = visible(rendered.html)
    assert utf16_len(shown) <= limit
    assert utf16_len(shown) > limit - 10  # cut, not emptied
    well_formed(rendered.html)
    assert shown.splitlines()[0].endswith("\u2026")
    assert shown.endswith("Open listing")  # the link survives; the title gave way
    assert "\ufffd" not in shown  # no half of a surrogate pair


def test_cut_never_splits_a_character_and_prefers_a_word_boundary() -> None:
    assert cut("short", 10) == "short"
    assert cut("\U0001f600" * 5, 4) == "\U0001f600\u2026"  # each emoji is 2 units in UTF-16
    assert cut("the quick brown fox jumps", 20) == "the quick brown fox\u2026"
    assert utf16_len(cut("x" * 100, 10)) == 10


def test_a_digest_links_every_listing_and_fits_one_message() -> None:
    alerts = [alert(listing(f"<{n}> " + "long title " * 200, external_id=str(n), url=f"https://www.ebay.com/itm/{n}"))
              for n in range(15)]
    text = render_digest(alerts)
    assert utf16_len(visible(text)) <= MESSAGE_LIMIT
    assert well_formed(text).links == [f"https://www.ebay.com/itm/{n}" for n in range(15)]
    lines = visible(text).splitlines()
    assert lines[0] == "\U0001f4e6 15 new deals for #7 \u201cswitch\u201d"
    assert all(line.startswith(f"{n + 1}. <{n}> long title") for n, line in enumerate(lines[1:]))
    # Titles share the room alike rather than the first ones taking it all.
    lengths = {len(line.split(" \u2014 ")[0]) for line in lines[1:]}
    assert max(lengths) - min(lengths) <= 20  # a cut may end at the previous word


def test_a_digest_of_several_searches_names_each_one() -> None:
    text = render_digest([alert(search_id=1, query="a"), alert(search_id=2, query="b")])
    assert visible(text).splitlines() == ["\U0001f4e6 2 new deals",
                                          "1. Nintendo Switch OLED \u2014 199.99 USD \u00b7 ebay \u00b7 #1",
                                          "2. Nintendo Switch OLED \u2014 199.99 USD \u00b7 ebay \u00b7 #2"]


def test_callback_data_round_trips_and_rejects_anything_else() -> None:
    made = datetime(2026, 11, 28, 12, 0, 0, 123400, tzinfo=UTC)
    assert callback_data("pause", 12, made) == "ds:pause:12:1a22206ca7c"
    # The stamp is rounded up to the millisecond: the search existed by the moment it names.
    assert parse_callback_data("ds:remove:12:1a22206ca7c") == ButtonPress("remove", 12, made + timedelta(
        microseconds=600))
    # Buttons posted before they carried a stamp still parse.
    assert callback_data("pause", 12, None) == "ds:pause:12"
    assert parse_callback_data("ds:remove:12") == ButtonPress("remove", 12, None)
    longest = callback_data("resume", 2**31 - 1, datetime(2500, 1, 1, tzinfo=UTC))
    assert parse_callback_data(longest) is not None and len(longest.encode()) <= CALLBACK_DATA_LIMIT
    for bad in (None, "", "ds:pause", "ds:pause:x", "ds:explode:1", "xx:pause:1", "ds:pause:0", "ds:pause:-1",
                "ds:pause:99999999999", "ds:pause:1:", "ds:pause:1:xyz", "ds:pause:1:fffffffffffff", "ds:pause:1:2:3"):
        assert parse_callback_data(bad) is None, bad
    with pytest.raises(ValueError):
        callback_data("explode", 1, None)


def test_keyboards_after_an_action() -> None:
    paused = build_alert_keyboard(3, "https://x.test/1", paused=True)
    assert [b.data for b in paused[1]] == ["ds:resume:3", "ds:remove:3"]
    assert build_alert_keyboard(3, "https://x.test/1", removed=True) == build_alert_keyboard(None, "https://x.test/1")
    assert build_alert_keyboard(None, None) == ()


def test_deals_and_lines() -> None:
    when = datetime(2026, 11, 28, 9, 5, tzinfo=UTC)
    deals = [StoredAlert(1, listing("A & B"), "sent", when, when), StoredAlert(2, listing("C"), "dead", when, None)]
    text = render_deals(7, deals)
    assert visible(text).splitlines() == ["Latest deals of #7:", "\u2022 Nov 28 09:05 A & B \u2014 199.99 USD",
                                          "\u2022 Nov 28 09:05 C \u2014 199.99 USD (dead)"]
    well_formed(text)
    assert render_deals(7, []) == "Search #7 has not found anything new yet."
    many = render_lines("Searches", [f"#{n} <{'x' * 200}>" for n in range(100)])
    assert utf16_len(visible(many)) <= MESSAGE_LIMIT
    assert re.search(r"\u2026 and \d+ more$", visible(many))
    well_formed(many)


def test_a_search_detail_fits_one_message_whatever_its_parts() -> None:
    lines = [f"Market{n}: failed, 2 h ago ({'<error> ' * 40})" for n in range(11)]
    text = render_search_detail("#1 \u201clego\u201d " + "x " * 3000, lines)
    shown = visible(text)
    assert utf16_len(shown) <= MESSAGE_LIMIT and well_formed(text)
    assert "\nLast checks\n\u2022 Market0: failed" in shown and "Market10: failed" in shown


@pytest.mark.parametrize("unit", ["a", "&", "<", "\U0001f600"])
def test_a_compact_alert_is_one_line_within_the_message_limit(unit: str) -> None:
    item = listing(unit * 6000 + " END", location="Berlin")
    drop = replace(alert(item), layout=Layout.COMPACT, kind=AlertKind.DROP,
                   facts=DealFacts(verdict="great", old_price=Money(Decimal(250), "USD")))
    rendered = render_alert(drop, marketplace_names={"ebay": "eBay"})
    shown = visible(rendered.html)
    assert (rendered.photo_url, rendered.keyboard) == (None, ())  # no picture, no buttons
    assert "\n" not in shown and shown.startswith("[eBay] " + unit)
    assert MESSAGE_LIMIT - 10 < utf16_len(shown) <= MESSAGE_LIMIT
    assert well_formed(rendered.html).links == ["https://www.ebay.com/itm/1"]
    assert shown.endswith(" open")  # the link survives the cut


def test_a_short_compact_alert_keeps_every_part() -> None:
    compact = replace(alert(), layout=Layout.COMPACT, facts=DealFacts(verdict="good", deal="20% below"))
    rendered = render_alert(compact, marketplace_names={"ebay": "eBay"})
    assert visible(rendered.html) == "[eBay] Nintendo Switch OLED \u00b7 199.99 USD \u00b7 good deal open"


def test_plain_text_is_escaped_and_cut_to_the_caption_limit() -> None:
    text = "#3 \u201clego <castle>\u201d & more\n" + "\u2581\u2583\u2587" * 600
    caption = render_plain(text, limit=CAPTION_LIMIT)
    assert utf16_len(visible(caption)) == CAPTION_LIMIT and visible(caption).endswith("\u2026")
    assert caption.startswith("#3 \u201clego &lt;castle&gt;\u201d &amp; more\n")
    well_formed(caption)
    assert render_plain("short <b>") == "short &lt;b&gt;"
