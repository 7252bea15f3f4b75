"""The one polite fetcher: shared session and cookies, per-host rate limit, robots.txt, retries, redirects, URL guards."""

from __future__ import annotations

import asyncio
import logging
import random as _random
import socket
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from scout.errors import BlockedError, FetchError, InputError
from scrapers.base import Page, Request, UrlGuard
from scrapers.host_pacer import Clock, HostPacer, LaneBudget, Sleep
from scrapers.http_rules import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    RobotsRules,
    RobotsVerdict,
    build_body,
    build_robots_rules,
    check_proxy,
    parse_retry_after,
    redirect_headers,
    redirect_method,
    redirect_target,
)
from scrapers.netguard import Resolver, answers_problem, resolve_host
from scrapers.shared_budget import BudgetMode, SharedBudgetError

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "DealScout/0.1 (personal deal alerts; honours robots.txt)"
# Statuses that mean "try again later" (RFC 9110 §15.6 and RFC 6585 §4); anything else is the server's final answer.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024  # the biggest real search page we keep is ~2.5 MB; 8 MiB leaves headroom
# RFC 9309 §2.5: crawlers must parse at least 500 KiB of robots.txt; more than that is ignored, not an error.
ROBOTS_MAX_BYTES = 512 * 1024
# RFC 9309 §2.3.1.2: follow at least five consecutive redirects for robots.txt; past that it counts as unavailable.
ROBOTS_MAX_REDIRECTS = 5
# The shortest connect timeout a last attempt to reach a host gets, when little of its time is left.
MIN_CONNECT_SECONDS = 0.1
# When robots.txt could not be read we allow, but ask again soon rather than trusting the guess for the full TTL.
ROBOTS_RETRY_SECONDS = 300.0
_DEFAULT_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
    "Accept-Language": "en;q=0.9, *;q=0.5",
}



