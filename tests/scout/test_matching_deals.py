"""The filters the deal options add to matching: sellers left out by name, a least seller rating, and excluded words
found in a listing's description."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.deal_options import read_sellers
from scout.matching import build_matcher, match_listings
from scout.models import Listing, Money, SearchSpec


def spec(**kw: object) -> SearchSpec:
    values: dict[str, object] = {"query": "lego castle", "marketplaces": ("ebay",), "check_interval_minutes": 10}
    values.update(kw)
    return SearchSpec(**values)  # type: ignore[arg-type]


def listing(title: str = "LEGO Castle 10305", *, seller: str | None = None, rating: str | None = None,
            description: str | None = None) -> Listing:
    return Listing(marketplace="ebay", external_id="1", title=title, url="https://example.test/itm/1",
                   price=Money(Decimal(100), "USD"), seller=seller,
                   seller_rating=Decimal(rating) if rating is not None else None, description=description)


@pytest.mark.parametrize(("seller", "kept"), [
    ("BrickScalper", False),
    ("brickscalper", False),
    ("  BrickScalper ", False),  # a page's padding is not part of the name
    ("Bríckscalper", False),  # accents fold as in titles
    ("brickscalper2", True),  # another seller, not a prefix match
    ("honest bricks", True),
    (None, True),  # a marketplace that shows no seller: nothing to hold against the listing
])
def test_sellers_left_out_by_name(seller: str | None, kept: bool) -> None:
    matcher = build_matcher(spec(exclude_sellers=read_sellers("BrickScalper, Dodgy Dealer")))
    assert matcher.matches(listing(seller=seller)) is kept


def test_a_seller_name_of_several_words_is_left_out_whole() -> None:
    matcher = build_matcher(spec(exclude_sellers=read_sellers(["Dodgy  Dealer"])))
    assert not matcher.matches(listing(seller="dodgy dealer"))
    assert matcher.matches(listing(seller="dodgy"))


@pytest.mark.parametrize(("rating", "kept"), [
    ("97.9", False),
    ("98", True),  # the least rating itself is good enough
    ("98.0", True),
    ("100", True),
    (None, True),  # no rating shown: let through
])
def test_least_seller_rating(rating: str | None, kept: bool) -> None:
    matcher = build_matcher(spec(min_seller_rating=Decimal(98)))
    assert matcher.matches(listing(seller="someone", rating=rating)) is kept


def test_no_least_rating_keeps_every_rating() -> None:
    assert build_matcher(spec()).matches(listing(rating="12.5"))


@pytest.mark.parametrize(("description", "kept"), [
    ("Complete set, all minifigures, box included.", True),
    ("Sold as is: some pieces MISSING, box damaged.", False),
    ("Pièces manquantes? No: nothing missing.", False),  # the word is there, whatever the sentence says
    ("Missingno the glitch figure", False),  # a word matches at the start of a word, as in titles
    ("unmissing", True),
    (None, True),  # a result page without descriptions
    ("", True),
])
def test_excluded_words_in_the_description(description: str | None, kept: bool) -> None:
    matcher = build_matcher(spec(exclude=("missing",)))
    assert matcher.matches(listing(description=description)) is kept


def test_excluded_words_in_a_description_with_accents() -> None:
    matcher = build_matcher(spec(exclude=("defekt", "beschadigd")))
    assert not matcher.matches(listing(description="Leider DEFÉKT"))
    assert not matcher.matches(listing(description="Doos beschädigd"))


def test_a_description_needs_no_search_words() -> None:
    """The search's words must be in the title: a description that carries them does not make a match."""
    matcher = build_matcher(spec())
    assert not matcher.matches(listing(title="Duplo farm", description="Works with lego castle sets"))


def test_every_filter_together() -> None:
    wanted = spec(exclude=("missing",), exclude_sellers=read_sellers("scalper"), min_seller_rating=Decimal(99))
    listings = (
        listing(seller="good", rating="99.5", description="complete"),
        listing(seller="Scalper", rating="100", description="complete"),
        listing(seller="good", rating="95", description="complete"),
        listing(seller="good", rating="99.5", description="one piece missing"),
    )
    assert match_listings(wanted, listings) == listings[:1]
