"""Deal scores: the search words comparables share, totals with shipping, picking comparables as a search would,
the robust statistics and their verdicts, the alert line, and the small rules around them."""

from __future__ import annotations

import random
import statistics
from decimal import Decimal

import msgspec
import pytest

from scout.deals import (
    DEFAULT_POLICY,
    MAX_COMPARABLE_WORDS_LENGTH,
    Comparable,
    DealPolicy,
    DealScore,
    Verdict,
    comparable_words,
    describe,
    is_price_drop,
    meets,
    parse_min_deal,
    pick_comparables,
    score,
    score_sorted,
    total_price,
    verdict_label,
    window_start,
)
from scout.errors import InputError
from scout.matching import build_matcher
from scout.models import Money, SearchSpec
from tests.conftest import fixture_path
from tests.fakes.adapters import make_listing

D = Decimal


def prices(*values: str | int) -> list[Decimal]:
    return [D(str(value)) for value in values]


# 90 .. 110 in steps of 1: median 100, MAD 5, so one robust standard deviation is 1.4826 * 5 = 7.413.
SPREAD = [D(90 + i) for i in range(21)]
# 99.0 .. 101.0 in steps of 0.1: median 100, MAD 0.5, a market where every seller asks about the same.
TIGHT = [D("99.0") + D("0.1") * i for i in range(21)]
# More than half ask exactly 100: the MAD is 0.
FLAT = [D(100)] * 10 + [D(120)] * 5


# --- comparable_words -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("RTX 3080", "3080 rtx"),
        ("3080 rtx", "3080 rtx"),  # order does not matter
        ("rtx RTX 3080 rtx", "3080 rtx"),  # nor do repeats
        ("  RTX-3080!! ", "3080 rtx"),  # punctuation separates words, as in scout.matching
        ("Pokémon Karte", "karte pokemon"),  # accents fold
        ("POKEMON karte", "karte pokemon"),
        ("Straße", "strasse"),  # case folding, not lower()
        ("", ""),
        ("  !! ", ""),
    ],
)
def test_comparable_words(query: str, expected: str) -> None:
    assert comparable_words(query) == expected


def test_comparable_words_equal_for_queries_a_search_treats_alike() -> None:
    assert comparable_words("Lego Technic 42115") == comparable_words("42115 TECHNIC lego lego")


def test_comparable_words_drop_whole_words_past_the_cap() -> None:
    query = " ".join(f"word{i:03d}" for i in range(60))  # 60 words of 7 letters: 479 characters joined
    words = comparable_words(query)
    assert len(words) <= MAX_COMPARABLE_WORDS_LENGTH
    assert words.split() == sorted(query.split())[: len(words.split())]  # whole words, from the start
    assert " ".join(sorted(query.split())).startswith(words)


def test_comparable_words_cut_one_word_too_long_at_the_cap() -> None:
    assert comparable_words("x" * 300) == "x" * MAX_COMPARABLE_WORDS_LENGTH


# --- total_price ------------------------------------------------------------------------------------------------

def with_shipping(price: str | None, shipping: Money | None, currency: str = "EUR") -> object:
    return msgspec.structs.replace(make_listing(1, "Lego 42115", price=price, currency=currency), shipping=shipping)


@pytest.mark.parametrize(
    ("price", "shipping", "expected"),
    [
        ("100", None, D("100")),  # no delivery cost shown: the price alone
        ("100", Money(D(0), "EUR"), D("100")),  # free delivery
        ("100", Money(D("4.99"), "EUR"), D("104.99")),  # shipping added
        ("100", Money(D("4.99"), "GBP"), D("100")),  # another currency: ignored, not converted
        (None, Money(D("4.99"), "EUR"), None),  # no price, no total
        (None, None, None),
    ],
)
def test_total_price(price: str | None, shipping: Money | None, expected: Decimal | None) -> None:
    assert total_price(with_shipping(price, shipping)) == expected  # type: ignore[arg-type]


# --- pick_comparables -------------------------------------------------------------------------------------------