class HttpFetcher:
    """Implements scrapers.base.Fetcher. One instance per process; adapters share it.

    `resolve` maps a host to a base URL ("www.ebay.com" -> "http://127.0.0.1:8123"): the scheme, host and port of
    every request to that host (robots.txt included) are rewritten before sending, while rate limits, robots.txt
    rules and Page.url keep the original host. It is a hook for tests and benchmarks, not for production.

    Redirects are followed here, not by aiohttp, so that every hop is checked like a first request: the URL guards,
    robots.txt (when the Request lets it apply) and the hop host's rate limit; credentials do not follow a hop to
    another origin. See scrapers.base.Request for method, body, follow_redirects, robots and a per-request guard.

    `url_guard` is awaited with every URL before anything is sent to it: each request, each redirect hop (also of
    robots.txt), before the request's own Request.url_guard. It refuses by raising BlockedError (or InputError),
    which fetch() lets through unchanged; Adapter.search reports either as BLOCKED.

    Every host name is resolved for the connection by PublicAddressResolver (through `dns_lookup`, the system
    resolver unless a test injects one): a name with any non-public address is refused with BlockedError, so the
    addresses a connection goes to are the ones checked, even when DNS answered the URL guard otherwise a moment
    before. Literal addresses are the URL guards' to judge. Through a proxy only the proxy's name is resolved here
    and the proxy alone sees where a name leads: it must refuse internal addresses itself.

    `max_in_flight` caps the requests in flight at once (SCAN_CONCURRENCY). A request takes its place only once its
    host's turn has come, so one waiting for a rate limit never holds up another host. A host that cannot be
    reached at all (no DNS answer, connection refused) gets `timeout_seconds` for all its attempts together, and
    their retries do not wait for its request budget, which they did not spend.

    `shared_budget` (scrapers.shared_budget.SharedBudget) makes each host's rate a budget of all the processes that
    share it, robots.txt fetches included; `budget_mode` says what a request does when it is spent: "wait" for a
    slot, or "deny": fetch() raises BudgetDenied, whose `retry_after` says when to ask again. When the budget's
    Redis cannot answer, fetch() raises BudgetUnavailable and sends nothing. Both are FetchErrors.

    A POST is retried like a GET (429, 5xx, broken connections): the only POSTs adapters send are token requests
    and search queries, which are safe to repeat.

    Cookies: one jar for the fetcher's life, keyed by each request's public URL (the one before `resolve`), so a
    site's session cookie (Vinted's, set by its home page) goes back to that site and to no other. Cookies an adapter
    puts in Request.headers are sent as well. Cookie values are credentials: never log them.
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
        max_in_flight: int | None = None,
        resolve: Mapping[str, str] | None = None,
        url_guard: UrlGuard | None = None,
        dns_lookup: Resolver = resolve_host,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        shared_budget: LaneBudget | None = None,
        budget_mode: BudgetMode = "wait",
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
        self._proxy, self._secrets = check_proxy(proxy)
        self._respect_robots = respect_robots
        self._robots_ttl = robots_ttl_seconds
        self._pacer = HostPacer(default_rate_per_minute, clock, sleep, max_in_flight, shared=shared_budget,
                                mode=budget_mode)
        for host, per_minute in (host_rates or {}).items():
            self.set_host_rate(host, per_minute)
        self._max_body_bytes = max_body_bytes
        self._resolve = {host.lower(): URL(base) for host, base in (resolve or {}).items()}
        self._url_guard = url_guard
        self._dns_lookup = dns_lookup
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._random = random
        self._session: aiohttp.ClientSession | None = None
        self._cookies: aiohttp.CookieJar | None = None
        self._closed = False
        # Per origin: the parsed robots.txt and when it goes stale.
        self._robots: dict[str, tuple[RobotsRules, float]] = {}
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
            # The session's own jar is a dummy: it would key cookies on the resolved address, not the site.
            # Through a proxy the one name resolved is the proxy's, which may well be a private address.
            resolver = None if self._proxy else PublicAddressResolver(self._dns_lookup)
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(resolver=resolver),
            )
        if self._cookies is None:
            # unsafe=True accepts cookies from IP-address hosts, which a fetcher pointed at one by URL must keep.
            self._cookies = aiohttp.CookieJar(unsafe=True)
        return self._session

    # -- cookies -----------------------------------------------------------------------------------------------

    def cookies_for(self, url: str) -> dict[str, str]:
        """The cookies the fetcher would send to `url` (name -> value). The values are credentials: do not log them."""
        if self._cookies is None:
            return {}
        return {name: morsel.value for name, morsel in self._cookies.filter_cookies(URL(url)).items()}

    def clear_cookies(self, domain: str | None = None) -> None:
        """Forget the cookies of `domain` and its subdomains, or all of them."""
        if self._cookies is None:
            return
        if domain is None:
            self._cookies.clear()
        else:
            self._cookies.clear_domain(domain)

    def _cookie_header(self, url: URL, headers: dict[str, str]) -> dict[str, str]:
        jar = self._cookies.filter_cookies(url) if self._cookies is not None else {}
        if not jar:
            return headers
        stored = "; ".join(f"{name}={morsel.coded_value}" for name, morsel in jar.items())
        given = next((value for name, value in headers.items() if name.lower() == "cookie"), None)
        merged = {name: value for name, value in headers.items() if name.lower() != "cookie"}
        merged["Cookie"] = f"{given}; {stored}" if given else stored
        return merged

    # -- rate limits -------------------------------------------------------------------------------------------

    def set_host_rate(self, host: str, per_minute: float) -> None:
        """Let at most `per_minute` requests a minute reach `host` and its subdomains (they share one budget)."""
        self._pacer.set_rate(host, per_minute)

    # -- robots.txt --------------------------------------------------------------------------------------------

    async def robots_verdict(self, request: Request) -> RobotsVerdict:
        """Whether robots.txt lets `request` through for our user agent now, as fetch() would decide, and why.

        Reads robots.txt through the same cache as fetch(), so asking costs a request only when it is stale.
        """
        if not request.robots:
            return RobotsVerdict(True, "robots.txt does not apply: an official API called under its own terms")
        if not self._respect_robots:
            return RobotsVerdict(True, "robots.txt is not checked (RESPECT_ROBOTS_TXT=false)")
        url = URL(request.url).extend_query(list(request.params))
        guards = tuple(guard for guard in (self._url_guard, request.url_guard) if guard is not None)
        try:
            await self._check_guards(url, guards)
            rules = await self._robots_for(url, guards)
        except (BlockedError, InputError) as err:
            return RobotsVerdict(False, str(err))
        return rules.verdict(self._user_agent, str(url))

    async def _robots_for(self, url: URL, guards: tuple[UrlGuard, ...]) -> RobotsRules:
        origin = f"{url.scheme}://{url.host}:{url.port}"
        # Checked again under the lock: another task may have loaded it while this one waited.
        async with self._robots_locks.setdefault(origin, asyncio.Lock()):
            cached = self._robots.get(origin)
            if cached is not None and cached[1] > self._clock():
                return cached[0]
            rules, ttl = await self._load_robots(url, guards)
            self._robots[origin] = (rules, self._clock() + ttl)
            return rules

    async def _load_robots(self, url: URL, guards: tuple[UrlGuard, ...]) -> tuple[RobotsRules, float]:
        host = url.host or ""
        target = url.with_path("/robots.txt").with_query(None).with_fragment(None)
        try:
            for _ in range(ROBOTS_MAX_REDIRECTS + 1):
                await self._pacer.wait_turn(target.host or "")
                log.debug("GET %s", target)
                async with self._ensure_session().get(
                    self._outgoing(target), headers=self._headers(()), proxy=self._proxy, allow_redirects=False
                ) as resp:
                    status = resp.status
                    location = resp.headers.get("Location")
                    if status in REDIRECT_STATUSES and location:
                        target = redirect_target(target, location)
                        await self._check_guards(target, guards)
                        continue
                    body = await _read_body(resp, ROBOTS_MAX_BYTES, truncate=True)
                    break
            else:
                status, body = 404, b""  # RFC 9309 §2.3.1.2: too many redirects means "unavailable", i.e. no rules
        except SharedBudgetError:
            raise  # the budget, not the site, stopped it: its robots.txt is not missing, only not read yet
        except (aiohttp.ClientError, TimeoutError, FetchError) as err:
            log.warning("robots.txt of %s unreachable (%s); allowing for now", host, self._describe(err))
            return build_robots_rules(str(target), None, b""), min(self._robots_ttl, ROBOTS_RETRY_SECONDS)
        rules = build_robots_rules(str(target), status, body or b"")
        if status >= 500:
            log.warning("robots.txt of %s answered HTTP %d; allowing for now", host, status)
            return rules, min(self._robots_ttl, ROBOTS_RETRY_SECONDS)
        return rules, self._robots_ttl

    # -- fetching ----------------------------------------------------------------------------------------------

    async def fetch(self, request: Request) -> Page:
        try:
            url = URL(request.url)
            if request.params:
                url = url.extend_query(list(request.params))
        except (ValueError, TypeError) as err:
            raise FetchError(f"cannot fetch a malformed URL: {err}") from err
        guards = tuple(guard for guard in (self._url_guard, request.url_guard) if guard is not None)
        method = request.method
        body, body_type = build_body(request)
        headers = self._headers(request.headers)
        if body_type is not None:
            headers["Content-Type"] = body_type
        for _ in range(MAX_REDIRECTS + 1):
            page = await self._fetch_hop(method, url, headers, body, robots=request.robots, guards=guards)
            location = page.header("Location")
            if not request.follow_redirects or page.status not in REDIRECT_STATUSES or not location:
                return page
            target = redirect_target(url, location)
            next_method = redirect_method(page.status, method)
            keeps_body = body is not None and next_method == method
            headers = redirect_headers(headers, url, target, keeps_body=keeps_body)
            body = body if keeps_body else None
            log.debug("%s %s answered %d; following to %s", method, url.host, page.status, target.host)
            url, method = target, next_method
        raise FetchError(f"{request.method} {URL(request.url).host}: more than {MAX_REDIRECTS} redirects")

    async def _check_guards(self, url: URL, guards: tuple[UrlGuard, ...]) -> None:
        for guard in guards:
            await guard(url)

    async def _fetch_hop(
        self, method: str, url: URL, headers: dict[str, str], body: bytes | None, *, robots: bool,
        guards: tuple[UrlGuard, ...],
    ) -> Page:
        """One URL, with retries: the guards, robots.txt, the rate limit, then the request itself."""
        host = url.host or ""
        if url.scheme not in ("http", "https") or not host:
            raise FetchError(f"cannot fetch {url.scheme or 'a relative'} URL: only absolute http(s) URLs")
        await self._check_guards(url, guards)
        crawl_delay = 0.0
        if self._respect_robots and robots:
            rules = await self._robots_for(url, guards)
            if not rules.can_fetch(self._user_agent, str(url)):
                raise BlockedError(f"robots.txt disallows {url.path} on {host}")
            crawl_delay = float(rules.crawl_delay(self._user_agent) or 0.0)
        attempts = self._max_retries + 1
        reach_by: float | None = None  # once the host could not be reached: when trying to reach it must end
        for attempt in range(1, attempts + 1):
            # A request that never reached the host spent none of its budget: its retry need not wait for it.
            async with self._pacer.turn(host, crawl_delay, budget=reach_by is None):
                sent = self._clock()
                log.debug("%s %s (attempt %d of %d)", method, url, attempt, attempts)
                error: BaseException | None = None
                try:
                    page = await self._send(method, url, headers, body,
                                            connect_within=None if reach_by is None else reach_by - sent)
                except (aiohttp.ClientError, TimeoutError) as err:
                    error = err
            if error is not None:
                delay = self._backoff(attempt)
                if _never_connected(error):
                    # A host that cannot be reached at all gets HTTP_TIMEOUT_SECONDS from the first such attempt
                    # for all of its attempts, not for each one.
                    reach_by = sent + self._timeout.total if reach_by is None else reach_by
                else:
                    reach_by = None
                late = reach_by is not None and self._clock() + delay >= reach_by
                if attempt == attempts or not _is_transient(error) or late:
                    # Raised outside the except block so a cause whose text holds proxy credentials can be dropped
                    # whole: no implicit __context__ carries it into a logged traceback.
                    leaky = any(secret in f"{error!s} {error!r}" for secret in self._secrets)
                    raise FetchError(
                        f"{method} {host}{url.path} failed after {attempt} attempt(s): {self._describe(error)}"
                    ) from (None if leaky else error)
                log.info("%s %s: %s; retrying in %.2fs", method, host, self._describe(error), delay)
                await self._sleep(delay)
                continue
            if page.status not in RETRY_STATUSES or attempt == attempts:
                return page
            delay = self._retry_delay(page, attempt)
            if delay is None:
                return page
            log.info("%s %s answered %d; retrying in %.2fs (attempt %d)", method, host, page.status, delay, attempt)
            await self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises on its last attempt")

    async def _send(
        self, method: str, url: URL, headers: dict[str, str], body: bytes | None, *, connect_within: float | None
    ) -> Page:
        """One attempt; `connect_within`: the seconds left to reach a host that could not be reached so far."""
        session = self._ensure_session()
        timeout = self._timeout
        if connect_within is not None:
            connect = min(self._timeout.connect or connect_within, max(connect_within, MIN_CONNECT_SECONDS))
            timeout = aiohttp.ClientTimeout(total=self._timeout.total, connect=connect)
        async with session.request(
            method, self._outgoing(url), headers=self._cookie_header(url, headers), data=body, proxy=self._proxy,
            allow_redirects=False, timeout=timeout,
        ) as resp:
            if self._cookies is not None:
                self._cookies.update_cookies_from_headers(resp.headers.getall("Set-Cookie", []), url)
            declared = resp.content_length
            if declared is not None and declared > self._max_body_bytes:
                limit = self._max_body_bytes
                raise FetchError(f"response too large: {url.host} declared {declared} bytes (limit {limit})")
            data = await _read_body(resp, self._max_body_bytes)
            if data is None:
                raise FetchError(f"response too large: {url.host} sent more than {self._max_body_bytes} bytes")
            return Page(
                url=str(url),
                status=resp.status,
                body=data,
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
                "%s answered %d with Retry-After %.0fs, over the %.0fs cap; giving up",
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

    def _describe(self, err: BaseException) -> str:
        if isinstance(err, TimeoutError):
            what = f"timed out (limit {self._timeout.total}s)"
        elif isinstance(err, aiohttp.ClientHttpProxyError):
            what = f"the proxy refused (HTTP {err.status})"
        elif isinstance(err, aiohttp.ClientPayloadError):
            what = "response body cut short"
        elif isinstance(err, aiohttp.ClientConnectionError):
            what = "connection failed"
        elif isinstance(err, FetchError):
            what = "unusable redirect"
        else:
            what = "HTTP client error"
        detail = str(err)[:200]
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        return f"{what} ({type(err).__name__}{': ' + detail if detail else ''})"


class PublicAddressResolver(AbstractResolver):
    """The resolver of the fetcher's connections: a name connects only when every address it has is public.

    A URL guard's own lookup happens before aiohttp resolves the name again to connect, and a name can answer a
    public address to the first and 127.0.0.1 to the second (DNS rebinding); this check is on the answer connected to.
    """

    def __init__(self, lookup: Resolver) -> None:
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = list(await self._lookup(host, port))
        if not answers:
            raise OSError(f"{host} has no addresses")  # aiohttp reports it as a failed connection
        problem = answers_problem(host, answers)
        if problem:
            log.warning("refused to connect: %s", problem)
            raise BlockedError(f"refused to connect to {host}: {problem}")
        # The connector drops the answers of another family than the one it was asked for.
        return [
            ResolveResult(hostname=host, host=address, port=port,
                          family=socket.AF_INET6 if ":" in address else socket.AF_INET, proto=0,
                          flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
            for address in answers
        ]

    async def close(self) -> None:
        """Nothing to release: the lookup holds no resources of its own."""


def _never_connected(err: BaseException) -> bool:
    """The request never reached the host: its name did not resolve, or no connection to it could be made."""
    return isinstance(err, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))


def _is_transient(err: BaseException) -> bool:
    """Worth another attempt: the connection, the wait or the body broke, or the proxy was briefly unwell."""
    if isinstance(err, aiohttp.ClientHttpProxyError):
        return err.status >= 500
    return isinstance(err, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError))


async def _read_body(resp: aiohttp.ClientResponse, limit: int, *, truncate: bool = False) -> bytes | None:
    """The body up to `limit` bytes: None past the limit, or the first `limit` bytes when `truncate`."""
    chunks: list[bytes] = []
    size = 0
    # As the chunks arrive: iter_chunked would copy them again into pieces of a fixed size.
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            if truncate:
                return b"".join(chunks)[:limit]
            return None
    return b"".join(chunks)
