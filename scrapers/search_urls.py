"""A marketplace search address pasted by a user -> the saved search it asks for; pure, no IO.

People find a search on the site itself and paste its address. Each reader below turns one marketplace's address
shapes into what a saved search keeps: the words, price bounds, a location in the form that marketplace's adapter
takes, and the names of the filters the address carried that a saved search cannot keep, so the front end can say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import SplitResult, unquote_to_bytes, urlsplit

from scout.errors import InputError
from scrapers.craigslist.adapter import CraigslistAdapter
from scrapers.ebay.adapter import EbayAdapter
from scrapers.ebay.parse import DOMAIN_CURRENCIES as EBAY_CURRENCIES
from scrapers.facebook.adapter import FacebookAdapter
from scrapers.kijiji.adapter import REGIONS as KIJIJI_REGIONS
from scrapers.kijiji.adapter import KijijiAdapter
from scrapers.kijiji.parse import CURRENCY as KIJIJI_CURRENCY
from scrapers.kleinanzeigen.adapter import STATES as KLEINANZEIGEN_STATES
from scrapers.kleinanzeigen.adapter import KleinanzeigenAdapter
from scrapers.kleinanzeigen.parse import CURRENCY as KLEINANZEIGEN_CURRENCY
from scrapers.vinted.adapter import VintedAdapter
from scrapers.vinted.parse import DOMAIN_CURRENCIES as VINTED_CURRENCIES

# Browsers and servers have long kept addresses under about 2,000 characters (the sitemaps protocol allows 2,048);
# the longest real search address with every filter set is well under that, so anything longer is a paste accident.
MAX_URL_LENGTH = 2000
_FIELD = "url"
# Where a value is echoed back in an error message, this much of it is enough to recognise it.
_ECHO = 40

# The marketplaces this module reads, as the registry keys them, with the names users know them by.
_NAMES: dict[str, str] = {cls.key: cls.name for cls in (
    EbayAdapter, CraigslistAdapter, FacebookAdapter, VintedAdapter, KleinanzeigenAdapter, KijijiAdapter)}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Hosts pasted without a scheme ("www.ebay.de/sch/i.html?..."): a dotted name before the first slash.
_BARE_HOST = re.compile(r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?::\d+)?(?:[/?#]|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# eBay's country sites: ebay.com, ebay.de, ebay.co.uk, ebay.com.au ... (a registered name after "ebay.").
_EBAY_HOST = re.compile(r"(?:[a-z0-9\-]+\.)*ebay\.(?:[a-z]{2,3}|(?:com?|net|org)\.[a-z]{2})")
_VINTED_HOST = re.compile(r"(?:[a-z0-9\-]+\.)*vinted\.(?:[a-z]{2,3}|co\.[a-z]{2})")
# A search address must ask for at least one letter or digit: "_" and punctuation alone match no listing.
_SEARCHABLE = re.compile(r"[^\W_]")
# A query's parts: a quoted phrase, a parenthesised group (eBay's "(a,b)"), or a run of non-spaces; "-" excludes.
_TOKEN = re.compile(r'-?"[^"]*"?|-?\([^)]*\)?|\S+')
_WORD_SEPARATORS = re.compile(r"[\s,|]+")
# A price bound: digits with decimals after a point, or after a comma where a site writes them so ("10,50"); "1,000"
# could be a thousand or one, so it is refused rather than guessed.
_PRICE = re.compile(r"\d{1,15}(?:\.\d{1,6}|,\d{1,2})?")
_NEGATIVE = re.compile(r"-\s*\d")
# Craigslist site names are the lower-case letters of the subdomain ("sfbay"); these subdomains are no sites.
_CRAIGSLIST_SITE = re.compile(r"[a-z]+")
_CRAIGSLIST_NOT_SITES = frozenset({"www", "m", "geo", "accounts", "post", "forums", "images", "about"})
_CRAIGSLIST_POSTING = re.compile(r"\d+\.html?")
# Facebook's place in a Marketplace path, as scrapers/facebook/adapter.py accepts it.
_FACEBOOK_PLACE = re.compile(r"[a-z0-9][a-z0-9.\-]{0,63}")
_FACEBOOK_COORDINATE = re.compile(r"-?\d{1,3}(?:\.\d+)?")
# The last part of a Kleinanzeigen search path: k0 (words), c<category>, l<location>, r<radius km>, "+attributes".
_KLEINANZEIGEN_CODE = re.compile(r"(?P<k>k0)?(?:c(?P<c>\d+))?(?:l(?P<l>\d+))?(?:r(?P<r>\d+))?(?P<extra>\+.*)?")
# The same for Kijiji: k0, c<category>, l<location>, then anything else (attribute codes).
_KIJIJI_CODE = re.compile(r"(?P<k>k0)?(?:c(?P<c>\d+))?(?:l(?P<l>\d+))?(?P<extra>.*)")
_KIJIJI_PLACE = re.compile(r"[a-z0-9][a-z0-9-]*")
_KIJIJI_REGION_BY_ID = {location_id: name for name, (slug, location_id) in KIJIJI_REGIONS.items() if name == slug}
_KLEINANZEIGEN_STATE_BY_ID = {location_id: name for name, location_id in KLEINANZEIGEN_STATES.items()}


@dataclass(frozen=True, slots=True)
class PastedSearch:
    """What a pasted search address asks for, in the terms a saved search keeps.

    location is in the form the marketplace's adapter takes as SearchQuery.location (a Craigslist site name, a
    Facebook place, a Kleinanzeigen state or "l<id>", a Kijiji "<place>/l<id>"), None where the adapter cannot search
    by place; radius_km is set only with a location. ignored names the address's filters a saved search cannot keep.
    """

    marketplace: str
    query: str
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    currency: str | None = None
    location: str | None = None
    radius_km: int | None = None
    exclude: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


@dataclass(slots=True)
class _Address:
    """A pasted address taken apart: host, decoded path segments and parameters."""

    marketplace: str
    host: str
    segments: tuple[str, ...]
    # Lower-case parameter name ("[]" dropped) -> its first non-empty value; the query string wins over the fragment.
    params: dict[str, str]
    # Parameter names as written, for the filters only their spelling tells apart (eBay's item specifics).
    names: tuple[str, ...]
    ignored: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return _NAMES[self.marketplace]

    def get(self, *keys: str) -> str | None:
        return next((self.params[key] for key in keys if key in self.params), None)

    def ignore(self, what: str) -> None:
        if what not in self.ignored:
            self.ignored.append(what)

    def ignore_params(self, table: dict[str, str]) -> None:
        for key, what in table.items():
            value = self.params.get(key)
            if value is not None and value not in ("0", "false"):
                self.ignore(what)


def read_search_url(url: str) -> PastedSearch:
    """The saved search a marketplace search address asks for; InputError (field "url") saying what is wrong."""
    address = _take_apart(url)
    return _READERS[address.marketplace](address)


# -- the address itself ------------------------------------------------------------------------------------------


def _take_apart(url: object) -> _Address:
    text = url.strip().strip("<>").strip() if isinstance(url, str) else ""
    if not text:
        raise InputError("Paste the address of a search results page, starting with https://.", field=_FIELD)
    if len(text) > MAX_URL_LENGTH:
        raise InputError(f"That address is {len(text):,} characters long; a search address has at most "
                         f"{MAX_URL_LENGTH:,}. Paste only the address of the results page.", field=_FIELD)
    if _CONTROL.search(text):
        raise InputError("That is not a web address: it holds line breaks or control characters.", field=_FIELD)
    scheme = _SCHEME.match(text)
    if scheme is None or not text[scheme.end():].startswith("//"):
        if _BARE_HOST.match(text) is None:
            raise InputError("That is not a web address: paste the address of a search results page, starting "
                             "with https://.", field=_FIELD)
        text = "https://" + text
    elif scheme.group(1).lower() not in ("http", "https"):
        raise InputError(f"Only web addresses (http or https) can be read, not {scheme.group(1)[:_ECHO]!r} ones.",
                         field=_FIELD)
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        host = ""
    if not host or " " in host:
        raise InputError("That is not a web address: it names no site.", field=_FIELD)
    marketplace = _marketplace_for(host)
    if marketplace is None:
        supported = ", ".join(list(_NAMES.values())[:-1]) + " or " + list(_NAMES.values())[-1]
        raise InputError(f"{host[:_ECHO]} is not a marketplace whose searches can be read. Paste a search from "
                         f"{supported}.", field=_FIELD)
    segments = tuple(_decode(part) for part in parts.path.split("/") if part)
    params, names = _parameters(parts)
    return _Address(marketplace, host, segments, params, names)


def _marketplace_for(host: str) -> str | None:
    def within(domain: str) -> bool:
        return host == domain or host.endswith("." + domain)

    # Kleinanzeigen before eBay: "ebay-kleinanzeigen.de" was Kleinanzeigen's own name, not an eBay site.
    if within("kleinanzeigen.de") or within("ebay-kleinanzeigen.de"):
        return "kleinanzeigen"
    if _EBAY_HOST.fullmatch(host):
        return "ebay"
    if within("craigslist.org") or re.fullmatch(r"(?:[a-z]+\.)?craigslist\.(?:[a-z]{2}|co\.[a-z]{2})", host):
        return "craigslist"
    if within("facebook.com") or within("fb.com"):
        return "facebook"
    if _VINTED_HOST.fullmatch(host):
        return "vinted"
    if within("kijiji.ca"):
        return "kijiji"
    return None


def _decode(text: str, *, plus_is_space: bool = False) -> str:
    """Percent-escapes as UTF-8, or as Windows-1252 where they are not UTF-8 (older German and French addresses)."""
    if plus_is_space:
        text = text.replace("+", " ")
    raw = unquote_to_bytes(text)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _parameters(parts: SplitResult) -> tuple[dict[str, str], tuple[str, ...]]:
    """The query string's parameters, then those of a fragment written as one ("#search=1~gallery&query=bike")."""
    fragment = parts.fragment.split("?", 1)[1] if "?" in parts.fragment else parts.fragment.lstrip("!/")
    params: dict[str, str] = {}
    names: list[str] = []
    for source in (parts.query, fragment if "=" in fragment else ""):
        for pair in source.split("&"):
            raw_key, _, raw_value = pair.partition("=")
            key = _decode(raw_key, plus_is_space=True).strip()
            value = " ".join(_decode(raw_value, plus_is_space=True).split())
            if not key or not value:
                continue
            names.append(key)
            params.setdefault(key.lower().removesuffix("[]"), value)
    return params, tuple(names)


