"""Kijiji: search RSS feeds parsed (double-escaped titles, CAD prices, times, places), feed URLs, and end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from scout.errors import InputError, ParseError
from scout.models import Money
from scrapers.base import ScrapeStatus, SearchQuery
from scrapers.kijiji.adapter import KijijiAdapter
from scrapers.kijiji.parse import parse_feed
from tests.conftest import fixture_path
from tests.fakes.marketplace import FakeMarketplace
from tests.scrapers.site_matrix import CASES, Case, MakeFetcher, Site, check, run_cli_parse

PAGES = Path(__file__).resolve().parent / "pages"
AKAMAI_DENIED = b"""<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>
You don't have permission to access "http://www.kijiji.ca/rss-srp-canada/lego/k0l0" on this server.<P>
Reference #18.5c2a3e17.1689390000.1a2b3c</BODY></HTML>"""


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


# -- synthetic feeds ---------------------------------------------------------------------------------------------


def test_feed_items_become_listings() -> None:
    result = parse_feed(page("kijiji_feed.rss"))

    assert result.status is ScrapeStatus.SUCCESS
    table, wanted, falcon = result.listings
    # Escaped twice by Kijiji: the XML parser undoes one level, html.unescape the other.
    assert table.title == "Café table & 4 chairs"
    assert table.external_id == "1700000001"
    assert table.url == "https://www.kijiji.ca/v-dining-table-set/city-of-toronto/cafe-table-chairs/1700000001"
    assert table.price == Money(Decimal("1234.5"), "CAD")
    assert table.price_text == "1234.5"
    assert table.image_url == "https://media.kijiji.ca/api/v1/ca-prod-fsbo-ads/images/aa/aa01?rule=kijijica-960-webp"
    assert table.posted_at == datetime(2023, 7, 15, 2, 29, 12, tzinfo=UTC)
    assert table.location == "city of toronto (43.65107, -79.347015)"
    # A wanted ad has no g-core:price, no picture and no coordinates.
    assert (wanted.price, wanted.image_url, wanted.location) == (None, None, "ottawa")
    assert wanted.posted_at == datetime(2023, 7, 14, 21, 54, 47, tzinfo=UTC)
    assert falcon.external_id == "1700000003" and falcon.price == Money(Decimal("900.0"), "CAD")


def test_a_feed_without_items_is_empty() -> None:
    assert parse_feed(page("kijiji_empty.rss")).status is ScrapeStatus.EMPTY


def test_a_block_page_instead_of_the_feed_is_blocked() -> None:
    result = parse_feed(AKAMAI_DENIED)
    assert result.status is ScrapeStatus.BLOCKED
    assert "access denied" in result.detail


@pytest.mark.parametrize(
    "body",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
        b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>cut',
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"></feed>',
        b"<html><body><p>Kijiji is down for maintenance</p></body></html>",
        b"",
    ],
    ids=["binary", "cut", "atom-not-rss", "other-html", "empty"],
)
def test_anything_else_is_broken_not_empty(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed(body)


def test_items_without_an_ad_link_are_broken_not_empty() -> None:
    body = b"""<rss version="2.0"><channel><title>x</title>
      <item><title>no link</title></item>
      <item><title>odd link</title><link>https://www.kijiji.ca/b-buy-sell/</link></item>
    </channel></rss>"""
    with pytest.raises(ParseError, match="none had"):
        parse_feed(body)


def test_an_item_that_cannot_be_read_makes_the_fetch_partial() -> None:
    """Regression: an item without an ad link used to vanish, so a changed feed showed only as fewer alerts."""
    good = b"<item><title>Lamp</title><link>https://www.kijiji.ca/v-lamps/ottawa/lamp/1700000009</link></item>"
    body = (b'<rss version="2.0"><channel><title>x</title>' + good * 2
            + b"<item><title>no link</title></item>"
            + good.replace(b"1700000009", b"1700000010").replace(b"Lamp", b"Desk") + b"</channel></rss>")

    result = parse_feed(body)

    # The repeated ad is one row; the item without a link is the one lost.
    assert result.status is ScrapeStatus.PARTIAL
    assert (result.rows, len(result.listings), result.rows_lost) == (3, 2, 1)
    assert [listing.external_id for listing in result.listings] == ["1700000009", "1700000010"]
    assert result.listings[0].location == "ottawa"


def test_an_item_without_a_link_is_read_from_its_guid() -> None:
    body = b"""<rss version="2.0"><channel><title>x</title><item><title>Lamp</title>
      <guid> https://www.kijiji.ca/v-lamps/ottawa/lamp/1700000009 </guid>
      <pubDate>Sat, 15 Jul 2023 02:29:12 GMT</pubDate></item></channel></rss>"""
    [lamp] = parse_feed(body).listings
    assert (lamp.external_id, lamp.url) == ("1700000009", "https://www.kijiji.ca/v-lamps/ottawa/lamp/1700000009")
    assert lamp.posted_at == datetime(2023, 7, 15, 2, 29, 12, tzinfo=UTC)  # no dc:date: pubDate stands in


# -- feed URLs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location", "url"),
    [
        ("Nintendo", None, "https://www.kijiji.ca/rss-srp-canada/nintendo/k0l0?ad=offering"),
        ("lego technic", "Ontario", "https://www.kijiji.ca/rss-srp-ontario/lego-technic/k0l9004?ad=offering"),
        ("vélo", "Québec", "https://www.kijiji.ca/rss-srp-quebec/v%C3%A9lo/k0l9001?ad=offering"),
        ("ps5", "city-of-toronto/l1700273", "https://www.kijiji.ca/rss-srp-city-of-toronto/ps5/k0l1700273?ad=offering"),
        ("ps5", "l1700185", "https://www.kijiji.ca/rss-srp-canada/ps5/k0l1700185?ad=offering"),
    ],
)
def test_feed_urls(text: str, location: str | None, url: str) -> None:
    assert KijijiAdapter().build_request(SearchQuery.build(text, location)).url == url


