"""eBay parsing: the real pages' sanity facts (skipped without ../shared/fixtures) and synthetic pages (always on)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import lxml.html
import pytest

from scout.errors import BlockedError, ConfigError, ParseError
from scout.models import Listing, Money
from scrapers.base import Page, ScrapeStatus, SearchQuery
from scrapers.ebay.adapter import EbayAdapter
from scrapers.ebay.parse import currency_for_domain, parse_listings, parse_search_page
from tests.conftest import fixture_path

PAGES = Path(__file__).parent / "pages"
URL_SHAPE = re.compile(r"^https://www\.ebay\.[a-z.]+/itm/\d+$")
# The hidden "opens in a new window" text in the languages the real pages use.
NEW_WINDOW_PHRASES = ("Opens in a new window", "opens in new window", "Se abre en una ventana nueva")


def _page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def _by_id(listings: tuple[Listing, ...] | list[Listing]) -> dict[str, Listing]:
    return {listing.external_id: listing for listing in listings}


# --- real pages ---------------------------------------------------------------------------------------------

# (file, site, count, first id, first title or None, first price, currency, first location, last id, last price,
#  last location). Titles are compared with whitespace collapsed, as a browser shows them: the README records
#  the raw s-item title "Warhammer  40k ..." with a double space.
REAL_PAGES = [
    ("srp-2021-01-warhammer-uk-sitem.html", "www.ebay.co.uk", 61,
     "264901451112", "Warhammer 40k Push-fit Primaris Space Marine Intercessor sprue 99380101121",
     "3.95", "GBP", "From United Kingdom", "174541467482", "10.07", "From France"),
    ("srp-2025-08-bluray-uk-scard.html", "www.ebay.co.uk", 60,
     "357137470627", "Umbrella CREEP Blu-ray Limited Collector’s Edition Brand New Sealed",
     "68.90", "GBP", "from Germany", "115923750041", "73.98", "from Japan"),
    ("srp-2025-11-adidas-scard-prettified.html", "www.ebay.com", 60,
     "306582883481", None, "44.38", "PEN", None, "236268591379", "40.50", None),
    ("srp-2026-02-nike-shoes-scard.html", "www.ebay.com", 60,
     "225272243923", None, "1614898.07", "IDR", "Located in Australia", "277716924443", "1092000.00", None),
    ("srp-2026-07-pokemon-scard.html", "www.ebay.com", 60,
     "307063707616", "Pokemon Company Emma 107/086 Crimson Invasion Trainer-Supporter Ultra Rare Holo",
     "5.59", "USD", None, "407082509193", "109.99", None),
]


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("name", "site", "count", "first_id", "first_title", "first_price", "currency", "first_location",
     "last_id", "last_price", "last_location"),
    REAL_PAGES,
    ids=[row[0] for row in REAL_PAGES],
)
def test_real_page_sanity_facts(
    name: str, site: str, count: int, first_id: str, first_title: str | None, first_price: str, currency: str,
    first_location: str | None, last_id: str, last_price: str, last_location: str | None,
) -> None:
    result = parse_search_page(fixture_path(f"ebay/{name}").read_bytes(), domain=site)

    assert result.status is ScrapeStatus.SUCCESS
    listings = result.listings
    assert len(listings) == count
    assert len({listing.external_id for listing in listings}) == count
    first, last = listings[0], listings[-1]
    assert first.external_id == first_id
    assert last.external_id == last_id
    if first_title is not None:
        assert first.title == first_title
    assert first.price == Money(Decimal(first_price), currency)
    assert last.price == Money(Decimal(last_price), currency)
    if first_location is not None:
        assert first.location == first_location
    if last_location is not None:
        assert last.location == last_location
    for listing in listings:
        assert listing.marketplace == "ebay"
        assert listing.price is not None and listing.price.currency == currency, listing
        assert listing.price_text
        assert URL_SHAPE.match(listing.url) and listing.url.endswith("/" + listing.external_id), listing.url
        assert listing.image_url and listing.image_url.startswith("https://"), listing
        assert "shop on ebay" not in listing.title.casefold()
        assert not any(phrase.casefold() in listing.title.casefold() for phrase in NEW_WINDOW_PHRASES), listing
        assert listing.posted_at is None  # eBay shows no listing date on search pages


@pytest.mark.fixtures
@pytest.mark.parametrize("name", [row[0] for row in REAL_PAGES])
def test_real_page_titles_hold_no_hidden_clipped_text(name: str) -> None:
    body = fixture_path(f"ebay/{name}").read_bytes()
    listings = _by_id(parse_search_page(body).listings)
    doc = lxml.html.document_fromstring(body, parser=lxml.html.HTMLParser(encoding="utf-8"))
    rows = doc.xpath('//ul[contains(concat(" ", @class, " "), " srp-results ")]/li')
    checked = 0
    for row in rows:
        hrefs = " ".join(row.xpath('.//a[contains(@href, "/itm/")]/@href'))
        match = row.get("data-listingid") or next((i for i in listings if f"/{i}" in hrefs), None)
        if match not in listings:
            continue
        for clipped in row.xpath('.//*[contains(concat(" ", normalize-space(@class), " "), " clipped ")]'):
            text = " ".join(clipped.text_content().split())
            if text:
                assert text not in listings[match].title, (text, listings[match].title)
                checked += 1
    assert listings and len(rows) >= len(listings)
    if "2025-08" not in name:  # that page carries the text in aria-label, not in clipped spans
        assert checked > 0


@pytest.mark.fixtures
@pytest.mark.parametrize("name", [row[0] for row in REAL_PAGES if "scard" in row[0]])
def test_real_scard_pages_ignore_carousels_and_templates(name: str) -> None:
    body = fixture_path(f"ebay/{name}").read_bytes()
    listings = parse_search_page(body).listings
    doc = lxml.html.document_fromstring(body, parser=lxml.html.HTMLParser(encoding="utf-8"))
    direct = doc.xpath('//ul[contains(concat(" ", @class, " "), " srp-results ")]/li[@data-listingid]/@data-listingid')
    everywhere = doc.xpath("//li[@data-listingid]/@data-listingid")
    assert [listing.external_id for listing in listings] == list(direct)
    assert len(everywhere) >= len(direct)  # carousels add more (62 for 60 on some pages), never counted


@pytest.mark.fixtures
def test_real_page_reads_price_ranges_from_the_whole_row() -> None:
    listings = parse_search_page(fixture_path("ebay/srp-2026-02-nike-shoes-scard.html").read_bytes()).listings
    ranges = [listing for listing in listings if " to " in (listing.price_text or "")]
    assert ranges, "the nike page shows range prices"
    for listing in ranges:
        low = listing.price_text.split(" to ")[0]
        assert listing.price == Money(Decimal(low.removeprefix("IDR").replace(",", "")), "IDR")
        assert listing.price_text.count("IDR") == 2  # the struck-through "was" price stays out


# --- synthetic pages ------------------------------------------------------------------------------------------


def test_sitem_page_parses_rows_and_skips_templates() -> None:
    result = parse_search_page(_page("ebay_sitem.html"), domain="www.ebay.co.uk")

    assert result.status is ScrapeStatus.SUCCESS
    assert [listing.external_id for listing in result.listings] == ["264900000001", "264900000002", "264900000003"]
    first, second, third = result.listings
    assert first == Listing(
        marketplace="ebay",
        external_id="264900000001",
        title="Space Marine sprue 99380101121",
        url="https://www.ebay.co.uk/itm/264900000001",
        price=Money(Decimal("3.95"), "GBP"),
        price_text="£3.95",
        location="From United Kingdom",
        image_url="https://i.ebayimg.com/thumbs/images/g/AAA/s-l225.jpg",
        condition="Brand new",
        shipping=Money(Decimal("2.50"), "GBP"),
    )
    assert second.price == Money(Decimal("0.99"), "GBP")
    assert second.price_text == "£0.99 to £1.99"
    assert second.location == "From France"
    assert second.image_url == "https://i.ebayimg.com/thumbs/images/g/BBB/s-l225.jpg"  # data-src, not the gif
    # a relative link takes the adapter's host; a row without a price keeps price None
    assert third.url == "https://www.ebay.co.uk/itm/264900000003"
    assert third.price is None and third.price_text is None
    assert all("Shop on eBay" not in listing.title for listing in result.listings)


def test_scard_page_ignores_carousel_and_hidden_template_and_strips_clipped_text() -> None:
    result = parse_search_page(_page("ebay_scard.html"), domain="www.ebay.de")

    assert result.status is ScrapeStatus.SUCCESS
    by_id = _by_id(result.listings)
    assert list(by_id) == ["111000000001", "111000000002", "111000000003"]
    lamborghini = by_id["111000000001"]
    assert lamborghini.title == "LEGO Technic 42115 Lamborghini"
    assert lamborghini.url == "https://www.ebay.de/itm/111000000001"
    assert lamborghini.price == Money(Decimal("17.72"), "EUR")
    assert lamborghini.price_text == "EUR 17,72 bis EUR 18,66"
    assert lamborghini.location == "aus China"
    assert lamborghini.condition == "Neu"
    assert lamborghini.image_url == "https://i.ebayimg.com/images/g/CCC/s-l500.webp"
    falcon = by_id["111000000002"]
    assert falcon.title == "Lego Star Wars 75192 Millennium Falcon"
    assert falcon.price == Money(Decimal("1234.56"), "EUR")
    assert falcon.image_url == "https://i.ebayimg.com/images/g/DDD/s-l500.webp"
    assert falcon.location is None
    # no currency in the text: ebay.de's euro, and "4.350" is four thousand three hundred and fifty
    bricks = by_id["111000000003"]
    assert bricks.price == Money(Decimal(4350), "EUR")
    assert bricks.location is None  # "Kostenloser Versand" is no location
    for listing in result.listings:
        assert "Fenster" not in listing.title


def test_new_listing_badge_is_no_part_of_a_title_in_any_language() -> None:
    """Pins: the s-card "New Listing" badge (span.s-card__new-listing, "Anuncio nuevo" on the Spanish interface)
    was read into the title, so every alert for a fresh listing began with the badge."""
    listings = parse_search_page(_page("ebay_new_listing_badge.html")).listings

    assert [listing.title for listing in listings] == [
        "LEGO White Technic Panel Fairing #13", "LEGO Star Wars 75192 Halcón Milenario", "LEGO Steine 2 kg",
    ]
    assert listings[0].location == "Located in United States"


def test_modules_inside_the_results_list_are_no_listings() -> None:
    """Pins: a carousel dressed as a card, or a banner carrying a listing id, inside ul.srp-results became a
    listing of its own. Sponsored carousels, FAQ modules, banners and the "results matching fewer words" divider
    are neither listings nor result rows that were lost."""
    result = parse_search_page(_page("ebay_river_modules.html"))

    assert result.status is ScrapeStatus.SUCCESS
    assert [listing.external_id for listing in result.listings] == ["226000000001", "226000000002", "226000000003"]
    assert result.rows_lost == 0
    assert all("Sponsored" not in listing.title for listing in result.listings)


def test_a_card_whose_only_price_is_struck_through_is_sold_at_that_price() -> None:
    """Pins: on sold searches ("Best offer accepted") the only price is struck through, and it was read as no
    price at all; the card now keeps that price and says the listing is sold."""
    by_id = _by_id(parse_search_page(_page("ebay_sold.html")).listings)

    sold = by_id["377305506170"]
    assert (sold.price, sold.price_text, sold.sold) == (Money(Decimal("45.00"), "USD"), "$45.00", True)
    assert sold.title == "New HP 63 XL Black Ink Cartridge"
    assert sold.location == "Located in United States"
    assert sold.condition == "Brand New"
    for_sale = by_id["267717942253"]
    assert (for_sale.price, for_sale.sold) == (Money(Decimal("27.99"), "USD"), False)
    old_layout = by_id["155000000001"]
    assert (old_layout.price, old_layout.sold) == (Money(Decimal("31.50"), "USD"), True)


def test_a_current_price_beside_a_struck_through_old_one_is_the_price() -> None:
    """Pins: an old price struck through in a row of its own above the current one gave no price, and one
    struck with <del> or <s> joined the price text."""
    by_id = _by_id(parse_search_page(_page("ebay_struck_prices.html")).listings)

    assert {item: (listing.price_text, listing.sold) for item, listing in by_id.items()} == {
        "307000000001": ("$31.20", False),
        "307000000002": ("$12.00", False),
        "307000000003": ("$7.49", False),
        "307000000004": ("$100.00 to $120.00", False),
    }
    assert by_id["307000000001"].price == Money(Decimal("31.20"), "USD")
    assert by_id["307000000003"].price == Money(Decimal("7.49"), "USD")
    assert by_id["307000000004"].price == Money(Decimal("100.00"), "USD")


def test_location_line_is_read_in_any_interface_language() -> None:
    """Pins: only a few languages' "located in" / "from" were known, so "d'Allemagne", "z Chin", "Provenance :
    Chine", "Ubicación: España", "來自 日本" and "из Китая" gave no location; shipping and offer rows still give none."""
    listings = parse_search_page(_page("ebay_locations.html"), domain="www.ebay.fr").listings

    assert [listing.location for listing in listings] == [
        "d'Allemagne", "Provenance : Chine", "z Chin", "Ubicación: España", "來自 日本", "из Китая", "Da Cina",
        "Located in: United States", None,
    ]


