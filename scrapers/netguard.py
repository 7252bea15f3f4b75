"""The network guards: user-given feed URLs reach only public http(s) addresses; fixed-host adapters stay on their
domains."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from yarl import URL

from scout.errors import BlockedError, FetchError, InputError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> every address the name resolves to (as text). Tests inject one; production asks the event loop.
Resolver = Callable[[str, int], Awaitable[Iterable[str]]]

# A feed URL is stored with the search and shown back to its owner; browsers cap URLs near this length too.
MAX_URL_LENGTH = 2048
# A resolver that hangs must not hold a scan slot for the whole HTTP timeout.
RESOLVE_TIMEOUT_SECONDS = 10.0
# RFC 1035 §2.3.4 (with RFC 2181 §11): a name is at most 255 octets on the wire, 253 characters written out,
# and each label at most 63. Longer names cannot resolve; Python's resolver raises UnicodeError on a long label.
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63

# Ranges refused beyond what ipaddress's is_* properties cover in Python 3.11. Sources: the IANA IPv4 and IPv6
# Special-Purpose Address Registries (RFC 6890 and its updates).
_EXTRA_BLOCKED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("0.0.0.0/8"), "'this network' (unspecified)"),
    (ipaddress.ip_network("100.64.0.0/10"), "carrier-grade NAT (shared address space)"),
    (ipaddress.ip_network("192.0.0.0/24"), "IETF protocol assignments"),
    (ipaddress.ip_network("198.18.0.0/15"), "benchmarking"),
    (ipaddress.ip_network("240.0.0.0/4"), "reserved"),
    (ipaddress.ip_network("::/96"), "IPv4-compatible IPv6 (deprecated)"),
    (ipaddress.ip_network("64:ff9b::/96"), "NAT64"),
    (ipaddress.ip_network("64:ff9b:1::/48"), "local-use NAT64"),
    (ipaddress.ip_network("100::/64"), "discard-only"),
    (ipaddress.ip_network("2001::/23"), "IETF protocol assignments (Teredo, ORCHID...)"),
    (ipaddress.ip_network("2001:db8::/32"), "documentation"),
    (ipaddress.ip_network("fc00::/7"), "unique-local"),
    (ipaddress.ip_network("fec0::/10"), "site-local (deprecated)"),
)
# Names that only an internal resolver answers: RFC 6761 (localhost), RFC 6762 (local), RFC 8375 (home.arpa),
# ICANN's 2024 private-use TLD (internal: also Google's metadata.google.internal), and common LAN suffixes.
_INTERNAL_SUFFIXES = ("localhost", "localdomain", "local", "internal", "intranet", "lan", "home.arpa", "corp",
                      "private")


def address_problem(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("loopback", "private"...), or None when it is a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address inside are judged by it, so ::ffff:127.0.0.1 is loopback.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (inside an IPv6 address)" if problem else None
    for test, kind in (("is_loopback", "loopback"), ("is_unspecified", "unspecified"),
                       ("is_link_local", "link-local"), ("is_multicast", "multicast")):
        if getattr(address, test):
            return kind
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return "scoped (zone index)"
    for network, kind in _EXTRA_BLOCKED:
        if address.version == network.version and address in network:
            return kind
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally routable"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host names directly: dotted, bracketed IPv6, or the shorthand forms getaddrinfo also accepts
    ("127.1", "0x7f.0.0.1", "2130706433"); None for a DNS name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]) if ":" in host else ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host or not host.replace(".", "").isalnum():
        return None
    # inet_aton is the C library's own reading of numeric hosts, the one the resolver would apply later.
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_url(raw: str, *, what: str = "feed URL") -> URL:
    """The syntax half of the check, pure: an absolute http(s) URL whose host is not an internal name or address.

    Raises InputError with a message for the user. DNS names are resolved later, at fetch time (UrlGuard).
    """
    text = raw.strip()
    if not text:
        raise InputError(f"The {what} is empty.", field="location")
    if len(text) > MAX_URL_LENGTH:
        raise InputError(f"The {what} is {len(text)} characters long; the limit is {MAX_URL_LENGTH}.", field="location")
    try:
        url = URL(text)
        host = url.raw_host or ""
    except (ValueError, TypeError, UnicodeError) as err:
        raise InputError(f"The {what} {text[:80]!r} is not a valid URL.", field="location") from err
    if url.scheme not in ("http", "https"):
        raise InputError(f"The {what} must start with http:// or https:// (got {url.scheme or 'no scheme'}).",
                         field="location")
    if not host:
        raise InputError(f"The {what} {text[:80]!r} has no host name.", field="location")
    too_long = host_name_problem(host)
    if too_long:
        raise InputError(f"The {what} cannot be used: {too_long}.", field="location")
    if url.raw_user is not None or url.raw_password is not None:
        # Credentials would be stored with the search and shown in every listing of it.
        raise InputError(f"The {what} must not contain a user name or password.", field="location")
    refusal = host_problem(host)
    if refusal:
        raise InputError(f"The {what} points at {refusal}; only public web addresses are allowed.", field="location")
    return url.with_fragment(None)


def host_name_problem(host: str) -> str | None:
    """Why a host name is too long for DNS ("the host name is 300 characters long; the limit is 253"), or None."""
    name = host.rstrip(".")
    if len(name) > MAX_HOST_LENGTH:
        return f"the host name is {len(name)} characters long; the limit is {MAX_HOST_LENGTH}"
    longest = max(name.split("."), key=len)
    if len(longest) > MAX_LABEL_LENGTH:
        return f"a label of the host name is {len(longest)} characters long; the limit is {MAX_LABEL_LENGTH}"
    return None


def host_problem(host: str) -> str | None:
    """Why a host (name or literal address) is refused without resolving it, or None."""
    address = literal_address(host)
    if address is not None:
        problem = address_problem(address)
        return f"a {problem} address ({address})" if problem else None
    name = host.rstrip(".").lower()
    if any(name == suffix or name.endswith("." + suffix) for suffix in _INTERNAL_SUFFIXES):
        return f"the internal host name {name!r}"
    if "." not in name:
        # A single label is completed with the resolver's search domains: an internal host by construction.
        return f"the single-label host name {name!r}"
    return None


def answers_problem(host: str, answers: Iterable[str]) -> str | None:
    """Why a name's DNS answers are refused ("x.example resolves to 127.0.0.1, a loopback address"), or None.

    ANY non-public answer refuses the name: a client may connect to any of the addresses a name has.
    """
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer.split("%", 1)[0])
        except ValueError:
            return f"{host} resolved to {answer!r}, which is no IP address"
        problem = address_problem(address)
        if problem:
            return f"{host} resolves to {address}, a {problem} address"
    return None


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host, through the running event loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class UrlGuard:
    """The fetch-time half: called by the fetcher before each request and each redirect hop.

    Raises BlockedError when the URL fails the syntax check or when ANY address its host resolves to is not
    public (so a name with one public and one internal record is refused: the client may pick either), and
    FetchError when the name does not resolve. Production always uses the system resolver; tests inject one.
    """

    def __init__(self, resolver: Resolver | None = None, *, timeout_seconds: float = RESOLVE_TIMEOUT_SECONDS) -> None:
        self._resolver = resolver or resolve_host
        self._timeout = timeout_seconds

    async def __call__(self, url: URL) -> None:
        try:
            checked = check_url(str(url), what="URL")
        except InputError as err:
            raise BlockedError(f"refused to fetch {_shown(url)}: {err}") from None
        host = checked.raw_host or ""
        if literal_address(host) is not None:
            return  # check_url has judged the literal address already
        port = checked.port or (443 if checked.scheme == "https" else 80)
        try:
            async with asyncio.timeout(self._timeout):
                answers = list(await self._resolver(host, port))
        except (OSError, TimeoutError) as err:
            raise FetchError(f"cannot resolve {host}: {type(err).__name__}: {err}") from err
        if not answers:
            raise FetchError(f"cannot resolve {host}: no addresses")
        problem = answers_problem(host, answers)
        if problem:
            log.warning("refused %s: %s", _shown(url), problem)
            raise BlockedError(f"refused to fetch {_shown(url)}: {problem}")


@dataclass(frozen=True, slots=True)
class SiteGuard:
    """The URL guard of an adapter with fixed hosts: its requests and every redirect hop stay within its registered
    domains (subdomains included). Anything else raises BlockedError, which Adapter.search reports as BLOCKED, so a
    redirect to another site never has its page taken for the marketplace's."""

    domains: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.domains:
            raise ValueError("a SiteGuard needs at least one registered domain")

    async def __call__(self, url: URL) -> None:
        host = (url.raw_host or "").rstrip(".").lower()
        problem = host_name_problem(host)
        if problem is None and not any(host == domain or host.endswith("." + domain) for domain in self.domains):
            problem = f"{host} is outside {' and '.join(self.domains)}"
        if problem:
            log.warning("refused %s: %s", _shown(url), problem)
            raise BlockedError(f"refused to fetch {_shown(url)}: {problem}")


def _shown(url: URL) -> str:
    # Enough to recognise the URL in a log or task_logs row, without a long query string.
    return f"{url.scheme}://{url.raw_host}{url.raw_path}"[:120]
