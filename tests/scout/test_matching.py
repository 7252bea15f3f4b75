"""The filter rules: words, accents, exclusions, price range and the rule for listings without a price."""

from __future__ import annotations

import re
from decimal import Decimal

import msgspec
import pytest

from scout.matching import _word_pattern, build_matcher, fold
from scout.models import SearchSpec, SponsoredRule, UnpricedRule
from tests.fakes.adapters import make_listing


def spec(query: str, **kw: object) -> SearchSpec:
    return SearchSpec(query=query, marketplaces=("fakebay",), check_interval_minutes=5, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "title", "expected"),
    [
        ("rtx 3080", "NVIDIA RTX 3080 Founders Edition", True),
        ("rtx 3080", "RTX 3070", False),  # every word is needed
        ("3080 rtx", "rtx 3080", True),  # in any order
        ("pokemon", "Pokémon Crimson Invasion", True),  # accents fold
        ("POKÉMON", "pokemon card", True),
        ("lego", "LEGOS bulk lot", True),  # a word matches the start of a word
        ("ego", "LEGO bulk lot", False),  # but not the middle of one
        ("3080", "RTX 3080Ti", True),
        ("café", "CAFE racer", True),
        ("straße", "STRASSE schild", True),  # case folding, not just lower()
    ],
)
def test_words(query: str, title: str, expected: bool) -> None:
    assert build_matcher(spec(query)).matches(make_listing(1, title)) is expected


@pytest.mark.parametrize("word", ["air", "3080", "é", "a_b"])  # words are runs of word characters
def test_a_word_starts_where_a_leading_word_boundary_would_put_it(word: str) -> None:
    # The same as a leading \b before the word, whatever comes before it: nothing, a space, a letter, a digit,
    # an underscore, an accented letter, punctuation; and a later match is found when an earlier one is refused.
    before = ["", " ", "h", "9", "_", "é", "-", "'", "h air ", "hair_"]
    for lead in before:
        for text in (f"{lead}{word}", f"{lead}{word}s", f"{lead}{word} {word}"):
            expected = re.search(rf"\b{re.escape(word)}", text) is not None
            assert (_word_pattern((word,)).search(text) is not None) is expected, text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("exclude", "title", "expected"),
    [
        (("broken",), "RTX 3080 broken fan", False),
        (("broken",), "RTX 3080 BROKEN", False),
        (("broken",), "RTX 3080 unbroken", True),
        (("for parts", "box"), "RTX 3080 for display", False),  # each excluded word counts on its own
        (("défaut",), "RTX 3080 avec defaut", False),
        ((), "RTX 3080", True),
    ],
)
def test_exclusions(exclude: tuple[str, ...], title: str, expected: bool) -> None:
    assert build_matcher(spec("rtx 3080", exclude=exclude)).matches(make_listing(1, title)) is expected


@pytest.mark.parametrize(
    ("low", "high", "price", "expected"),
    [
        ("100", "500", "100", True),  # bounds are inclusive
        ("100", "500", "500", True),
        ("100", "500", "99.99", False),
        ("100", "500", "500.01", False),
        (None, "500", "0", True),
        ("100", None, "100000", True),
    ],
)
def test_price_range(low: str | None, high: str | None, price: str, expected: bool) -> None:
    matcher = build_matcher(spec("rtx", min_price=low and Decimal(low), max_price=high and Decimal(high)))
    assert matcher.matches(make_listing(1, "rtx", price)) is expected


@pytest.mark.parametrize(("rule", "expected"), [(UnpricedRule.INCLUDE, True), (UnpricedRule.EXCLUDE, False)])
def test_listings_without_a_price_follow_the_rule(rule: UnpricedRule, expected: bool) -> None:
    matcher = build_matcher(spec("rtx", max_price=Decimal("500"), unpriced=rule))
    assert matcher.matches(make_listing(1, "rtx", None)) is expected
    # A price in another currency cannot be compared without exchange rates: the same rule decides.
    matcher = build_matcher(spec("rtx", max_price=Decimal("500"), currency="USD", unpriced=rule))
    assert matcher.matches(make_listing(2, "rtx", "10", currency="GBP")) is expected
    assert matcher.matches(make_listing(3, "rtx", "10", currency="USD")) is True


def test_no_price_range_means_the_rule_does_not_apply() -> None:
    matcher = build_matcher(spec("rtx", unpriced=UnpricedRule.EXCLUDE))
    assert matcher.matches(make_listing(1, "rtx", None)) is True


def test_fold() -> None:
    assert fold("Ünïcödé ÀÉÎ") == "unicode aei"


def test_a_sold_listing_never_matches() -> None:
    """A sold search result (its struck-through price is what it went for) is no deal: it is never alerted."""
    listing = make_listing(1, "lego castle", "20")
    matcher = build_matcher(SearchSpec(query="lego", marketplaces=("ebay",), check_interval_minutes=5))
    assert matcher.matches(listing) and not matcher.matches(msgspec.structs.replace(listing, sold=True))


def test_a_search_can_leave_sponsored_listings_out() -> None:
    ad = msgspec.structs.replace(make_listing(1, "lego castle", "20"), sponsored=True)
    assert build_matcher(spec("lego")).matches(ad)
    assert not build_matcher(spec("lego", sponsored=SponsoredRule.EXCLUDE)).matches(ad)
    assert build_matcher(spec("lego", sponsored=SponsoredRule.EXCLUDE)).matches(make_listing(2, "lego ship", "20"))