def test_zero_results_page_is_empty_not_blocked() -> None:
    result = parse_search_page(_page("ebay_zero_results.html"))
    assert result.status is ScrapeStatus.EMPTY
    assert result.listings == ()
    assert parse_listings(_page("ebay_zero_results.html")) == []


def test_challenge_page_is_blocked_not_empty() -> None:
    result = parse_search_page(_page("ebay_challenge.html"))
    assert result.status is ScrapeStatus.BLOCKED
    assert "challenge" in result.detail
    with pytest.raises(BlockedError):
        parse_listings(_page("ebay_challenge.html"))


def test_redirect_to_challenge_url_is_blocked_whatever_the_body() -> None:
    body = b"<html><body>one moment</body></html>"
    result = parse_search_page(body, url="https://www.ebay.com/splashui/captcha?ap=1")
    assert result.status is ScrapeStatus.BLOCKED


def test_sign_in_wall_is_blocked() -> None:
    body = b"<html><head><title>Sign in or Register | eBay</title></head><body><form id='signin-form'/></body></html>"
    assert parse_search_page(body).status is ScrapeStatus.BLOCKED


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n  ",
        bytes(range(256)) * 4,
        b"<html><body><h1>Welcome to the new eBay</h1><div class='results'></div></body></html>",
        b'{"items": []}',
        "<html><body><p>plain text page</p></body></html>",
    ],
    ids=["empty", "whitespace", "garbage-bytes", "unknown-layout", "json", "str-unknown-layout"],
)
def test_unrecognised_pages_raise_parse_error_not_empty(body: bytes | str) -> None:
    with pytest.raises(ParseError):
        parse_search_page(body)


