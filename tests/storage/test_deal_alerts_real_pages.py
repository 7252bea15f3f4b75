"""Price drops, relists and deal scores on a real eBay result page (skipped without ../shared/fixtures): the page's
60 listings scanned as a marketplace would serve them, then served again with one price cut and one listing back
after a day away."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from scout.models import AlertKind, Listing, Money
from scrapers.ebay.parse import parse_search_page
from storage.deals import RELIST_AFTER
from tests.conftest import fixture_path
from tests.storage.test_deal_alerts import World, only

pytestmark = pytest.mark.fixtures
QUERY = "pokemon"


def real_page() -> list[Listing]:
    """The real page's priced pokemon cards, as the fake marketplace serves them."""
    listings = parse_search_page(fixture_path("ebay/srp-2026-07-pokemon-scard.html").read_bytes(),
                                 domain="www.ebay.com").listings
    return [msgspec.structs.replace(listing, marketplace="fakebay") for listing in listings
            if listing.price is not None and "pokemon" in listing.title.lower()]


async def test_a_real_pages_listing_cut_in_price_is_told_as_a_drop_with_its_verdict(world: World) -> None:
    page = real_page()
    assert len(page) >= 30
    await world.add(query=QUERY)
    await world.scan(*page[1:], query=QUERY)  # the baseline: the page without its first card
    await world.scan(*page, query=QUERY)  # the first card is new: told, with its standing among the rest
    [told] = await world.deliver()
    first = page[0]
    assert told.listing.external_id == first.external_id and told.facts.deal
    assert told.facts.deal.endswith(f"of {len(page) - 1} similar listings")
    cut = msgspec.structs.replace(first, price=Money((first.price.amount * Decimal("0.5")).quantize(  # type: ignore[union-attr]
        Decimal("0.01")), "USD"))
    await world.scan(cut, *page[1:], query=QUERY)
    [drop] = await world.due()
    assert drop.kind is AlertKind.DROP and drop.facts.old_price == first.price
    assert drop.facts.deal and drop.facts.deal.endswith(f"of {len(page) - 1} similar listings")
    assert drop.facts.verdict and drop.facts.trend and "\u2192" in drop.facts.trend


async def test_a_real_pages_listing_back_after_a_day_is_told_as_a_relist(world: World) -> None:
    page = real_page()
    await world.add(query=QUERY)
    await world.scan(*page, query=QUERY)  # the baseline
    await world.scan(*page[1:], query=QUERY)  # the first card is gone...
    await world.scan(*page[1:], query=QUERY, after=RELIST_AFTER)  # ...for a day, while the search kept looking
    await world.scan(*page, query=QUERY)
    [relist] = await world.due()
    assert relist.listing.external_id == page[0].external_id and relist.kind is AlertKind.RELIST
    assert relist.facts.deal and relist.facts.deal.endswith("similar listings")
    assert only([relist], page[0].external_id) is relist


async def test_a_search_not_scanned_for_days_finds_its_listings_where_they_were(world: World) -> None:
    """The service was down for two days: the page is as it was, and nothing on it is a relist."""
    page = real_page()
    await world.add(query=QUERY)
    await world.scan(*page, query=QUERY)  # the baseline
    await world.scan(*page, query=QUERY, after=2 * RELIST_AFTER)
    assert await world.due() == []
