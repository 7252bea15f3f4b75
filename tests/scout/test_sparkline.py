"""Table tests for scout.sparkline: block lines of price series and the one-line price trend."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scout.sparkline import MAX_TREND_CHARS, format_price, histogram, price_spread, price_trend, sparkline


def prices(text: str) -> list[Decimal]:
    return [Decimal(word) for word in text.split()]


@pytest.mark.parametrize(
    ("values", "width", "line"),
    [
        # nothing or one point is no trend
        ([], 12, ""),
        ([Decimal(5)], 12, ""),
        # lowest ▁, highest █, eight equal bands between
        (prices("1 2"), 12, "▁█"),
        (prices("2 1"), 12, "█▁"),
        (prices("0 1 2 3 4 5 6 7"), 12, "▁▂▃▄▅▆▇█"),
        (prices("120 110 112 95 89"), 12, "█▆▆▂▁"),
        # a flat series is a flat line at mid-height, however long
        (prices("5 5 5"), 12, "▄▄▄"),
        ([Decimal("7.5")] * 40, 12, "▄" * 12),
        # floats and Decimals mix; only the order of the values matters, not their scale
        ([1.0, Decimal(3), 2.0], 12, "▁█▅"),
        (prices("1E-9 3E-9 2E-9"), 12, "▁█▅"),
        (prices("1E+20 3E+20 2E+20"), 12, "▁█▅"),
        (prices("-3 -1 -2"), 12, "▁█▅"),
        # resampled: at most `width` blocks, the last value exact, the lowest and the highest kept
        ([Decimal(n) for n in range(20)], 12, "▁▁▂▃▃▄▅▆▆▇██"),
        (prices("50 50 50 50 50 100 50 50 50 50 50 50 0 50 50 50 50 70"), 5, "▅█▅▁▆"),
        # the spike and the dip are single points among many, and still show
        (prices("50 50 50 50 50 50 50 50 50 99 50 50 50 50 50 50 50 50 50 50 1 50 50 50 50 50 50 50 50 80"), 6,
         "▅▅█▁▅▇"),
        (prices("3 1 2 9 4"), 3, "▁█▄"),
    ],
)
def test_sparkline(values: list[Decimal], width: int, line: str) -> None:
    assert sparkline(values, width) == line
    assert len(line) <= width


def test_a_resampled_line_keeps_the_last_lowest_and_highest_value() -> None:
    """The last block is the last price, and ▁ and █ both appear, whatever the width."""
    values = [Decimal(n % 7) * 3 + Decimal(n) / 10 for n in range(200)] + [Decimal(-4), Decimal(900), Decimal(11)]
    for width in range(3, 40):
        line = sparkline(values, width)
        assert len(line) == width
        assert "▁" in line and "█" in line
        assert line[-1] == sparkline([Decimal(-4), Decimal(900), Decimal(11)])[-1]


@pytest.mark.parametrize(
    ("values", "width", "message"),
    [
        ([1.0, 2.0], 2, "width must be at least 3"),
        ([1.0, float("nan")], 12, "value 1 is NaN"),
        ([Decimal("Infinity"), Decimal(1)], 12, "value 0 is Infinity"),
        ([Decimal("sNaN")], 12, "finite numbers"),
    ],
)
def test_sparkline_refuses(values: list[Decimal | float], width: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sparkline(values, width)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("89", "89.00"),
        ("1234.5", "1,234.50"),
        ("0.999", "1.00"),
        ("0", "0.00"),
        # never "0.00" for a price above zero
        ("0.005", "0.005"),
        ("0.0001234", "0.00012"),
        ("-0.004", "-0.004"),
        # past 18 characters, scientific notation
        ("999999999999.99", "999,999,999,999.99"),
        ("1000000000000", "1.000e+12"),
        ("1E+30", "1.000e+30"),
    ],
)
def test_format_price(amount: str, text: str) -> None:
    assert format_price(Decimal(amount)) == text


@pytest.mark.parametrize(
    ("series", "currency", "line"),
    [
        ("", "EUR", ""),
        ("89", "EUR", "89.00 EUR, 1 price so far"),
        ("120 110 112 95 89", "EUR", "█▆▆▂▁ 120.00 → 89.00 EUR (-26%) over 5 prices"),
        ("100 100", "USD", "▄▄ 100.00 → 100.00 USD (0%) over 2 prices"),
        ("100 100.40", "USD", "▁█ 100.00 → 100.40 USD (+0.4%) over 2 prices"),
        ("100 99.95", "USD", "█▁ 100.00 → 99.95 USD (-0.1%) over 2 prices"),
        ("100 100.04", "USD", "▁█ 100.00 → 100.04 USD (≈0%) over 2 prices"),
        # halves round away from zero: a drop of 74.5% reads -75%
        ("200 51", "USD", "█▁ 200.00 → 51.00 USD (-75%) over 2 prices"),
        ("80 120", "GBP", "▁█ 80.00 → 120.00 GBP (+50%) over 2 prices"),
        # a change past ±999% is a bound; a first price of 0 has no percentage
        ("1 20000", "EUR", "▁█ 1.00 → 20,000.00 EUR (>+999%) over 2 prices"),
        ("0 5", "EUR", "▁█ 0.00 → 5.00 EUR over 2 prices"),
        # the currency is trimmed and bounded; none at all leaves no gap
        ("3858 3500", " JPY ", "█▁ 3,858.00 → 3,500.00 JPY (-9%) over 2 prices"),
        ("1 2", "", "▁█ 1.00 → 2.00 (+100%) over 2 prices"),
    ],
)
def test_price_trend(series: str, currency: str, line: str) -> None:
    assert price_trend(prices(series), currency) == line


def test_a_long_series_is_drawn_in_twelve_blocks_and_counted_in_full() -> None:
    series = [Decimal(200 - n) for n in range(150)]
    assert price_trend(series, "EUR") == "██▇▆▆▅▄▃▂▂▁▁ 200.00 → 51.00 EUR (-75%) over 150 prices"


@pytest.mark.parametrize(
    "series",
    [
        [Decimal("999999999999.99"), Decimal("0.0000001"), Decimal("123456789012.34")] * 5000,
        [Decimal("1E+300"), Decimal("-1E+300")],
        [Decimal("-999999999999.99"), Decimal("999999999999.99")] * 40000,
    ],
)
def test_the_trend_line_stays_under_eighty_characters(series: list[Decimal]) -> None:
    line = price_trend(series, "CURRENCY-NAME")
    assert 0 < len(line) <= MAX_TREND_CHARS
    assert "→" in line


def test_price_trend_refuses_a_price_that_is_not_a_number() -> None:
    with pytest.raises(ValueError, match="finite numbers"):
        price_trend([Decimal(1), Decimal("NaN")], "EUR")


@pytest.mark.parametrize(("prices", "line"), [
    ([], ""),
    (["10"], ""),
    (["10", "10", "10"], "\u2584 10.00\u201310.00 USD"),
    (["10", "20"], "\u2588\u2581\u2581\u2581\u2581\u2581\u2581\u2581\u2581\u2588 10.00\u201320.00 USD"),
    # Four in the lowest tenth, one at the middle, one at the top: a quarter of the peak is the third block.
    (["10", "11", "12", "13", "50", "100"],
     "\u2588\u2581\u2581\u2581\u2583\u2581\u2581\u2581\u2581\u2583 10.00\u2013100.00 USD"),
])
def test_price_spread_draws_how_many_comparables_ask_each_price(prices: list[str], line: str) -> None:
    assert price_spread([Decimal(price) for price in prices], "USD") == line


def test_histogram_counts_every_price_once() -> None:
    prices = sorted(Decimal(n) for n in range(1, 101))
    counts = histogram(prices)
    assert len(counts) == 10 and sum(counts) == 100