def comparable(listing_id: int, title: str, total: str = "100") -> Comparable:
    return Comparable(listing_id, title, D(total))


def ids(picked: list[Comparable]) -> list[int]:
    return [item.listing_id for item in picked]


def test_a_listing_given_twice_counts_once_by_its_first_row() -> None:
    rows = [comparable(1, "RTX 3080", "500"), comparable(2, "RTX 3080", "450"), comparable(1, "RTX 3080", "520")]
    picked = pick_comparables(rows, exclude=())
    assert ids(picked) == [1, 2]
    assert picked[0].total == D("500")


def test_a_listing_whose_first_row_is_excluded_is_not_counted_by_a_later_row() -> None:
    rows = [comparable(1, "RTX 3080 broken"), comparable(1, "RTX 3080")]
    assert pick_comparables(rows, exclude=("broken",)) == []


def test_skip_ids_leave_out_the_listing_being_scored() -> None:
    rows = [comparable(1, "RTX 3080"), comparable(2, "RTX 3080"), comparable(3, "RTX 3080")]
    assert ids(pick_comparables(rows, exclude=(), skip_ids={2})) == [1, 3]


def test_order_is_kept() -> None:
    rows = [comparable(n, "RTX 3080") for n in (5, 3, 9, 1)]
    assert ids(pick_comparables(iter(rows), exclude=())) == [5, 3, 9, 1]


@pytest.mark.parametrize(
    ("exclude", "title", "kept"),
    [
        (("broken",), "RTX 3080 broken fan", False),
        (("broken",), "RTX 3080 BROKEN", False),
        (("broken",), "RTX 3080 unbroken", True),  # the start of a word, not the middle
        (("broken",), "RTX 3080 brokenness", False),  # the start of a word is enough
        (("for parts", "box"), "RTX 3080 for display", False),  # each excluded word counts on its own
        (("défaut",), "RTX 3080 avec defaut", False),  # accents fold both ways
        (("defaut",), "RTX 3080 avec DÉFAUT", False),
        (("defaut",), "RTX 3080 – état neuf", True),  # accents and a dash, nothing excluded
        (("faut",), "RTX 3080 défaut", True),  # an accent inside a word is no word boundary
        (("strasse",), "Straßenrad", False),
        ((), "RTX 3080 broken", True),
    ],
)
def test_excluded_words(exclude: tuple[str, ...], title: str, kept: bool) -> None:
    assert bool(pick_comparables([comparable(1, title)], exclude=exclude)) is kept


@pytest.mark.parametrize(
    ("required", "title", "kept"),
    [
        ("3080 rtx", "NVIDIA RTX 3080 Founders", True),
        ("3080 rtx", "RTX 3070", False),  # every word is needed
        ("3080 rtx", "RTX 3080Ti", True),
        ("pokemon", "Pokémon Karte", True),
        ("ego", "LEGO 42115", False),
        ("3080", "ж3080", False),  # a Cyrillic letter is a word letter: 3080 does not start a word here
        ("3080", "£3080", True),  # a pound sign is not
        ("", "anything", True),
        (None, "anything", True),
    ],
)
def test_required_words(required: str | None, title: str, kept: bool) -> None:
    assert bool(pick_comparables([comparable(1, title)], exclude=(), required_words=required)) is kept


TRICKY_TITLES = [
    "RTX 3080 broken", "rtx 3080 Défaut", "RTX 3080 défaut", "RTX-3080 für Bastler", "ж3080 rtx", "£3080 RTX",
    "rtx\u03003080", "Pokémon Togekiss V", "Collector’s Edition RTX 3080", "ŉ broken rtx", "ǅ 3080", "ﬁne rtx 3080",
    "İstanbul rtx 3080", "RTX 3080 ✅ NEW", "RTX 3080 unbroken", "rtx３０８０", "ΐ rtx 3080 brοken", "Straße 3080 rtx",
    "3080 RTX FÜR TEILE", "rtx 3080 teile", "_rtx 3080", "rtx_3080", "ｒｔｘ 3080",
]


