"""Facebook Marketplace listings' seller: the real logged-out page (skipped without ../shared/fixtures), which names
none, and answers of our own that do. Search results carry no delivery cost and no description."""

from __future__ import annotations

import pytest

from scrapers.facebook.parse import parse_search_page
from tests.conftest import fixture_path
from tests.scrapers.pages_extra import facebook_answer, facebook_listing

REAL_PAGE = "facebook/marketplace-search-kitchenaid-mixer-logged-out-2025-04.html"
SEARCH_URL = "https://www.facebook.com/marketplace/saltlakecity/search/?query=mixer"


@pytest.mark.fixtures
def test_real_logged_out_page_names_no_seller_and_no_delivery_cost() -> None:
    """Read off the page: all 24 listings have "marketplace_listing_seller": null, and delivery_types only
    (IN_PERSON, PUBLIC_MEETUP, DOOR_PICKUP, DOOR_DROPOFF) with no cost."""
    listings = parse_search_page(fixture_path(REAL_PAGE).read_bytes(), url=SEARCH_URL).listings

    assert len(listings) == 24
    assert (listings[0].external_id, listings[-1].external_id) == ("2628435494214464", "657952346933044")
    assert all(item.seller is None and item.shipping is None and item.seller_rating is None
               and item.description is None for item in listings)


def test_a_named_seller_is_read() -> None:
    answer = facebook_answer(
        facebook_listing(2000000000000011, marketplace_listing_seller={"__typename": "User", "name": " Jane   Doe ",
                                                                       "id": "100000000000001"},
                         delivery_types=["IN_PERSON", "SHIPPING"]),
        facebook_listing(2000000000000012, marketplace_listing_seller=None),
        facebook_listing(2000000000000013, marketplace_listing_seller={"name": ""}),
        facebook_listing(2000000000000014, marketplace_listing_seller="Jane"),
    )

    listings = parse_search_page(answer, content_type="application/json").listings

    assert [item.seller for item in listings] == ["Jane Doe", None, None, None]
    assert listings[0].shipping is None  # "SHIPPING" says how, not what it costs


def test_a_long_seller_name_is_cut() -> None:
    answer = facebook_answer(facebook_listing(2000000000000015, marketplace_listing_seller={"name": "x" * 500}))

    assert parse_search_page(answer, content_type="application/json").listings[0].seller == "x" * 200