# -- what every marketplace's address shares -----------------------------------------------------------------------


def _finish(address: _Address, words: str | None, *, min_price: str | None = None, max_price: str | None = None,
            currency: str | None = None, location: str | None = None, radius: str | None = None,
            exclude: tuple[str, ...] = ()) -> PastedSearch:
    """The PastedSearch of an address whose parts a reader has picked; checks words and prices."""
    query, excluded, either_or = _split_words(words or "")
    if either_or:
        address.ignore("either-or words")
    if not _SEARCHABLE.search(query):
        said = " other than either-or words, which a saved search cannot keep" if either_or else ""
        raise InputError(f"That {address.name} search has no words to search for{said}: type what you want in "
                         f"{address.name}'s search box and paste the address of the results.", field=_FIELD)
    low, high = _price(min_price, "minimum"), _price(max_price, "maximum")
    if low is not None and high is not None and low > high:
        raise InputError(f"The minimum price in the address ({low}) is above its maximum ({high}).", field=_FIELD)
    radius_km = _radius(radius)
    if radius_km is not None and location is None:
        address.ignore("distance")
        radius_km = None
    words_out = tuple(dict.fromkeys(word.lower() for word in (*exclude, *excluded) if _SEARCHABLE.search(word)))
    return PastedSearch(address.marketplace, query, low, high, currency, location, radius_km, words_out,
                        tuple(address.ignored))


