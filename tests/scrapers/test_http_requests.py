"""HttpFetcher's request options: methods and bodies, redirects it follows hop by hop, URL guards, the cookie jar."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from yarl import URL

from scout.errors import BlockedError, FetchError, InputError
from scrapers.base import Adapter, Page, Request, ScrapeResult, ScrapeStatus, SearchQuery
from scrapers.http import HttpFetcher
from tests.fakes.marketplace import FakeMarketplace, FakeTime

MakeFetcher = Callable[..., HttpFetcher]


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    """A server that answers every request with what it received, for checking bodies (the fake does not keep them)."""

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({
            "method": request.method, "path": request.path, "content_type": request.headers.get("Content-Type"),
            "body": body.decode(), "cookie": request.headers.get("Cookie"),
        })

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


class GuardLog:
    """A URL guard that records what it was asked and refuses the hosts it is told to."""

    def __init__(self, refuse: tuple[str, ...] = (), error: type[Exception] = BlockedError) -> None:
        self.seen: list[str] = []
        self.refuse = refuse
        self.error = error

    async def __call__(self, url: URL) -> None:
        self.seen.append(str(url))
        if url.host in self.refuse:
            raise self.error(f"refused to fetch {url.host}: internal address")


# -- Request ---------------------------------------------------------------------------------------------------


def test_request_defaults_are_the_old_get() -> None:
    request = Request("https://example.com/s")
    assert (request.method, request.data, request.json, request.follow_redirects, request.robots) == (
        "GET", None, None, True, True)
    assert request.url_guard is None
    hash(request)  # still usable as a key


@pytest.mark.parametrize(
    "options",
    [{"method": "DELETE"}, {"method": "get"}, {"data": (("a", "1"),)}, {"json": "{}"},
     {"method": "POST", "data": (("a", "1"),), "json": "{}"}],
)
def test_request_rejects_what_it_cannot_mean(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Request("https://example.com/s", **options)  # type: ignore[arg-type]


def test_page_header_is_case_insensitive() -> None:
    page = Page("https://x/", 302, b"", headers=(("location", "/a"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")))
    assert page.header("Location") == "/a"
    assert page.header("set-cookie") == "a=1"
    assert page.header("Retry-After") is None


# -- methods and bodies --------------------------------------------------------------------------------------------


async def test_post_sends_a_form_body(echo_url: str, make_fetcher: MakeFetcher) -> None:
    request = Request(f"{echo_url}/token", method="POST",
                      data=(("grant_type", "client_credentials"), ("scope", "https://api.example/scope a")))

    page = await make_fetcher(respect_robots=False).fetch(request)

    echoed = json.loads(page.body)
    assert echoed["method"] == "POST"
    assert echoed["content_type"] == "application/x-www-form-urlencoded"
    assert echoed["body"] == "grant_type=client_credentials&scope=https%3A%2F%2Fapi.example%2Fscope+a"


async def test_post_sends_a_json_body(echo_url: str, make_fetcher: MakeFetcher) -> None:
    page = await make_fetcher(respect_robots=False).fetch(
        Request(f"{echo_url}/graphql", method="POST", json='{"q": "lego ü"}'))

    echoed = json.loads(page.body)
    assert (echoed["content_type"], echoed["body"]) == ("application/json", '{"q": "lego ü"}')


async def test_a_post_is_retried_after_a_503(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.fail("/token", 503)
    fake_market.route("/token", "{}", content_type="application/json")

    page = await make_fetcher().fetch(Request(f"{fake_market.url}/token", method="POST", data=(("a", "1"),)))

    assert page.status == 200
    assert [r.method for r in fake_market.requests_to("/token")] == ["POST", "POST"]


async def test_robots_false_skips_robots_txt(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.robots("User-agent: *\nDisallow: /\n")
    fake_market.route("/api", "{}")

    page = await make_fetcher().fetch(Request(f"{fake_market.url}/api", robots=False))

    assert page.status == 200
    assert fake_market.paths == ["/api"]


# -- redirects -------------------------------------------------------------------------------------------------------


async def test_redirects_are_followed_and_page_url_is_the_final_public_url(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/old", status=301, headers={"Location": "/mid?x=1"})
    fake_market.route("/mid", status=302, headers={"Location": "https://www.shop.example/new"})
    fake_market.route("/new", "done")
    fetcher = make_fetcher(resolve=fake_market.resolving("www.shop.example"))

    page = await fetcher.fetch(Request("https://www.shop.example/old"))

    assert (page.status, page.body, page.url) == (200, b"done", "https://www.shop.example/new")
    assert fake_market.paths == ["/robots.txt", "/old", "/mid", "/new"]
    assert fake_market.requests_to("/mid")[0].query == {"x": "1"}


async def test_follow_redirects_false_returns_the_3xx(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/old", status=302, headers={"Location": "/new"})

    page = await make_fetcher().fetch(Request(f"{fake_market.url}/old", follow_redirects=False))

    assert page.status == 302
    assert page.header("Location") == "/new"
    assert fake_market.requests_to("/new") == []


@pytest.mark.parametrize(("status", "method"), [(301, "GET"), (302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")])
async def test_a_post_redirect_keeps_or_drops_the_method_per_rfc_9110(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, status: int, method: str
) -> None:
    fake_market.route("/form", status=status, headers={"Location": "/done"})
    fake_market.route("/done", "ok")

    await make_fetcher().fetch(Request(f"{fake_market.url}/form", method="POST", data=(("a", "1"),)))

    [done] = fake_market.requests_to("/done")
    assert done.method == method
    assert ("Content-Type" in done.headers) is (method == "POST")


async def test_a_redirect_loop_stops_with_a_fetch_error(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/loop", status=302, headers={"Location": "/loop"})

    with pytest.raises(FetchError, match="more than 10 redirects"):
        await make_fetcher().fetch(Request(f"{fake_market.url}/loop"))
    assert len(fake_market.requests_to("/loop")) == 11


async def test_a_redirect_to_another_scheme_is_a_fetch_error(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/old", status=302, headers={"Location": "file:///etc/passwd"})

    with pytest.raises(FetchError, match="non-http"):
        await make_fetcher().fetch(Request(f"{fake_market.url}/old"))


async def test_each_hop_checks_robots_of_its_own_host(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/old", status=302, headers={"Location": "/private/x"})
    fake_market.robots("User-agent: *\nDisallow: /private\n")

    with pytest.raises(BlockedError, match="robots.txt disallows /private/x"):
        await make_fetcher().fetch(Request(f"{fake_market.url}/old"))
    assert fake_market.requests_to("/private/x") == []


async def test_each_hop_waits_its_turn_in_the_rate_limit(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.route("/old", status=302, headers={"Location": "/new"})
    fake_market.route("/new", "ok")
    fetcher = make_fetcher(respect_robots=False, host_rates={"127.0.0.1": 6})

    await fetcher.fetch(Request(f"{fake_market.url}/old"))

    assert fake_time.sleeps == [10.0]


async def test_credentials_do_not_follow_a_redirect_to_another_origin(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/a", status=302, headers={"Location": "/b"})
    fake_market.route("/b", status=302, headers={"Location": "https://other.example/c"})
    fake_market.route("/c", "ok")
    fetcher = make_fetcher(resolve=fake_market.resolving("api.shop.example", "other.example"))
    secret = (("Authorization", "Bearer tok-123"), ("Cookie", "sid=abc"))

    await fetcher.fetch(Request("https://api.shop.example/a", headers=secret))

    assert fake_market.requests_to("/b")[0].headers["Authorization"] == "Bearer tok-123"
    third = fake_market.requests_to("/c")[0].headers
    assert "Authorization" not in third and "Cookie" not in third


# -- URL guards ----------------------------------------------------------------------------------------------------


async def test_guards_see_every_url_before_it_is_fetched(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/feed", status=302, headers={"Location": "https://cdn.feeds.example/feed.xml"})
    fake_market.route("/feed.xml", "<rss/>")
    fetcher_guard, request_guard = GuardLog(), GuardLog()
    fetcher = make_fetcher(resolve=fake_market.resolving("feeds.example", "cdn.feeds.example"), url_guard=fetcher_guard)

    await fetcher.fetch(Request("https://feeds.example/feed", url_guard=request_guard))

    expected = ["https://feeds.example/feed", "https://cdn.feeds.example/feed.xml"]
    assert fetcher_guard.seen == expected and request_guard.seen == expected


async def test_a_refusing_guard_stops_the_request_before_anything_is_sent(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/x", "secret")
    fetcher = make_fetcher(resolve=fake_market.resolving("internal.example"),
                           url_guard=GuardLog(refuse=("internal.example",)))

    with pytest.raises(BlockedError, match="internal address"):
        await fetcher.fetch(Request("https://internal.example/x"))
    assert fake_market.requests == []  # not even robots.txt


async def test_a_guard_refuses_a_redirect_into_an_internal_host(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/feed", status=302, headers={"Location": "http://metadata.internal/latest"})
    fake_market.route("/latest", "secret")
    guard = GuardLog(refuse=("metadata.internal",), error=InputError)
    fetcher = make_fetcher(resolve=fake_market.resolving("feeds.example", "metadata.internal"))

    with pytest.raises(InputError):
        await fetcher.fetch(Request("https://feeds.example/feed", url_guard=guard))
    assert fake_market.requests_to("/latest") == []


async def test_a_guard_also_checks_robots_txt_redirects(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/robots.txt", status=301, headers={"Location": "http://metadata.internal/robots.txt"})
    guard = GuardLog(refuse=("metadata.internal",))
    fetcher = make_fetcher(resolve=fake_market.resolving("feeds.example", "metadata.internal"), url_guard=guard)

    with pytest.raises(BlockedError):
        await fetcher.fetch(Request("https://feeds.example/feed"))
    assert fake_market.paths == ["/robots.txt"]


async def test_robots_txt_redirects_are_followed(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/robots.txt", status=301, headers={"Location": "/real-robots.txt"})
    fake_market.route("/real-robots.txt", "User-agent: *\nDisallow: /private\n", content_type="text/plain")

    with pytest.raises(BlockedError):
        await make_fetcher().fetch(Request(f"{fake_market.url}/private/1"))


class _OneUrlAdapter(Adapter):
    key, name, min_interval_minutes, requests_per_minute = "feedish", "Feedish", 5, 60.0

    def __init__(self, guard: GuardLog) -> None:
        self.guard = guard

    def build_request(self, query: SearchQuery) -> Request:
        return Request(f"https://{query.text}/feed", url_guard=self.guard)

    def parse(self, page: Page) -> ScrapeResult:
        return ScrapeResult.of([])


async def test_adapter_search_reports_a_guard_refusal_as_blocked(make_fetcher: MakeFetcher) -> None:
    adapter = _OneUrlAdapter(GuardLog(refuse=("localhost",), error=InputError))

    result = await adapter.search(SearchQuery("localhost"), make_fetcher())

    assert result.status is ScrapeStatus.BLOCKED
    assert "internal address" in result.detail


# -- cookies -------------------------------------------------------------------------------------------------------


async def test_cookies_set_by_a_site_go_back_to_that_site_only(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/", "home", headers={"Set-Cookie": "session=abc123; Path=/; Secure; HttpOnly"})
    fake_market.route("/api/items", "{}")
    fetcher = make_fetcher(resolve=fake_market.resolving("www.shop.example", "www.other.example"))

    await fetcher.fetch(Request("https://www.shop.example/"))
    await fetcher.fetch(Request("https://www.shop.example/api/items"))
    await fetcher.fetch(Request("https://www.other.example/api/items"))

    first, second = fake_market.requests_to("/api/items")
    assert first.headers.get("Cookie") == "session=abc123"
    assert "Cookie" not in second.headers
    assert fetcher.cookies_for("https://www.shop.example/api") == {"session": "abc123"}
    assert fetcher.cookies_for("https://www.other.example/") == {}


async def test_a_domain_cookie_reaches_subdomains_and_merges_with_the_adapters_own(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/", "home", headers={"Set-Cookie": "sid=1; Domain=shop.example; Path=/"})
    fake_market.route("/api", "{}")
    fetcher = make_fetcher(resolve=fake_market.resolving("www.shop.example", "api.shop.example"))

    await fetcher.fetch(Request("https://www.shop.example/"))
    await fetcher.fetch(Request("https://api.shop.example/api", headers=(("Cookie", "pref=x"),)))

    assert fake_market.requests_to("/api")[0].headers["Cookie"] == "pref=x; sid=1"


async def test_a_cookie_set_on_a_redirect_is_sent_to_the_next_hop(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/start", status=302, headers={"Location": "/land", "Set-Cookie": "hop=1; Path=/"})
    fake_market.route("/land", "ok")

    await make_fetcher().fetch(Request(f"{fake_market.url}/start"))

    assert fake_market.requests_to("/land")[0].headers["Cookie"] == "hop=1"


async def test_clear_cookies_forgets_a_domain(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/", "home", headers={"Set-Cookie": "session=abc; Path=/"})
    fetcher = make_fetcher(resolve=fake_market.resolving("www.shop.example", "www.other.example"))
    await fetcher.fetch(Request("https://www.shop.example/"))
    await fetcher.fetch(Request("https://www.other.example/"))

    fetcher.clear_cookies("www.shop.example")

    assert fetcher.cookies_for("https://www.shop.example/") == {}
    assert fetcher.cookies_for("https://www.other.example/") == {"session": "abc"}
    fetcher.clear_cookies()
    assert fetcher.cookies_for("https://www.other.example/") == {}
