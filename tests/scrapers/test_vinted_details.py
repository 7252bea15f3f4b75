"""Vinted catalog items: the seller's login, and no delivery cost, rating or description, because the catalog
carries none (its service_fee is the buyer-protection fee). The real answer is skipped without ../shared/fixtures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scout.models import Money
from scrapers.vinted.parse import parse_catalog
from tests.conftest import fixture_path
from tests.scrapers.pages_extra import vinted_catalog, vinted_item

REAL_ANSWER = "vinted/catalog-items-pl-nike-2025-10.json"


@pytest.mark.fixtures
def test_real_answer_sellers_and_no_delivery_cost() -> None:
    """Read off the answer: the first item is susiaxd's, the last ewelinaskow142's; every item has a service_fee
    (3.90 PLN on the first) and a total_item_price, neither of which is delivery."""
    listings = parse_catalog(fixture_path(REAL_ANSWER).read_bytes(), domain="www.vinted.pl").listings

    first, last = listings[0], listings[-1]
    assert (first.external_id, first.seller, first.price) == ("7292729681", "susiaxd", Money(Decimal("20.0"), "PLN"))
    assert (last.external_id, last.seller) == ("7294985223", "ewelinaskow142")
    assert all(item.seller for item in listings)
    assert all(item.shipping is None and item.seller_rating is None and item.description is None
               for item in listings)


def test_fees_are_never_read_as_delivery() -> None:
    item = vinted_item(
        7300000001, user={"id": 1, "login": "anna_k", "business": False},
        service_fee={"amount": "3.9", "currency_code": "PLN"},
        total_item_price={"amount": "23.9", "currency_code": "PLN"},
    )

    listing = parse_catalog(vinted_catalog(item), domain="www.vinted.pl").listings[0]

    assert (listing.seller, listing.shipping, listing.seller_rating) == ("anna_k", None, None)
    assert listing.price == Money(Decimal("20.0"), "PLN")


@pytest.mark.parametrize("user", [None, {}, {"login": ""}, "anna_k", {"login": None}])
def test_an_item_without_a_login_has_no_seller(user: object) -> None:
    fields = {} if user is None else {"user": user}
    listing = parse_catalog(vinted_catalog(vinted_item(7300000002, **fields)), domain="www.vinted.pl").listings[0]

    assert listing.seller is None
