"""The one-line grammar of the Telegram commands: /add and /edit lines -> fields for build_spec (or a pasted search
address), and the /quiet window."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.commands import looks_like_markup
from bot.deal_options import read_min_deal
from scout.errors import InputError

# A line longer than this is a paste accident; build_spec would refuse its query anyway.
MAX_LINE_LENGTH = 1000
EXAMPLE = "/add rtx 3080 -broken <500 >100 @ebay,craigslist every 10m"

_UNITS = {
    "m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1,
    "h": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60,
    "d": 1440, "day": 1440, "days": 1440,
}
_INTERVAL = re.compile(r"^(\d{1,6})([a-z]*)$")
_RADIUS = re.compile(r"^(\d{1,6})\s*km$")
_PRICE_OP = re.compile(r"^(<=?|>=?)(.*)$")
# The words after `no` / `with` that speak of paid placements: `no ads` leaves them out.
_ADS = ("ads", "sponsored")
# `name:value` tokens of the deal options, each name as people are likely to type it.
_DEAL = ("deal", "deals")
_DROP = ("drop", "drops")
_SELLER = ("seller", "sellers")
_RATING = ("rating",)
# Values that undo an option in /edit: every seller again, any seller rating.
_ANY = ("any", "all", "off", "none")
# A pasted search address: what `/add https://www.ebay.com/sch/i.html?_nkw=lego` starts with.
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


@dataclass
class SearchLine:
    """What a line says, as build_spec keyword arguments; fields the line does not mention stay None."""

    words: list[str] = field(default_factory=list)
    exclude: list[str] | None = None
    min_price: str | None = None
    max_price: str | None = None
    marketplaces: list[str] | None = None
    interval_minutes: int | str | None = None
    location: str | None = None
    radius_km: str | None = None
    sponsored: str | None = None  # "exclude" for `no ads`, "include" for `with ads`
    min_deal: str | None = None  # "good", "great", "fair", or "any" to take every match again
    price_drop: str | None = None  # "15%", or "off"
    exclude_sellers: list[str] | None = None  # [] after `seller:any`: no seller is left out any more
    min_seller_rating: str | None = None  # "98", or "off"
    url: str | None = None  # a pasted search address, read by Commands.search_from_url (not a build_spec field)

    @property
    def query(self) -> str | None:
        return " ".join(self.words) or None

    def fields(self) -> dict[str, Any]:
        """Only the fields the line set: /add fills the rest with defaults, /edit keeps what was there."""
        values = {
            "query": self.query, "exclude": self.exclude, "min_price": self.min_price, "max_price": self.max_price,
            "marketplaces": self.marketplaces, "interval_minutes": self.interval_minutes,
            "location": self.location, "radius_km": self.radius_km, "sponsored": self.sponsored,
            "min_deal": self.min_deal, "price_drop": self.price_drop, "exclude_sellers": self.exclude_sellers,
            "min_seller_rating": self.min_seller_rating,
        }
        return {key: value for key, value in values.items() if value is not None}


def parse_search_line(text: str) -> SearchLine:
    """Read `rtx 3080 -broken <500 >100 @ebay,craigslist every 10m near sfbay within 25km deal:good`.

    Words are the query; `-word` excludes; `<N` / `>N` bound the price; `@a,b` picks marketplaces;
    `every 10m|2h|1d` sets the interval; `near PLACE` and `within N km` set a location; `no ads` leaves out
    listings a marketplace marks as sponsored (`with ads` takes them back). The deal options: `deal:good|great|fair`
    (`deal:any` for every match), `drop:15%` or `drops:off`, `seller:-name` to leave a seller out (once per seller;
    `seller:any` takes them all back), `rating:98` for sellers rated 98% or better. A line that starts with an
    http(s) address is a pasted search (`url`); the rest of the line changes what the address says. Values are
    checked by bot.commands.build_spec, so the messages match the other front ends; this only refuses a line it
    cannot read.
    """
    if len(text) > MAX_LINE_LENGTH:
        raise InputError(f"That line is {len(text)} characters long; keep it under {MAX_LINE_LENGTH}.")
    if looks_like_markup(text):
        # Pasted HTML is the query, for build_spec to refuse as such: read as tokens, `<b>rtx</b>` would be a
        # maximum price of "b>rtx</b>".
        return SearchLine(words=[text])
    tokens = text.split()
    line = SearchLine()
    index = 0
    if tokens and _URL.match(tokens[0]):
        line.url = tokens[0]
        index = 1
    while index < len(tokens):
        token = tokens[index]
        lowered = token.lower()
        index += 1
        if lowered == "every":
            index = _take_interval(line, tokens, index)
        elif lowered == "near":
            if index >= len(tokens):
                raise InputError("After 'near', name a place, as in: near sfbay.", field="location")
            _set_once(line, "location", tokens[index], "place")
            index += 1
        elif lowered == "within":
            index = _take_radius(line, tokens, index)
        elif lowered in ("no", "with") and index < len(tokens) and tokens[index].lower() in _ADS:
            _set_once(line, "sponsored", "exclude" if lowered == "no" else "include", "choice of sponsored ads")
            index += 1
        elif ":" in token and token.partition(":")[0].lower() in (*_DEAL, *_DROP, *_SELLER, *_RATING):
            _take_option(line, *token.split(":", 1))
        elif token.startswith("@"):
            names = [name for name in token[1:].replace(",", " ").split() if name]
            if not names:
                raise InputError("After '@', name the marketplaces, as in: @ebay,craigslist.", field="marketplaces")
            line.marketplaces = (line.marketplaces or []) + [name.lower() for name in names]
        elif token.startswith("-") and len(token) > 1:
            line.exclude = (line.exclude or []) + [token[1:]]
        elif token == "-":
            raise InputError("A lone '-' excludes nothing: put the word right after it, as in -broken.",
                             field="exclude")
        elif match := _PRICE_OP.match(token):
            op, value = match.groups()
            if not value:
                if index >= len(tokens):
                    raise InputError(f"'{op}' needs a price after it, as in {op}500.", field="price")
                value = tokens[index]
                index += 1
            name = "max_price" if op.startswith("<") else "min_price"
            _set_once(line, name, value, "maximum price" if name == "max_price" else "minimum price")
        else:
            line.words.append(token)
    return line


def parse_edit_line(text: str) -> tuple[str, SearchLine]:
    """`/edit 12 <400 every 30m`: the search number, then what changes (the same grammar as /add)."""
    head, _, rest = text.strip().partition(" ")
    if not head:
        raise InputError("Tell me which search to change and how, as in: /edit 12 <400 every 30m.",
                         field="search_id")
    line = parse_search_line(rest)
    if line.url:
        raise InputError("A pasted search address starts a new search: send it with /add. /edit changes a search "
                         "with words such as <400 every 30m.", field="url")
    if not line.fields():
        raise InputError(f"Tell me what to change, as in: /edit {head[:12]} <400 every 30m.")
    return head, line


def parse_interval(text: str) -> int | str:
    """`10m`, `10 min`, `2h`, `1d` or a bare number of minutes -> minutes; anything else is returned as typed."""
    compact = "".join(text.lower().split())
    match = _INTERVAL.match(compact)
    if not match or match.group(2) not in ("", *_UNITS):
        return text
    return int(match.group(1)) * _UNITS.get(match.group(2), 1)


def _take_interval(line: SearchLine, tokens: list[str], index: int) -> int:
    if index >= len(tokens):
        raise InputError("After 'every', give an interval such as 10m, 2h or 1d.", field="interval")
    value = parse_interval(tokens[index])
    index += 1
    # "every 10 min": the unit may come as its own word.
    if isinstance(value, int) and index < len(tokens) and tokens[index].lower() in _UNITS \
            and tokens[index - 1].isdigit():
        value *= _UNITS[tokens[index].lower()]
        index += 1
    if not isinstance(value, int):
        raise InputError(f"{value[:20]!r} is not an interval; write it like 10m, 2h or 1d.", field="interval")
    if line.interval_minutes is not None:
        raise InputError("Give the interval once.", field="interval")
    line.interval_minutes = value
    return index


def _take_radius(line: SearchLine, tokens: list[str], index: int) -> int:
    if index >= len(tokens):
        raise InputError("After 'within', give a distance such as 25km.", field="radius")
    text = tokens[index].lower()
    index += 1
    if index < len(tokens) and tokens[index].lower() == "km" and text.isdigit():
        text += "km"
        index += 1
    match = _RADIUS.match(text)
    if not match:
        raise InputError(f"{text[:20]!r} is not a distance; write it like 25km.", field="radius")
    _set_once(line, "radius_km", match.group(1), "distance")
    return index


def _take_option(line: SearchLine, name: str, value: str) -> None:
    """One `name:value` deal option. build_spec judges the values, all but the deal level's, whose message here can
    name what was typed."""
    key = name.lower()
    if not value.strip():
        raise InputError(f"'{name[:12]}:' needs a value, as in deal:good, drop:15%, seller:-name or rating:98.",
                         field=key)
    if key in _DEAL:
        try:
            read_min_deal(value)
        except InputError:
            # build_spec's message names the field (min_deal); this one names what was typed here.
            raise InputError(f"'{name[:12]}:{value[:20]}' is not a choice: write deal:great, deal:good, deal:fair "
                             "or deal:any.", field="min_deal") from None
        _set_once(line, "min_deal", value.lower(), "deal level")
    elif key in _DROP:
        _set_once(line, "price_drop", value.lower(), "price-drop share")
    elif key in _RATING:
        _set_once(line, "min_seller_rating", "off" if value.lower() in _ANY else value, "seller rating")
    elif value.lower() in _ANY:
        if line.exclude_sellers:
            raise InputError(f"'{name[:12]}:{value[:12]}' takes back every seller left out, so it cannot come with "
                             "seller:-name.", field="exclude_sellers")
        line.exclude_sellers = []
    elif not value.startswith("-") or len(value) < 2:
        example = value.lstrip("-")[:40] or "name"
        raise InputError(f"To leave out a seller, put '-' before the name, as in {name[:12]}:-{example}.",
                         field="exclude_sellers")
    else:
        line.exclude_sellers = [*(line.exclude_sellers or []), value[1:]]


def _set_once(line: SearchLine, name: str, value: str, label: str) -> None:
    if getattr(line, name) is not None:
        raise InputError(f"Give the {label} once.", field=name)
    setattr(line, name, value)


def parse_price_answer(text: str) -> tuple[str | None, str | None]:
    """The guided /add's price step: `any`, `<500`, `>100 <500`, `100-500` or `500` (a maximum) -> (min, max)."""
    compact = text.strip().lower()
    if compact in ("", "any", "no", "none", "skip", "-"):
        return None, None
    if match := re.fullmatch(r"([$€£]?[\d.,]+)\s*(?:-|–|to)\s*([$€£]?[\d.,]+)", compact):
        return match.group(1), match.group(2)
    line = parse_search_line(text)
    if line.min_price is None and line.max_price is None:
        if len(line.words) == 1 and not line.fields().keys() - {"query"}:
            return None, line.words[0]
        raise InputError("Send a price range such as <500, >100 <500 or 100-500, or 'any'.", field="price")
    if line.fields().keys() - {"min_price", "max_price"}:
        raise InputError("Send only a price range here, such as <500 or 100-500.", field="price")
    return line.min_price, line.max_price


def parse_quiet_line(text: str) -> tuple[str, str | None]:
    """`/quiet 22:00-07:00 Europe/Berlin` (spaces around the dash allowed), `/quiet 22-7`, `/quiet off` -> the
    window and the time zone as typed, for bot.deal_options to judge."""
    parts = re.sub(r"\s*[-\u2013]\s*", "-", text.strip()).split()
    if not parts or len(parts) > 2:
        raise InputError("Send quiet hours as /quiet 22:00-07:00 with your time zone, as in "
                         "/quiet 22:00-07:00 Europe/Berlin, or /quiet off.", field="quiet_hours")
    return parts[0], parts[1] if len(parts) > 1 else None