def _split_words(text: str) -> tuple[str, tuple[str, ...], bool]:
    """(words to search, words to exclude, whether either-or groups were dropped) of a query as sites write them:
    "-word" and -"a phrase" exclude; eBay's "(a,b)" and Craigslist's "a|b" ask for any one of several words, which a
    saved search's all-words matching cannot keep, so they are dropped rather than all demanded."""
    kept: list[str] = []
    excluded: list[str] = []
    either_or = False
    for token in _TOKEN.findall(text):
        if token.startswith("-"):
            excluded.extend(word for word in _WORD_SEPARATORS.split(token[1:].strip('"()')) if word)
        elif token.startswith("(") or ("|" in token and not token.startswith('"')):
            either_or = True
        else:
            kept.append(token)
    return " ".join(kept), tuple(excluded), either_or


def _price(value: str | None, which: str) -> Decimal | None:
    text = (value or "").strip().replace(" ", "")
    if not text:
        return None
    if _NEGATIVE.match(text):
        raise InputError(f"The {which} price in the address ({text[:_ECHO]}) is negative.", field=_FIELD)
    if not _PRICE.fullmatch(text):
        raise InputError(f"The {which} price in the address ({text[:_ECHO]!r}) is not a number.", field=_FIELD)
    return Decimal(text.replace(",", "."))