def test_results_list_without_rows_or_no_results_message_is_broken() -> None:
    body = b'<html><body><ul class="srp-results srp-list"><li class="srp-river-answer">ad</li></ul></body></html>'
    with pytest.raises(ParseError):
        parse_search_page(body)


def test_rows_whose_links_lost_their_item_ids_are_broken() -> None:
    body = b'<html><body><ul class="srp-results"><li class="s-card"><a href="/p/1">x</a></li></ul></body></html>'
    with pytest.raises(ParseError, match="layout changed"):
        parse_search_page(body)


def test_truncated_page_keeps_the_rows_it_has() -> None:
    page = _page("ebay_scard.html")
    cut = page.index(b"1.234,56")  # inside the second card: after its title, before its price
    listings = parse_search_page(page[:cut], domain="www.ebay.de").listings
    assert [listing.external_id for listing in listings] == ["111000000001", "111000000002"]
    assert listings[0].price == Money(Decimal("17.72"), "EUR")
    assert listings[1].title == "Lego Star Wars 75192 Millennium Falcon"
    assert listings[1].price is None


def test_an_end_tag_inside_a_script_in_the_list_loses_no_rows() -> None:
    """The results list is parsed on its own, cut where its end tag seems to be: a "</ul>" that is script text
    inside the list must not cut the rows after it."""
    page = _page("ebay_scard.html").replace(
        b'<li id="item1b"', b'<script>document.write("<ul><li>x</li></ul></ul>")</script><li id="item1b"', 1
    )
    result = parse_search_page(page, domain="www.ebay.de")
    assert [listing.external_id for listing in result.listings] == ["111000000001", "111000000002", "111000000003"]
    assert result.listings[2].price == Money(Decimal(4350), "EUR")


