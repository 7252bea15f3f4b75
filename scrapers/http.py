"""The one polite fetcher: shared aiohttp session, per-host rate limit, robots.txt, retries with backoff, size caps."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random as _random
import time
import urllib.robotparser
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from types import TracebackType

import aiohttp
from yarl import URL

from scout.errors import BlockedError, FetchError
from scrapers.base import Page, Request

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "DealScout/0.1 (personal deal alerts; honours robots.txt)"
# Statuses that mean "try again later" (RFC 9110 §15.6 and RFC 6585 §4); anything else is the server's final answer.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024  # the biggest real search page we keep is ~2.5 MB; 8 MiB leaves headroom
# RFC 9309 §2.5: crawlers must parse at least 500 KiB of robots.txt; more than that is ignored, not an error.
ROBOTS_MAX_BYTES = 512 * 1024
# When robots.txt could not be read we allow, but ask again soon rather than trusting the guess for the full TTL.
ROBOTS_RETRY_SECONDS = 300.0
# A robots.txt Crawl-delay above this would stall a whole scan; beyond it the adapter's own interval is the brake.
MAX_CRAWL_DELAY_SECONDS = 60.0
_DEFAULT_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
    "Accept-Language": "en;q=0.9, *;q=0.5",
}

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


def parse_retry_after(value: str | None, date_header: str | None, now: float) -> float | None:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP-date, RFC 9110 §10.2.3); None if absent or bad.

    An HTTP-date is measured against the response's own Date header when there is one, so a skewed local clock
    does not turn "in 30 seconds" into "an hour ago"; `now` (epoch seconds) is the fallback reference.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    reference = now
    if date_header:
        try:
            reference = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            reference = now
    return max(0.0, when - reference)


class HttpFetcher:
    """Implements scrapers.base.Fetcher. One instance per process; adapters share it.

    `resolve` maps a host to a base URL ("www.ebay.com" -> "http://127.0.0.1:8123"): the scheme, host and port of
    every request to that host (robots.txt included) are rewritten before sending, while rate limits, robots.txt
    rules and Page.url keep the original host. It is a hook for tests and benchmarks, not for production.
    """

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout_seconds: float = 20.0,
        connect_timeout_seconds: float | None = None,
        max_retries: int = 3,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        proxy: str | None = None,
        respect_robots: bool = True,
        robots_ttl_seconds: float = 3600.0,
        default_rate_per_minute: float = 30.0,
        host_rates: Mapping[str, float] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        resolve: Mapping[str, str] | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if max_retries < 0 or timeout_seconds <= 0 or max_body_bytes <= 0:
            raise ValueError("max_retries must be >= 0; timeout_seconds and max_body_bytes must be > 0")
        self._user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_seconds,
            connect=connect_timeout_seconds if connect_timeout_seconds is not None else min(10.0, timeout_seconds),
        )
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._proxy, self._secrets = _check_proxy(proxy)
        self._respect_robots = respect_robots
        self._robots_ttl = robots_ttl_seconds
        self._default_interval = _interval(default_rate_per_minute)
        self._host_intervals: dict[str, float] = {}
        for host, per_minute in (host_rates or {}).items():
            self.set_host_rate(host, per_minute)
        self._max_body_bytes = max_body_bytes
        self._resolve = {host.lower(): URL(base) for host, base in (resolve or {}).items()}
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._random = random
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Per rate-limit key: the earliest monotonic time the next request may start.
        self._next_slot: dict[str, float] = {}
        # Per origin: the parsed robots.txt and when it goes stale.
        self._robots: dict[str, tuple[urllib.robotparser.RobotFileParser, float]] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._ensure_session()

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpFetcher:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("HttpFetcher is closed")
        if self._session is None:
            # trust_env=False: proxies come from our settings only, never silently from HTTP_PROXY in the environment.
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self._session

    # -- rate limits -------------------------------------------------------------------------------------------

    def set_host_rate(self, host: str, per_minute: float) -> None:
        """Let at most `per_minute` requests a minute reach `host` and its subdomains (they share one budget)."""
        self._host_intervals[host.lower().strip(".")] = _interval(per_minute)

    def _rate_lane(self, host: str) -> tuple[str, float]:
        """The budget a host draws on: the nearest registered parent domain, else the host itself at the default."""
        labels = host.lower().split(".")
        for i in range(len(labels)):
            candidate = ".".join(labels[i:])
            if candidate in self._host_intervals:
                return candidate, self._host_intervals[candidate]
        return host.lower(), self._default_interval

    async def _wait_turn(self, host: str, crawl_delay: float = 0.0) -> None:
        # Reserve a slot with no await between reading and writing the lane, so concurrent callers queue up
        # one interval apart without a lock, and other hosts never wait on this one.
        lane, interval = self._rate_lane(host)
        interval = max(interval, min(crawl_delay, MAX_CRAWL_DELAY_SECONDS))
        now = self._clock()
        slot = max(now, self._next_slot.get(lane, now))
        self._next_slot[lane] = slot + interval
        if slot > now:
            await self._sleep(slot - now)

    # -- robots.txt --------------------------------------------------------------------------------------------

    async def _robots_for(self, url: URL) -> urllib.robotparser.RobotFileParser:
        origin = f"{url.scheme}://{url.host}:{url.port}"
        # Checked again under the lock: another task may have loaded it while this one waited.
        async with self._robots_locks.setdefault(origin, asyncio.Lock()):
            cached = self._robots.get(origin)
            if cached is not None and cached[1] > self._clock():
                return cached[0]
            parser, ttl = await self._load_robots(url)
            self._robots[origin] = (parser, self._clock() + ttl)
            return parser

    async def _load_robots(self, url: URL) -> tuple[urllib.robotparser.RobotFileParser, float]:
        host = url.host or ""
        robots_url = url.with_path("/robots.txt").with_query(None).with_fragment(None)
        parser = urllib.robotparser.RobotFileParser(str(robots_url))
        await self._wait_turn(host)
        log.debug("GET %s", robots_url)
        try:
            async with self._ensure_session().get(
                self._outgoing(robots_url), headers=self._headers(()), proxy=self._proxy
            ) as resp:
                status = resp.status
                body = await _read_body(resp, ROBOTS_MAX_BYTES, truncate=True)
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning("robots.txt of %s unreachable (%s); allowing for now", host, self._describe(err))
            parser.allow_all = True
            return parser, min(self._robots_ttl, ROBOTS_RETRY_SECONDS)
        # The conventions of RFC 9309 §2.3.1 and urllib.robotparser: 401/403 forbid all, other 4xx mean "no rules".
        if 200 <= status < 300:
            parser.parse(body.decode("utf-8", errors="replace").splitlines())
        elif status in (401, 403):
            parser.disallow_all = True
        elif 400 <= status < 500:
            parser.allow_all = True
        else:
            log.warning("robots.txt of %s answered HTTP %d; allowing for now", host, status)
            parser.allow_all = True
            return parser, min(self._robots_ttl, ROBOTS_RETRY_SECONDS)
        return parser, self._robots_ttl

    # -- fetching ----------------------------------------------------------------------------------------------

    async def fetch(self, request: Request) -> Page:
        try:
            url = URL(request.url)
            if request.params:
                url = url.extend_query(list(request.params))
        except (ValueError, TypeError) as err:
            raise FetchError(f"cannot fetch a malformed URL: {err}") from err
        host = url.host or ""
        if url.scheme not in ("http", "https") or not host:
            raise FetchError(f"cannot fetch {url.scheme or 'a relative'} URL: only absolute http(s) URLs")
        crawl_delay = 0.0
        if self._respect_robots:
            robots = await self._robots_for(url)
            if not robots.can_fetch(self._user_agent, str(url)):
                raise BlockedError(f"robots.txt disallows {url.path} on {host}")
            crawl_delay = float(robots.crawl_delay(self._user_agent) or 0.0)
        headers = self._headers(request.headers)
        attempts = self._max_retries + 1
        for attempt in range(1, attempts + 1):
            await self._wait_turn(host, crawl_delay)
            log.debug("GET %s (attempt %d of %d)", url, attempt, attempts)
            error: BaseException | None = None
            try:
                page = await self._send(url, headers)
            except (aiohttp.ClientError, TimeoutError) as err:
                error = err
            if error is not None:
                if attempt == attempts or not _is_transient(error):
                    # Raised outside the except block so a cause whose text holds proxy credentials can be dropped
                    # whole: no implicit __context__ carries it into a logged traceback.
                    leaky = any(secret in f"{error!s} {error!r}" for secret in self._secrets)
                    raise FetchError(
                        f"GET {host}{url.path} failed after {attempt} attempt(s): {self._describe(error)}"
                    ) from (None if leaky else error)
                delay = self._backoff(attempt)
                log.info("GET %s: %s; retrying in %.2fs", host, self._describe(error), delay)
                await self._sleep(delay)
                continue
            if page.status not in RETRY_STATUSES or attempt == attempts:
                return page
            delay = self._retry_delay(page, attempt)
            if delay is None:
                return page
            log.info("GET %s answered %d; retrying in %.2fs (attempt %d)", host, page.status, delay, attempt)
            await self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises on its last attempt")

    async def _send(self, url: URL, headers: dict[str, str]) -> Page:
        async with self._ensure_session().get(self._outgoing(url), headers=headers, proxy=self._proxy) as resp:
            declared = resp.content_length
            if declared is not None and declared > self._max_body_bytes:
                limit = self._max_body_bytes
                raise FetchError(f"response too large: {url.host} declared {declared} bytes (limit {limit})")
            body = await _read_body(resp, self._max_body_bytes)
            if body is None:
                raise FetchError(f"response too large: {url.host} sent more than {self._max_body_bytes} bytes")
            return Page(
                url=str(self._public_url(resp.url, url)),
                status=resp.status,
                body=body,
                content_type=resp.headers.get("Content-Type", ""),
                headers=tuple(resp.headers.items()),
            )

    def _headers(self, extra: tuple[tuple[str, str], ...]) -> dict[str, str]:
        headers = dict(_DEFAULT_HEADERS)
        for name, value in extra:
            # robots.txt was checked for our user agent, so an adapter may not send another one.
            if name.lower() != "user-agent":
                headers[name] = value
        headers["User-Agent"] = self._user_agent
        return headers

    def _retry_delay(self, page: Page, attempt: int) -> float | None:
        """How long to wait before retrying a retryable status; None when the server asks for longer than we wait."""
        headers = {name.lower(): value for name, value in page.headers}
        retry_after = parse_retry_after(headers.get("retry-after"), headers.get("date"), self._wall_clock())
        if retry_after is None:
            return self._backoff(attempt)
        if retry_after > self._backoff_max:
            log.info(
                "GET %s answered %d with Retry-After %.0fs, over the %.0fs cap; giving up",
                URL(page.url).host, page.status, retry_after, self._backoff_max,
            )
            return None
        return retry_after

    def _backoff(self, attempt: int) -> float:
        # "Equal jitter": half the exponential step is fixed, half random, so delays grow yet clients desynchronise.
        step = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        return step / 2 + step / 2 * self._random()

    # -- URL rewriting and redaction -----------------------------------------------------------------------------

    def _outgoing(self, url: URL) -> URL:
        target = self._resolve.get((url.host or "").lower())
        if target is None:
            return url
        return URL.build(
            scheme=target.scheme, host=target.raw_host or "", port=target.explicit_port,
            path=url.raw_path, query_string=url.raw_query_string, encoded=True,
        )

    def _public_url(self, final: URL, requested: URL) -> URL:
        """Undo the resolve rewrite on the final URL so parsers see the site's own address."""
        target = self._resolve.get((requested.host or "").lower())
        if target is None or (final.scheme, final.host, final.port) != (target.scheme, target.host, target.port):
            return final
        return URL.build(
            scheme=requested.scheme, host=requested.raw_host or "", port=requested.explicit_port,
            path=final.raw_path, query_string=final.raw_query_string, encoded=True,
        )

    def _describe(self, err: BaseException) -> str:
        if isinstance(err, TimeoutError):
            what = f"timed out (limit {self._timeout.total}s)"
        elif isinstance(err, aiohttp.ClientHttpProxyError):
            what = f"the proxy refused (HTTP {err.status})"
        elif isinstance(err, aiohttp.ClientPayloadError):
            what = "response body cut short"
        elif isinstance(err, aiohttp.ClientConnectionError):
            what = "connection failed"
        else:
            what = "HTTP client error"
        detail = str(err)[:200]
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        return f"{what} ({type(err).__name__}{': ' + detail if detail else ''})"