def _radius(value: str | None) -> int | None:
    """A distance in whole kilometres; anything unreadable, zero or negative is no distance."""
    try:
        km = round(float(value or ""))
    except (ValueError, OverflowError):
        return None
    return km if km > 0 else None


def _listing(address: _Address) -> InputError:
    return InputError(f"That is one listing, not a search: paste the address of a {address.name} search results "
                      "page instead.", field=_FIELD)


def _not_search(address: _Address) -> InputError:
    return InputError(f"That {address.name} address is not a search results page: search {address.name} for what "
                      "you want and paste the address of the results.", field=_FIELD)


def _slug_words(slug: str) -> str:
    """Words of a path slug ("nintendo-switch" -> "nintendo switch")."""
    return " ".join(re.split(r"[-+\s]+", slug)).strip()


def _suffix_currency(host: str, table: dict[str, str]) -> str | None:
    return next((table[site] for site in sorted(table, key=len, reverse=True)
                 if host == site or host.endswith("." + site)), None)


# -- eBay ----------------------------------------------------------------------------------------------------------

_EBAY_FILTERS = {
    "lh_bin": "buy it now only", "lh_auction": "auctions only", "lh_bo": "accepts offers",
    "lh_itemcondition": "condition", "lh_sold": "sold items only", "lh_complete": "completed listings only",
    "lh_fs": "free shipping", "lh_freeshipping": "free shipping", "lh_prefloc": "item location",
    "lh_locatedin": "item location", "_salic": "item location", "lh_titledesc": "search in descriptions",
    "lh_returnsaccepted": "returns accepted", "lh_lpickup": "local pickup", "lh_charity": "charity listings",
    "lh_av": "authenticity guarantee", "lh_sale": "on sale", "lh_lots": "lots", "lh_subtitle": "search in subtitles",
    "_ssn": "seller", "_sasl": "seller", "_fss": "seller", "_stpos": "distance from a postcode",
    "_sadis": "distance from a postcode",
}


