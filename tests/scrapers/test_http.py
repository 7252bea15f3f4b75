"""HttpFetcher against the local fake marketplace: rate limits, robots.txt, retries, timeouts, size caps, proxies."""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from scout.errors import BlockedError, FetchError
from scrapers.base import Request
from scrapers.http import HttpFetcher, parse_retry_after
from tests.fakes.marketplace import TEST_USER_AGENT as UA
from tests.fakes.marketplace import FakeMarketplace, FakeTime

MakeFetcher = Callable[..., HttpFetcher]


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but never listening: connecting to it is refused, and nobody else can take it meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


# -- success and the request we send ---------------------------------------------------------------------------


async def test_fetch_returns_the_page_with_status_body_type_headers_and_url(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/s", "<html>ok</html>", content_type="text/html; charset=utf-8", headers={"X-Thing": "1"})
    fetcher = make_fetcher()

    page = await fetcher.fetch(Request(f"{fake_market.url}/s", params=(("q", "lego 42100"), ("page", "2"))))

    assert page.status == 200
    assert page.body == b"<html>ok</html>"
    assert page.content_type == "text/html; charset=utf-8"
    assert ("X-Thing", "1") in page.headers
    assert page.url == f"{fake_market.url}/s?q=lego+42100&page=2"
    [sent] = fake_market.requests_to("/s")
    assert sent.query == {"q": "lego 42100", "page": "2"}


async def test_user_agent_is_ours_everywhere_and_adapter_headers_pass_through(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/s", "ok")
    fetcher = make_fetcher()

    await fetcher.fetch(Request(f"{fake_market.url}/s", headers=(("Accept-Language", "de"), ("User-Agent", "Other/1"))))

    assert [r.user_agent for r in fake_market.requests] == [UA, UA]  # robots.txt, then the page
    assert fake_market.requests_to("/s")[0].headers["Accept-Language"] == "de"


async def test_resolve_sends_a_host_to_the_fake_and_page_url_keeps_the_real_host(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/sch/i.html", "ok")
    fetcher = make_fetcher(resolve=fake_market.resolving("www.ebay.com"))

    page = await fetcher.fetch(Request("https://www.ebay.com/sch/i.html", params=(("_nkw", "lego"),)))

    assert page.url == "https://www.ebay.com/sch/i.html?_nkw=lego"
    assert fake_market.paths == ["/robots.txt", "/sch/i.html"]
    assert fake_market.requests[1].query == {"_nkw": "lego"}


async def test_session_is_shared_and_closed(fake_market: FakeMarketplace) -> None:
    fake_market.route("/s", "ok")
    async with HttpFetcher(user_agent=UA, default_rate_per_minute=float("inf")) as fetcher:
        await fetcher.fetch(Request(f"{fake_market.url}/s"))
        session = fetcher._session
        await fetcher.fetch(Request(f"{fake_market.url}/s"))
        assert fetcher._session is session
    assert session is not None and session.closed
    with pytest.raises(RuntimeError):
        await fetcher.fetch(Request(f"{fake_market.url}/s"))


async def test_non_http_url_is_a_fetch_error(make_fetcher: MakeFetcher) -> None:
    with pytest.raises(FetchError, match="only absolute http"):
        await make_fetcher().fetch(Request("ftp://example.com/x"))


# -- rate limits -------------------------------------------------------------------------------------------------


async def test_requests_to_one_host_are_spaced_by_its_rate(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.route("/s", "ok")
    fetcher = make_fetcher(respect_robots=False)
    fetcher.set_host_rate("127.0.0.1", 6)  # one request every 10 s

    for _ in range(3):
        await fetcher.fetch(Request(f"{fake_market.url}/s"))

    assert fake_time.sleeps == [10.0, 10.0]
    assert len(fake_market.requests_to("/s")) == 3


async def test_no_wait_when_the_interval_has_already_passed(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.route("/s", "ok")
    fetcher = make_fetcher(respect_robots=False, host_rates={"127.0.0.1": 6})

    await fetcher.fetch(Request(f"{fake_market.url}/s"))
    fake_time.now += 4
    await fetcher.fetch(Request(f"{fake_market.url}/s"))
    fake_time.now += 60
    await fetcher.fetch(Request(f"{fake_market.url}/s"))

    assert fake_time.sleeps == [6.0]


async def test_concurrent_requests_queue_per_host_and_hosts_do_not_wait_for_each_other(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    frozen = FakeTime(advance=False)  # every reservation is made at the same instant
    fake_market.route("/s", "ok")
    fetcher = make_fetcher(
        respect_robots=False,
        clock=frozen.clock,
        sleep=frozen.sleep,
        resolve=fake_market.resolving("slow.example", "fast.example"),
        host_rates={"slow.example": 6, "fast.example": 60},  # 10 s and 1 s apart
    )

    requests = [Request("http://slow.example/s")] * 4 + [Request("http://fast.example/s")] * 2
    pages = await asyncio.gather(*(fetcher.fetch(r) for r in requests))

    assert [p.status for p in pages] == [200] * 6
    # slow.example: now, +10, +20, +30; fast.example: now, +1; neither queue delays the other.
    assert sorted(frozen.sleeps) == [1.0, 10.0, 20.0, 30.0]


async def test_subdomains_share_a_registered_domain_budget(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.route("/search/sss", "ok")
    resolve = fake_market.resolving("sfbay.craigslist.org", "boston.craigslist.org")
    fetcher = make_fetcher(respect_robots=False, resolve=resolve)
    fetcher.set_host_rate("craigslist.org", 6)

    await fetcher.fetch(Request("https://sfbay.craigslist.org/search/sss"))
    await fetcher.fetch(Request("https://boston.craigslist.org/search/sss"))

    assert fake_time.sleeps == [10.0]


async def test_robots_fetch_counts_against_the_host_budget(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.route("/s", "ok")
    fetcher = make_fetcher(host_rates={"127.0.0.1": 6})

    await fetcher.fetch(Request(f"{fake_market.url}/s"))

    assert fake_market.paths == ["/robots.txt", "/s"]
    assert fake_time.sleeps == [10.0]


async def test_robots_crawl_delay_slows_the_host_down(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.robots("User-agent: *\nCrawl-delay: 5\nDisallow:\n")
    fake_market.route("/s", "ok")
    fetcher = make_fetcher()

    await fetcher.fetch(Request(f"{fake_market.url}/s"))
    await fetcher.fetch(Request(f"{fake_market.url}/s"))

    assert fake_time.sleeps[-1] == pytest.approx(5.0)


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HttpFetcher(default_rate_per_minute=0)
    with pytest.raises(ValueError):
        HttpFetcher().set_host_rate("example.com", -1)


# -- robots.txt --------------------------------------------------------------------------------------------------


async def test_robots_disallow_raises_blocked_without_requesting_the_page(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.robots("User-agent: *\nDisallow: /private\n")
    fake_market.route("/private/s", "secret")
    fake_market.route("/public", "ok")
    fetcher = make_fetcher()

    with pytest.raises(BlockedError, match=r"robots.txt disallows /private/s on 127\.0\.0\.1"):
        await fetcher.fetch(Request(f"{fake_market.url}/private/s"))
    assert (await fetcher.fetch(Request(f"{fake_market.url}/public"))).status == 200
    assert fake_market.requests_to("/private/s") == []


async def test_robots_rules_for_our_user_agent_apply(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.robots("User-agent: DealScoutTest\nDisallow: /\n\nUser-agent: *\nDisallow:\n")
    fake_market.route("/s", "ok")

    with pytest.raises(BlockedError):
        await make_fetcher().fetch(Request(f"{fake_market.url}/s"))
    assert (await make_fetcher(user_agent="SomeoneElse/2").fetch(Request(f"{fake_market.url}/s"))).status == 200


async def test_robots_query_rules_see_the_params(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.robots("User-agent: *\nDisallow: /s?page=\n")
    fake_market.route("/s", "ok")
    fetcher = make_fetcher()

    assert (await fetcher.fetch(Request(f"{fake_market.url}/s", params=(("q", "x"),)))).status == 200
    with pytest.raises(BlockedError):
        await fetcher.fetch(Request(f"{fake_market.url}/s", params=(("page", "2"),)))


@pytest.mark.parametrize("status", [404, 410])
async def test_missing_robots_allows_everything(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, status: int
) -> None:
    fake_market.robots("gone", status=status)
    fake_market.route("/s", "ok")

    assert (await make_fetcher().fetch(Request(f"{fake_market.url}/s"))).status == 200


@pytest.mark.parametrize("status", [401, 403])
async def test_forbidden_robots_disallows_everything(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, status: int
) -> None:
    fake_market.robots("no", status=status)
    fake_market.route("/s", "ok")

    with pytest.raises(BlockedError, match="robots.txt disallows /s"):
        await make_fetcher().fetch(Request(f"{fake_market.url}/s"))
    assert fake_market.requests_to("/s") == []


async def test_unreachable_robots_allows_and_logs_and_is_asked_again_soon(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    fake_market.truncate("/robots.txt", "User-agent: *\nDis", times=1)
    fake_market.route("/s", "ok")
    fetcher = make_fetcher()

    with caplog.at_level(logging.WARNING, logger="scrapers.http"):
        assert (await fetcher.fetch(Request(f"{fake_market.url}/s"))).status == 200
    assert "robots.txt of 127.0.0.1 unreachable" in caplog.text
    fake_time.now += 301  # past the short retry window, well inside the normal TTL
    await fetcher.fetch(Request(f"{fake_market.url}/s"))
    assert len(fake_market.requests_to("/robots.txt")) == 2


async def test_server_error_on_robots_allows_for_now(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.robots("down", status=503)
    fake_market.route("/s", "ok")

    assert (await make_fetcher().fetch(Request(f"{fake_market.url}/s"))).status == 200


async def test_robots_is_fetched_once_per_host_even_concurrently(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/s", "ok")
    fetcher = make_fetcher()

    await asyncio.gather(*(fetcher.fetch(Request(f"{fake_market.url}/s")) for _ in range(5)))
    for _ in range(5):
        await fetcher.fetch(Request(f"{fake_market.url}/s"))

    assert len(fake_market.requests_to("/robots.txt")) == 1
    assert len(fake_market.requests_to("/s")) == 10


async def test_robots_is_fetched_again_after_its_ttl(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.route("/s", "ok")
    fetcher = make_fetcher(robots_ttl_seconds=3600)

    await fetcher.fetch(Request(f"{fake_market.url}/s"))
    fake_time.now += 3599
    await fetcher.fetch(Request(f"{fake_market.url}/s"))
    assert len(fake_market.requests_to("/robots.txt")) == 1
    fake_time.now += 2
    await fetcher.fetch(Request(f"{fake_market.url}/s"))
    assert len(fake_market.requests_to("/robots.txt")) == 2


async def test_robots_can_be_turned_off(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.robots("User-agent: *\nDisallow: /\n")
    fake_market.route("/s", "ok")

    assert (await make_fetcher(respect_robots=False).fetch(Request(f"{fake_market.url}/s"))).status == 200
    assert fake_market.paths == ["/s"]


# -- retries -----------------------------------------------------------------------------------------------------


async def test_429_retry_after_seconds_is_honoured_then_success(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.fail("/s", 429, retry_after=7)
    fake_market.route("/s", "ok")

    page = await make_fetcher().fetch(Request(f"{fake_market.url}/s"))

    assert page.status == 200
    assert fake_time.sleeps == [7.0]
    assert len(fake_market.requests_to("/s")) == 2


async def test_429_retry_after_http_date_is_measured_from_the_server_date(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    server_now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    fake_market.fail(
        "/s",
        429,
        retry_after=format_datetime(server_now + timedelta(seconds=30), usegmt=True),
        headers={"Date": format_datetime(server_now, usegmt=True)},
    )
    fake_market.route("/s", "ok")

    page = await make_fetcher().fetch(Request(f"{fake_market.url}/s"))

    assert page.status == 200
    assert fake_time.sleeps == [30.0]


async def test_retry_after_beyond_the_cap_returns_the_response_at_once(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.fail("/s", 429, retry_after=3600, times=None)

    page = await make_fetcher(backoff_max=60).fetch(Request(f"{fake_market.url}/s"))

    assert page.status == 429
    assert fake_time.sleeps == []
    assert len(fake_market.requests_to("/s")) == 1


async def test_503_is_retried_with_growing_jittered_backoff_then_success(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.fail("/s", 503, times=3)
    fake_market.route("/s", "ok")

    page = await make_fetcher(max_retries=3, backoff_base=1.0).fetch(Request(f"{fake_market.url}/s"))

    assert page.status == 200
    assert fake_time.sleeps == [0.75, 1.5, 3.0]  # step 1, 2, 4 with jitter 0.5: half fixed plus half of 0.5


async def test_backoff_with_random_jitter_grows_and_stays_under_the_cap(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.fail("/s", 502, times=None)
    fetcher = make_fetcher(max_retries=7, backoff_base=1.0, backoff_max=16.0, random=random.Random(7).random)

    page = await fetcher.fetch(Request(f"{fake_market.url}/s"))

    assert page.status == 502
    assert len(fake_time.sleeps) == 7
    # Steps 1, 2, 4, 8, 16, 16, 16: each delay is in [step/2, step], so they grow until the cap, then stay under it.
    for attempt, delay in enumerate(fake_time.sleeps, start=1):
        step = min(16.0, 2.0 ** (attempt - 1))
        assert step / 2 <= delay <= step
    assert fake_time.sleeps[:5] == sorted(fake_time.sleeps[:5])
    assert len(set(fake_time.sleeps)) == 7  # jitter made them differ


@pytest.mark.parametrize("status", [429, 500, 503, 504])
async def test_retries_exhausted_return_the_final_page(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime, status: int
) -> None:
    fake_market.fail("/s", status, times=None)

    page = await make_fetcher(max_retries=2).fetch(Request(f"{fake_market.url}/s"))

    assert page.status == status
    assert len(fake_market.requests_to("/s")) == 3
    assert len(fake_time.sleeps) == 2


@pytest.mark.parametrize("status", [403, 404, 400])
async def test_final_statuses_are_not_retried(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, status: int
) -> None:
    fake_market.fail("/s", status, times=None)

    page = await make_fetcher().fetch(Request(f"{fake_market.url}/s"))

    assert page.status == status
    assert len(fake_market.requests_to("/s")) == 1


async def test_connection_refused_raises_fetch_error_after_retries(
    make_fetcher: MakeFetcher, fake_time: FakeTime, refused_port: int
) -> None:
    fetcher = make_fetcher(max_retries=2, respect_robots=False)

    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(Request(f"http://127.0.0.1:{refused_port}/s"))

    message = str(caught.value)
    assert "127.0.0.1/s" in message and "3 attempt" in message and "connection failed" in message
    assert fake_time.sleeps == [0.75, 1.5]


async def test_retries_of_a_refused_connection_do_not_wait_for_the_hosts_budget(
    make_fetcher: MakeFetcher, fake_time: FakeTime, refused_port: int
) -> None:
    """Regression: each retry of a fetch that could not connect waited its turn in the host's budget (eBay's 3 a
    minute), so an offline eBay took 80 s to fail."""
    fetcher = make_fetcher(max_retries=3, respect_robots=False, host_rates={"127.0.0.1": 3}, timeout_seconds=20)

    with pytest.raises(FetchError, match="4 attempt.*connection failed"):
        await fetcher.fetch(Request(f"http://127.0.0.1:{refused_port}/s"))

    assert fake_time.sleeps == [0.75, 1.5, 3.0]  # the backoff only


async def test_a_host_that_cannot_be_reached_fails_within_the_timeout(
    make_fetcher: MakeFetcher, fake_time: FakeTime, refused_port: int
) -> None:
    fetcher = make_fetcher(max_retries=10, respect_robots=False, timeout_seconds=3)
    started = fake_time.now

    with pytest.raises(FetchError, match="3 attempt"):
        await fetcher.fetch(Request(f"http://127.0.0.1:{refused_port}/s"))

    assert fake_time.sleeps == [0.75, 1.5]  # a third backoff of 3 s would end past the 3 s the host had
    assert fake_time.now - started <= 3


async def test_an_offline_marketplace_fails_within_the_timeout_on_the_real_clock(refused_port: int) -> None:
    """Regression: an offline eBay (3 requests a minute) took 80 s to report its fetch failed, four attempts each
    waiting for the host's budget; it must fail within HTTP_TIMEOUT_SECONDS."""
    timeout = 2.0
    fetcher = HttpFetcher(user_agent=UA, timeout_seconds=timeout, backoff_base=0.01, respect_robots=False,
                          host_rates={"ebay.com": 3},
                          resolve={"www.ebay.com": f"http://127.0.0.1:{refused_port}"})
    started = time.monotonic()
    async with fetcher, asyncio.timeout(timeout * 3):  # fail fast, not in a minute, if retries wait again
        with pytest.raises(FetchError, match="connection failed"):
            await fetcher.fetch(Request("https://www.ebay.com/sch/i.html", params=(("_nkw", "lego"),)))
    assert time.monotonic() - started < timeout


async def test_timeout_raises_fetch_error_after_retries(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.hold("/slow")  # never released: only our tiny timeout ends each attempt
    fetcher = make_fetcher(timeout_seconds=0.05, max_retries=1)

    with pytest.raises(FetchError, match=r"failed after 2 attempt\(s\): timed out"):
        await fetcher.fetch(Request(f"{fake_market.url}/slow"))
    assert len(fake_market.requests_to("/slow")) == 2


async def test_truncated_body_is_retried_then_raises(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.truncate("/cut", "<html><body><ul>")

    with pytest.raises(FetchError, match="cut short"):
        await make_fetcher(max_retries=2).fetch(Request(f"{fake_market.url}/cut"))
    assert len(fake_market.requests_to("/cut")) == 3


async def test_truncated_once_then_whole_succeeds(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.truncate("/cut", "<html>", times=1)
    fake_market.route("/cut", "<html>whole</html>")

    page = await make_fetcher().fetch(Request(f"{fake_market.url}/cut"))

    assert page.body == b"<html>whole</html>"


# -- size cap ----------------------------------------------------------------------------------------------------


async def test_declared_too_large_body_raises_without_retry(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/big", b"x" * 2048)

    with pytest.raises(FetchError, match="response too large"):
        await make_fetcher(max_body_bytes=1024).fetch(Request(f"{fake_market.url}/big"))
    assert len(fake_market.requests_to("/big")) == 1


async def test_body_that_inflates_past_the_cap_raises(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    """A small gzip body passes the Content-Length check; the cap must hold on the decompressed bytes."""
    fake_market.route("/bomb", gzip.compress(b"a" * 100_000), headers={"Content-Encoding": "gzip"})

    with pytest.raises(FetchError, match="response too large"):
        await make_fetcher(max_body_bytes=10_000).fetch(Request(f"{fake_market.url}/bomb"))


async def test_body_at_the_cap_is_fine(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/exact", b"x" * 1024)

    page = await make_fetcher(max_body_bytes=1024).fetch(Request(f"{fake_market.url}/exact"))

    assert len(page.body) == 1024


# -- proxies and secrets -----------------------------------------------------------------------------------------


async def test_requests_go_through_the_proxy_with_its_credentials(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    # The fake answers absolute-form requests, so it doubles as a plain HTTP proxy that records what reached it.
    fake_market.route("/items", "via proxy")
    port = fake_market.url.rsplit(":", 1)[1]
    fetcher = make_fetcher(proxy=f"http://scout:s3cret@127.0.0.1:{port}")

    page = await fetcher.fetch(Request("http://shop.example/items"))

    assert page.body == b"via proxy"
    assert page.url == "http://shop.example/items"
    expected = "Basic " + base64.b64encode(b"scout:s3cret").decode()
    assert [(r.path, r.host) for r in fake_market.requests] == [
        ("/robots.txt", "shop.example"),
        ("/items", "shop.example"),
    ]
    assert all(r.headers["Proxy-Authorization"] == expected for r in fake_market.requests)
    assert all(r.user_agent == UA for r in fake_market.requests)


async def test_proxy_credentials_never_reach_messages_or_logs(
    make_fetcher: MakeFetcher, refused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    fetcher = make_fetcher(proxy=f"http://scout:s3cret-pw@127.0.0.1:{refused_port}", max_retries=1)

    with caplog.at_level(logging.DEBUG, logger="scrapers.http"), pytest.raises(FetchError) as caught:
        await fetcher.fetch(Request("http://shop.example/items"))

    assert "shop.example" in str(caught.value)
    for text in (str(caught.value), caplog.text):
        assert "s3cret" not in text
        assert base64.b64encode(b"scout:s3cret-pw").decode() not in text


async def test_proxy_refusing_a_tunnel_is_a_fetch_error_without_the_secret(
    make_fetcher: MakeFetcher, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: aiohttp's ClientHttpProxyError escaped as is, and its text holds the proxy URL with the password."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    fetcher = make_fetcher(proxy=f"http://scout:s3cret-pw@127.0.0.1:{port}", respect_robots=False)
    try:
        with caplog.at_level(logging.DEBUG, logger="scrapers.http"), pytest.raises(FetchError) as caught:
            await fetcher.fetch(Request("https://shop.example/items"))  # https: a CONNECT tunnel, refused with 407
    finally:
        proxy.close()
        await proxy.wait_closed()

    assert "proxy refused (HTTP 407)" in str(caught.value)
    assert "1 attempt" in str(caught.value)  # a refusal is final, not retried
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert "s3cret" not in str(caught.value) and "s3cret" not in caplog.text


async def test_request_cookies_and_authorization_are_not_logged(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, caplog: pytest.LogCaptureFixture
) -> None:
    fake_market.fail("/s", 503)
    fake_market.route("/s", "ok")
    secret_headers = (("Cookie", "session=topsecret"), ("Authorization", "Bearer topsecret"))

    with caplog.at_level(logging.DEBUG, logger="scrapers.http"):
        await make_fetcher().fetch(Request(f"{fake_market.url}/s", headers=secret_headers))

    assert "GET" in caplog.text
    assert "topsecret" not in caplog.text
    assert fake_market.requests_to("/s")[0].headers["Cookie"] == "session=topsecret"


def test_a_proxy_must_be_an_http_url() -> None:
    with pytest.raises(ValueError):
        HttpFetcher(proxy="socks5://127.0.0.1:1080")


# -- Retry-After parsing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "date", "expected"),
    [
        ("120", None, 120.0),
        (" 0 ", None, 0.0),
        ("Wed, 02 Jan 2030 03:04:35 GMT", "Wed, 02 Jan 2030 03:04:05 GMT", 30.0),
        ("Wed, 02 Jan 2030 03:04:00 GMT", "Wed, 02 Jan 2030 03:04:05 GMT", 0.0),  # already past
        ("Wed, 02 Jan 2030 03:04:35 GMT", "not a date", 30.0),
        ("soon", None, None),
        ("-5", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_parse_retry_after(value: str | None, date: str | None, expected: float | None) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()  # the fallback when the Date header is unusable
    assert parse_retry_after(value, date, now) == expected
