"""The adapter contract: what a marketplace adapter takes, returns and promises."""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import enum
import logging
import os
import re
import sys
import threading
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from scout.errors import BlockedError, FetchError, InputError, ParseError
from scout.models import Listing

if TYPE_CHECKING:
    from yarl import URL

log = logging.getLogger(__name__)

# scheme://authority, then the rest (path, query, fragment), as RFC 3986 §3 splits a URL.
_URL_PARTS = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)

# Pages smaller than this are parsed inline. Parse cost grows with the listings more than with the bytes (a
# 36 KB page of 50 listings takes ~10 ms), so only trivial bodies (errors, empty results) stay on the loop.
INLINE_PARSE_MAX_BYTES = 4 * 1024

# Bigger pages are parsed by this one thread, in turn. A parse holds the GIL for much of its time, so a
# second parsing thread adds no speed, only one more thread queued for the GIL ahead of the event loop: with
# asyncio's default pool, bench.scan measured a loop lag p99 of 40-60 ms; with one thread, 19-24 ms and a faster scan.
_parser: concurrent.futures.ThreadPoolExecutor | None = None
# How much lower the parsing thread's scheduling priority is than the process's (a nice increment, Linux only): when
# the cores are busy (the database, other processes), the event loop's thread is run first and the parse waits,
# and when they are not, the parse runs as fast as before.
PARSE_THREAD_NICENESS = 10


def _parse_thread() -> concurrent.futures.ThreadPoolExecutor:
    global _parser
    if _parser is None:
        _parser = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse",
                                                        initializer=_yield_to_the_loop)
    return _parser


def _yield_to_the_loop() -> None:
    """Lower the calling thread's priority by PARSE_THREAD_NICENESS. Linux keeps a nice value per thread, which
    setpriority sets by thread id; elsewhere that id is no process id, and the thread is left as it is."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + PARSE_THREAD_NICENESS)
    except OSError as err:  # a sandbox that refuses it: the parse runs at the process's priority
        log.debug("parsing thread priority left as it is: %s", err)


def normalise_query(text: str) -> str:
    """The form of a query used to decide that two searches ask a marketplace the same thing."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def normalise_location(location: str | None) -> str | None:
    """A place name casefolded ("SFBay" is "sfbay"); a URL (a feed) only in its scheme and host, as servers tell
    the case of paths and queries apart ("/SlickdealsnetFP" is not "/slickdealsnetfp")."""
    place = location.strip() if location else ""
    url = _URL_PARTS.fullmatch(place)
    if url is None:
        return place.casefold() or None
    scheme, authority, tail = url.groups()
    userinfo, at, host = authority.rpartition("@")
    return f"{scheme.lower()}://{userinfo}{at}{host.lower()}{tail}"


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What one fetch asks a marketplace; searches that share it share the fetch."""

    text: str
    location: str | None = None
    radius_km: int | None = None

    @classmethod
    def build(cls, text: str, location: str | None = None, radius_km: int | None = None) -> SearchQuery:
        return cls(normalise_query(text), normalise_location(location), radius_km)


# Checks a URL before the fetcher sends anything to it (the request itself, its robots.txt, each redirect hop).
# It refuses by raising BlockedError (or InputError, when the URL came from a user); returning means "go ahead".
UrlGuard = Callable[["URL"], Awaitable[None]]

# Methods an adapter may ask for: reads, and POST for token endpoints and JSON search APIs.
REQUEST_METHODS = frozenset({"GET", "HEAD", "POST"})


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request an adapter wants made: a GET of `url` + `params` unless the fields below say otherwise.

    method: "GET" (default), "HEAD" or "POST".
    data: a form body, sent as application/x-www-form-urlencoded (an OAuth token request). At most one of data/json.
    json: a JSON body, already serialised (a str keeps the Request frozen and hashable), sent as application/json.
    follow_redirects: True (default): the fetcher follows up to 10 redirects itself, checking robots.txt, the rate
        limit and the URL guards again at every hop, and returns the final answer. False: a 3xx comes back as the
        Page (its Location in Page.headers).
    robots: whether robots.txt applies (default True). False only for an official API that we call with our own
        credentials under its own terms (eBay's Browse API and its OAuth endpoint); never for a site's pages or the
        internal JSON its own front end reads, which robots.txt does govern.
    url_guard: checked, with the URL about to be fetched, before this request and before each of its redirect hops,
        after the fetcher's own guard (HttpFetcher(url_guard=...)). Fixed-host adapters pass a
        scrapers.netguard.SiteGuard of their registered_domains; the feed adapter, the guard of user-given URLs.
    """

    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    data: tuple[tuple[str, str], ...] | None = None
    json: str | None = None
    follow_redirects: bool = True
    robots: bool = True
    url_guard: UrlGuard | None = None

    def __post_init__(self) -> None:
        if self.method not in REQUEST_METHODS:
            raise ValueError(f"method must be one of {sorted(REQUEST_METHODS)}, got {self.method!r}")
        if self.data is not None and self.json is not None:
            raise ValueError("a Request has a form body (data) or a JSON body (json), not both")
        if self.method != "POST" and (self.data is not None or self.json is not None):
            raise ValueError(f"a {self.method} request has no body; use method='POST'")