def _read_ebay(address: _Address) -> PastedSearch:
    first = address.segments[0].lower() if address.segments else ""
    if first in ("itm", "p", "itmvariation"):
        raise _listing(address)
    words = address.get("_nkw")
    if words is None and first not in ("sch", "b"):
        raise _not_search(address)
    category = address.get("_sacat")
    lowered = [segment.lower() for segment in address.segments]
    # /sch/<name>/<id>/i.html and /b/... are a category's own search; _sacat=0 is "All categories".
    in_category = first == "b" or (first == "sch" and len(lowered) > 2 and lowered[-1] != "m.html")
    if (category and category != "0") or in_category:
        address.ignore("category")
    if lowered[-1:] == ["m.html"]:
        address.ignore("seller")
    address.ignore_params(_EBAY_FILTERS)
    # Item specifics are the parameters named as the site shows them ("Brand", "Storage%20Capacity"), not in its
    # lower-case or underscored style; each is a filter of its own.
    for name in address.names:
        if name[:1].isupper() and not name.startswith("LH_"):
            address.ignore(f"item specifics ({name[:_ECHO]})")
    if address.get("_in_kw") == "2":
        address.ignore("any of the words")
    elif address.get("_in_kw") == "3" and words and '"' not in words:
        words = f'"{words}"'
    return _finish(address, words, min_price=address.get("_udlo"), max_price=address.get("_udhi"),
                   currency=_suffix_currency(address.host, EBAY_CURRENCIES),
                   exclude=tuple(_WORD_SEPARATORS.split(address.get("_ex_kw") or "")))


# -- Craigslist ----------------------------------------------------------------------------------------------------

_CRAIGSLIST_FILTERS = {
    "search_distance": "distance from a place", "postal": "distance from a place", "lat": "distance from a place",
    "lon": "distance from a place", "haspic": "with pictures only", "postedtoday": "posted today",
    "search_nearby": "nearby areas", "searchnearby": "nearby areas", "nearbyarea": "nearby areas",
    "condition": "condition", "purveyor": "seller type", "delivery_available": "delivery available",
    "crypto_currency_ok": "pays in cryptocurrency", "language": "language",
}
_CRAIGSLIST_SECTIONS = {"sss": None, "sso": "sold by owner only", "ssq": "sold by dealer only"}


def _read_craigslist(address: _Address) -> PastedSearch:
    segments = [segment.lower() for segment in address.segments]
    if segments and _CRAIGSLIST_POSTING.fullmatch(segments[-1]):
        raise _listing(address)
    if "search" not in segments:
        raise _not_search(address)
    after = segments[segments.index("search") + 1:]
    if after:
        section = after[-1]
        what = _CRAIGSLIST_SECTIONS.get(section, "category")
        if what:
            address.ignore(what)
        if len(after) > 1:  # /search/sfc/sss: one part of the site's area (or, since 2023, a place slug)
            address.ignore("area within the site")
    address.ignore_params(_CRAIGSLIST_FILTERS)
    if any(key.startswith(("auto_", "min_auto", "max_auto")) for key in address.params):
        address.ignore("vehicle details")
    label = address.host.split(".")[0]
    site = label if address.host.count(".") >= 2 and _CRAIGSLIST_SITE.fullmatch(label) else None
    site = None if site in _CRAIGSLIST_NOT_SITES else site
    # The site's currency (USD, CAD, GBP, EUR ...) is not in its name, so prices are compared as numbers.
    return _finish(address, address.get("query"), min_price=address.get("min_price"),
                   max_price=address.get("max_price"), location=site)


# -- Facebook Marketplace ------------------------------------------------------------------------------------------

_FACEBOOK_FILTERS = {
    "dayssincelisted": "listed within days", "itemcondition": "condition", "deliverymethod": "delivery method",
    "availability": "availability", "categoryid": "category", "category_id": "category",
    "toplevelvehicletype": "vehicle details", "make": "vehicle details", "model": "vehicle details",
    "minyear": "vehicle details", "maxyear": "vehicle details", "minmileage": "vehicle details",
    "maxmileage": "vehicle details", "transmissiontype": "vehicle details", "cartype": "vehicle details",
    "propertytype": "property details", "minbedrooms": "property details", "maxbedrooms": "property details",
}
# Marketplace pages whose path part is no place.
_FACEBOOK_PAGES = frozenset({"category", "you", "inbox", "notifications", "saved", "create", "buying", "selling"})


