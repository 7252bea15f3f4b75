"""The adapter contract: what a marketplace adapter takes, returns and promises."""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
import unicodedata
from dataclasses import dataclass, field
from typing import Protocol

from scout.errors import BlockedError, FetchError, ParseError
from scout.models import Listing

log = logging.getLogger(__name__)

# Pages smaller than this are parsed inline; bigger ones go to a worker thread so the event loop stays responsive.
INLINE_PARSE_MAX_BYTES = 64 * 1024


def normalise_query(text: str) -> str:
    """The form of a query used to decide that two searches ask a marketplace the same thing."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What one fetch asks a marketplace; searches that share it share the fetch."""

    text: str
    location: str | None = None
    radius_km: int | None = None

    @classmethod
    def build(cls, text: str, location: str | None = None, radius_km: int | None = None) -> SearchQuery:
        loc = location.strip().casefold() if location else None
        return cls(normalise_query(text), loc or None, radius_km)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP GET an adapter wants made."""

    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


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

    @property
    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


class ScrapeStatus(enum.StrEnum):
    """How a fetch ended. The values are what task_logs.status records."""

    SUCCESS = "success"  # listings found
    EMPTY = "empty"  # the site answered and genuinely had nothing
    BLOCKED = "blocked"  # 403/429, captcha, challenge, login wall, robots.txt
    BROKEN = "broken"  # the page no longer parses: the layout changed
    FAILED = "failed"  # network errors, timeouts, 5xx after retries


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    status: ScrapeStatus
    listings: tuple[Listing, ...] = ()
    detail: str = ""

    @classmethod
    def of(cls, listings: list[Listing] | tuple[Listing, ...]) -> ScrapeResult:
        if listings:
            return cls(ScrapeStatus.SUCCESS, tuple(listings))
        return cls(ScrapeStatus.EMPTY)

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
        return self.status in (ScrapeStatus.SUCCESS, ScrapeStatus.EMPTY)


class Fetcher(Protocol):
    async def fetch(self, request: Request) -> Page:
        """Return the final response (any status) or raise FetchError / BlockedError."""
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
        except BlockedError as err:
            return ScrapeResult.blocked(str(err))
        except FetchError as err:
            return ScrapeResult.failed(str(err))
        early = self.classify_status(page)
        if early is not None:
            return early
        if len(page.body) <= INLINE_PARSE_MAX_BYTES:
            return self.parse_safely(page)
        return await asyncio.to_thread(self.parse_safely, page)