@pytest.mark.parametrize("location", ["sfbay", "toronto/1700273", "../../admin", "l"])
def test_unknown_regions_are_refused(location: str) -> None:
    with pytest.raises(InputError, match="Kijiji location") as caught:
        KijijiAdapter().build_request(SearchQuery.build("ps5", location))
    assert caught.value.field == "location"


# -- real feeds (skipped without ../shared/fixtures) -------------------------------------------------------------


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("relative", "priced", "first_id", "first_title"),
    [
        ("kijiji/rss-srp-k0c10l9001-2023-07-15.rss", 14, "1666166038", "JE RECHERCHE des jeux Nintendo 64 N64"),
        ("kijiji/rss-srp-k0c623l9001-2023-07-15.rss", 16, "1666149440", "GameCube Microphone"),
    ],
)
def test_real_feeds(relative: str, priced: int, first_id: str, first_title: str) -> None:
    result = parse_feed(fixture_path(relative).read_bytes())

    assert result.status is ScrapeStatus.SUCCESS
    assert len(result.listings) == 20
    assert (result.listings[0].external_id, result.listings[0].title) == (first_id, first_title)
    assert sum(item.price is not None for item in result.listings) == priced
    assert all(item.price is None or item.price.currency == "CAD" for item in result.listings)
    assert all(item.posted_at is not None and item.posted_at.tzinfo is not None for item in result.listings)
    assert all(item.image_url and item.image_url.startswith("https://media.kijiji.ca/") for item in result.listings)
    # No escape survives: the titles were escaped twice.
    assert not any("&#" in item.title or "&amp;" in item.title for item in result.listings)


@pytest.mark.fixtures
def test_real_feed_double_escaped_title() -> None:
    result = parse_feed(fixture_path("kijiji/rss-srp-k0c623l9001-2023-07-15.rss").read_bytes())
    last = result.listings[-1]
    assert last.title == "Gamecube avec jeux et trois manettes prix négociable!"
    assert last.price == Money(Decimal("400.0"), "CAD")


def test_dealscout_parse(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, listings, summary = run_cli_parse("kijiji", PAGES / "kijiji_feed.rss", capsys, monkeypatch, tmp_path)
    assert (code, summary, len(listings), listings[0]["id"]) == (0, "success: 3 listings", 3, "1700000001")
    code, listings, summary = run_cli_parse("kijiji", PAGES / "kijiji_empty.rss", capsys, monkeypatch, tmp_path)
    assert (code, listings) == (0, [])
    assert summary.startswith("empty: 0 listings")


# -- end to end through the fetcher ----------------------------------------------------------------------------

SITE = Site(
    name="kijiji",
    build=KijijiAdapter,
    host="www.kijiji.ca",
    path="/rss-srp-canada/lego/k0l0",
    query=SearchQuery.build("Lego"),
    page=page("kijiji_feed.rss"),
    ids=("1700000001", "1700000002", "1700000003"),
    empty=page("kijiji_empty.rss"),
    challenge=AKAMAI_DENIED,
    content_type="application/rss+xml; charset=utf-8",
    cut_after=b"<item>",
)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_end_to_end(case: Case, fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    await check(SITE, case, fake_market, make_fetcher)


async def test_the_feed_is_asked_for_offers_only(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    await check(SITE, CASES[0], fake_market, make_fetcher)
    [sent] = fake_market.requests_to(SITE.path)
    assert sent.query == {"ad": "offering"}


@pytest.mark.parametrize(
    ("dc_date", "posted"),
    [
        ("2023-07-15T02:29:12Z", datetime(2023, 7, 15, 2, 29, 12, tzinfo=UTC)),
        ("2023-07-15T04:29:12+02:00", datetime(2023, 7, 15, 2, 29, 12, tzinfo=UTC)),
        ("2023-07-15T02:29:12", datetime(2023, 7, 15, 2, 29, 12, tzinfo=UTC)),  # no zone: taken as UTC
        (" 2023-07-15T02:29:12Z\n", datetime(2023, 7, 15, 2, 29, 12, tzinfo=UTC)),
        ("15/07/2023", datetime(2023, 7, 14, 21, 54, 47, tzinfo=UTC)),  # unreadable: pubDate stands in
    ],
    ids=["utc", "offset", "naive", "padded", "unreadable"],
)
def test_the_posting_time_comes_from_dc_date_else_pub_date(dc_date: str, posted: datetime) -> None:
    body = page("kijiji_feed.rss").replace(
        b"<pubDate>Fri, 14 Jul 2023 21:54:47 +0000</pubDate>",
        b"<pubDate>Fri, 14 Jul 2023 21:54:47 +0000</pubDate><dc:date>" + dc_date.encode() + b"</dc:date>",
    )
    wanted = parse_feed(body).listings[1]
    assert wanted.posted_at == posted
    assert wanted.posted_at is not None and wanted.posted_at.utcoffset() is not None
