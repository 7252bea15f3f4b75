"""Pure deal scores: how a listing's price stands among the comparable listings Deal Scout has seen. No IO.

Comparable listings share a marketplace, a currency and a search's normalised words (`comparable_words`), were seen
within `DealPolicy.window_days`, count once each and pass the search's excluded words (`pick_comparables`). Storage
loads them; this module only ranks a price among their totals (`score`) and words the result (`describe`).

The statistics are robust on purpose: second-hand prices carry outliers both ways (a "1 €, make an offer" placeholder,
a collector's asking price), which would drag a mean and a standard deviation but barely move a median and its
median absolute deviation (MAD).
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from scout.errors import InputError
from scout.matching import build_matcher, fold, tokenize
from scout.models import Listing, SearchSpec

# Storage keeps the words next to each price it records; searches.query is VARCHAR(200) and a search's words are
# never longer than its query, except where folding widens a letter ("ß" -> "ss"): those lose words from the end.
MAX_COMPARABLE_WORDS_LENGTH = 200
# 1.4826 * MAD estimates the standard deviation of normally distributed data (1 / the 0.75 quantile of the standard
# normal), so a robust z reads like an ordinary z-score on well-behaved prices.
MAD_TO_SIGMA = 1.4826


class Verdict(enum.StrEnum):
    """How good a price is among its comparables; declared best first, which `meets` relies on."""

    GREAT = "great"
    GOOD = "good"
    FAIR = "fair"
    ABOVE = "above typical"


_RANK = {verdict: rank for rank, verdict in enumerate(Verdict)}
_LABELS = {
    Verdict.GREAT: "great deal",
    Verdict.GOOD: "good deal",
    Verdict.FAIR: "fair price",
    Verdict.ABOVE: "above typical",
}
# What a search may ask for as its least deal. "above typical" is left out: every scored listing would meet it.
MIN_DEAL_CHOICES = (Verdict.GREAT, Verdict.GOOD, Verdict.FAIR)


@dataclass(frozen=True, slots=True)
class DealPolicy:
    """How many comparables a score needs and where the verdicts start.

    A verdict needs two things: the price is unusual among its comparables (a robust z-score or a percentile, either
    one), and the difference is money a buyer notices (a share of the median). The z-score speaks for wide price
    spreads, the percentile for skewed ones where the cheap tail is short, and the share guards tight ones: when
    every seller asks 100 €, 99 € is the cheapest of all and many MADs below the median, but no deal.
    """

    # Three months of a marketplace: long enough for a niche search to gather comparables, short enough that prices
    # still describe today's market (used electronics lose value month by month).
    window_days: int = 90
    # Fewer totals than this get no score at all: with one or two there is no middle and no spread to speak of.
    min_scored: int = 3
    # Fewer than this and the score is low confidence and never "great": among 14 the cheapest is only 1 in 14,
    # and one percentile step is 7 points, so "great" would hang on a single listing.
    min_comparables: int = 15
    # Storage loads at most this many, newest first: a broad search ("iphone") can gather tens of thousands in a
    # window, and the newest few thousand describe the market as well while keeping a score within milliseconds.
    max_comparables: int = 5000
    # Great: about the cheapest 7% under a normal spread (z <= -1.5), or the cheapest tenth by rank; and at least
    # 10% under the median, the cut most second-hand buyers would call a bargain rather than a fair price.
    great_z: float = -1.5
    great_percentile: float = 10.0
    great_min_discount: float = 0.10
    # Good: about the cheapest quarter under a normal spread (z <= -0.75, the 23rd percentile), or the cheapest
    # quarter by rank; and at least 5% under the median, less being within haggling and postage noise.
    good_z: float = -0.75
    good_percentile: float = 25.0
    good_min_discount: float = 0.05
    # Above typical: dearer than about 84% under a normal spread (z >= 1), or in the dearest quarter by rank; and at
    # least 5% over the median, so a tight market does not call 1 € more "above typical".
    above_z: float = 1.0
    above_percentile: float = 75.0
    above_min_premium: float = 0.05

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise ValueError(f"window_days must be at least 1, not {self.window_days}")
        if not 1 <= self.min_scored <= self.min_comparables <= self.max_comparables:
            raise ValueError("need 1 <= min_scored <= min_comparables <= max_comparables")
        if not self.great_z <= self.good_z < 0 < self.above_z:
            raise ValueError("need great_z <= good_z < 0 < above_z")
        if not 0 <= self.great_percentile <= self.good_percentile < 50 < self.above_percentile <= 100:
            raise ValueError("need 0 <= great_percentile <= good_percentile < 50 < above_percentile <= 100")
        if not 0 <= self.good_min_discount <= self.great_min_discount < 1 or self.above_min_premium < 0:
            raise ValueError("need 0 <= good_min_discount <= great_min_discount < 1 and above_min_premium >= 0")


DEFAULT_POLICY = DealPolicy()


@dataclass(frozen=True, slots=True)
class Comparable:
    """One earlier listing's price as storage recorded it."""

    listing_id: int
    title: str  # as stored, not folded
    total: Decimal  # price plus shipping where shown (see `total_price`)