@pytest.mark.parametrize("exclude", [(), ("broken",), ("défaut", "teile"), ("für",), ("ж",), ("fine", "strasse")])
@pytest.mark.parametrize("required", [None, "rtx 3080", "3080", "pokemon", "ǅ", "istanbul"])
def test_picking_agrees_with_scout_matching(exclude: tuple[str, ...], required: str | None) -> None:
    """The shortcuts (a loose search first, an ASCII skeleton for titles with accents) change no answer."""
    matcher = build_matcher(SearchSpec(query=required or "", marketplaces=("fakebay",), check_interval_minutes=5,
                                       exclude=exclude))
    rows = [comparable(n, title) for n, title in enumerate(TRICKY_TITLES)]
    expected = [n for n, title in enumerate(TRICKY_TITLES) if matcher.matches(make_listing(n, title))]
    assert ids(pick_comparables(rows, exclude=exclude, required_words=required)) == expected


@pytest.mark.fixtures
def test_picking_agrees_with_scout_matching_on_real_titles() -> None:
    from scrapers.ebay.parse import parse_listings

    titles = [listing.title for name in ("srp-2025-08-bluray-uk-scard.html", "srp-2026-07-pokemon-scard.html",
                                         "srp-2025-11-adidas-scard-prettified.html")
              for listing in parse_listings(fixture_path(f"ebay/{name}").read_bytes())]
    assert any(not title.isascii() for title in titles)
    rows = [comparable(n, title) for n, title in enumerate(titles)]
    for required, exclude in [(None, ("sealed", "holo")), ("pokemon", ("rare",)), ("adidas", ()), ("blu ray", ("4k",))]:
        matcher = build_matcher(SearchSpec(query=required or "", marketplaces=("ebay",), check_interval_minutes=5,
                                           exclude=exclude))
        expected = [n for n, title in enumerate(titles) if matcher.matches(make_listing(n, title))]
        assert ids(pick_comparables(rows, exclude=exclude, required_words=required)) == expected


# --- score: counts and confidence -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("count", "scored", "low_confidence"),
    [(0, False, None), (1, False, None), (2, False, None), (3, True, True), (14, True, True), (15, True, False)],
)
def test_how_many_comparables_a_score_needs(count: int, scored: bool, low_confidence: bool | None) -> None:
    result = score(D(100), [D(100 + i) for i in range(count)])
    assert (result is not None) is scored
    if result is not None:
        assert result.count == count
        assert result.low_confidence is low_confidence


def test_comparables_given_away_are_not_counted() -> None:
    assert score(D(100), prices(0, 0, 100, 120)) is None  # two priced comparables: too few
    result = score(D(100), prices(0, 90, 100, 110))
    assert result is not None and result.count == 3 and result.median == D(100)


def test_a_free_listing_is_scored_and_a_negative_total_is_not() -> None:
    free = score(D(0), SPREAD)
    assert free is not None and free.verdict is Verdict.GREAT and free.below_median == 1.0
    assert score(D(-1), SPREAD) is None


def test_order_of_the_comparables_does_not_matter() -> None:
    shuffled = SPREAD[:]
    random.Random(7).shuffle(shuffled)
    assert score(D(93), shuffled) == score(D(93), SPREAD) == score(D(93), SPREAD[::-1])


def test_a_score_of_totals_in_order_is_the_same_score() -> None:
    given_away = [D(-5), D(0), D(0), *SPREAD]
    for total in (D(0), D(60), D(93), D(500)):
        assert score_sorted(total, sorted(given_away)) == score(total, given_away)


# --- score: the statistics --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("total", "comparables", "percentile"),
    [
        ("20", prices(10, 20, 20, 30), 50.0),  # one cheaper, two tied counted half: (1 + 1) / 4
        ("10", prices(10, 20, 20, 30), 12.5),
        ("5", prices(10, 20, 20, 30), 0.0),
        ("40", prices(10, 20, 20, 30), 100.0),
        ("30", prices(10, 20, 20, 30), 87.5),
        ("20", prices(20, 20, 20), 50.0),  # all tied: the middle
        ("20.0", prices("20.00", 30, 40), 100 / 6),  # 20.0 and 20.00 are the same amount
    ],
)
def test_percentile_counts_ties_as_half(total: str, comparables: list[Decimal], percentile: float) -> None:
    result = score(D(total), comparables)
    assert result is not None
    assert result.percentile == pytest.approx(percentile)


