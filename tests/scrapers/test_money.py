"""Table tests for scrapers.money: every price format the marketplaces print, ranges, and garbage."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scout.models import Money
from scrapers.money import MAX_AMOUNT, parse_amount, parse_money, split_price_range


@pytest.mark.parametrize(
    ("text", "default", "amount", "currency"),
    [
        # eBay and the fixtures README
        ("£3.95", None, "3.95", "GBP"),
        ("$1,234.56", None, "1234.56", "USD"),
        ("EUR 17,72", None, "17.72", "EUR"),
        ("1.234,56 €", None, "1234.56", "EUR"),
        ("S/. 44.38", None, "44.38", "PEN"),
        ("IDR1,614,898.07", None, "1614898.07", "IDR"),
        ("IDR1,092,000.00", None, "1092000.00", "IDR"),
        ("3,858 円", None, "3858", "JPY"),
        ("US $12.00", None, "12.00", "USD"),
        ("C $5", None, "5", "CAD"),
        ("AU $10.50", None, "10.50", "AUD"),
        ("CHF 12.50", None, "12.50", "CHF"),
        # Kleinanzeigen: one dot before three digits groups thousands; "VB" (negotiable) is noise
        ("4.350 €", None, "4350", "EUR"),
        ("3.888 € VB", None, "3888", "EUR"),
        # Vinted / Gumtree Poland, symbol on either side
        ("zł 20,00", None, "20.00", "PLN"),
        ("20,00 zł", None, "20.00", "PLN"),
        # shared symbols settle on the default when it is one of theirs
        ("kr 100", "SEK", "100", "SEK"),
        ("100 kr.", "DKK", "100", "DKK"),
        ("$400", "CAD", "400", "CAD"),
        ("$400", "GBP", "400", "USD"),
        ("¥1,500", None, "1500", "JPY"),
        ("¥1,500", "CNY", "1500", "CNY"),
        # no symbol: the default currency
        ("17,72", "EUR", "17.72", "EUR"),
        ("1 234,56", "EUR", "1234.56", "EUR"),
        ("250", "USD", "250", "USD"),
        # ranges give the lower end
        ("EUR 17,72 bis EUR 18,66", None, "17.72", "EUR"),
        ("£0.99 to £1.99", None, "0.99", "GBP"),
        ("$5.00 a $7.00", None, "5.00", "USD"),
        ("IDR1,794,996.00 to IDR2,392,729.67", None, "1794996.00", "IDR"),
        ("17,72 - 18,66 €", None, "17.72", "EUR"),
        # three decimals only where the currency has them, or below one
        ("KWD 1.500", None, "1.500", "KWD"),
        ("$0.999", None, "0.999", "USD"),
        # free items cost 0 in the default currency, so a max-price filter still matches them
        ("Free", "USD", "0", "USD"),
        ("Zu verschenken", "EUR", "0", "EUR"),
        ("gratis", "EUR", "0", "EUR"),
        # postage rows parse too: the caller decides which text is the price
        ("+ £4.56 postage", None, "4.56", "GBP"),
    ],
)
def test_parse_money_reads_each_format(text: str, default: str | None, amount: str, currency: str) -> None:
    assert parse_money(text, default) == Money(Decimal(amount), currency)


@pytest.mark.parametrize(
    ("text", "default"),
    [
        ("", "USD"),
        ("   ", "USD"),
        (None, "USD"),
        ("Free", None),  # free, but in no knowable currency
        ("Price on request", "EUR"),
        ("abc", "USD"),
        ("€", None),
        ("250", None),  # an amount without any currency
        ("kr 100", None),  # SEK, NOK, DKK or ISK: only a default settles it
        ("kr 100", "EUR"),
        ("\x00\xff\xfe garbage", "USD"),
    ],
)
def test_parse_money_returns_none_without_an_amount_and_currency(text: str | None, default: str | None) -> None:
    assert parse_money(text, default) is None


def test_parse_money_keeps_decimal_precision() -> None:
    money = parse_money("$1,234.56")
    assert money is not None
    assert isinstance(money.amount, Decimal)
    assert str(money.amount) == "1234.56"


@pytest.mark.parametrize(
    "text",
    ["US $99,999,999,999,999,999.00", "$100,000,000,000,000", "1.000.000.000.000.000 €", "IDR 123456789012345678901234"],
)
def test_an_absurd_amount_is_unpriced(text: str) -> None:
    """Regression: "US $99,999,999,999,999,999.00" on an eBay page was stored as a price, overflowed PostgreSQL's
    Numeric(18, 4) and aborted the whole scan."""
    assert parse_money(text) is None


def test_the_largest_sane_amount_is_a_price() -> None:
    largest = parse_money("IDR 99,999,999,999,999.99")
    assert largest == Money(Decimal("99999999999999.99"), "IDR")
    assert largest.amount < MAX_AMOUNT
    assert parse_amount("100000000000000") is None


def test_parse_money_does_not_read_currency_codes_inside_words() -> None:
    """"TL" (Turkish lira) inside "TOTAL" must not make the price TRY."""
    assert parse_money("TOTAL 5", "EUR") == Money(Decimal(5), "EUR")


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("EUR 17,72 bis EUR 18,66", "EUR 17,72", "EUR 18,66"),
        ("£0.99 to £1.99", "£0.99", "£1.99"),
        ("$5.00 a $7.00", "$5.00", "$7.00"),
        ("10–20 €", "10", "20 €"),
        ("£3.95", "£3.95", None),
        ("Buy it now or best offer", "Buy it now or best offer", None),
    ],
)
def test_split_price_range(text: str, low: str, high: str | None) -> None:
    assert split_price_range(text) == (low, high)


@pytest.mark.parametrize(
    ("digits", "currency", "expected"),
    [
        ("1,614,898.07", "IDR", "1614898.07"),
        ("1.234.567", "EUR", "1234567"),
        ("3,858", "JPY", "3858"),
        ("17,72", "EUR", "17.72"),
        ("1'234.50", "CHF", "1234.50"),
        ("12.", "USD", "12"),
    ],
)
def test_parse_amount_decides_separators(digits: str, currency: str, expected: str) -> None:
    assert parse_amount(digits, currency) == Decimal(expected)
