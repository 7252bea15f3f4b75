"""Craigslist's JSON search API (sapi v7/v8, what the site's own front end reads) -> Listings and a verdict; pure."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from scout.errors import ParseError
from scout.models import Listing, Money
from scrapers.base import Distinct, ScrapeResult

log = logging.getLogger(__name__)

MARKETPLACE = "craigslist"
DEFAULT_CURRENCY = "USD"

# sapi category ids of the "for sale" (sss) section -> the abbreviation in posting URLs, owner and dealer
# variants. Source: the category table in Craigslist's own search front end (sapi v7, 2022).
SSS_CATEGORIES: dict[int, str] = {
    5: "for", 7: "sys", 20: "wan", 42: "bar", 44: "tix", 68: "bik", 69: "mcy", 73: "gms", 92: "bks", 93: "spo",
    94: "clo", 95: "clt", 96: "ele", 97: "hsh", 98: "msg", 101: "zip", 107: "bab", 117: "emd", 118: "tls",
    119: "boa", 120: "jwl", 122: "pts", 124: "rvs", 132: "tag", 133: "grd", 134: "bfs", 135: "art", 136: "mat",
    137: "pho", 141: "fuo", 142: "fud", 145: "cto", 146: "ctd", 149: "app", 150: "atq", 151: "vgm", 152: "hab",
    153: "mob", 160: "mcd", 161: "tid", 162: "ppd", 163: "ptd", 164: "bod", 165: "mod", 166: "syd", 167: "eld",
    168: "rvd", 169: "atd", 170: "ard", 171: "bad", 172: "bid", 173: "bkd", 174: "bfd", 175: "emq", 176: "cld",
    177: "cbd", 178: "grq", 179: "fod", 180: "had", 181: "hsd", 182: "jwd", 183: "mad", 184: "msd", 185: "phd",
    186: "sgd", 187: "tld", 188: "tad", 189: "vgd", 190: "wad", 191: "snw", 192: "snd", 193: "hvo", 194: "hvd",
    195: "mpo", 196: "mpd", 197: "bop", 198: "bdp", 199: "sop", 200: "sdp", 201: "bpo", 202: "bpd", 203: "wto",
    204: "wtd", 205: "tro", 206: "trb", 208: "avo", 209: "avd",
}
# sapi image ids become thumbnails at this size (<host><image id><size>), as the site's own result list shows them.
SAPI_IMAGE_HOST, SAPI_IMAGE_SIZE = "https://images.craigslist.org/", "_300x300.jpg"
# sapi items: [id offset, posted offset, category, price, "loc:desc[:hood]~lat~lon", tagged extras..., title].
_SAPI_FIXED_FIELDS = 5
_SAPI_IMAGES_TAG = 4
_SAPI_NO_PRICE = -1


class _Decode(msgspec.Struct):
    """data.decode: the bases item ids and times are offsets from, and the location tables."""

    minPostingId: Any = None
    minPostedDate: Any = None
    locations: Any = None
    locationDescriptions: Any = None


class _Data(msgspec.Struct):
    items: list[Any] | None = None
    decode: _Decode | None = None


class _Answer(msgspec.Struct):
    data: _Data | None = None
    errors: Any = None


# Typed decoding builds only the fields above and skips the rest of the answer (filters, areas, related
# searches) without building it: half the cost of json.loads.
_DECODER = msgspec.json.Decoder(_Answer)


def parse_sapi(data: bytes | str | dict[str, Any], *, currency: str = DEFAULT_CURRENCY) -> ScrapeResult:
    """The JSON search API's answer: positional item arrays decoded against data.decode.

    Every item counts as a result row (an item repeating an earlier posting id, once), so an item that cannot
    be decoded makes the fetch partial.
    """
    answer = _answer(data)
    if answer.data is None or answer.data.items is None or answer.data.decode is None:
        raise ParseError(f"Craigslist search API answer has no data.items/decode (errors: {answer.errors!r})")
    items, decode = answer.data.items, answer.data.decode
    try:
        bases = (int(decode.minPostingId), int(decode.minPostedDate))
    except (TypeError, ValueError):
        bases = None  # every item is undecodable
    found = Distinct()
    if bases is not None:
        places = _Places(decode)
        for item in items:
            listing = _sapi_listing(item, bases, currency, places)
            if listing is not None:
                found.add(listing)
    if items and not found.listings:
        raise ParseError(f"{len(items)} Craigslist API items but none decoded: the format changed")
    return ScrapeResult.of(found.listings, rows=len(items) - found.repeats)


def _answer(data: bytes | str | dict[str, Any]) -> _Answer:
    """The parts of the answer the parser reads; ParseError, saying what is wrong, when they are not there."""
    try:
        return msgspec.convert(data, _Answer) if isinstance(data, dict) else _DECODER.decode(data)
    except msgspec.ValidationError:
        payload = data if isinstance(data, dict) else msgspec.json.decode(data)
    except msgspec.DecodeError as err:
        raise ParseError(f"Craigslist search API answer is not JSON: {err}") from err
    # Not the shape above: say which part is missing or of the wrong kind.
    result = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(result, dict) or "items" not in result or "decode" not in result:
        errors = payload.get("errors") if isinstance(payload, dict) else None
        raise ParseError(f"Craigslist search API answer has no data.items/decode (errors: {errors!r})")
    if not isinstance(result["items"], list):
        raise ParseError("Craigslist search API data.items is not a list")
    raise ParseError("Craigslist search API data.decode is not an object: the format changed")


class _Places:
    """Each item's "locIdx:descIdx[:hoodIdx]~lat~lon" and category as a URL prefix and a place name, worked out
    once per answer for each of the handful that its items repeat."""

    def __init__(self, decode: _Decode) -> None:
        self._locations = decode.locations if isinstance(decode.locations, list) else []
        self._descriptions = decode.locationDescriptions if isinstance(decode.locationDescriptions, list) else []
        self._known: dict[tuple[str, Any], tuple[str, str | None]] = {}

    def get(self, where: str, category: int | None) -> tuple[str, str | None]:
        """(the posting URL up to its "<id>.html", the place's name) for an item's location and category."""
        key = (where.split("~", 1)[0], category)
        known = self._known.get(key)
        if known is None:
            hostname, subarea, description = self._location(key[0])
            abbreviation = SSS_CATEGORIES.get(category, "sss") if category is not None else "sss"
            path = f"{subarea}/{abbreviation}" if subarea else abbreviation
            known = self._known[key] = (f"https://{hostname}.craigslist.org/{path}/", description)
        return known

    def _location(self, where: str) -> tuple[str, str, str | None]:
        """(hostname, subarea, description) from "locIdx:descIdx[:hoodIdx]" and the decode tables."""
        indexes = where.split(":", 2)
        hostname, subarea, description = "www", "", None
        try:
            area = self._locations[int(indexes[0])]  # int() skips the stray spaces of "1: 2"
            if isinstance(area, list) and len(area) >= 2:
                hostname = str(area[1])
                subarea = str(area[2]) if len(area) > 2 else ""
            if len(indexes) > 1:
                found = self._descriptions[int(indexes[1])]
                description = found if isinstance(found, str) and found else None
        except (IndexError, ValueError):
            log.debug("Craigslist API location %r is outside the decode tables", where)
        return hostname, subarea, description or (hostname if hostname != "www" else None)


def _sapi_listing(item: Any, bases: tuple[int, int], currency: str, places: _Places) -> Listing | None:
    try:
        posting_id = bases[0] + int(item[0])
        # tz passed by position: CPython parses a keyword argument here at the cost of the call itself.
        posted = datetime.fromtimestamp(bases[1] + int(item[1]), UTC)
        category, price, where = item[2], item[3], str(item[4])
        category = category if isinstance(category, int) else None  # a key of SSS_CATEGORIES or none
    except (KeyError, IndexError, TypeError, ValueError, OverflowError, OSError):
        log.debug("undecodable Craigslist API item %r", item)
        return None
    title = None
    image_id: str | None = None
    for extra in item[_SAPI_FIXED_FIELDS:]:
        if isinstance(extra, str):
            title = extra
        elif isinstance(extra, list) and len(extra) > 1 and extra[0] == _SAPI_IMAGES_TAG:
            image_id = str(extra[1]).split(":", 1)[-1].strip()  # only the first picture is shown
    if not title:
        return None
    url_prefix, location = places.get(where, category)
    has_price = isinstance(price, int) and price != _SAPI_NO_PRICE
    return Listing(
        marketplace=MARKETPLACE,
        external_id=str(posting_id),
        title=title,
        url=f"{url_prefix}{posting_id}.html",
        price=Money(Decimal(price), currency) if has_price else None,
        location=location,
        image_url=f"{SAPI_IMAGE_HOST}{image_id}{SAPI_IMAGE_SIZE}" if image_id else None,
        posted_at=posted,
    )
