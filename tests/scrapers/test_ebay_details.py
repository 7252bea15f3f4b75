"""eBay result cards' delivery cost, seller and seller rating: the real pages (skipped without ../shared/fixtures)
checked against an independent lxml reading, and small pages of our own in each layout and language."""

from __future__ import annotations

import re
from decimal import Decimal

import lxml.html
import pytest

from scout.models import Listing, Money
from scrapers.ebay.parse import parse_search_page
from scrapers.ebay.rows import RowKind, parse_shipping, row_kind
from tests.conftest import fixture_path
from tests.scrapers.pages_extra import ebay_page, scard, sitem
from tests.scrapers.test_ebay_parse import PAGES, REAL_PAGES

# -- real pages ------------------------------------------------------------------------------------------------------

# (file, first listing's shipping, seller, rating, last listing's shipping, seller, rating), read off each page:
# "+ £23.91 postage estimate" / "+ £4.56 postage" on the s-item page; "Free international postage" and
# "avant-garde-cinema 100% positive (2.9K)" / "sdyk0022 100% positive (3K)" on the blu-ray page; "+S/. 66.64 por el
# envío" / "+S/. 117.50 por el envío"; "+IDR358,999.20 delivery" / "+IDR780,360.00 delivery"; "+$5.28 delivery",
# "mic_196915 77.8% positive (5)" / "+$11.67 delivery", "theunknown01 99.3% positive (161)".
REAL_DETAILS = [
    ("srp-2021-01-warhammer-uk-sitem.html", ("23.91", "GBP"), None, None, ("4.56", "GBP"), None, None),
    ("srp-2025-08-bluray-uk-scard.html", ("0", "GBP"), "avant-garde-cinema", "100",
     ("0", "GBP"), "sdyk0022", "100"),
    ("srp-2025-11-adidas-scard-prettified.html", ("66.64", "PEN"), None, None, ("117.50", "PEN"), None, None),
    ("srp-2026-02-nike-shoes-scard.html", ("358999.20", "IDR"), None, None, ("780360.00", "IDR"), None, None),
    ("srp-2026-07-pokemon-scard.html", ("5.28", "USD"), "mic_196915", "77.8", ("11.67", "USD"), "theunknown01", "99.3"),
]
_SITES = {row[0]: row[1] for row in REAL_PAGES}
_LOCATIONS = {row[0]: (row[7], row[10]) for row in REAL_PAGES}


def _real(name: str) -> tuple[Listing, ...]:
    return parse_search_page(fixture_path(f"ebay/{name}").read_bytes(), domain=_SITES[name]).listings


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("name", "first_shipping", "first_seller", "first_rating", "last_shipping", "last_seller", "last_rating"),
    REAL_DETAILS, ids=[row[0] for row in REAL_DETAILS],
)
def test_real_pages_first_and_last_delivery_and_seller(
    name: str, first_shipping: tuple[str, str], first_seller: str | None, first_rating: str | None,
    last_shipping: tuple[str, str], last_seller: str | None, last_rating: str | None,
) -> None:
    listings = _real(name)
    first, last = listings[0], listings[-1]

    assert first.shipping == Money(Decimal(first_shipping[0]), first_shipping[1])
    assert last.shipping == Money(Decimal(last_shipping[0]), last_shipping[1])
    assert (first.seller, last.seller) == (first_seller, last_seller)
    assert first.seller_rating == (Decimal(first_rating) if first_rating else None)
    assert last.seller_rating == (Decimal(last_rating) if last_rating else None)
    # The README's locations still hold: neither the delivery row nor the seller row became the location.
    first_location, last_location = _LOCATIONS[name]
    if first_location is not None:
        assert first.location == first_location
    if last_location is not None:
        assert last.location == last_location
    assert all(listing.description is None for listing in listings)  # eBay result cards show no description


