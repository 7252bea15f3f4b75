"""The fetcher's pure rules: Retry-After, robots.txt, redirect hops, request bodies and proxy secrets; no IO."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from protego import Protego
from yarl import URL

from scout.errors import FetchError
from scrapers.base import Request

# RFC 9110 §15.4: the statuses that carry a Location to follow (300 and 304 do not redirect by themselves).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Browsers and curl stop at 20 and 50; real marketplaces use one to three hops (http -> https -> locale).
MAX_REDIRECTS = 10
# Headers that carry credentials for one origin: dropped when a redirect leaves it, as browsers and curl do.
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_BODY_HEADERS = frozenset({"content-type", "content-length"})


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


@dataclass(frozen=True, slots=True)
class RobotsVerdict:
    """Whether robots.txt lets our user agent make a request, and why, in words an operator can act on."""

    allowed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """One robots.txt answer: its rules read as RFC 9309 says, or one answer for every path when it had none.

    Protego does the reading: `*` and `$` wildcards, the longest matching rule wins, Allow beats Disallow on a tie.
    """

    robots_url: str
    parser: Protego | None  # None: there were no rules to read, and `blanket` answers for every path
    blanket: RobotsVerdict = RobotsVerdict(True, "no rules")

    def verdict(self, user_agent: str, url: str) -> RobotsVerdict:
        """Whether `user_agent` may fetch `url` by these rules, and why."""
        if self.parser is None:
            return self.blanket
        token = _product_token(user_agent)
        allowed = self.parser.can_fetch(url, token)
        shown = URL(url).raw_path_qs
        return RobotsVerdict(allowed, f"{self.robots_url} {'allows' if allowed else 'disallows'} {shown} for {token}")

    def can_fetch(self, user_agent: str, url: str) -> bool:
        """verdict(...).allowed, with the user agent first as urllib.robotparser's can_fetch took it."""
        return self.verdict(user_agent, url).allowed

    def crawl_delay(self, user_agent: str) -> float | None:
        return self.parser.crawl_delay(_product_token(user_agent)) if self.parser is not None else None


def _product_token(user_agent: str) -> str:
    """The name robots.txt groups are matched against: "DealScout" of "DealScout/0.1 (personal deal alerts...)".

    RFC 9309 §2.2.1 matches the product token, not the whole header, whose comment words could name another group.
    """
    words = user_agent.split("/", 1)[0].split()
    return words[0] if words else ""


def build_robots_rules(robots_url: str, status: int | None, body: bytes) -> RobotsRules:
    """The rules a robots.txt answer sets; status None: it could not be fetched at all (allow, for now)."""
    if status is None:
        return RobotsRules(robots_url, None, RobotsVerdict(True, f"{robots_url} could not be read; allowing for now"))
    if 200 <= status < 300:
        return RobotsRules(robots_url, Protego.parse(body.decode("utf-8", errors="replace")))
    # RFC 9309 §2.3.1.3 lets a crawler take any 4xx as "no rules". We stay stricter on 401 and 403, as
    # urllib.robotparser did: a site that refuses us its robots.txt would refuse its pages as well.
    if status in (401, 403):
        return RobotsRules(robots_url, None, RobotsVerdict(False, f"{robots_url} answered HTTP {status}: "
                                                                  "everything is treated as disallowed"))
    if status >= 500:
        return RobotsRules(robots_url, None, RobotsVerdict(True, f"{robots_url} answered HTTP {status}; "
                                                                 "allowing for now"))
    return RobotsRules(robots_url, None, RobotsVerdict(True, f"{robots_url} answered HTTP {status}: no rules"))


def build_body(request: Request) -> tuple[bytes | None, str | None]:
    """The bytes to send and their Content-Type, or (None, None) for a request without a body."""
    if request.data is not None:
        return urlencode(list(request.data)).encode("ascii"), "application/x-www-form-urlencoded"
    if request.json is not None:
        return request.json.encode("utf-8"), "application/json"
    return None, None


def redirect_target(url: URL, location: str) -> URL:
    """Where a Location header points, resolved against the URL that answered; FetchError when unusable."""
    try:
        target = url.join(URL(location.strip()))
    except (ValueError, TypeError) as err:
        raise FetchError(f"{url.host} redirected to a malformed URL") from err
    if target.scheme not in ("http", "https") or not target.host:
        raise FetchError(f"{url.host} redirected to a non-http(s) URL ({target.scheme or 'relative'})")
    return target.with_fragment(None)


def redirect_method(status: int, method: str) -> str:
    """The method of the next hop: 303 always turns into GET, 301/302 turn a POST into GET (RFC 9110 §15.4)."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def redirect_headers(headers: dict[str, str], old: URL, new: URL, *, keeps_body: bool) -> dict[str, str]:
    """The headers of the next hop: credentials stay with their origin, body headers with their body."""
    same_origin = (old.scheme, old.host, old.port) == (new.scheme, new.host, new.port)
    return {
        name: value
        for name, value in headers.items()
        if (same_origin or name.lower() not in _ORIGIN_BOUND_HEADERS)
        and (keeps_body or name.lower() not in _BODY_HEADERS)
    }


def check_proxy(proxy: str | None) -> tuple[URL | None, tuple[str, ...]]:
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