@dataclass(frozen=True, slots=True)
class Page:
    """An HTTP response as the parsers see it."""

    url: str
    status: int
    body: bytes
    content_type: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def charset(self) -> str | None:
        """The charset the Content-Type header declares, if any."""
        for part in self.content_type.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                return value.strip('"')
        return None

    def header(self, name: str) -> str | None:
        """The first value of a response header (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


class ScrapeStatus(enum.StrEnum):
    """How a fetch ended. The values are what task_logs.status records."""

    SUCCESS = "success"  # listings found
    PARTIAL = "partial"  # listings found, but some of the page's result rows could not be read
    EMPTY = "empty"  # the site answered and genuinely had nothing
    BLOCKED = "blocked"  # 403/429, captcha, challenge, login wall, robots.txt
    BROKEN = "broken"  # the page no longer parses: the layout changed
    FAILED = "failed"  # network errors, timeouts, 5xx after retries


# Past this share of a page's result rows lost, the page is broken (its layout changed), not merely partial.
BROKEN_SHARE_LOST = 0.5


class Distinct:
    """A page's listings in page order, each external id once. `repeats` counts the ones that repeated an earlier
    id: a page may show an item twice (variations of one listing, a repost), which is no lost row."""

    __slots__ = ("_seen", "listings", "repeats")

    def __init__(self) -> None:
        self.listings: list[Listing] = []
        self.repeats = 0
        self._seen: set[str] = set()

    def add(self, listing: Listing) -> None:
        if listing.external_id in self._seen:
            self.repeats += 1
        else:
            self._seen.add(listing.external_id)
            self.listings.append(listing)


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    status: ScrapeStatus
    listings: tuple[Listing, ...] = ()
    detail: str = ""
    rows: int | None = None  # the result rows the page showed, where the parser counts them

    @classmethod
    def of(cls, listings: list[Listing] | tuple[Listing, ...], *, rows: int | None = None) -> ScrapeResult:
        """The listings read from a page that showed `rows` result rows. Rows that did not become listings are
        never dropped silently: a few lost make the result partial, more than half lost make it broken (the
        listings read are kept either way)."""
        listings = tuple(listings)
        lost = 0 if rows is None else rows - len(listings)
        if lost > 0:
            said = f"{lost} of {rows} result rows could not be read"
            status = ScrapeStatus.BROKEN if lost > BROKEN_SHARE_LOST * rows else ScrapeStatus.PARTIAL
            return cls(status, listings, said, rows)
        if listings:
            return cls(ScrapeStatus.SUCCESS, listings, rows=rows)
        return cls(ScrapeStatus.EMPTY, rows=rows)

    @property
    def rows_lost(self) -> int:
        return max(0, self.rows - len(self.listings)) if self.rows is not None else 0

    @classmethod
    def blocked(cls, detail: str) -> ScrapeResult:
        return cls(ScrapeStatus.BLOCKED, detail=detail)

    @classmethod
    def broken(cls, detail: str) -> ScrapeResult:
        return cls(ScrapeStatus.BROKEN, detail=detail)

    @classmethod
    def failed(cls, detail: str) -> ScrapeResult:
        return cls(ScrapeStatus.FAILED, detail=detail)

    @property
    def ok(self) -> bool:
        return self.status in (ScrapeStatus.SUCCESS, ScrapeStatus.PARTIAL, ScrapeStatus.EMPTY)


class Fetcher(Protocol):
    async def fetch(self, request: Request) -> Page:
        """Return the final response (any status) or raise FetchError / BlockedError (or a URL guard's InputError)."""
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    price_filter: bool = False
    location: bool = False
    posted_time: bool = False
    images: bool = True


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    key: str
    name: str
    min_interval_minutes: int
    requests_per_minute: float
    capabilities: Capabilities = field(default_factory=Capabilities)


class Adapter(abc.ABC):
    """A marketplace. Subclasses set the class attributes and write build_request and parse (both pure)."""

    key: str
    name: str
    min_interval_minutes: int
    # Requests per minute this adapter lets the fetcher send to its host.
    requests_per_minute: float
    # The domain the budget covers, subdomains included; None: the host of the search URL.
    rate_limit_domain: str | None = None
    # The registered domains (subdomains included) a fixed-host adapter's requests and redirects stay within: its
    # requests carry SiteGuard(registered_domains), so a hop elsewhere is BLOCKED. Empty: no fixed host (feeds).
    registered_domains: tuple[str, ...] = ()
    capabilities: Capabilities = Capabilities()

    @property
    def info(self) -> AdapterInfo:
        return AdapterInfo(self.key, self.name, self.min_interval_minutes, self.requests_per_minute, self.capabilities)

    @abc.abstractmethod
    def build_request(self, query: SearchQuery) -> Request:
        """The request that asks the site for this query."""

    @abc.abstractmethod
    def parse(self, page: Page) -> ScrapeResult:
        """Classify and parse a page: listings, genuinely empty, blocked or broken. Raises ParseError when broken."""

    def parse_safely(self, page: Page) -> ScrapeResult:
        try:
            return self.parse(page)
        except ParseError as err:
            return ScrapeResult.broken(str(err))
        except BlockedError as err:
            return ScrapeResult.blocked(str(err))

    def classify_status(self, page: Page) -> ScrapeResult | None:
        """Map an HTTP status that means no parse is worth trying; None when the body should be parsed."""
        if page.status in (401, 403, 429):
            return ScrapeResult.blocked(f"HTTP {page.status}")
        if page.status == 404:
            return ScrapeResult.broken("HTTP 404: the search URL no longer exists")
        if page.status >= 400:
            return ScrapeResult.failed(f"HTTP {page.status}")
        return None

    async def search(self, query: SearchQuery, fetcher: Fetcher) -> ScrapeResult:
        """Fetch and parse one query. Never raises for expected failures: they come back as a ScrapeResult."""
        request = self.build_request(query)
        try:
            page = await fetcher.fetch(request)
        except (BlockedError, InputError) as err:  # InputError: a URL guard refused a user-given address
            return ScrapeResult.blocked(str(err))
        except FetchError as err:
            return ScrapeResult.failed(str(err))
        early = self.classify_status(page)
        if early is not None:
            return early
        return await self.parse_off_loop(page)

    async def parse_off_loop(self, page: Page) -> ScrapeResult:
        """parse_safely, in the parsing thread when the page is big enough to hold up the event loop."""
        if len(page.body) <= INLINE_PARSE_MAX_BYTES:
            return self.parse_safely(page)
        return await asyncio.get_running_loop().run_in_executor(_parse_thread(), self.parse_safely, page)

    def usage(self) -> str | None:
        """Quota use an operator should see beside the limits (an API's daily call budget), or None."""
        return None