def _lxml_rows(name: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each result card's attribute-row texts, and its secondary rows' text pieces, read with lxml."""
    body = fixture_path(f"ebay/{name}").read_bytes()
    doc = lxml.html.document_fromstring(body, parser=lxml.html.HTMLParser(encoding="utf-8"))
    cards = []
    for card in doc.xpath('//ul[contains(concat(" ", @class, " "), " srp-results ")]/li[@data-listingid]'):
        rows = [" ".join(row.text_content().split())
                for row in card.xpath('.//*[contains(@class, "s-card__attribute-row")]')]
        secondary = [[" ".join(text.split()) for text in row.xpath(".//text()") if text.strip()]
                     for row in card.xpath('.//*[contains(@class, "attributes__secondary")]'
                                           '//*[contains(@class, "s-card__attribute-row")]')]
        cards.append((rows, secondary))
    return cards


@pytest.mark.fixtures
@pytest.mark.parametrize("name", [row[0] for row in REAL_DETAILS if "scard" in row[0]])
def test_real_scard_pages_agree_with_an_independent_reading(name: str) -> None:
    """Every card: a "+amount" row is a paid delivery, a "free"/"gratis" delivery row is 0, and the seller is the
    first piece of a secondary row that shows a positive-feedback share."""
    listings = _real(name)
    cards = _lxml_rows(name)
    assert len(cards) == len(listings)
    for listing, (rows, secondary) in zip(listings, cards, strict=True):
        paid = [row for row in rows if row.startswith("+")]
        free = [row for row in rows if ("free" in row.lower() or "gratis" in row.lower()) and "return" not in row.lower()
                and "devoluciones" not in row.lower()]
        if paid:
            amount = re.search(r"\d[\d,]*(?:\.\d+)?", paid[0])
            assert amount is not None
            assert listing.shipping is not None and listing.shipping.amount == Decimal(amount[0].replace(",", "")), (
                listing, paid)
        elif free:
            assert listing.shipping is not None and listing.shipping.amount == 0, listing
        else:
            assert listing.shipping is None, (listing, rows)
        rated = [pieces for pieces in secondary if any("positive" in piece for piece in pieces)]
        assert listing.seller == (rated[0][0] if rated else None), (listing, secondary)
        if listing.shipping is not None:
            assert listing.shipping.currency == listing.price.currency
        assert listing.location is None or "positive" not in listing.location and "+" not in listing.location


@pytest.mark.fixtures
@pytest.mark.parametrize(
    ("name", "paid", "free", "unknown", "sellers"),
    [("srp-2021-01-warhammer-uk-sitem.html", 59, 0, 2, 0), ("srp-2025-08-bluray-uk-scard.html", 0, 60, 0, 60),
     ("srp-2025-11-adidas-scard-prettified.html", 57, 1, 2, 0), ("srp-2026-02-nike-shoes-scard.html", 38, 22, 0, 0),
     ("srp-2026-07-pokemon-scard.html", 58, 2, 0, 60)],
)
def test_real_pages_delivery_and_seller_counts(name: str, paid: int, free: int, unknown: int, sellers: int) -> None:
    """Counted on the pages: "Postage not specified" and "Envío no especificado" are rows that give no cost; the
    nike and adidas layouts show no seller (only a top-rated badge in the seller's column)."""
    listings = _real(name)
    assert sum(1 for item in listings if item.shipping is not None and item.shipping.amount > 0) == paid
    assert sum(1 for item in listings if item.shipping is not None and item.shipping.amount == 0) == free
    assert sum(1 for item in listings if item.shipping is None) == unknown
    assert sum(1 for item in listings if item.seller is not None) == sellers
    assert sum(1 for item in listings if item.seller_rating is not None) == sellers
    assert all(item.seller_rating is None or 0 <= item.seller_rating <= 100 for item in listings)


# -- small pages of our own ------------------------------------------------------------------------------------------


def _one(card: str, domain: str = "www.ebay.com") -> Listing:
    listings = parse_search_page(ebay_page([card]), domain=domain).listings
    assert len(listings) == 1
    return listings[0]


@pytest.mark.parametrize(
    ("domain", "price", "row", "shipping"),
    [
        ("www.ebay.com", "$5.59", "+$5.28 delivery", ("5.28", "USD")),
        ("www.ebay.com", "$2.95", "+$6.10 delivery in 2-4 days", ("6.10", "USD")),
        ("www.ebay.com", "$5.59", "Free delivery", ("0", "USD")),
        ("www.ebay.com", "$5.59", "+$14.10 shipping estimate", ("14.10", "USD")),
        ("www.ebay.com", "$5.59", "Free International Shipping", ("0", "USD")),
        ("www.ebay.co.uk", "£3.95", "+£3.50 postage", ("3.50", "GBP")),
        ("www.ebay.co.uk", "£3.95", "Free international postage", ("0", "GBP")),
        # Spanish interface on ebay.com, priced in soles: delivery is in the page's currency, not the site's.
        ("www.ebay.com", "S/. 44.38", "+S/. 66.64 por el envío", ("66.64", "PEN")),
        ("www.ebay.com", "S/. 44.38", "Envío internacional gratis", ("0", "PEN")),
        ("www.ebay.es", "12,00 EUR", "+EUR 4,99 de envío", ("4.99", "EUR")),
        ("www.ebay.de", "EUR 17,72", "+EUR 4,99 Versand", ("4.99", "EUR")),
        ("www.ebay.de", "EUR 17,72", "Kostenloser Versand", ("0", "EUR")),
        ("www.ebay.de", "17,72 €", "+4,99 € Lieferung", ("4.99", "EUR")),
        ("www.ebay.de", "17,72 €", "Lieferung kostenlos", ("0", "EUR")),
        ("www.ebay.de", "17,72 €", "Versand: EUR 3,90", ("3.90", "EUR")),
        ("www.ebay.fr", "12,00 EUR", "Livraison gratuite", ("0", "EUR")),
        ("www.ebay.it", "EUR 5,00", "+EUR 9,90 di spedizione", ("9.90", "EUR")),
        ("www.ebay.pl", "49,99 zł", "Darmowa wysyłka", ("0", "PLN")),
        ("www.ebay.com", "US $9.99", "+US $3.00 доставка", ("3.00", "USD")),
        ("www.ebay.com", "IDR1,614,898.07", "+IDR358,999.20 delivery", ("358999.20", "IDR")),
    ],
)
def test_each_delivery_form_gives_its_cost(domain: str, price: str, row: str, shipping: tuple[str, str]) -> None:
    listing = _one(scard(101, "LEGO", price, ["Buy It Now", row, "Located in United States"], host=domain), domain)

    assert listing.shipping == Money(Decimal(shipping[0]), shipping[1])
    assert listing.location == "Located in United States"
    assert listing.price is not None and listing.price_text == price


@pytest.mark.parametrize(
    "row",
    ["Postage not specified", "Envío no especificado", "Lieferung in 3-5 Tagen", "Freight delivery",
     "Free returns", "or Best Offer", "0 bids · Time left 3m left", "Located in Germany", "Devoluciones gratis",
     "Customs services and international tracking provided", "Save up to 15% when you buy more", "12 sold"],
)
def test_rows_that_give_no_delivery_cost(row: str) -> None:
    """A delivery row without a cost, and rows about returns, offers, bids, place and sales, give no shipping."""
    listing = _one(scard(102, "LEGO", "$5.00", ["Buy It Now", row]))

    assert listing.shipping is None
    assert listing.price == Money(Decimal("5.00"), "USD")


def test_a_card_without_any_of_these_rows_has_none_of_them() -> None:
    listing = _one(scard(103, "LEGO", "$5.00"))

    assert (listing.shipping, listing.seller, listing.seller_rating, listing.location) == (None, None, None, None)


@pytest.mark.parametrize(
    ("pieces", "seller", "rating"),
    [
        (("mic_196915 ", "99.5% positive (1.2K)"), "mic_196915", "99.5"),
        (("mic_196915 ", "77.8% positive (5)"), "mic_196915", "77.8"),
        (("jeffk01725", "100% positive (2)"), "jeffk01725", "100"),
        (("mic_196915 77.8% positive (5)",), "mic_196915", "77.8"),  # name and rating in one span
        (("brick.shop-24 ", "99,5 % positive Bewertungen (1.234)"), "brick.shop-24", "99.5"),
        (("tienda_lego ", "100 % de votos positivos (87)"), "tienda_lego", "100"),
        (("fastshipping_store ", "98.1% positive (40)"), "fastshipping_store", "98.1"),
        (("mic_196915 ",), "mic_196915", None),  # a seller row without a rating
        (("newseller ", "(0)"), "newseller", None),
    ],
)
def test_the_seller_row_gives_the_name_and_rating(pieces: tuple[str, ...], seller: str, rating: str | None) -> None:
    listing = _one(scard(104, "LEGO", "$5.00", ["+$5.28 delivery", "Located in United States"], seller=pieces))

    assert listing.seller == seller
    assert listing.seller_rating == (Decimal(rating) if rating else None)
    assert listing.shipping == Money(Decimal("5.28"), "USD")
    assert listing.location == "Located in United States"


def test_one_word_rows_outside_the_sellers_column_are_no_seller() -> None:
    """Pins: "Último" (last one) and "Sponsored" are one word like a seller's name; only the seller's column below
    the item's rows names sellers, and a sentence there ("Customs services ...") is none."""
    card = scard(105, "LEGO", "$5.00", ["Último", "Sponsored"],
                 secondary=["Customs services and international tracking provided"])

    listing = _one(card)

    assert (listing.seller, listing.seller_rating) == (None, None)


def test_a_rating_above_a_hundred_is_no_rating() -> None:
    listing = _one(scard(106, "LEGO", "$5.00", seller=("odd_seller ", "150% positive (3)")))

    assert listing.seller == "odd_seller" and listing.seller_rating is None


def test_sitem_cards_read_their_typed_shipping_and_seller() -> None:
    cards = [
        sitem(264900000011, "Sprue", "£3.95", shipping="+ £2.50 postage", seller="brickshop (1,234) 99.8%",
              location="From United Kingdom"),
        sitem(264900000012, "Paint", "£1.00", shipping="Free postage", seller="newbie (0)"),
        sitem(264900000013, "Brush", "£2.00", shipping="Postage not specified", seller="bigshop (12.3K) 100%"),
        sitem(264900000014, "Glue", "£2.00"),
    ]
    listings = parse_search_page(ebay_page(cards), domain="www.ebay.co.uk").listings

    assert [(item.shipping, item.seller, item.seller_rating) for item in listings] == [
        (Money(Decimal("2.50"), "GBP"), "brickshop", Decimal("99.8")),
        (Money(Decimal(0), "GBP"), "newbie", None),
        (None, "bigshop", Decimal(100)),
        (None, None, None),
    ]
    assert listings[0].location == "From United Kingdom"


def test_the_synthetic_pages_of_the_parser_tests_carry_delivery() -> None:
    by_id = {item.external_id: item for item in parse_search_page((PAGES / "ebay_scard.html").read_bytes(),
                                                                  domain="www.ebay.de").listings}
    assert by_id["111000000001"].shipping == Money(Decimal("4.99"), "EUR")
    assert by_id["111000000002"].shipping is None
    assert by_id["111000000003"].shipping == Money(Decimal(0), "EUR")

    located = parse_search_page((PAGES / "ebay_locations.html").read_bytes(), domain="www.ebay.fr").listings
    assert [item.shipping for item in located] == [
        Money(Decimal(0), "EUR"), None, Money(Decimal(0), "PLN"), None, None, Money(Decimal("3.00"), "USD"), None,
        None, Money(Decimal(0), "EUR"),
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [("+$5.28 delivery", RowKind.SHIPPING), ("Located in United States", RowKind.LOCATION),
     ("Versand aus China", RowKind.LOCATION), ("mic_196915 77.8% positive (5)", RowKind.RATED_SELLER),
     ("mic_196915", RowKind.NAME), ("newseller (0)", RowKind.NAME), ("Extra 10% off", RowKind.OTHER), ("Free returns", RowKind.OTHER)],
)
def test_row_kinds(text: str, kind: RowKind) -> None:
    assert row_kind(text) is kind


def test_free_delivery_with_an_added_cost_beside_it_is_the_cost() -> None:
    assert parse_shipping("Free returns · +$4.00 delivery", "USD") == Money(Decimal("4.00"), "USD")