def test_every_results_list_on_the_page_is_read() -> None:
    page = _page("ebay_scard.html").replace(
        b"</body>",
        b'<ul class="srp-results"><li data-listingid="111000000009" class="s-card">'
        b'<a href="https://www.ebay.de/itm/111000000009"><div class="s-card__title">Lego Eisenbahn</div></a>'
        b'<div class="s-card__attribute-row"><span class="s-card__price">EUR 9,99</span></div></li></ul></body>',
    )
    listings = parse_search_page(page, domain="www.ebay.de").listings
    assert [listing.external_id for listing in listings][-2:] == ["111000000003", "111000000009"]


def test_page_truncated_before_any_row_is_broken() -> None:
    page = _page("ebay_scard.html")
    with pytest.raises(ParseError):
        parse_search_page(page[: page.index(b'<li id="item1a"')])


@pytest.mark.parametrize(
    ("domain", "currency"),
    [("www.ebay.co.uk", "GBP"), ("www.ebay.de", "EUR"), ("www.ebay.com", "USD"), ("www.ebay.com.au", "AUD"),
     ("www.ebay.ca", "CAD"), ("www.ebay.ch", "CHF"), ("ebay.example", "USD")],
)
def test_currency_for_domain(domain: str, currency: str) -> None:
    assert currency_for_domain(domain) == currency


