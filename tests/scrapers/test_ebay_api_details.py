"""eBay Browse API items' delivery cost and seller rating: the real answer (skipped without ../shared/fixtures)
and small answers of our own."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scout.models import Money
from scrapers.ebay_api.parse import parse_search_response
from tests.conftest import fixture_path
from tests.scrapers.pages_extra import browse_answer, browse_item

REAL_ANSWER = "ebay-api/browse-item_summary-search-iphone-bestmatch-2023-07.json"


@pytest.mark.fixtures
def test_real_answer_delivery_and_seller() -> None:
    """Read off the answer: the first item ships for 0.00 USD from cocosprinkles (99.9%), the last for 0.00 USD
    from supplytronics (99.2%); one item's only option is CALCULATED, with no cost."""
    listings = parse_search_response(fixture_path(REAL_ANSWER).read_bytes()).listings

    first, last = listings[0], listings[-1]
    assert (first.external_id, first.shipping, first.seller, first.seller_rating) == (
        "334691749565", Money(Decimal("0.00"), "USD"), "cocosprinkles", Decimal("99.9"))
    assert (last.external_id, last.shipping, last.seller, last.seller_rating) == (
        "304078563335", Money(Decimal("0.00"), "USD"), "supplytronics", Decimal("99.2"))
    assert sum(1 for item in listings if item.shipping is None) == 1
    assert all(item.seller and item.seller_rating is not None for item in listings)
    assert all(item.description is None for item in listings)


def test_the_cheapest_delivery_option_is_the_cost() -> None:
    item = browse_item(120000000001, shippingOptions=[
        {"shippingCostType": "FIXED", "shippingCost": {"value": "12.50", "currency": "USD"}},
        {"shippingCostType": "FIXED", "shippingCost": {"value": "4.99", "currency": "USD"}},
        {"shippingCostType": "CALCULATED"},
    ], seller={"username": "brickseller", "feedbackPercentage": "98.7", "feedbackScore": 1200})

    listing = parse_search_response(browse_answer(item)).listings[0]

    assert listing.shipping == Money(Decimal("4.99"), "USD")
    assert (listing.seller, listing.seller_rating) == ("brickseller", Decimal("98.7"))


def test_free_delivery_is_zero() -> None:
    item = browse_item(120000000002, shippingOptions=[{"shippingCost": {"value": "0.00", "currency": "GBP"}}])

    assert parse_search_response(browse_answer(item)).listings[0].shipping == Money(Decimal("0.00"), "GBP")


@pytest.mark.parametrize(
    "options",
    [None, [], [{"shippingCostType": "CALCULATED"}], [{"shippingCost": {"value": "x", "currency": "USD"}}],
     [{"shippingCost": {"value": "-1.00", "currency": "USD"}}], "FREE", [None, 3]],
)
def test_items_without_a_readable_delivery_cost_have_none(options: object) -> None:
    fields = {} if options is None else {"shippingOptions": options}
    listing = parse_search_response(browse_answer(browse_item(120000000003, **fields))).listings[0]

    assert listing.shipping is None


@pytest.mark.parametrize(
    ("seller", "name", "rating"),
    [({"username": "a_seller"}, "a_seller", None),
     ({"username": "a_seller", "feedbackPercentage": "100.0"}, "a_seller", Decimal("100.0")),
     ({"username": "a_seller", "feedbackPercentage": 97.5}, "a_seller", Decimal("97.5")),
     ({"username": "a_seller", "feedbackPercentage": "n/a"}, "a_seller", None),
     ({"username": "a_seller", "feedbackPercentage": "101"}, "a_seller", None),
     ({"username": "a_seller", "feedbackPercentage": True}, "a_seller", None),
     ("a_seller", None, None)],
)
def test_seller_rating_is_the_feedback_percentage(seller: object, name: str | None, rating: Decimal | None) -> None:
    listing = parse_search_response(browse_answer(browse_item(120000000004, seller=seller))).listings[0]

    assert (listing.seller, listing.seller_rating) == (name, rating)