def _read_facebook(address: _Address) -> PastedSearch:
    segments = [segment.lower() for segment in address.segments]
    if not segments or segments[0] != "marketplace":
        raise _not_search(address)
    rest = segments[1:]
    if rest[:1] == ["item"]:
        raise _listing(address)
    before = rest[:rest.index("search")] if "search" in rest else rest
    place = before[0] if before and before[0] not in _FACEBOOK_PAGES else None
    if place is not None and not _FACEBOOK_PLACE.fullmatch(place):
        address.ignore("location")
        place = None
    if len(before) > 1:  # /marketplace/nyc/electronics, /marketplace/category/vehicles
        address.ignore("category")
    if place is None:
        lat, lon = address.get("latitude"), address.get("longitude")
        if lat and lon and _FACEBOOK_COORDINATE.fullmatch(lat) and _FACEBOOK_COORDINATE.fullmatch(lon):
            place = f"{lat},{lon}"
    address.ignore_params(_FACEBOOK_FILTERS)
    # Facebook's currency follows the place (and the visitor), which the address does not name.
    return _finish(address, address.get("query"), min_price=address.get("minprice"),
                   max_price=address.get("maxprice"), location=place, radius=address.get("radius"))


# -- Vinted --------------------------------------------------------------------------------------------------------

_VINTED_FILTERS = {
    "catalog": "category", "catalog_ids": "category", "brand_ids": "brand", "size_ids": "size",
    "status_ids": "condition", "color_ids": "colour", "material_ids": "material",
    "video_game_platform_ids": "platform", "patterns_ids": "pattern",
}
_ISO_CURRENCY = re.compile(r"[A-Za-z]{3}")


def _read_vinted(address: _Address) -> PastedSearch:
    first = address.segments[0].lower() if address.segments else ""
    if first == "items":
        raise _listing(address)
    words = address.get("search_text")
    if words is None and first not in ("", "catalog"):
        raise _not_search(address)
    if first == "catalog" and len(address.segments) > 1:  # /catalog/2050-clothing
        address.ignore("category")
    address.ignore_params(_VINTED_FILTERS)
    named = address.get("currency")
    currency = named.upper() if named and _ISO_CURRENCY.fullmatch(named) else None
    return _finish(address, words, min_price=address.get("price_from"), max_price=address.get("price_to"),
                   currency=currency or _suffix_currency(address.host, VINTED_CURRENCIES))


# -- Kleinanzeigen -------------------------------------------------------------------------------------------------

# Path filters ("/s-anbieter:privat/...") and their names; sortierung (order) and seite (page) change no result.
_KLEINANZEIGEN_FILTERS = {"anbieter": "seller type", "anzeige": "ad type", "versand": "shipping",
                          "zustand": "condition", "paketdienst": "shipping"}
_KLEINANZEIGEN_QUIET = frozenset({"sortierung", "seite", "preis"})


def _read_kleinanzeigen(address: _Address) -> PastedSearch:
    segments = list(address.segments)
    first = segments[0].lower() if segments else ""
    if first in ("s-anzeige", "anzeige"):
        raise _listing(address)
    if first == "s-suchanfrage.html":  # the old search form's address: everything in parameters
        return _kleinanzeigen_form(address)
    code = _KLEINANZEIGEN_CODE.fullmatch(segments[-1].lower()) if len(segments) > 1 else None
    if not first.startswith("s-") or first.endswith(".html") or code is None or not segments[-1]:
        raise _not_search(address)
    parts = [segments[0][2:], *segments[1:-1]]
    low = high = None
    plain: list[str] = []
    for part in parts:
        key, colon, value = part.partition(":")
        if not colon:
            plain.append(part)
        elif key.lower() == "preis":
            low, _, high = value.partition(":")
        elif key.lower() not in _KLEINANZEIGEN_QUIET:
            address.ignore(_KLEINANZEIGEN_FILTERS.get(key.lower(), key.lower()[:_ECHO]))
    # The plain parts are, in order: category (c), place (l), words (k0), each there only when its code is.
    words = _slug_words(plain[-1]) if code.group("k") and plain else None
    if code.group("c"):
        address.ignore("category")
    if code.group("extra"):
        address.ignore("category details")
    location = _kleinanzeigen_place(code.group("l"))
    return _finish(address, words, min_price=low, max_price=high, currency=KLEINANZEIGEN_CURRENCY,
                   location=location, radius=code.group("r"))