# --- adapter ---------------------------------------------------------------------------------------------------


def test_adapter_contract_values() -> None:
    adapter = EbayAdapter()
    assert (adapter.key, adapter.name) == ("ebay", "eBay")
    assert adapter.min_interval_minutes >= 1 and adapter.requests_per_minute > 0
    assert adapter.info.key == "ebay"


def test_adapter_builds_newest_first_search_url_on_its_site() -> None:
    request = EbayAdapter("www.ebay.co.uk").build_request(SearchQuery.build("Warhammer 40k & more"))
    assert request.url == "https://www.ebay.co.uk/sch/i.html?_nkw=warhammer+40k+%26+more&_sop=10"


def test_adapter_rejects_a_non_ebay_domain() -> None:
    with pytest.raises(ConfigError):
        EbayAdapter("www.example.com")


def test_adapter_parse_classifies_pages() -> None:
    adapter = EbayAdapter("www.ebay.co.uk")
    html = "text/html; charset=utf-8"
    listings = adapter.parse(Page("https://www.ebay.co.uk/sch/i.html", 200, _page("ebay_sitem.html"), html))
    assert listings.status is ScrapeStatus.SUCCESS and listings.listings[0].price.currency == "GBP"
    empty = adapter.parse(Page("https://www.ebay.co.uk/sch/i.html", 200, _page("ebay_zero_results.html"), html))
    assert empty.status is ScrapeStatus.EMPTY
    blocked = adapter.parse(Page("https://www.ebay.co.uk/sch/i.html", 200, _page("ebay_challenge.html"), html))
    assert blocked.status is ScrapeStatus.BLOCKED
    broken = adapter.parse_safely(Page("https://www.ebay.co.uk/sch/i.html", 200, b"\x00\x01garbage", html))
    assert broken.status is ScrapeStatus.BROKEN


def test_adapter_survives_an_unknown_charset_label() -> None:
    page = Page("https://www.ebay.de/sch/i.html", 200, _page("ebay_scard.html"), "text/html; charset=x-bogus")
    assert EbayAdapter("www.ebay.de").parse(page).status is ScrapeStatus.SUCCESS


def test_zero_results_for_a_query_that_reads_like_a_wall_is_still_empty() -> None:
    """The page <title> repeats the query: searching "sign in captcha" must not make no-results look blocked."""
    body = _page("ebay_zero_results.html").replace(b"qwzxv | eBay", b"sign in captcha | eBay")
    assert parse_search_page(body).status is ScrapeStatus.EMPTY