@pytest.mark.parametrize(
    ("comparables", "median"),
    [(prices(3, 1, 2), D(2)), (prices(4, 1, 3, 2), D("2.5")), (prices("10.01", "10.00", "10.02", "10.03"), D("10.015"))],
)
def test_median_is_exact(comparables: list[Decimal], median: Decimal) -> None:
    result = score(D(1), comparables)
    assert result is not None and result.median == median


def test_robust_z_and_share_below_the_median() -> None:
    result = score(D(85), SPREAD)
    assert result is not None
    assert result.median == D(100)
    assert result.robust_z == pytest.approx(-15 / (1.4826 * 5))
    assert result.below_median == pytest.approx(0.15)
    above = score(D(112), SPREAD)
    assert above is not None and above.below_median == pytest.approx(-0.12)


def test_robust_z_matches_a_plain_computation_on_random_prices() -> None:
    rng = random.Random(20261130)
    for _ in range(300):
        comparables = [D(rng.randint(1, 40)) * D("2.5") for _ in range(rng.randint(3, 40))]
        total = D(rng.randint(1, 100))
        median = statistics.median(comparables)
        mad = statistics.median([abs(value - median) for value in comparables])
        result = score(total, comparables)
        assert result is not None
        assert result.median == median
        if mad == 0:
            assert result.robust_z is None
        else:
            assert result.robust_z == pytest.approx(float(total - median) / (1.4826 * float(mad)))


def test_the_mad_is_exact_with_ties_and_either_count_of_prices() -> None:
    """Robust z from the MAD worked out the plain way, to the last bit: many equal prices (a pool of a few), odd and
    even counts, prices on either side of the median."""
    rng = random.Random(20261201)
    for _ in range(3000):
        pool = rng.choice([2, 5, 40, 5000])
        comparables = sorted(D(rng.randint(1, pool)) / rng.choice([1, 4, 100]) for _ in range(rng.randint(3, 41)))
        total = D(rng.randint(1, pool)) / 4
        median = statistics.median(comparables)
        mad = statistics.median([abs(value - median) for value in comparables])
        result = score(total, comparables)
        assert result is not None
        expected = float(total - median) / (1.4826 * float(mad)) if mad else None
        assert result.robust_z == expected, (comparables, total)


def test_mad_of_zero_gives_no_z_and_the_percentile_decides() -> None:
    cheaper = score(D(80), FLAT)
    assert cheaper is not None
    assert cheaper.robust_z is None
    assert (cheaper.percentile, cheaper.verdict) == (0.0, Verdict.GREAT)
    at_the_median = score(D(100), FLAT)
    assert at_the_median is not None
    assert at_the_median.percentile == pytest.approx(100 * 5 / 15)  # ten tied at 100 count half
    assert at_the_median.verdict is Verdict.FAIR


