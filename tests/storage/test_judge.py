"""A save's judge: each listing is scored against its group's comparables but itself (one of two equal totals
leaves only its own out), a listing outside them against them all, and excluded words pick fewer."""

from __future__ import annotations

from decimal import Decimal

from scout.deals import Comparable, score
from scout.models import Listing, Money
from storage.deals import Judge

WORDS = "card pokemon"
PRICES = ["5.00", "7.50", "9.99", "9.99", "12.00", "14.25", "15.00", "18.00", "20.00", "24.99", "30.00", "45.00"]


def judge() -> Judge:
    judge = Judge()
    judge.comparables[(WORDS, "ebay")] = [Comparable(number, f"pokemon card {number}", Decimal(price))
                                          for number, price in enumerate(PRICES, 1)]
    judge.currencies.update((number, "USD") for number in range(1, len(PRICES) + 1))
    return judge


def listing(number: int, price: str) -> Listing:
    return Listing(marketplace="ebay", external_id=str(number), title=f"pokemon card {number}", url="u",
                   price=Money(Decimal(price), "USD"))


def test_each_listing_is_scored_against_the_others_and_equal_totals_alike() -> None:
    scored = judge()
    third, fourth = (scored.facts(number, listing(number, "9.99"), WORDS, ()) for number in (3, 4))
    others = [Decimal(price) for number, price in enumerate(PRICES, 1) if number != 3]
    assert third == fourth
    assert third[1] == score(Decimal("9.99"), others)
    assert third[1] is not None and third[1].count == len(PRICES) - 1
    assert third[0].deal == "33% below the median of 11 similar listings (low confidence)"


def test_a_listing_outside_the_comparables_is_scored_against_them_all() -> None:
    scored = judge()
    inside = scored.facts(3, listing(3, "9.99"), WORDS, ())
    outside = scored.facts(99, listing(99, "9.99"), WORDS, ())
    assert outside[1] == score(Decimal("9.99"), [Decimal(price) for price in PRICES])
    assert outside != inside and outside[1] is not None and outside[1].count == len(PRICES)


def test_excluded_words_pick_other_comparables() -> None:
    scored = judge()
    every = scored.facts(99, listing(99, "9.99"), WORDS, ())
    fewer = scored.facts(99, listing(99, "9.99"), WORDS, ("12",))  # "pokemon card 12" is left out
    assert every[1] is not None and fewer[1] is not None
    assert (every[1].count, fewer[1].count) == (len(PRICES), len(PRICES) - 1)
