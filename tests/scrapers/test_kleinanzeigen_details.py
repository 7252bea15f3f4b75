"""Kleinanzeigen cards' description snippet and delivery cost: the real page (skipped without ../shared/fixtures)
and small pages of our own."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scout.models import Money
from scrapers.kleinanzeigen.parse import DESCRIPTION_LIMIT, parse_search_page, parse_shipping
from tests.conftest import fixture_path
from tests.scrapers.pages_extra import kleinanzeigen_card, kleinanzeigen_page

NOW = datetime(2025, 5, 6, 12, 0, tzinfo=UTC)
REAL_PAGE = "kleinanzeigen/vip-page-with-10-similar-aditem-cards-2025-05.html"


@pytest.mark.fixtures
def test_real_cards_carry_the_description_snippet_and_no_delivery_cost() -> None:
    """Read off the page: each card's p.aditem-main--middle--description, cut by the site with "..."."""
    listings = parse_search_page(fixture_path(REAL_PAGE).read_bytes(), now=NOW).listings

    assert len(listings) == 10
    first, last = listings[0], listings[-1]
    assert first.external_id == "3040788256"
    assert first.description == ("biete hier Mal meine BMW an , komme komme einfach zu wenig zum fahren! "
                                 "unverbastelte GS aus ehemals...")
    assert last.external_id == "3068244876"
    assert last.description == ("Biete meine BMW R80GS im guten einsatzbereiten Zustand an. Sie ist größtenteils "
                                "Original mit...")
    assert all(item.description and item.description.endswith("...") for item in listings)
    # The page shows no delivery at all, and ads name no seller on cards.
    assert all(item.shipping is None and item.seller is None and item.seller_rating is None for item in listings)
    # The README's facts still hold.
    assert (first.price, first.price_text) == (Money(Decimal(4350), "EUR"), "4.350 €")


def test_description_is_plain_text_with_whitespace_collapsed() -> None:
    card = kleinanzeigen_card(
        2900000011, "Lego Burg", description_html="Vollständig,\n   mit <b>Anleitung</b> &amp;\u200b Karton...")

    listing = parse_search_page(kleinanzeigen_page([card]), now=NOW).listings[0]

    assert listing.description == "Vollständig, mit Anleitung & Karton..."


def test_a_long_description_is_cut() -> None:
    card = kleinanzeigen_card(2900000012, "Lego Burg", description="Stein " * 1000)

    listing = parse_search_page(kleinanzeigen_page([card]), now=NOW).listings[0]

    assert listing.description is not None and len(listing.description) == DESCRIPTION_LIMIT
    assert listing.description.startswith("Stein Stein") and listing.description.endswith("…")


def test_a_card_without_a_snippet_has_no_description() -> None:
    listing = parse_search_page(kleinanzeigen_page([kleinanzeigen_card(2900000013, "Lego Burg")]), now=NOW).listings[0]

    assert (listing.description, listing.shipping) == (None, None)


@pytest.mark.parametrize(
    ("shipping", "tags", "expected"),
    [
        (None, ["Versand möglich"], None),  # delivery possible, at a price agreed later: no cost
        (None, ["Nur Abholung"], None),
        ("+ Versand ab 5,49 €", ["Versand möglich"], Money(Decimal("5.49"), "EUR")),
        ("Versand 4,99 €", [], Money(Decimal("4.99"), "EUR")),
        ("Versand möglich", [], None),
    ],
)
def test_delivery_cost_only_where_the_card_shows_one(
    shipping: str | None, tags: list[str], expected: Money | None
) -> None:
    card = kleinanzeigen_card(2900000014, "Lego Burg", "350 € VB", shipping=shipping, tags=tags)

    listing = parse_search_page(kleinanzeigen_page([card]), now=NOW).listings[0]

    assert listing.shipping == expected
    assert listing.price == Money(Decimal(350), "EUR")  # the delivery line never becomes the price


def test_parse_shipping_reads_only_amounts() -> None:
    assert parse_shipping(None) is None
    assert parse_shipping("Versand möglich") is None
    assert parse_shipping("+ Versand ab 6,19 €") == Money(Decimal("6.19"), "EUR")