@dataclass(frozen=True, slots=True)
class DealScore:
    """Where one total stands among its comparables' totals."""

    percentile: float  # 0-100: the share of comparables cheaper, ties counted half (mid-rank)
    median: Decimal
    count: int  # comparables scored against (positive totals only)
    robust_z: float | None  # (total - median) / (1.4826 * MAD); None when MAD is 0 (see `score`)
    verdict: Verdict
    low_confidence: bool
    below_median: float  # share under the median: 0.31 is 31% below, -0.12 is 12% above


def window_start(now: datetime, policy: DealPolicy = DEFAULT_POLICY) -> datetime:
    """The earliest time a comparable may have been seen; the clock is the caller's."""
    return now - timedelta(days=policy.window_days)


def comparable_words(query: str) -> str:
    """A search's words in one canonical form: folded, unique, sorted, space-joined, at most
    `MAX_COMPARABLE_WORDS_LENGTH` long. "RTX 3080", "3080 rtx" and "RTX  3080 rtx" all give "3080 rtx"; a query
    too long loses whole words from the end rather than keeping half of one."""
    words = " ".join(sorted(set(tokenize(query))))
    if len(words) <= MAX_COMPARABLE_WORDS_LENGTH:
        return words
    cut = words.rfind(" ", 0, MAX_COMPARABLE_WORDS_LENGTH + 1)
    return words[:cut] if cut > 0 else words[:MAX_COMPARABLE_WORDS_LENGTH]


def total_price(listing: Listing) -> Decimal | None:
    """What the buyer pays: the price plus shipping where the page shows it in the same currency. Shipping in
    another currency is left out rather than converted, as there are no exchange rates here; no price, no total."""
    price = listing.price
    if price is None:
        return None
    shipping = listing.shipping
    if shipping is None or shipping.currency != price.currency:
        return price.amount
    return price.amount + shipping.amount


