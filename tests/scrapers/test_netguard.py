"""The network guards: internal addresses refused for feeds (when saved, fetched and connected to), and fixed-host
adapters kept on their own domains."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable

import pytest
from yarl import URL

from scout.errors import BlockedError, FetchError, InputError
from scrapers.base import Request, ScrapeStatus, SearchQuery
from scrapers.http import HttpFetcher, PublicAddressResolver
from scrapers.netguard import SiteGuard, UrlGuard, address_problem, check_url, literal_address, resolve_host
from scrapers.rss.adapter import RssAdapter
from tests.fakes.marketplace import FakeMarketplace

MakeFetcher = Callable[..., HttpFetcher]

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

# One literal address of each kind the issue names, and the kind the refusal must give.
INTERNAL_LITERALS = [
    ("http://127.0.0.1/feed", "loopback"),
    ("http://127.8.9.10:8080/feed", "loopback"),
    ("http://[::1]/feed", "loopback"),
    ("http://10.0.0.1/feed", "private"),
    ("http://10.255.255.254/feed", "private"),
    ("http://172.16.0.1/feed", "private"),
    ("http://172.31.255.255/feed", "private"),
    ("http://192.168.1.1/feed", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://100.64.0.1/feed", "carrier-grade NAT"),
    ("http://100.127.255.254/feed", "carrier-grade NAT"),
    ("http://0.0.0.0/feed", "unspecified"),
    ("http://0.1.2.3/feed", "'this network'"),
    ("http://[::]/feed", "unspecified"),
    ("http://[::ffff:127.0.0.1]/feed", "loopback (inside an IPv6 address)"),
    ("http://[::ffff:10.1.2.3]/feed", "private (inside an IPv6 address)"),
    ("http://[::ffff:169.254.169.254]/feed", "link-local (inside an IPv6 address)"),
    ("http://[2002:7f00:1::]/feed", "loopback (inside an IPv6 address)"),
    ("http://[64:ff9b::a9fe:a9fe]/feed", "NAT64"),
    ("http://[fc00::1]/feed", "unique-local"),
    ("http://[fd12:3456:789a::1]/feed", "unique-local"),
    ("http://[fe80::1]/feed", "link-local"),
    ("http://[fec0::1]/feed", "site-local"),
    ("http://224.0.0.251/feed", "multicast"),
    ("http://[ff02::1]/feed", "multicast"),
    ("http://240.0.0.1/feed", "reserved"),
    ("http://255.255.255.255/feed", "reserved"),
    ("http://192.0.2.10/feed", "private"),  # TEST-NET-1, documentation
    ("http://198.18.0.1/feed", "benchmarking"),
    ("http://[2001:db8::1]/feed", "documentation"),
    # Shorthand forms the C resolver reads as 127.0.0.1.
    ("http://2130706433/feed", "loopback"),
    ("http://0x7f.0.0.1/feed", "loopback"),
    ("http://127.1/feed", "loopback"),
    ("http://0177.0.0.1/feed", "loopback"),
]


@pytest.mark.parametrize(("url", "kind"), INTERNAL_LITERALS, ids=[url for url, _ in INTERNAL_LITERALS])
def test_internal_literal_addresses_are_refused_when_the_search_is_saved(url: str, kind: str) -> None:
    with pytest.raises(InputError) as caught:
        check_url(url)
    assert kind in str(caught.value)
    assert caught.value.field == "location"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "http:// or https://"),
        ("ftp://deals.example/feed.xml", "http:// or https://"),
        ("gopher://deals.example:70/", "http:// or https://"),
        ("deals.example/feed.xml", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http:///feed", "no host"),
        ("https://user:secret@deals.example/feed", "user name or password"),
        ("http://localhost:8080/feed", "internal host name 'localhost'"),
        ("http://admin.localhost/feed", "internal host name"),
        ("http://metadata.google.internal/computeMetadata/v1/", "internal host name"),
        ("http://printer.local/feed", "internal host name"),
        ("http://nas.home.arpa/feed", "internal host name"),
        ("http://router/feed", "single-label"),
        ("https://deals.example/" + "a" * 2100, "the limit is 2048"),
        ("   ", "empty"),
    ],
)
def test_other_unsafe_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    ["https://slickdeals.net/newsearch.php?mode=frontpage&searcharea=deals&searchin=first&rss=1",
     "http://93.184.215.14/feed.xml", f"http://[{PUBLIC_V6}]:8443/atom", "https://xn--bcher-kva.example/feed#top"],
)
def test_public_urls_pass_and_lose_their_fragment(url: str) -> None:
    checked = check_url(url)
    assert checked.scheme in ("http", "https") and checked.fragment == ""


def test_every_kind_of_address_is_judged() -> None:
    assert address_problem(ipaddress.ip_address(PUBLIC_V4)) is None
    assert address_problem(ipaddress.ip_address(PUBLIC_V6)) is None
    assert address_problem(ipaddress.ip_address(f"::ffff:{PUBLIC_V4}")) is None
    assert address_problem(ipaddress.ip_address("fe80::1%eth0")) == "link-local"
    assert literal_address("deals.example") is None
    assert literal_address("cafe.example") is None


# -- at fetch time: the names, resolved ------------------------------------------------------------------------


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A resolver that answers from a table and records what it was asked."""
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> Iterable[str]:
        asked.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    ("answers", "kind"),
    [
        (["127.0.0.1"], "loopback"),
        (["::1"], "loopback"),
        (["10.20.30.40"], "private"),
        (["172.20.1.1"], "private"),
        (["192.168.0.10"], "private"),
        (["169.254.169.254"], "link-local"),
        (["100.64.0.1"], "carrier-grade NAT"),
        (["0.0.0.0"], "unspecified"),
        (["::ffff:127.0.0.1"], "loopback (inside an IPv6 address)"),
        (["fd00::53"], "unique-local"),
        (["fe80::1%2"], "link-local"),
        # One internal record among public ones is enough: the client may connect to any of them.
        ([PUBLIC_V4, "127.0.0.1"], "loopback"),
        ([PUBLIC_V6, "fc00::1"], "unique-local"),
    ],
)
async def test_a_name_that_resolves_to_an_internal_address_is_blocked(answers: list[str], kind: str) -> None:
    guard = UrlGuard(resolver({"deals.example": answers}))
    with pytest.raises(BlockedError, match=re.escape(kind)):
        await guard(URL("https://deals.example/feed.xml"))


