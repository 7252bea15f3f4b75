"""Kleinanzeigen: cards parsed (prices, places, Berlin dates), the zero-results page empty, the challenge blocked."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scout.errors import InputError, ParseError
from scrapers.base import Page, ScrapeStatus, SearchQuery
from scrapers.kleinanzeigen.adapter import KleinanzeigenAdapter
from scrapers.kleinanzeigen.parse import parse_search_page, parse_when
from tests.conftest import fixture_path
from tests.fakes.marketplace import FakeMarketplace
from tests.scrapers.site_matrix import CASES, Case, MakeFetcher, Site, check, run_cli_parse

PAGES = Path(__file__).resolve().parent / "pages"
BERLIN = ZoneInfo("Europe/Berlin")
# 2025-05-06 14:00 in Berlin (CEST): "Heute" is the 6th, "Gestern" the 5th.
NOW = datetime(2025, 5, 6, 12, 0, tzinfo=UTC)


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


# -- synthetic pages ---------------------------------------------------------------------------------------------


def test_result_cards_become_listings() -> None:
    result = parse_search_page(page("kleinanzeigen_results.html"), now=NOW)

    assert result.status is ScrapeStatus.SUCCESS
    # The paid "TOP" repeat of the first card is the same ad: listed once.
    assert [item.external_id for item in result.listings] == ["2900000001", "2900000002", "2900000003"]
    castle, technic, bricks = result.listings
    assert castle.title == "Lego Burg 10305"
    assert castle.url == "https://www.kleinanzeigen.de/s-anzeige/lego-burg-10305/2900000001-23-3331"
    assert (castle.price.amount, castle.price.currency, castle.price_text) == (Decimal(4350), "EUR", "4.350 €")
    # The zero-width space the site puts into long place names is not part of the name.
    assert castle.location == "10115 Berlin-Mitte"
    assert castle.image_url == "https://img.kleinanzeigen.de/api/v1/prod-ads/images/aa/aa01?rule=$_2.AUTO"
    assert castle.posted_at == datetime(2025, 5, 6, 10, 15, tzinfo=BERLIN)
    assert (technic.price.amount, technic.price_text) == (Decimal(3888), "3.888 € VB")
    # A lazy-loaded picture: the real address is in data-src, src holds a placeholder.
    assert technic.image_url == "https://img.kleinanzeigen.de/api/v1/prod-ads/images/bb/bb02?rule=$_2.AUTO"
    assert technic.posted_at == datetime(2025, 5, 5, 23, 30, tzinfo=BERLIN)
    assert (bricks.price.amount, bricks.price_text) == (Decimal(0), "Zu verschenken")
    assert bricks.posted_at == datetime(2025, 3, 27, 0, 0, tzinfo=BERLIN)
    assert bricks.image_url is None


def test_top_ads_are_sponsored_and_titles_without_links_and_older_markup_still_parse() -> None:
    """Sponsored TOP ads were read as ordinary results; a title in h2 > span[data-url] lost its ad; the older
    markup (p.aditem-main--middle--price, a data-imgsrc box) lost its price and picture."""
    result = parse_search_page(page("kleinanzeigen_topads_and_markups.html"), now=NOW)

    assert (result.status, result.rows) == (ScrapeStatus.SUCCESS, 3)
    top, span_title, older = result.listings
    assert (top.external_id, top.sponsored) == ("3100000009", True)
    # Beside a struck-through old price the current one is read.
    assert (top.price.amount, top.price_text) == (Decimal(1899), "1.899 €")
    assert (span_title.external_id, span_title.sponsored) == ("3100000001", False)
    assert span_title.title == "Rennrad Stahl 58 cm"
    assert span_title.url == "https://www.kleinanzeigen.de/s-anzeige/rennrad-stahl/3100000001-217-9409"
    assert (span_title.price.amount, span_title.price_text) == (Decimal(350), "350 € VB")
    assert span_title.image_url == "https://img.kleinanzeigen.de/api/v1/prod-ads/images/11/1101?rule=$_2.AUTO"
    assert (older.price.amount, older.price.currency, older.price_text) == (Decimal(75), "EUR", "75 €")
    assert older.image_url == "https://img.kleinanzeigen.de/api/v1/prod-ads/images/22/2202?rule=$_2.JPG"
    assert older.posted_at == datetime(2025, 5, 5, 18, 40, tzinfo=BERLIN)
    assert [item.external_id for item in result.listings if not item.sponsored] == ["3100000001", "3100000002"]


def test_an_ad_shown_both_as_top_ad_and_as_a_result_is_not_sponsored() -> None:
    listings = parse_search_page(page("kleinanzeigen_results.html"), now=NOW).listings
    assert [item.sponsored for item in listings] == [False, False, False]


def test_an_unreadable_card_makes_the_result_partial() -> None:
    body = page("kleinanzeigen_topads_and_markups.html").replace(b">Kinderfahrrad 20 Zoll</a>", b"></a>")
    result = parse_search_page(body, now=NOW)
    assert (result.status, result.rows, len(result.listings)) == (ScrapeStatus.PARTIAL, 3, 2)


def test_a_page_in_another_declared_charset_is_decoded() -> None:
    body = page("kleinanzeigen_results.html").decode().replace('charset="utf-8"', "").encode("iso-8859-1", "replace")
    result = parse_search_page(body, now=NOW, encoding="iso-8859-1")
    assert result.listings[1].location == "80331 München"


def test_zero_results_page_is_empty_and_challenge_is_blocked() -> None:
    assert parse_search_page(page("kleinanzeigen_zero_results.html"), now=NOW).status is ScrapeStatus.EMPTY
    blocked = parse_search_page(page("kleinanzeigen_challenge.html"), now=NOW)
    assert blocked.status is ScrapeStatus.BLOCKED
    assert "challenge" in blocked.detail


@pytest.mark.parametrize("where", ["top", "end"])
def test_a_challenge_marker_anywhere_in_a_long_script_page_is_blocked(where: str) -> None:
    """The markers are searched from the end of the page; one at its top is found as well."""
    filler = b"      f1xx[374148] = window;\n" * 3000
    marker = b'      window.rbzns = {seed: "x"};\n'
    script = marker + filler if where == "top" else filler + marker
    body = b"<html><head><script>\n" + script + b"</script></head><body></body></html>"
    result = parse_search_page(body, now=NOW)
    assert (result.status, result.detail) == (
        ScrapeStatus.BLOCKED, "Kleinanzeigen answered a bot challenge ('window.rbzns')")


@pytest.mark.parametrize(
    "body",
    [b"<html><body><h1>Wartungsarbeiten</h1></body></html>", b"\x00\x01garbage\xff" * 50, b"   "],
    ids=["unknown-page", "garbage", "blank"],
)
def test_pages_without_cards_or_known_markers_are_broken(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_search_page(body, now=NOW)


def test_cards_without_titles_are_broken_not_empty() -> None:
    body = b'<html><body><article class="aditem" data-adid="1" data-href="/s-anzeige/x/1"></article></body></html>'
    with pytest.raises(ParseError, match="none had"):
        parse_search_page(body, now=NOW)


@pytest.mark.parametrize(
    ("now", "text", "expected"),
    [
        # Just after midnight in Berlin it is still the previous day in UTC: "Heute" is Berlin's day.
        (datetime(2025, 5, 5, 22, 30, tzinfo=UTC), "Heute, 00:10", datetime(2025, 5, 6, 0, 10, tzinfo=BERLIN)),
        (datetime(2025, 5, 5, 22, 30, tzinfo=UTC), "Gestern, 23:59", datetime(2025, 5, 5, 23, 59, tzinfo=BERLIN)),
        # The night clocks go forward (30 March 2025): "Heute, 10:15" is CEST, 08:15 UTC.
        (datetime(2025, 3, 30, 0, 30, tzinfo=UTC), "Heute, 10:15", datetime(2025, 3, 30, 8, 15, tzinfo=UTC)),
        (NOW, "Heute", datetime(2025, 5, 6, 0, 0, tzinfo=BERLIN)),
        (NOW, "01.01.2024", datetime(2024, 1, 1, 0, 0, tzinfo=BERLIN)),
        (NOW, "31.02.2024", None),
        (NOW, "Heute, 25:99", None),
        (NOW, "vor langer Zeit", None),
    ],
)
def test_relative_dates_are_berlin_times(now: datetime, text: str, expected: datetime | None) -> None:
    assert parse_when(text, now.astimezone(BERLIN)) == expected


def test_the_adapter_reads_the_clock_it_is_given() -> None:
    adapter = KleinanzeigenAdapter(clock=lambda: datetime(2025, 5, 6, 12, 0, tzinfo=UTC))
    result = adapter.parse(Page("https://www.kleinanzeigen.de/s-lego/k0", 200, page("kleinanzeigen_results.html")))
    assert result.listings[0].posted_at == datetime(2025, 5, 6, 10, 15, tzinfo=BERLIN)


# -- search URLs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location", "radius", "url"),
    [
        ("Lego Burg", None, None, "https://www.kleinanzeigen.de/s-lego-burg/k0"),
        ("gartenmöbel", None, None, "https://www.kleinanzeigen.de/s-gartenm%C3%B6bel/k0"),
        ("r100 gs / r80", None, None, "https://www.kleinanzeigen.de/s-r100-gs-r80/k0"),
        ("lego", "Berlin", None, "https://www.kleinanzeigen.de/s-lego/k0l3331"),
        ("lego", "baden wuerttemberg", 25, "https://www.kleinanzeigen.de/s-lego/k0l7970r30"),
        ("lego", "Thüringen", 200, "https://www.kleinanzeigen.de/s-lego/k0l3548r200"),
        ("lego", "l3518", 5, "https://www.kleinanzeigen.de/s-lego/k0l3518r5"),
        ("lego", "Deutschland", None, "https://www.kleinanzeigen.de/s-lego/k0"),
    ],
)
def test_search_urls(text: str, location: str | None, radius: int | None, url: str) -> None:
    request = KleinanzeigenAdapter().build_request(SearchQuery.build(text, location, radius))
    assert request.url == url


@pytest.mark.parametrize(
    ("location", "radius", "message"),
    [("10115", None, "postcode"), ("sfbay", None, "German state"), ("berlin", 500, "at most 200 km")],
)
def test_locations_it_cannot_search_are_refused(location: str, radius: int | None, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        KleinanzeigenAdapter().build_request(SearchQuery.build("lego", location, radius))
    assert caught.value.field in ("location", "radius")


# -- real pages (skipped without ../shared/fixtures) -------------------------------------------------------------


@pytest.mark.fixtures
def test_real_vip_page_similar_ads() -> None:
    body = fixture_path("kleinanzeigen/vip-page-with-10-similar-aditem-cards-2025-05.html").read_bytes()
    result = parse_search_page(body, now=datetime(2025, 5, 6, 12, 0, tzinfo=UTC))

    assert result.status is ScrapeStatus.SUCCESS
    assert len(result.listings) == 10
    first = result.listings[0]
    assert first.external_id == "3040788256"
    assert first.title == "BMW R100 GS R 100 keine R 80"
    assert (first.price.amount, first.price.currency) == (Decimal(4350), "EUR")
    assert first.location == "06420 Zickeritz"
    assert first.posted_at == datetime(2025, 3, 27, tzinfo=BERLIN)
    assert first.image_url and first.image_url.startswith("https://img.kleinanzeigen.de/")
    assert [item.price_text for item in result.listings].count("3.888 € VB") == 1
    assert all(item.url.startswith("https://www.kleinanzeigen.de/s-anzeige/") for item in result.listings)
    assert "Duisburg-Süd" in [item.location.split(" ", 1)[1] for item in result.listings if item.location]


@pytest.mark.fixtures
def test_real_zero_results_page_is_empty() -> None:
    body = fixture_path("kleinanzeigen/srp-2026-04-lego-nan.html").read_bytes()
    assert parse_search_page(body, now=NOW).status is ScrapeStatus.EMPTY


@pytest.mark.fixtures
def test_real_challenge_page_is_blocked() -> None:
    body = fixture_path("kleinanzeigen/bot-challenge-page-2021-12.html").read_bytes()
    assert parse_search_page(body, now=NOW).status is ScrapeStatus.BLOCKED


def test_dealscout_parse(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    results, challenge = PAGES / "kleinanzeigen_results.html", PAGES / "kleinanzeigen_challenge.html"
    code, listings, summary = run_cli_parse("kleinanzeigen", results, capsys, monkeypatch, tmp_path)
    assert (code, summary, len(listings), listings[0]["id"]) == (0, "success: 3 listings", 3, "2900000001")
    code, listings, summary = run_cli_parse("kleinanzeigen", challenge, capsys, monkeypatch, tmp_path)
    assert (code, listings) == (1, [])
    assert summary.startswith("blocked: 0 listings")


# -- end to end through the fetcher ----------------------------------------------------------------------------

SITE = Site(
    name="kleinanzeigen",
    build=lambda: KleinanzeigenAdapter(clock=lambda: NOW),
    host="www.kleinanzeigen.de",
    path="/s-lego/k0",
    query=SearchQuery.build("Lego"),
    page=page("kleinanzeigen_results.html"),
    ids=("2900000001", "2900000002", "2900000003"),
    empty=page("kleinanzeigen_zero_results.html"),
    challenge=page("kleinanzeigen_challenge.html"),
    content_type="text/html; charset=utf-8",
    cut_after=b'<ul id="srchrslt-adtable"',
)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_end_to_end(case: Case, fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    await check(SITE, case, fake_market, make_fetcher)


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("relative", "status"),
    [("kleinanzeigen/srp-2026-04-lego-nan.html", ScrapeStatus.EMPTY),
     ("kleinanzeigen/bot-challenge-page-2021-12.html", ScrapeStatus.BLOCKED)],
)
async def test_real_pages_through_the_fetcher(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, relative: str, status: ScrapeStatus
) -> None:
    fake_market.route("/s-lego-nan-ovp-sealed-misb/k0", fixture_path(relative).read_bytes())
    fetcher = make_fetcher(resolve=fake_market.resolving(SITE.host))

    result = await KleinanzeigenAdapter().search(SearchQuery.build("lego nan ovp sealed misb"), fetcher)

    assert result.status is status, result.detail