# --- score: verdicts --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("total", "comparables", "verdict"),
    [
        ("80", SPREAD, Verdict.GREAT),  # z -2.7, the cheapest, 20% under
        ("89", SPREAD, Verdict.GREAT),  # z -1.48 but cheaper than all: the percentile makes it great
        ("92", SPREAD, Verdict.GOOD),  # z -1.08, percentile 11.9, 8% under
        ("96", SPREAD, Verdict.FAIR),  # z -0.54, percentile 31: within the usual spread
        ("100", SPREAD, Verdict.FAIR),
        ("104", SPREAD, Verdict.FAIR),  # percentile 69
        ("106", SPREAD, Verdict.ABOVE),  # percentile 79, 6% over
        ("115", SPREAD, Verdict.ABOVE),
        ("98", TIGHT, Verdict.FAIR),  # z -2.7 and the cheapest, but only 2% under: no deal
        ("94", TIGHT, Verdict.GOOD),  # 6% under: good, not yet great
        ("89", TIGHT, Verdict.GREAT),
        ("102", TIGHT, Verdict.FAIR),  # the dearest, but only 2% over
        ("106", TIGHT, Verdict.ABOVE),
        ("99", FLAT, Verdict.FAIR),  # MAD 0: cheaper than all, yet 1% under
        ("94", FLAT, Verdict.GOOD),
        ("85", FLAT, Verdict.GREAT),
        ("110", FLAT, Verdict.FAIR),  # MAD 0, percentile 67: between the two prices sellers ask
        ("125", FLAT, Verdict.ABOVE),
    ],
)
def test_verdicts(total: str, comparables: list[Decimal], verdict: Verdict) -> None:
    result = score(D(total), comparables)
    assert result is not None
    assert result.verdict is verdict


def test_fewer_than_min_comparables_is_never_great() -> None:
    few = SPREAD[:7] + SPREAD[-7:]  # 14 comparables
    result = score(D(50), few)
    assert result is not None
    assert (result.verdict, result.low_confidence) == (Verdict.GOOD, True)
    relaxed = score(D(50), few, DealPolicy(min_comparables=10))
    assert relaxed is not None and (relaxed.verdict, relaxed.low_confidence) == (Verdict.GREAT, False)


def test_min_scored_is_a_policy() -> None:
    assert score(D(1), prices(1, 2, 3, 4), DealPolicy(min_scored=5)) is None
    assert score(D(1), prices(1, 2), DealPolicy(min_scored=2)) is not None


@pytest.mark.parametrize(
    "changes",
    [
        {"window_days": 0},
        {"min_scored": 0},
        {"min_scored": 20},  # above min_comparables
        {"min_comparables": 6000},  # above max_comparables
        {"great_z": -0.5},  # milder than good_z
        {"above_z": 0.0},
        {"great_percentile": 30.0},  # above good_percentile
        {"above_percentile": 40.0},
        {"good_min_discount": 0.2},  # above great_min_discount
        {"great_min_discount": 1.0},
        {"above_min_premium": -0.1},
    ],
)
def test_a_policy_that_makes_no_sense_is_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DealPolicy(**changes)  # type: ignore[arg-type]


def test_window_start() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert window_start(now) == datetime(2026, 9, 2, 12, 0, tzinfo=UTC)
    assert window_start(now, DealPolicy(window_days=7)) == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert DEFAULT_POLICY.window_days == 90


# --- describe and labels ----------------------------------------------------------------------------------------

def deal(below: float, count: int = 41, *, low_confidence: bool = False, verdict: Verdict = Verdict.GOOD) -> DealScore:
    return DealScore(percentile=20.0, median=D(100), count=count, robust_z=-1.0, verdict=verdict,
                     low_confidence=low_confidence, below_median=below)


@pytest.mark.parametrize(
    ("scored", "text"),
    [
        (deal(0.31), "31% below the median of 41 similar listings"),
        (deal(-0.12, 20), "12% above the median of 20 similar listings"),
        (deal(0.004), "at the median of 41 similar listings"),
        (deal(-0.004), "at the median of 41 similar listings"),
        (deal(0.0), "at the median of 41 similar listings"),
        (deal(0.125), "13% below the median of 41 similar listings"),  # half up
        (deal(0.005), "1% below the median of 41 similar listings"),
        (deal(1.0), "100% below the median of 41 similar listings"),  # given away
        (deal(0.2, 5, low_confidence=True), "20% below the median of 5 similar listings (low confidence)"),
        (deal(-0.5, 1, low_confidence=True), "50% above the median of 1 similar listing (low confidence)"),
    ],
)
def test_describe(scored: DealScore, text: str) -> None:
    assert describe(scored) == text


def test_describe_stays_short_for_extreme_figures() -> None:
    extreme = deal(-1e13, 5000, low_confidence=True)  # a 1,000,000,000 price against a median of 0.0001
    assert len(describe(extreme)) < 90