async def test_a_name_that_resolves_to_public_addresses_passes() -> None:
    resolve = resolver({"deals.example": [PUBLIC_V4, PUBLIC_V6]})
    await UrlGuard(resolve)(URL("https://deals.example:8443/feed.xml"))
    assert resolve.asked == [("deals.example", 8443)]


async def test_literal_and_syntax_refusals_are_blocked_at_fetch_time_without_asking_dns() -> None:
    resolve = resolver({})
    guard = UrlGuard(resolve)
    for url in ("http://169.254.169.254/latest/", "http://localhost/", "ftp://deals.example/"):
        with pytest.raises(BlockedError, match="refused to fetch"):
            await guard(URL(url))
    await guard(URL(f"http://{PUBLIC_V4}/feed"))
    assert resolve.asked == []


async def test_a_name_that_does_not_resolve_is_a_fetch_failure_not_a_block() -> None:
    with pytest.raises(FetchError, match="cannot resolve nxdomain.example"):
        await UrlGuard(resolver({}))(URL("https://nxdomain.example/feed"))
    with pytest.raises(FetchError, match="no addresses"):
        await UrlGuard(resolver({"empty.example": []}))(URL("https://empty.example/feed"))


async def test_a_resolver_that_hangs_times_out() -> None:
    import asyncio

    async def hang(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        return []

    with pytest.raises(FetchError, match="TimeoutError"):
        await UrlGuard(hang, timeout_seconds=0.01)(URL("https://slow.example/feed"))


async def test_the_default_resolver_asks_the_event_loop() -> None:
    # localhost comes from the hosts file, so this touches no network.
    addresses = {ipaddress.ip_address(a.split("%")[0]) for a in await resolve_host("localhost", 80)}
    assert addresses and all(address.is_loopback for address in addresses)


# -- at connect time: the addresses checked are the ones connected to ---------------------------------------------


def rebinding(first: list[str], then: list[str]):  # type: ignore[no-untyped-def]
    """DNS that answers `first` to the first question and `then` to every later one (a rebinding attacker's name)."""
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> Iterable[str]:
        asked.append((host, port))
        return first if len(asked) == 1 else then

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


async def test_a_feed_host_that_rebinds_to_loopback_is_refused_at_connect_time(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    """Pins the bug: the feed guard resolved the host, then aiohttp resolved it again to connect, so a name that
    answered a public address to the guard and 127.0.0.1 to the connection (DNS rebinding) reached local services."""
    fake_market.route("/rss", "<rss version='2.0'><channel><title>internal</title></channel></rss>")
    port = URL(fake_market.url).port
    dns = rebinding([PUBLIC_V4], ["127.0.0.1"])

    result = await RssAdapter(url_guard=UrlGuard(dns)).search(
        SearchQuery("deals", f"http://rebind.example:{port}/rss"), make_fetcher(dns_lookup=dns))

    assert result.status is ScrapeStatus.BLOCKED, result.detail
    assert "refused to connect to rebind.example: rebind.example resolves to 127.0.0.1, a loopback" in result.detail
    assert dns.asked == [("rebind.example", port)] * 2  # the guard's question, then the connection's
    assert fake_market.requests == []  # not even robots.txt


@pytest.mark.parametrize("answers", [["127.0.0.1"], [PUBLIC_V4, "10.0.0.8"], ["::ffff:169.254.169.254"]])
async def test_every_name_the_fetcher_connects_to_must_be_public(
    answers: list[str], fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    port = URL(fake_market.url).port
    fetcher = make_fetcher(dns_lookup=resolver({"shop.example": answers}))

    with pytest.raises(BlockedError, match="refused to connect to shop.example: shop.example resolves to"):
        await fetcher.fetch(Request(f"http://shop.example:{port}/x"))
    assert fake_market.requests == []


async def test_a_name_that_does_not_resolve_fails_to_connect_and_is_no_block(make_fetcher: MakeFetcher) -> None:
    fetcher = make_fetcher(dns_lookup=resolver({}), max_retries=0, respect_robots=False)

    with pytest.raises(FetchError, match="connection failed"):
        await fetcher.fetch(Request("https://nxdomain.example/x"))


async def test_public_answers_are_the_addresses_connected_to() -> None:
    resolve = PublicAddressResolver(resolver({"shop.example": [PUBLIC_V4, PUBLIC_V6]}))

    results = await resolve.resolve("shop.example", 443)

    assert [(r["hostname"], r["host"], r["port"], r["family"]) for r in results] == [
        ("shop.example", PUBLIC_V4, 443, socket.AF_INET), ("shop.example", PUBLIC_V6, 443, socket.AF_INET6)]


async def test_through_a_proxy_no_name_is_resolved_here(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    """With a proxy, only the proxy learns where a name leads: it is the proxy that must refuse internal addresses."""
    fake_market.route("/x", "through the proxy")
    dns = resolver({})
    fetcher = make_fetcher(proxy=fake_market.url, dns_lookup=dns, respect_robots=False)

    page = await fetcher.fetch(Request("http://rebind.example/x"))

    assert page.status == 200 and dns.asked == []
    assert fake_market.requests[0].host.startswith("rebind.example")


# -- fixed-host adapters: requests and redirect hops stay on the site -----------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://www.ebay.com/sch/i.html", "https://ebay.com/", "https://signin.ebay.com/ws", "http://WWW.EBAY.COM./x",
            "https://www.ebay.co.uk/sch/i.html"],
)
async def test_a_site_guard_lets_its_registered_domains_through(url: str) -> None:
    await SiteGuard(("ebay.com", "ebay.co.uk"))(URL(url))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://shop.example/sch/i.html", "shop.example is outside ebay.com"),
        ("https://notebay.com/", "notebay.com is outside ebay.com"),
        ("https://www.ebay.com.shop.example/", "www.ebay.com.shop.example is outside ebay.com"),
        ("https://www.ebay.de/", "www.ebay.de is outside ebay.com"),
        (f"https://{'a' * 64}.ebay.com/", "a label of the host name is 64 characters long; the limit is 63"),
        (f"https://{'a' * 61}.{'b' * 61}.{'c' * 61}.{'d' * 61}.ebay.com/",
         "the host name is 256 characters long; the limit is 253"),
    ],
)
async def test_a_site_guard_refuses_any_other_host(url: str, message: str) -> None:
    """Pins the bug: a fixed-host adapter followed a redirect to any host and took its page for the marketplace's."""
    with pytest.raises(BlockedError, match=re.escape(message)):
        await SiteGuard(("ebay.com",))(URL(url))


def test_a_site_guard_needs_a_domain() -> None:
    with pytest.raises(ValueError, match="at least one registered domain"):
        SiteGuard(())


@pytest.mark.parametrize(
    ("host", "message"),
    [("a" * 64 + ".example", "64 characters long; the limit is 63"),
     (".".join(["a" * 63] * 4), "the host name is 255 characters long; the limit is 253")],
)
def test_host_names_too_long_for_dns_are_refused(host: str, message: str) -> None:
    """Pins the bug: a feed on a host name too long for DNS was saved, and its fetch raised UnicodeError."""
    with pytest.raises(InputError, match=re.escape(message)):
        check_url(f"https://{host}/feed")


async def test_a_host_name_of_253_characters_is_still_a_host_name() -> None:
    host = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(host) == 253
    resolve = resolver({host: [PUBLIC_V4]})
    await UrlGuard(resolve)(URL(f"https://{host}/feed"))
    assert resolve.asked == [(host, 443)]