def _loosen(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The pattern without its word-boundary assertions: it matches wherever the exact one does, and more. `re`
    finds a bare word several times faster than one behind a \\b, which it must try at every position."""
    return re.compile(pattern.pattern.replace(r"\b", ""), pattern.flags)


def _ascii_skeleton(title: str) -> str:
    """The title decomposed, case-folded and stripped of everything not ASCII, all in C. Every ASCII run of
    `fold(title)` is also a run of this, so an ASCII word missing here is missing there: a cheap first test that
    spares most titles with accents the exact fold, which walks them a character at a time."""
    return unicodedata.normalize("NFKD", title).casefold().encode("ascii", "ignore").decode("ascii")


def _title_test(exclude: Sequence[str], required_words: str | None) -> Callable[[str], bool] | None:
    """Whether a title has every required word and no excluded one, or None when there are no words to test.

    The words are scout.matching's own patterns from `build_matcher` (a word matches at the start of a word of the
    folded title), so the two never disagree. Two shortcuts keep 5,000 titles fast and change no answer: a loose
    search without the \\b assertions runs first, as the exact pattern can match only where it does (and from its
    first match on); and a title with accents is first tried on its ASCII skeleton when the words are ASCII.
    """
    matcher = build_matcher(SearchSpec(query=required_words or "", marketplaces=(), check_interval_minutes=0,
                                       exclude=tuple(exclude)))
    patterns = [*matcher.required, *([matcher.excluded] if matcher.excluded is not None else [])]
    if not patterns:
        return None
    required = [(pattern.search, _loosen(pattern).search) for pattern in matcher.required]
    excluded = (matcher.excluded.search, _loosen(matcher.excluded).search) if matcher.excluded is not None else None
    skeleton_ok = all(pattern.pattern.isascii() for pattern in patterns)

    def keeps(title: str) -> bool:
        if skeleton_ok and not title.isascii():
            skeleton = _ascii_skeleton(title)
            for _, loose in required:
                if loose(skeleton) is None:
                    return False
            if not required and (excluded is None or excluded[1](skeleton) is None):
                return True
        folded = fold(title)
        if excluded is not None:
            exact, loose = excluded
            hit = loose(folded)
            if hit is not None and exact(folded, hit.start()) is not None:
                return False
        for exact, loose in required:
            hit = loose(folded)
            if hit is None or exact(folded, hit.start()) is None:
                return False
        return True

    return keeps


def pick_comparables(candidates: Iterable[Comparable], *, exclude: Sequence[str], required_words: str | None = None,
                     skip_ids: Collection[int] = ()) -> list[Comparable]:
    """The candidates a search would have wanted, each listing once, in the order given.

    A listing's first row stands for it (storage passes the newest first), so a listing seen at several prices or
    loaded twice counts once. Excluded and required words follow scout.matching (see `_title_test`). `skip_ids`
    leaves out the listing being scored, so that it is not compared with itself.
    """
    keeps = _title_test(exclude, required_words)
    seen: set[int] = set(skip_ids)
    picked: list[Comparable] = []
    for candidate in candidates:
        if candidate.listing_id in seen:
            continue
        seen.add(candidate.listing_id)
        if keeps is None or keeps(candidate.title):
            picked.append(candidate)
    return picked


def _kth_deviations(prices: Sequence[Decimal], split: int, median: Decimal, k: int) -> tuple[Decimal, Decimal | None]:
    """The k-th and the (k-1)-th smallest (from 0; None for k = 0) of |price - median| over sorted `prices`, in
    O(log n) without building the list.

    Left of `split` the deviations are median - price, ascending as the index falls; from `split` on they are
    price - median, ascending as it rises: two sorted runs, and the k-th of two sorted runs is a binary search for
    how many of the first k + 1 come from the left run. Those k + 1 are the left run's first `lo` and the right
    run's first `j`: the k-th is the larger of the two last ones, the (k-1)-th the larger of what is left. (A score
    runs this for every alert: the deviations are worked out in place, not through helper functions.)"""
    n_left, n_right = split, len(prices) - split
    lo, hi = max(0, k + 1 - n_right), min(k + 1, n_left)
    while lo < hi:  # the largest i such that the i-th smallest of the left run is not above its partner on the right
        mid = (lo + hi + 1) // 2
        j = k + 1 - mid
        if j < n_right and median - prices[split - mid] > prices[split + j] - median:
            hi = mid - 1
        else:
            lo = mid
    j = k + 1 - lo
    left = median - prices[split - lo] if lo else None  # the left run's last of the k + 1
    right = prices[split + j - 1] - median if j else None  # the right run's
    if right is None or (left is not None and left >= right):
        assert left is not None
        before = median - prices[split - lo + 1] if lo > 1 else None  # the left run's one before its last
        return left, _larger(before, right)
    before = prices[split + j - 2] - median if j > 1 else None
    return right, _larger(before, left)


def _larger(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """The larger of two deviations, either of which may be missing."""
    if a is None or (b is not None and b > a):
        return b
    return a


def _median_sorted(prices: Sequence[Decimal]) -> Decimal:
    n = len(prices)
    middle = n // 2
    return prices[middle] if n % 2 else (prices[middle - 1] + prices[middle]) / 2


def _mad_sorted(prices: Sequence[Decimal], median: Decimal) -> Decimal:
    split = bisect_left(prices, median)
    n = len(prices)
    kth, before = _kth_deviations(prices, split, median, n // 2)
    if n % 2:
        return kth
    assert before is not None  # n >= 2
    return (before + kth) / 2


def score(total: Decimal, comparables: Sequence[Decimal], policy: DealPolicy = DEFAULT_POLICY) -> DealScore | None:
    """Rank `total` among the comparables' totals; None with fewer than `policy.min_scored` of them.

    Totals of 0 or less among the comparables are left out: a price of 0 is an item given away, which says nothing
    about what the item sells for. The scored total itself may be 0 (free is the best price there is), not below.

    When the MAD is 0 (more than half of the comparables ask the very same price) there is no spread to measure a
    distance in: `robust_z` is None and the verdict rests on the percentile and the share below the median alone.

    Sorting is the only O(n log n) step; a caller that holds the totals in order calls score_sorted, which only
    finds the median, MAD and rank by bisection in Decimal, so a score over 5,000 comparables stays fast.
    """
    return score_sorted(total, sorted(comparables), policy)


def score_sorted(total: Decimal, prices: Sequence[Decimal], policy: DealPolicy = DEFAULT_POLICY) -> DealScore | None:
    """`score` for comparables' totals already in ascending order: at 5,000 of them, a fourteenth of the cost, as
    sorting them again (Decimal comparisons, even when in order) is nearly all of a score."""
    if total < 0:
        return None
    prices = prices[bisect_right(prices, 0):] if prices and prices[0] <= 0 else prices
    count = len(prices)
    if count < policy.min_scored:
        return None
    median = _median_sorted(prices)
    mad = _mad_sorted(prices, median)
    cheaper = bisect_left(prices, total)
    equal = bisect_right(prices, total, lo=cheaper) - cheaper
    percentile = 100.0 * (cheaper + equal / 2) / count
    robust_z = float(total - median) / (MAD_TO_SIGMA * float(mad)) if mad else None
    below_median = float((median - total) / median)
    return DealScore(
        percentile=percentile,
        median=median,
        count=count,
        robust_z=robust_z,
        verdict=_verdict(percentile, robust_z, below_median, count, policy),
        low_confidence=count < policy.min_comparables,
        below_median=below_median,
    )


def _verdict(percentile: float, robust_z: float | None, below_median: float, count: int,
             policy: DealPolicy) -> Verdict:
    z = robust_z if robust_z is not None else math.nan  # NaN compares false: the percentile decides alone
    if (count >= policy.min_comparables and below_median >= policy.great_min_discount
            and (z <= policy.great_z or percentile <= policy.great_percentile)):
        return Verdict.GREAT
    if below_median >= policy.good_min_discount and (z <= policy.good_z or percentile <= policy.good_percentile):
        return Verdict.GOOD
    if -below_median >= policy.above_min_premium and (z >= policy.above_z or percentile >= policy.above_percentile):
        return Verdict.ABOVE
    return Verdict.FAIR


def describe(deal: DealScore) -> str:
    """One short line for an alert: "31% below the median of 41 similar listings (low confidence)"."""
    share = math.floor(abs(deal.below_median) * 100 + 0.5)  # half up: 12.5% reads as 13%, as people round
    if share == 0:
        where = "at the median"
    elif deal.below_median > 0:
        where = f"{share}% below the median"
    else:
        where = f"{share}% above the median"
    noun = "listing" if deal.count == 1 else "listings"
    confidence = " (low confidence)" if deal.low_confidence else ""
    return f"{where} of {deal.count} similar {noun}{confidence}"


def verdict_label(verdict: Verdict) -> str:
    """The verdict as an alert shows it: "great deal", "good deal", "fair price", "above typical"."""
    return _LABELS[verdict]


def parse_min_deal(text: str) -> Verdict:
    """A search's least deal from what a user typed: "great", "good" or "fair", or their labels ("Great deal"), in
    any case. Anything else is an InputError naming the choices."""
    key = " ".join(text.split()).casefold() if isinstance(text, str) else None
    for verdict in MIN_DEAL_CHOICES:
        if key in (verdict.value, _LABELS[verdict]):
            return verdict
    choices = ", ".join(verdict.value for verdict in MIN_DEAL_CHOICES)
    shown = str(text)[:30]
    raise InputError(f"The min_deal {shown!r} is not one of: {choices}.", field="min_deal")


def meets(deal: DealScore | None, minimum: Verdict | None) -> bool:
    """Whether a listing's score satisfies a search's least deal. Without a minimum every listing does; with one, a
    listing that could not be scored (no price, too few comparables) does not, as nothing says it is a deal."""
    if minimum is None:
        return True
    if deal is None:
        return False
    return _RANK[deal.verdict] <= _RANK[minimum]


def is_price_drop(old: Decimal, new: Decimal, share: Decimal = Decimal("0.10")) -> bool:
    """Whether a price fell by at least `share` of the old price (a 10% cut by default, exactly 10% included), so
    that a relisting 1 € cheaper does not announce itself again."""
    if not 0 < share < 1:
        raise ValueError(f"share must be between 0 and 1, not {share}")
    return old > 0 and old - new >= old * share