def _is_transient(err: BaseException) -> bool:
    """Worth another attempt: the connection, the wait or the body broke, or the proxy was briefly unwell."""
    if isinstance(err, aiohttp.ClientHttpProxyError):
        return err.status >= 500
    return isinstance(err, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError))


def _interval(per_minute: float) -> float:
    if per_minute <= 0:
        raise ValueError(f"a rate must be > 0 requests per minute, got {per_minute}")
    return 60.0 / per_minute


def _check_proxy(proxy: str | None) -> tuple[URL | None, tuple[str, ...]]:
    """The proxy URL, and the credential strings in it that must never reach a message or a log."""
    if not proxy:
        return None, ()
    url = URL(proxy)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("proxy must be an http:// or https:// URL")
    if url.user is None and url.password is None:
        return url, ()
    # aiohttp turns credentials in the proxy URL into Proxy-Authorization, for plain http targets and CONNECT alike.
    user, password = url.user or "", url.password or ""
    secrets = {f"{url.raw_user}:{url.raw_password}@", f"{user}:{password}@"}
    secrets.update(s for s in (url.raw_password, password) if s)
    for encoding in ("utf-8", "latin-1"):  # aiohttp's Proxy-Authorization uses one or the other across versions
        with contextlib.suppress(UnicodeEncodeError):
            secrets.add(base64.b64encode(f"{user}:{password}".encode(encoding)).decode("ascii"))
    # Longest first, so a password inside a longer secret does not leave the rest of that secret behind.
    return url, tuple(sorted(secrets, key=len, reverse=True))


async def _read_body(resp: aiohttp.ClientResponse, limit: int, *, truncate: bool = False) -> bytes | None:
    """The body up to `limit` bytes: None past the limit, or the first `limit` bytes when `truncate`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            if truncate:
                return b"".join(chunks)[:limit]
            return None
    return b"".join(chunks)
