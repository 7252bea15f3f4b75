"""Craigslist parsing: the real static page and sapi JSON (skipped without ../shared/fixtures), and synthetic pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from scout.errors import ConfigError, InputError, ParseError
from scout.models import Listing, Money
from scrapers.base import Page, ScrapeStatus, SearchQuery
from scrapers.craigslist import parse as craigslist_parse
from scrapers.craigslist.adapter import CraigslistAdapter
from scrapers.craigslist.parse import parse_sapi, parse_search_page, parse_static_page
from tests.conftest import fixture_path

PAGES = Path(__file__).parent / "pages"
BASE = "https://corvallis.craigslist.org/search/sss?query=bike&sort=date"


def _page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


# --- real pages ---------------------------------------------------------------------------------------------


@pytest.mark.fixtures
def test_real_static_page_sanity_facts() -> None:
    body = fixture_path("craigslist/sfbay-sss-surfing-board-static-2025-10.html").read_bytes()
    result = parse_static_page(body, base_url="https://sfbay.craigslist.org/search/sss?query=surfing%20board")

    assert result.status is ScrapeStatus.SUCCESS
    listings = result.listings
    assert len(listings) == 65
    assert len({listing.external_id for listing in listings}) == 65
    first = listings[0]
    assert first.external_id == "7888520643"
    assert first.title == "6’2 Bushwacker surfboard 37.6L"
    assert first.price == Money(Decimal(400), "USD")
    assert first.price_text == "$400"
    assert first.location == "richmond / seacliff"
    assert first.url == "https://sfbay.craigslist.org/sfc/spo/d/san-francisco-62-bushwacker-surfboard/7888520643.html"
    # merged from the ld+json list, which is in the same order
    assert first.image_url == "https://images.craigslist.org/00r0r_bb0sFZ5YNM7_05s0ew_600x450.jpg"
    for listing in listings:
        assert listing.marketplace == "craigslist"
        assert listing.url.startswith("https://") and listing.url.endswith(f"/{listing.external_id}.html")
        assert listing.price is not None and listing.price.currency == "USD"
        assert listing.image_url and listing.image_url.startswith("https://images.craigslist.org/")
        assert listing.location


@pytest.mark.fixtures
def test_real_sapi_answer_sanity_facts() -> None:
    body = fixture_path("craigslist/sapi-v7-corvallis-sss-macbook-2022-12.json").read_bytes()
    result = parse_search_page(body, content_type="application/json")

    assert result.status is ScrapeStatus.SUCCESS
    listings = result.listings
    assert len(listings) == 61
    assert len({listing.external_id for listing in listings}) == 61
    first = listings[0]
    assert first.external_id == "7566610755"
    assert first.posted_at == datetime(2022, 12, 9, 23, 40, 36, tzinfo=UTC)
    assert first.price == Money(Decimal(30), "USD")
    assert first.title == "Apple 128GB Flash SSD"
    assert first.location == "Corvallis"
    assert first.url == "https://corvallis.craigslist.org/sop/7566610755.html"
    assert first.image_url == "https://images.craigslist.org/00L0L_5DgbnM8Dh7Fz_0CI0t2_300x300.jpg"
    for listing in listings:
        assert listing.posted_at is not None and listing.posted_at.utcoffset().total_seconds() == 0
        assert listing.url.startswith("https://") and ".craigslist.org/" in listing.url
        assert listing.title


# --- synthetic pages ------------------------------------------------------------------------------------------


def test_static_page_merges_ld_json_by_position() -> None:
    result = parse_search_page(_page("craigslist_static.html"), base_url=BASE, content_type="text/html")

    assert result.status is ScrapeStatus.SUCCESS
    road, kids, rack = result.listings
    assert road == Listing(
        marketplace="craigslist",
        external_id="7800000001",
        title="Road bike, 56cm",
        url="https://corvallis.craigslist.org/bik/d/corvallis-road-bike/7800000001.html",
        price=Money(Decimal(250), "USD"),
        price_text="$250",
        location="downtown",
        image_url="https://images.craigslist.org/00a0a_one_600x450.jpg",
    )
    # no price shown: the ld+json offer says 0; a relative link is made absolute; no image in ld+json
    assert kids.title == "Kids bike free"
    assert kids.price == Money(Decimal("0.00"), "USD") and kids.price_text is None
    assert kids.url == "https://corvallis.craigslist.org/bik/d/albany-kids-bike/7800000002.html"
    assert kids.image_url is None
    # no location shown: the ld+json locality stands in
    assert rack.price == Money(Decimal(1200), "USD")
    assert rack.location == "Philomath"


def test_newer_view_links_are_read_with_the_token_as_id() -> None:
    """Rows linking to www.craigslist.org/view/d/<slug>/<token> (no numeric id) were dropped."""
    result = parse_search_page(_page("craigslist_view_links.html"), base_url=BASE, content_type="text/html")

    assert (result.status, result.rows) == (ScrapeStatus.SUCCESS, 3)
    desk, chair, lamp = result.listings
    assert desk == Listing(
        marketplace="craigslist",
        external_id="fa3EYSbAAz67kAs9ZHwdbz",
        title="Standing desk, walnut top",
        url="https://www.craigslist.org/view/d/oakland-standing-desk-walnut-top/fa3EYSbAAz67kAs9ZHwdbz",
        price=Money(Decimal(180), "USD"),
        price_text="$180",
        location="oakland lake merritt",
        image_url="https://images.craigslist.org/00x0x_deskone_600x450.jpg",
    )
    # A query string after the token is not part of the id; the older numeric form still reads beside it.
    assert chair.external_id == "8EhtzWDrDcXbcQiWBpsYRA"
    assert chair.image_url == "https://images.craigslist.org/00y0y_chairtwo_600x450.jpg"
    assert lamp.external_id == "7890000003"


def test_the_same_view_link_gives_the_same_id_on_every_page() -> None:
    first = parse_search_page(_page("craigslist_view_links.html"), base_url=BASE).listings
    moved = _page("craigslist_view_links.html").replace(b"oakland-standing-desk-walnut-top", b"oakland-desk")
    again = parse_search_page(moved, base_url=BASE).listings
    assert first[0].external_id == again[0].external_id == "fa3EYSbAAz67kAs9ZHwdbz"


def test_a_row_without_a_posting_link_makes_the_result_partial() -> None:
    body = _page("craigslist_view_links.html").replace(b"/8EhtzWDrDcXbcQiWBpsYRA?lang=en", b"/")
    result = parse_search_page(body, base_url=BASE)
    assert (result.status, result.rows, len(result.listings)) == (ScrapeStatus.PARTIAL, 3, 2)


def test_static_page_does_not_merge_a_drifted_ld_json_list() -> None:
    body = _page("craigslist_static.html").replace(b'"name":"Road bike, 56cm"', b'"name":"Something else"')
    road = parse_static_page(body, base_url=BASE).listings[0]
    assert road.image_url is None
    assert road.price == Money(Decimal(250), "USD")  # the row's own price still stands


def test_zero_results_page_is_empty_not_blocked() -> None:
    result = parse_search_page(_page("craigslist_zero_results.html"), base_url=BASE)
    assert result.status is ScrapeStatus.EMPTY
    assert result.listings == ()


def test_blocked_page_is_blocked_not_empty() -> None:
    result = parse_search_page(_page("craigslist_blocked.html"), base_url=BASE)
    assert result.status is ScrapeStatus.BLOCKED
    assert "automatically blocked" in result.detail


@pytest.mark.parametrize(
    "body",
    [b"", b"  \n", bytes(range(256)) * 4, b"<html><body><div class='gallery'>new layout</div></body></html>"],
    ids=["empty", "whitespace", "garbage-bytes", "unknown-layout"],
)
def test_unrecognised_pages_raise_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_search_page(body, base_url=BASE)


def test_truncated_static_page_keeps_complete_rows() -> None:
    page = _page("craigslist_static.html")
    cut = page.index(b'title="Bike rack"')
    listings = parse_search_page(page[:cut], base_url=BASE).listings
    assert [listing.external_id for listing in listings] == ["7800000001", "7800000002"]


def test_sapi_items_decode_against_the_tables() -> None:
    result = parse_sapi(_page("craigslist_sapi.json"))

    assert result.status is ScrapeStatus.SUCCESS
    air, ssd, stand = result.listings
    assert air == Listing(
        marketplace="craigslist",
        external_id="7500000001",
        title="MacBook Air M1",
        url="https://corvallis.craigslist.org/sys/7500000001.html",
        price=Money(Decimal(450), "USD"),
        location="Corvallis",
        image_url="https://images.craigslist.org/00a0a_imgone_0CI0t2_300x300.jpg",
        posted_at=datetime.fromtimestamp(1670003600, tz=UTC),
    )
    # -1 means no price; a negative int is a dedupe key, not a field; subareas go into the URL
    assert ssd.price is None
    assert ssd.title == "SSD, price on request"
    assert ssd.url == "https://portland.craigslist.org/wsc/sop/7500000002.html"
    assert ssd.location == "Beaverton"
    # an unknown category falls back to "sss"; a stray space in "3: <id>" is tolerated
    assert stand.url == "https://corvallis.craigslist.org/sss/7500000003.html"
    assert stand.image_url == "https://images.craigslist.org/00c0c_imgthree_0t20CI_300x300.jpg"


def test_sapi_dispatch_on_leading_brace_without_content_type() -> None:
    result = parse_search_page(_page("craigslist_sapi.json"), content_type="text/plain")
    assert [listing.external_id for listing in result.listings] == ["7500000001", "7500000002", "7500000003"]


def test_sapi_with_no_items_is_empty() -> None:
    payload = {"data": {"decode": {"minPostingId": 1, "minPostedDate": 1, "locations": [0]}, "items": []}}
    assert parse_sapi(json.dumps(payload)).status is ScrapeStatus.EMPTY


def test_a_sapi_item_that_cannot_be_decoded_makes_the_fetch_partial() -> None:
    """Regression: an undecodable item used to vanish, so a changed format showed only as fewer alerts."""
    payload = json.loads(_page("craigslist_sapi.json"))
    items = payload["data"]["items"]
    items.insert(1, [4, "not an offset", 7, 10, "1:1", "Broken row"])
    items.append(list(items[0]))  # the same posting twice is one row

    result = parse_sapi(json.dumps(payload).encode())

    assert result.status is ScrapeStatus.PARTIAL
    assert (result.rows, len(result.listings), result.rows_lost) == (4, 3, 1)
    assert [listing.external_id for listing in result.listings] == ["7500000001", "7500000002", "7500000003"]


def test_sapi_answers_given_as_objects_parse_alike() -> None:
    payload = json.loads(_page("craigslist_sapi.json"))
    assert parse_sapi(payload) == parse_sapi(_page("craigslist_sapi.json"))


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"errors": ["rate limited"]}', b'{"data": {"items": "nope", "decode": {}}}',
     b'{"data": {"items": [[1]], "decode": {"minPostingId": 1, "minPostedDate": 1}}}',
     b'{"data": {"items": [[1, 1, 7, 5, "1:1", "Desk"]], "decode": []}}', b"[]",
     b'{"data": {"items": [[1, 1, 7, 5, "1:1", "Desk"]], "decode": {"minPostingId": "x", "minPostedDate": 1}}}'],
    ids=["bad-json", "no-data", "items-not-list", "undecodable-items", "decode-not-object", "not-an-object",
         "unreadable-bases"],
)
def test_sapi_unrecognised_answers_raise_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_sapi(body)


# --- adapter ---------------------------------------------------------------------------------------------------


def test_adapter_contract_values() -> None:
    adapter = CraigslistAdapter()
    assert (adapter.key, adapter.name) == ("craigslist", "Craigslist")
    assert adapter.min_interval_minutes >= 1 and adapter.requests_per_minute > 0
    assert adapter.capabilities.location


def test_adapter_searches_the_location_site_newest_first() -> None:
    adapter = CraigslistAdapter()
    request = adapter.build_request(SearchQuery.build("Road Bike", location="Corvallis"))
    assert request.url == "https://corvallis.craigslist.org/search/sss?query=road%20bike&sort=date"
    default = adapter.build_request(SearchQuery.build("surf board"))
    assert default.url == "https://sfbay.craigslist.org/search/sss?query=surf%20board&sort=date"


@pytest.mark.parametrize("location", ["san francisco", "sfbay.evil.com", "../x", "sf1"])
def test_adapter_rejects_a_location_that_is_not_a_site_name(location: str) -> None:
    with pytest.raises(InputError) as caught:
        CraigslistAdapter().build_request(SearchQuery.build("bike", location=location))
    assert caught.value.field == "location"


def test_adapter_rejects_a_bad_default_site() -> None:
    with pytest.raises(ConfigError):
        CraigslistAdapter(default_site="SF Bay")


def test_adapter_parse_dispatches_on_content_type() -> None:
    adapter = CraigslistAdapter("corvallis")
    html = adapter.parse(Page(BASE, 200, _page("craigslist_static.html"), "text/html; charset=utf-8"))
    assert html.status is ScrapeStatus.SUCCESS and len(html.listings) == 3
    api = adapter.parse(Page("https://sapi.craigslist.org/web/v8/postings/search/full", 200,
                             _page("craigslist_sapi.json"), "application/json"))
    assert api.status is ScrapeStatus.SUCCESS and api.listings[0].posted_at is not None
    blocked = adapter.parse(Page(BASE, 200, _page("craigslist_blocked.html"), "text/html"))
    assert blocked.status is ScrapeStatus.BLOCKED
    broken = adapter.parse_safely(Page(BASE, 200, b"\xff\xfe\x00garbage", "text/html"))
    assert broken.status is ScrapeStatus.BROKEN


def test_zero_results_for_a_query_that_reads_like_a_block_is_still_empty() -> None:
    """The page repeats the query: searching "automatically blocked" must not make no-results look blocked."""
    body = _page("craigslist_zero_results.html").replace(b"qwzxv", b"this ip has been automatically blocked")
    assert parse_search_page(body, base_url=BASE).status is ScrapeStatus.EMPTY


def test_results_list_with_rows_of_an_unknown_kind_is_broken_not_empty() -> None:
    renamed_row = b'<li class="cl-search-result-v2"><a href="/x/1.html">x</a></li>'
    body = _page("craigslist_zero_results.html").replace(b"</ol>", renamed_row + b"</ol>")
    with pytest.raises(ParseError, match="unknown kind"):
        parse_search_page(body, base_url=BASE)


def test_page_cut_after_the_list_opens_is_broken_not_empty() -> None:
    """Without the ld+json block there is no positive sign that nothing matched."""
    page = _page("craigslist_static.html")
    body = page[page.index(b"</script>") + len(b"</script>") :]  # no ld+json
    body = body[: body.index(b'<li class="cl-static-search-result"')]
    with pytest.raises(ParseError):
        parse_search_page(body, base_url=BASE)


def test_malformed_ld_json_entries_are_ignored_not_fatal() -> None:
    original = b'"offers":{"@type":"Offer","price":"250.00"'
    assert original in _page("craigslist_static.html")
    body = _page("craigslist_static.html").replace(original, b'"offers":[],"x":{"a":"1"')  # offers not an object
    road = parse_static_page(body, base_url=BASE).listings[0]
    assert road.price == Money(Decimal(250), "USD")
    assert road.image_url == "https://images.craigslist.org/00a0a_one_600x450.jpg"


# --- the result list read on its own ----------------------------------------------------------------------------


def test_a_list_written_another_way_is_read_from_the_whole_page_alike() -> None:
    """Rows are parsed from the list's bytes alone when it starts as the server writes it; any other spelling of
    the list falls back to the whole page, with the same listings."""
    page = _page("craigslist_static.html")
    respelled = page.replace(b'<ol class="cl-static-search-results">',
                             b'<ol id="results" class="cl-static-search-results">')
    assert respelled != page
    assert parse_static_page(respelled, base_url=BASE) == parse_static_page(page, base_url=BASE)


def test_an_ld_json_block_after_the_list_is_still_merged() -> None:
    page = _page("craigslist_static.html")
    start, end = page.index(b"<script"), page.index(b"</script>") + len(b"</script>")
    moved = page[:start] + page[end:].replace(b"</body>", page[start:end] + b"</body>")
    result = parse_static_page(moved, base_url=BASE)
    assert result == parse_static_page(page, base_url=BASE)
    assert result.listings[0].image_url == "https://images.craigslist.org/00a0a_one_600x450.jpg"


def test_markup_inside_the_ld_json_text_does_not_end_the_block() -> None:
    page = _page("craigslist_static.html")
    body = page.replace(b'"name":"Road bike, 56cm",', b'"name":"Road bike, 56cm","description":"<b>fast</b> <3",')
    road = parse_static_page(body, base_url=BASE).listings[0]
    assert road.image_url == "https://images.craigslist.org/00a0a_one_600x450.jpg"


def test_a_list_without_its_end_tag_keeps_every_row() -> None:
    page = _page("craigslist_static.html")
    body = page.replace(b"</ol>", b"")
    assert [listing.external_id for listing in parse_static_page(body, base_url=BASE).listings] == [
        "7800000001", "7800000002", "7800000003"]


def test_a_row_field_named_among_other_classes_is_read() -> None:
    page = _page("craigslist_static.html")
    body = page.replace(b'<div class="price">$250</div>', b'<span class="price cl-price">$260</span>')
    road = parse_static_page(body, base_url=BASE).listings[0]
    assert (road.price_text, road.price) == ("$260", Money(Decimal(260), "USD"))


def test_an_ld_json_block_full_of_markup_is_still_read_to_its_end() -> None:
    page = _page("craigslist_static.html")
    markup = "<b>x</b> " * 100
    body = page.replace(b'"name":"Road bike, 56cm",', f'"name":"Road bike, 56cm","description":"{markup}",'.encode())
    road = parse_static_page(body, base_url=BASE).listings[0]
    assert road.image_url == "https://images.craigslist.org/00a0a_one_600x450.jpg"


# --- rows read as the server writes them, and from the tree -------------------------------------------------------


def _through_the_tree(page: bytes) -> bytes:
    """The page with a comment at the head of its result list: no longer written exactly as the server writes it,
    so its rows are read from lexbor's tree."""
    opener = b'<ol class="cl-static-search-results">'
    assert opener in page
    return page.replace(opener, opener + b"<!-- -->", 1)