def test_describe_a_real_score() -> None:
    result = score(D("69"), SPREAD)
    assert result is not None
    assert describe(result) == "31% below the median of 21 similar listings"


@pytest.mark.parametrize(
    ("verdict", "label"),
    [(Verdict.GREAT, "great deal"), (Verdict.GOOD, "good deal"), (Verdict.FAIR, "fair price"),
     (Verdict.ABOVE, "above typical")],
)
def test_verdict_label(verdict: Verdict, label: str) -> None:
    assert verdict_label(verdict) == label


def test_verdicts_are_declared_best_first() -> None:
    assert list(Verdict) == [Verdict.GREAT, Verdict.GOOD, Verdict.FAIR, Verdict.ABOVE]
    assert Verdict.ABOVE == "above typical"


# --- parse_min_deal and meets -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "verdict"),
    [("great", Verdict.GREAT), ("GOOD", Verdict.GOOD), (" Fair ", Verdict.FAIR), ("Great deal", Verdict.GREAT),
     ("good  DEAL", Verdict.GOOD), ("fair price", Verdict.FAIR)],
)
def test_parse_min_deal(text: str, verdict: Verdict) -> None:
    assert parse_min_deal(text) is verdict


@pytest.mark.parametrize("text", ["", "  ", "best", "goood", "above typical", "above", "great!", "x" * 500, None])
def test_parse_min_deal_refuses_anything_else(text: str) -> None:
    with pytest.raises(InputError, match="great, good, fair") as refused:
        parse_min_deal(text)
    assert refused.value.field == "min_deal"
    assert len(str(refused.value)) < 100  # a long paste is not echoed whole


@pytest.mark.parametrize(
    ("verdict", "minimum", "expected"),
    [
        (Verdict.GREAT, Verdict.GREAT, True),
        (Verdict.GOOD, Verdict.GREAT, False),
        (Verdict.GREAT, Verdict.GOOD, True),
        (Verdict.GOOD, Verdict.GOOD, True),
        (Verdict.FAIR, Verdict.GOOD, False),
        (Verdict.FAIR, Verdict.FAIR, True),
        (Verdict.ABOVE, Verdict.FAIR, False),
        (Verdict.ABOVE, None, True),
    ],
)
def test_meets(verdict: Verdict, minimum: Verdict | None, expected: bool) -> None:
    assert meets(deal(0.2, verdict=verdict), minimum) is expected


def test_a_listing_without_a_score_meets_only_no_minimum() -> None:
    assert meets(None, None) is True
    for minimum in (Verdict.GREAT, Verdict.GOOD, Verdict.FAIR):
        assert meets(None, minimum) is False


# --- is_price_drop ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("old", "new", "share", "expected"),
    [
        ("100", "90", "0.10", True),  # exactly 10% counts
        ("100", "90.01", "0.10", False),
        ("100", "89.99", "0.10", True),
        ("100", "100", "0.10", False),
        ("100", "120", "0.10", False),  # a rise
        ("100", "0", "0.10", True),
        ("0", "0", "0.10", False),  # nothing to drop from
        ("19.99", "17.99", "0.10", True),  # 2.00 off 19.99 is 10.005%
        ("19.99", "18.00", "0.10", False),
        ("200", "150", "0.25", True),
        ("200", "150.01", "0.25", False),
    ],
)
def test_is_price_drop(old: str, new: str, share: str, expected: bool) -> None:
    assert is_price_drop(D(old), D(new), D(share)) is expected


def test_is_price_drop_default_share_is_ten_percent() -> None:
    assert is_price_drop(D(50), D(45)) is True
    assert is_price_drop(D(50), D("45.01")) is False


@pytest.mark.parametrize("share", ["0", "1", "-0.1", "1.5"])
def test_is_price_drop_refuses_a_share_outside_zero_to_one(share: str) -> None:
    with pytest.raises(ValueError):
        is_price_drop(D(100), D(50), D(share))
