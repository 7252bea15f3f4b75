"""A local fake marketplace (aiohttp on 127.0.0.1) that serves canned pages, failures, stalls, and logs every request.

Tests get a started one from the `fake_market` fixture (tests/scrapers/conftest.py); benchmarks use
`async with FakeMarketplace() as market:`.

    market.url                                       # "http://127.0.0.1:PORT"
    market.route("/sch/i.html", body=html)           # the standing answer for a path (bytes or str)
    market.route("/api", body=b"{}", content_type="application/json", headers={"X-Thing": "1"}, status=200)
    market.fail("/sch/i.html", 503, times=2)         # two 503s first, then the standing answer
    market.fail("/s", 429, retry_after="7")          # Retry-After in seconds or as an HTTP-date
    release = market.hold("/slow")                   # answers only after release.set(); close() releases it
    market.truncate("/cut", b"<html><body>")         # Content-Length promises more, then the connection drops
    market.garbage("/junk", size=4096)               # random bytes labelled text/html
    market.robots("User-agent: *\\nDisallow: /private\\n")   # default: allow everything; robots(status=404) etc.
    fetcher = HttpFetcher(resolve=market.resolving("www.ebay.com", "sfbay.craigslist.org"))
    market.requests, market.requests_to("/sch/i.html")       # RecordedRequest: method, path, query, headers, host, at, peer
    market.respond("/s", lambda request: Answer(body=page_for(request)))   # an answer built per request (None: 404)
    await market.wait_for_requests("/sch/i.html", count=3)   # until 3 requests to that path arrived (never sleep)

`FakeTime` is the clock and sleep to hand the fetcher under test, so rate limits and backoff never really wait.

Every answer method takes `times`: with a number the answer is used that many times, before the standing answer,
in the order such answers were added; without, it becomes the path's standing answer. Unknown paths get 404.
Paths are matched without the query string, unless an answer names query parameters:
`market.route("/sch/i.html", page, query={"_nkw": "lego"})` answers only requests whose query has _nkw=lego (other
parameters may differ); such answers come before the path's plain ones, the one naming the most parameters first.
`market.answer(path, Answer(...), times=..., query=...)` takes a full Answer (status, body, headers, declared_length,
hold, delay) when the helpers above are not enough.

The server also accepts absolute-form requests ("GET http://shop.example/x"), so pointing a fetcher's `proxy` at
`market.url` makes it a recording plain-HTTP proxy: RecordedRequest.host is then the target host.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

HTML = "text/html; charset=utf-8"
# Robots rules can name it ("User-agent: DealScoutTest"), and tests can check every request carried it.
TEST_USER_AGENT = "DealScoutTest/1.0 (+tests)"
ALLOW_ALL_ROBOTS = "User-agent: *\nDisallow:\n"


class FakeTime:
    """A monotonic clock that never moves by itself, and a sleep that records and (by default) advances it."""

    def __init__(self, *, advance: bool = True) -> None:
        self.now = 1000.0
        self.advance = advance
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds
        await asyncio.sleep(0)  # still let other tasks run, as a real sleep would


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    raw_query: str
    headers: CIMultiDictProxy[str]
    host: str
    at: float  # the event loop's clock when the request arrived
    peer: tuple[str, int] | None = None  # the client's address and port: which process sent it, for drills

    @property
    def user_agent(self) -> str:
        return self.headers.get("User-Agent", "")


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = HTML
    headers: Mapping[str, str] = field(default_factory=dict)
    # When set and larger than the body: promise this many bytes, send the body, then drop the connection.
    declared_length: int | None = None
    hold: asyncio.Event | None = None
    delay: float = 0.0


@dataclass
class _PathAnswers:
    once: deque[list] = field(default_factory=deque)  # [Answer, remaining uses]
    standing: Answer | None = None

    def next(self) -> Answer | None:
        if self.once:
            entry = self.once[0]
            entry[1] -= 1
            if entry[1] == 0:
                self.once.popleft()
            return entry[0]
        return self.standing


class FakeMarketplace:
    """See the module docstring."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._paths: dict[str, _PathAnswers] = {}
        # path -> {the required query parameters as a frozenset of (name, value): answers}
        self._query_paths: dict[str, dict[frozenset[tuple[str, str]], _PathAnswers]] = {}
        self._holds: list[asyncio.Event] = []
        self._responders: dict[str, Callable[[RecordedRequest], Answer | None]] = {}
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.robots(ALLOW_ALL_ROBOTS)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> FakeMarketplace:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown: a held answer is released on close, nothing should linger.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        self.release_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeMarketplace:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- configuring answers -------------------------------------------------------------------------------------

    def answer(
        self, path: str, answer: Answer, *, times: int | None = None, query: Mapping[str, str] | None = None
    ) -> None:
        if query:
            by_query = self._query_paths.setdefault(path, {})
            answers = by_query.setdefault(frozenset(query.items()), _PathAnswers())
        else:
            answers = self._paths.setdefault(path, _PathAnswers())
        if times is None:
            answers.standing = answer
        elif times > 0:
            answers.once.append([answer, times])

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str = HTML,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
        delay: float = 0.0,
        query: Mapping[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        answer = Answer(status, data, content_type, dict(headers or {}), delay=delay)
        self.answer(path, answer, times=times, query=query)

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after: str | int | None = None,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = str(retry_after)
        self.route(path, body or f"HTTP {status}", status=status, content_type="text/plain", headers=extra, times=times)

    def hold(self, path: str, body: bytes | str = b"<html></html>", *, times: int | None = None) -> asyncio.Event:
        """Answer only once the returned event is set (close() sets it), so timeouts need no real waiting."""
        release = asyncio.Event()
        self._holds.append(release)
        data = body.encode() if isinstance(body, str) else body
        self.answer(path, Answer(body=data, hold=release), times=times)
        return release

    def truncate(
        self,
        path: str,
        body: bytes | str = b"<html><body>",
        *,
        declared_length: int | None = None,
        times: int | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        promised = declared_length if declared_length is not None else len(data) + 10_000
        self.answer(path, Answer(body=data, declared_length=promised), times=times)

    def garbage(self, path: str, *, size: int = 4096, seed: int = 0, times: int | None = None) -> bytes:
        data = random.Random(seed).randbytes(size)
        self.route(path, data, times=times)
        return data

    def robots(self, text: str = ALLOW_ALL_ROBOTS, *, status: int = 200) -> None:
        self.route("/robots.txt", text, status=status, content_type="text/plain; charset=utf-8")

    def respond(self, path: str, responder: Callable[[RecordedRequest], Answer | None]) -> None:
        """Answer every request to `path` with what `responder` builds from it (before any canned answer)."""
        self._responders[path] = responder

    def release_all(self) -> None:
        for release in self._holds:
            release.set()

    # -- reading what happened -----------------------------------------------------------------------------------

    def resolving(self, *hosts: str) -> dict[str, str]:
        """A `resolve` mapping for HttpFetcher that sends these hosts here."""
        return {host: self.url for host in hosts}

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def wait_for_requests(self, path: str, *, count: int = 1) -> RecordedRequest:
        """The `count`-th request to `path`, once it has arrived (its answer may still be held)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests_to(path)) >= count)
        return self.requests_to(path)[count - 1]

    # -- serving -----------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            raw_query=request.query_string,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            host=request.host,
            at=loop.time(),
            peer=(str(peer[0]), int(peer[1])) if peer else None,
        )
        self.requests.append(recorded)
        async with self._arrived:
            self._arrived.notify_all()
        responder = self._responders.get(request.path)
        answer = responder(recorded) if responder is not None else self._next_answer(request.path, request.query)
        if answer is None:
            return web.Response(status=404, text="not found")
        if answer.hold is not None:
            await answer.hold.wait()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.declared_length is not None and answer.declared_length > len(answer.body):
            return await self._send_truncated(request, answer)
        headers = CIMultiDict(answer.headers)
        headers.setdefault("Content-Type", answer.content_type)
        return web.Response(status=answer.status, body=answer.body, headers=headers)

    def _next_answer(self, path: str, query: Mapping[str, str]) -> Answer | None:
        # The answer that names the most parameters wins.
        candidates = sorted(self._query_paths.get(path, {}).items(), key=lambda item: -len(item[0]))
        for wanted, answers in candidates:
            if all(query.get(name) == value for name, value in wanted):
                answer = answers.next()
                if answer is not None:
                    return answer
        answers = self._paths.get(path)
        return answers.next() if answers is not None else None

    @staticmethod
    async def _send_truncated(request: web.Request, answer: Answer) -> web.StreamResponse:
        headers = CIMultiDict(answer.headers)
        headers.setdefault("Content-Type", answer.content_type)
        response = web.StreamResponse(status=answer.status, headers=headers)
        response.content_length = answer.declared_length
        await response.prepare(request)
        await response.write(answer.body)
        # Dropping the transport mid-body is what a server that dies early looks like to the client.
        if request.transport is not None:
            request.transport.close()
        return response
