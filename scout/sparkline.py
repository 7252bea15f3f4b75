"""Text sparklines of a listing's prices: one line that fits an alert on any platform, even where images do not."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext

# The eight block elements U+2581..U+2588, lowest to highest; every chat font and terminal draws them.
BLOCKS = "▁▂▃▄▅▆▇█"
# A flat series sits mid-height: the lowest block would read as "at its lowest", the highest as "at its peak".
FLAT_BLOCK = BLOCKS[3]
# Room for the three points a resampled line must keep: the last price, the lowest and the highest.
MIN_WIDTH = 3
# price_trend stays on one line of a phone chat or a terminal; 80 columns is the narrowest of those.
MAX_TREND_CHARS = 79
# Longer amounts (from a trillion up) switch to scientific notation so that the trend line keeps its length bound.
MAX_AMOUNT_CHARS = 18
# A change this large is shown as a bound: past it the exact figure says nothing more about a deal.
MAX_PERCENT = Decimal(999)
# A fixed context, so that the result does not depend on whatever decimal context the calling thread has set.
_DECIMALS = Context(prec=28, rounding=ROUND_HALF_EVEN)


def _as_decimals(values: Sequence[Decimal | float]) -> list[Decimal]:
    numbers = [value if isinstance(value, Decimal) else Decimal(value) for value in values]
    for position, number in enumerate(numbers):
        if not number.is_finite():
            raise ValueError(f"sparkline values must be finite numbers; value {position} is {number}")
    return numbers


def _pick_indices(values: Sequence[Decimal], width: int) -> list[int]:
    """At most `width` positions, in order: the last, the lowest and the highest always, the first when there is
    room, the rest spread evenly over what is left."""
    count = len(values)
    if count <= width:
        return list(range(count))
    lowest = min(range(count), key=values.__getitem__)
    highest = max(range(count), key=values.__getitem__)
    chosen: list[int] = []
    for index in (count - 1, lowest, highest, 0):
        if index not in chosen and len(chosen) < width:
            chosen.append(index)
    room = width - len(chosen)
    rest = [index for index in range(count) if index not in chosen]
    # The middle of each of `room` equal stretches of the rest; they are distinct, as len(rest) >= room.
    chosen.extend(rest[(2 * part + 1) * len(rest) // (2 * room)] for part in range(room))
    return sorted(chosen)


def sparkline(values: Sequence[Decimal | float], width: int = 12) -> str:
    """The series as up to `width` block characters, lowest value ▁ and highest █.

    A longer series is resampled, never averaged: every block is a real price, the last block is the last price,
    and the lowest and highest prices keep their blocks. Fewer than two values give "": one point is no trend.
    """
    if width < MIN_WIDTH:
        raise ValueError(f"sparkline width must be at least {MIN_WIDTH}, got {width}")
    numbers = _as_decimals(values)
    if len(numbers) < 2:
        return ""
    picked = [numbers[index] for index in _pick_indices(numbers, width)]
    low, high = min(picked), max(picked)
    if low == high:
        return FLAT_BLOCK * len(picked)
    with localcontext(_DECIMALS):
        span = high - low
        # Eight equal bands between the lowest and the highest; only the highest value itself falls on the edge.
        levels = [min(len(BLOCKS) - 1, int((value - low) * len(BLOCKS) / span)) for value in picked]
    return "".join(BLOCKS[level] for level in levels)


def format_price(amount: Decimal) -> str:
    """An amount as alerts print it (two places, thousands grouped), but never "0.00" for a price above zero and
    never wider than MAX_AMOUNT_CHARS."""
    if amount and abs(amount) < Decimal("0.01"):
        return f"{amount:.2g}"
    text = f"{amount:,.2f}"
    return text if len(text) <= MAX_AMOUNT_CHARS else f"{amount:.3e}"


def _percent_change(first: Decimal, last: Decimal) -> str | None:
    if first <= 0:
        return None
    with localcontext(_DECIMALS):
        change = (last - first) * 100 / first
    if abs(change) > MAX_PERCENT:
        return f"{'>' if change > 0 else '<'}{MAX_PERCENT.copy_sign(change):+.0f}%"
    if not change:
        return "0%"
    # Below one percent a whole number would read "0%" or "-0%" for a real change; halves round away from zero.
    shown = change.quantize(Decimal("0.1") if abs(change) < 1 else Decimal(1), rounding=ROUND_HALF_UP)
    return f"{shown:+f}%" if shown else "≈0%"


def price_trend(prices: Sequence[Decimal], currency: str) -> str:
    """One line on a listing's prices, oldest first: "▇▆▆▃▁ 120.00 → 89.00 EUR (-26%) over 5 prices".

    No prices give "" (nothing to say); one price gives "89.00 EUR, 1 price so far". The line is never longer than
    MAX_TREND_CHARS: the count and then the percentage go first when the amounts are long.
    """
    numbers = _as_decimals(prices)
    unit = currency.strip()[:8]
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f"{format_price(numbers[0])} {unit}, 1 price so far".strip()
    first, last = numbers[0], numbers[-1]
    head = f"{sparkline(numbers)} {format_price(first)} → {format_price(last)} {unit}".rstrip()
    change = _percent_change(first, last)
    tails = [f" ({change}) over {len(numbers)} prices" if change else f" over {len(numbers)} prices"]
    if change:
        tails.append(f" ({change})")
    for tail in tails:
        if len(head + tail) <= MAX_TREND_CHARS:
            return head + tail
    return head


def histogram(prices: Sequence[Decimal], bins: int = 10) -> list[int]:
    """How many of the prices (sorted, lowest first) fall in each of `bins` equal-width bins from the lowest to the
    highest; one bin when they are all equal."""
    low, high = prices[0], prices[-1]
    if high == low:
        return [len(prices)]
    counts = [0] * bins
    with localcontext(_DECIMALS):
        width = (high - low) / bins
        for price in prices:
            counts[min(bins - 1, int((price - low) / width))] += 1
    return counts


def price_spread(prices: Sequence[Decimal], currency: str) -> str:
    """One line on what comparable listings ask, sorted prices in: "▁▃█▆▂▁▁▁▁▁ 45.00–210.00 USD". Fewer than two
    prices give "" (no spread to draw)."""
    if len(prices) < 2:
        return ""
    counts = histogram(prices)
    line = sparkline(counts) if len(counts) > 1 else FLAT_BLOCK
    return f"{line} {format_price(prices[0])}\u2013{format_price(prices[-1])} {currency.strip()[:8]}".rstrip()