@pytest.mark.parametrize("name", ["craigslist_static.html", "craigslist_view_links.html"])
def test_rows_read_from_the_bytes_are_the_rows_of_the_tree(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    page = _page(name)
    tree = parse_static_page(_through_the_tree(page), base_url=BASE)

    def no_tree(*args: object) -> None:
        raise AssertionError("a list written as the server writes it needs no tree")

    monkeypatch.setattr(craigslist_parse, "LexborHTMLParser", no_tree)
    assert parse_static_page(page, base_url=BASE) == tree


@pytest.mark.fixtures
def test_real_page_rows_read_from_the_bytes_are_the_rows_of_the_tree() -> None:
    body = fixture_path("craigslist/sfbay-sss-surfing-board-static-2025-10.html").read_bytes()
    base = "https://sfbay.craigslist.org/search/sss?query=surfing%20board"
    fast = parse_static_page(body, base_url=base)
    assert fast == parse_static_page(_through_the_tree(body), base_url=base)
    assert (fast.status, len(fast.listings), fast.rows_lost) == (ScrapeStatus.SUCCESS, 65, 0)


def test_references_and_spacing_in_row_text_read_alike_both_ways() -> None:
    page = _page("craigslist_static.html").replace(
        b'<div class="title">Road bike, 56cm</div>',
        b'<div class="title">\n  Road &amp; track  bike &#8211;&nbsp;56cm\n</div>',
    ).replace(b'<div class="location">downtown</div>', b'<div class="location">\n downtown &quot;core&quot; </div>')
    fast = parse_static_page(page, base_url=BASE)
    assert fast == parse_static_page(_through_the_tree(page), base_url=BASE)
    road = fast.listings[0]
    assert road.title == "Road & track bike – 56cm"
    assert road.location == 'downtown "core"'
    assert road.image_url is None  # the ld+json item is named otherwise: not merged


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'<div class="title">Road bike, 56cm</div>', b'<div class="title">Road <b>bike</b>, 56cm</div>'),
        (b'<div class="title">Road bike, 56cm</div>', b'<div class="title">  </div>'),
        (b'/corvallis-road-bike/7800000001.html">', b'/corvallis-road-bike/7800000001.html" data-x="1">'),
        (b'<div class="price">$250</div>', b'<span class="price">$250</span>'),
    ],
    ids=["markup-in-a-field", "blank-title", "another-attribute", "another-tag"],
)
def test_a_row_written_otherwise_is_read_from_the_tree(old: bytes, new: bytes) -> None:
    page = _page("craigslist_static.html")
    assert old in page
    result = parse_static_page(page.replace(old, new), base_url=BASE)
    assert result == parse_static_page(_through_the_tree(page.replace(old, new)), base_url=BASE)
    road = result.listings[0]
    assert (road.title, road.price, road.external_id) == ("Road bike, 56cm", Money(Decimal(250), "USD"), "7800000001")
