"""The one-line /add grammar: a table of lines people type, and the messages for lines that cannot be read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.commands import build_spec
from bot.telegram.grammar import (
    parse_edit_line,
    parse_interval,
    parse_price_answer,
    parse_quiet_line,
    parse_search_line,
)
from scout.errors import InputError
from tests.bot.telegram.helpers import ADAPTERS


@pytest.mark.parametrize(("line", "fields"), [
    ("rtx 3080 -broken <500 >100 @ebay,craigslist every 10m",
     {"query": "rtx 3080", "exclude": ["broken"], "max_price": "500", "min_price": "100",
      "marketplaces": ["ebay", "craigslist"], "interval_minutes": 10}),
    ("nintendo switch", {"query": "nintendo switch"}),
    ("lego <$50.5", {"query": "lego", "max_price": "$50.5"}),
    ("lego < 50 > 10", {"query": "lego", "max_price": "50", "min_price": "10"}),
    ("lego <=50 >=10", {"query": "lego", "max_price": "50", "min_price": "10"}),
    ("camera -parts -broken -repair", {"query": "camera", "exclude": ["parts", "broken", "repair"]}),
    ("desk @ebay @craigslist", {"query": "desk", "marketplaces": ["ebay", "craigslist"]}),
    ("desk @EBAY", {"query": "desk", "marketplaces": ["ebay"]}),
    ("sofa every 2h", {"query": "sofa", "interval_minutes": 120}),
    ("sofa every 10 min", {"query": "sofa", "interval_minutes": 10}),
    ("sofa EVERY 1d", {"query": "sofa", "interval_minutes": 1440}),
    ("sofa every 2 hours", {"query": "sofa", "interval_minutes": 120}),
    ("sofa every 15", {"query": "sofa", "interval_minutes": 15}),
    ("bike near sfbay within 25km @craigslist",
     {"query": "bike", "location": "sfbay", "radius_km": "25", "marketplaces": ["craigslist"]}),
    ("bike near sfbay within 25 km", {"query": "bike", "location": "sfbay", "radius_km": "25"}),
    ("wi-fi router -5ghz", {"query": "wi-fi router", "exclude": ["5ghz"]}),
    ("  spaced   out  ", {"query": "spaced out"}),
    ("<500 @ebay", {"max_price": "500", "marketplaces": ["ebay"]}),  # no query: build_spec refuses it, see below
    ("bike no ads @kleinanzeigen", {"query": "bike", "sponsored": "exclude", "marketplaces": ["kleinanzeigen"]}),
    ("bike with Sponsored", {"query": "bike", "sponsored": "include"}),
    ("no man's sky", {"query": "no man's sky"}),
])
def test_good_lines(line: str, fields: dict) -> None:
    assert parse_search_line(line).fields() == fields


@pytest.mark.parametrize(("line", "message"), [
    ("lego <", "'<' needs a price after it, as in <500."),
    ("lego >", "'>' needs a price after it, as in >500."),
    ("lego <10 <20", "Give the maximum price once."),
    ("lego >10 >20", "Give the minimum price once."),
    ("lego -", "A lone '-' excludes nothing: put the word right after it, as in -broken."),
    ("lego @", "After '@', name the marketplaces, as in: @ebay,craigslist."),
    ("lego @,", "After '@', name the marketplaces, as in: @ebay,craigslist."),
    ("lego every", "After 'every', give an interval such as 10m, 2h or 1d."),
    ("lego every soon", "'soon' is not an interval; write it like 10m, 2h or 1d."),
    ("lego every 10x", "'10x' is not an interval; write it like 10m, 2h or 1d."),
    ("lego every 10m every 20m", "Give the interval once."),
    ("lego near", "After 'near', name a place, as in: near sfbay."),
    ("lego near a near b", "Give the place once."),
    ("lego within", "After 'within', give a distance such as 25km."),
    ("lego within far", "'far' is not a distance; write it like 25km."),
    ("lego no ads with ads", "Give the choice of sponsored ads once."),
    ("x" * 1001, "That line is 1001 characters long; keep it under 1000."),
])
def test_lines_that_cannot_be_read_say_why(line: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_search_line(line)
    assert str(caught.value) == message


@pytest.mark.parametrize(("line", "message"), [
    ("<500", "The query needs at least one word to search for."),
    ("lego <abc", "The maximum price 'abc' is not a number."),
    ("lego >500 <100", "The minimum price (500) is above the maximum price (100)."),
    ("lego @amazon", "Unknown marketplace 'amazon'. Choose from: craigslist, ebay."),
    ("lego every 1m", "The check interval must be at least 10 minutes for Craigslist."),
    ("lego @ebay every 1m", "The check interval must be at least 5 minutes for eBay."),
    ("lego every 30d", "The check interval can be at most 10080 minutes (a week)."),
    ("lego near sfbay @ebay", "None of the chosen marketplaces can search by location."),
    ("lego <-5", "The maximum price cannot be negative."),
])
def test_values_are_checked_by_the_shared_command_layer(line: str, message: str) -> None:
    """The grammar only reads the line; build_spec judges the values, so Telegram says what the CLI and Discord say."""
    with pytest.raises(InputError) as caught:
        build_spec(ADAPTERS, **{"query": "", **parse_search_line(line).fields()})
    assert str(caught.value) == message


def test_a_good_line_becomes_a_spec() -> None:
    spec = build_spec(ADAPTERS, **parse_search_line("RTX 3080 -Broken <500 >100 @ebay every 10m").fields())
    assert (spec.query, spec.exclude, spec.min_price, spec.max_price, spec.marketplaces,
            spec.check_interval_minutes) == ("RTX 3080", ("broken",), Decimal(100), Decimal(500), ("ebay",), 10)


def test_edit_lines() -> None:
    number, line = parse_edit_line("12 <400 every 30m")
    assert (number, line.fields()) == ("12", {"max_price": "400", "interval_minutes": 30})
    assert parse_edit_line("#7 new words")[1].fields() == {"query": "new words"}
    with pytest.raises(InputError, match="Tell me which search"):
        parse_edit_line("  ")
    with pytest.raises(InputError, match=r"Tell me what to change, as in: /edit 12 <400"):
        parse_edit_line("12")


@pytest.mark.parametrize(("text", "expected"), [
    ("any", (None, None)), ("", (None, None)), ("<500", (None, "500")), (">100 <500", ("100", "500")),
    ("100-500", ("100", "500")), ("$100 - $500", ("$100", "$500")), ("100 to 500", ("100", "500")),
    ("500", (None, "500")),
])
def test_price_answers(text: str, expected: tuple) -> None:
    assert parse_price_answer(text) == expected


def test_a_price_answer_that_is_not_one() -> None:
    with pytest.raises(InputError, match="Send a price range"):
        parse_price_answer("cheap please")
    with pytest.raises(InputError, match="Send only a price range here"):
        parse_price_answer("<500 @ebay")


@pytest.mark.parametrize(("text", "minutes"), [("10m", 10), ("10 min", 10), ("2h", 120), ("1d", 1440), ("45", 45),
                                               ("soon", "soon")])
def test_intervals(text: str, minutes: int | str) -> None:
    assert parse_interval(text) == minutes


HTML_QUERY = "The query looks like HTML: send just the words to search for, without tags such as <b>."


@pytest.mark.parametrize("line", ["<b>rtx</b>", "<script>", "rtx <b>3080</b> <500", '<a href="x">rtx</a> @ebay'])
def test_an_html_looking_line_is_refused_as_a_query_not_as_a_price(line: str) -> None:
    """Pins: `<b>rtx</b>` was read as the maximum price "b>rtx</b>" and refused as "not a number"."""
    assert parse_search_line(line).fields() == {"query": line}
    with pytest.raises(InputError) as caught:
        build_spec(ADAPTERS, **{"query": "", **parse_search_line(line).fields()})
    assert str(caught.value) == HTML_QUERY
    with pytest.raises(InputError, match="The maximum price '<b>500</b>' is not a number"):
        build_spec(ADAPTERS, query="lego", max_price=parse_price_answer("<b>500</b>")[1])


@pytest.mark.parametrize(("line", "fields"), [
    ("lego deal:good", {"query": "lego", "min_deal": "good"}),
    ("lego DEAL:Great", {"query": "lego", "min_deal": "great"}),
    ("lego deal:any", {"query": "lego", "min_deal": "any"}),
    ("lego drop:15%", {"query": "lego", "price_drop": "15%"}),
    ("lego drops:off", {"query": "lego", "price_drop": "off"}),
    ("lego seller:-BadShop seller:-junk_dealer", {"query": "lego", "exclude_sellers": ["BadShop", "junk_dealer"]}),
    ("lego seller:any", {"query": "lego", "exclude_sellers": []}),
    ("lego rating:98", {"query": "lego", "min_seller_rating": "98"}),
    ("lego rating:99.5%", {"query": "lego", "min_seller_rating": "99.5%"}),
    ("lego rating:any", {"query": "lego", "min_seller_rating": "off"}),
    ("lego -broken deal:great drop:20% seller:-bob rating:97 @ebay every 30m",
     {"query": "lego", "exclude": ["broken"], "min_deal": "great", "price_drop": "20%", "exclude_sellers": ["bob"],
      "min_seller_rating": "97", "marketplaces": ["ebay"], "interval_minutes": 30}),
    ("ideal:deal tv", {"query": "ideal:deal tv"}),  # only the option names before ':' are options
])
def test_deal_option_tokens(line: str, fields: dict) -> None:
    parsed = parse_search_line(line)
    assert (parsed.fields(), parsed.url) == (fields, None)


def test_deal_option_tokens_become_a_spec() -> None:
    spec = build_spec(ADAPTERS, **parse_search_line(
        "lego deal:good drop:15% seller:-BadShop seller:-Junk_Dealer rating:98 @ebay").fields())
    assert (spec.min_deal, spec.price_drop_share, spec.exclude_sellers, spec.min_seller_rating) == (
        "good", Decimal("0.15"), ("badshop", "junk_dealer"), Decimal(98))
    spec = build_spec(ADAPTERS, **parse_search_line("lego deal:any drops:off seller:any rating:any").fields())
    assert (spec.min_deal, spec.price_drop_share, spec.exclude_sellers, spec.min_seller_rating) == (
        None, None, (), None)


@pytest.mark.parametrize(("line", "message"), [
    ("lego deal:superb", "'deal:superb' is not a choice: write deal:great, deal:good, deal:fair or deal:any."),
    ("lego deal:", "'deal:' needs a value, as in deal:good, drop:15%, seller:-name or rating:98."),
    ("lego deal:good deal:great", "Give the deal level once."),
    ("lego drop:10% drops:off", "Give the price-drop share once."),
    ("lego rating:98 rating:99", "Give the seller rating once."),
    ("lego seller:bob", "To leave out a seller, put '-' before the name, as in seller:-bob."),
    ("lego seller:-", "To leave out a seller, put '-' before the name, as in seller:-name."),
    ("lego seller:-bob seller:any", ("'seller:any' takes back every seller left out, so it cannot come with "
                                     "seller:-name.")),
])
def test_deal_option_tokens_that_cannot_be_read(line: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_search_line(line)
    assert str(caught.value) == message


@pytest.mark.parametrize(("line", "message"), [
    ("lego rating:150", "The seller rating is a share of positive feedback from 1% to 100%."),
    ("lego rating:abc", "The seller rating 'abc' is not a percentage such as 98%."),
    ("lego drop:150%", "A price drop worth telling is from 1% to 90% of the price."),
    ("lego drop:lots", "The price-drop share 'lots' is not a percentage such as 10%, or 'off'."),
])
def test_deal_option_values_are_checked_by_the_shared_command_layer(line: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        build_spec(ADAPTERS, **parse_search_line(line).fields())
    assert str(caught.value) == message


def test_a_line_that_starts_with_a_web_address_is_a_pasted_search() -> None:
    address = "https://www.ebay.com/sch/i.html?_nkw=lego&_udhi=50"
    parsed = parse_search_line(f"{address} every 30m deal:good")
    assert (parsed.url, parsed.fields()) == (address, {"interval_minutes": 30, "min_deal": "good"})
    assert parse_search_line("HTTP://example.com/x").url == "HTTP://example.com/x"
    assert parse_search_line("lego https://example.com").url is None  # only a first word is an address
    with pytest.raises(InputError, match="A pasted search address starts a new search: send it with /add"):
        parse_edit_line(f"3 {address}")


@pytest.mark.parametrize(("text", "expected"), [
    ("22:00-07:00", ("22:00-07:00", None)), ("22:00-07:00 Europe/Berlin", ("22:00-07:00", "Europe/Berlin")),
    ("22:00 - 07:00 UTC", ("22:00-07:00", "UTC")), ("22\u20137", ("22-7", None)), ("off", ("off", None)),
    ("23-6 America/Port-au-Prince", ("23-6", "America/Port-au-Prince")),
])
def test_quiet_lines(text: str, expected: tuple) -> None:
    assert parse_quiet_line(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "22:00-07:00 Europe/Berlin now"])
def test_a_quiet_line_that_cannot_be_read(text: str) -> None:
    with pytest.raises(InputError, match=r"Send quiet hours as /quiet 22:00-07:00 with your time zone"):
        parse_quiet_line(text)