def _kleinanzeigen_form(address: _Address) -> PastedSearch:
    if address.get("categoryid") not in (None, "0"):
        address.ignore("category")
    address.ignore_params({"postertype": "seller type", "adtype": "ad type"})
    return _finish(address, address.get("keywords"), min_price=address.get("minprice"),
                   max_price=address.get("maxprice"), currency=KLEINANZEIGEN_CURRENCY,
                   location=_kleinanzeigen_place(address.get("locationid")), radius=address.get("radius"))


def _kleinanzeigen_place(location_id: str | None) -> str | None:
    """A state's name where the id is a state's (the adapter takes both), else "l<id>"; None for all of Germany."""
    if not location_id or not location_id.isdigit() or int(location_id) == 0:
        return None
    return _KLEINANZEIGEN_STATE_BY_ID.get(int(location_id), f"l{int(location_id)}")


# -- Kijiji --------------------------------------------------------------------------------------------------------

_KIJIJI_FILTERS = {"radius": "distance", "address": "distance", "ll": "distance",
                   "for-sale-by": "seller type", "forsaleby": "seller type"}


def _read_kijiji(address: _Address) -> PastedSearch:
    segments = [segment.lower() for segment in address.segments]
    first = segments[0] if segments else ""
    if first.startswith("v-"):
        raise _listing(address)
    prefix = next((p for p in ("b-", "rss-srp-") if first.startswith(p)), None)
    code = _KIJIJI_CODE.fullmatch(segments[-1]) if len(segments) > 1 else None
    if prefix is None or code is None or not any(code.group("k", "c", "l")):
        raise _not_search(address)
    plain = [first.removeprefix(prefix), *segments[1:-1]]
    if code.group("c"):
        address.ignore("category")
        plain = plain[1:]
    if code.group("extra"):
        address.ignore("category details")
    words = _slug_words(plain[-1]) if code.group("k") and plain else None
    # Kijiji's radius is not something its feed (what the adapter reads) can narrow by.
    address.ignore_params(_KIJIJI_FILTERS)
    if address.get("ad") == "wanted":
        address.ignore("wanted ads")
    low, _, high = (address.get("price") or "").partition("__")
    slug = plain[-2] if len(plain) > 1 else None
    return _finish(address, words, min_price=low, max_price=high, currency=KIJIJI_CURRENCY,
                   location=_kijiji_place(slug, code.group("l")))


def _kijiji_place(slug: str | None, location_id: str | None) -> str | None:
    """The adapter's location for a Kijiji region: a named region, "<place>/l<id>", or "l<id>"; None for Canada."""
    if not location_id or int(location_id) == 0:
        return None
    number = int(location_id)
    if number in _KIJIJI_REGION_BY_ID:
        return _KIJIJI_REGION_BY_ID[number]
    return f"{slug}/l{number}" if slug and _KIJIJI_PLACE.fullmatch(slug) else f"l{number}"


_READERS: dict[str, Callable[[_Address], PastedSearch]] = {
    "ebay": _read_ebay, "craigslist": _read_craigslist, "facebook": _read_facebook, "vinted": _read_vinted,
    "kleinanzeigen": _read_kleinanzeigen, "kijiji": _read_kijiji,
}
