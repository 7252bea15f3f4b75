"""bench.scale's fake eBay in a child process: small result pages of its own per query, each answered after a fixed
delay, counting the result pages asked for and the most requests it held at once."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

from aiohttp import web

from bench.scan_pages import in_child, serve_ebay
from scrapers.base import SearchQuery


class SlowSite:
    """Serves /sch/i.html?_nkw=<query> with that query's page `delay` seconds after the request came (robots.txt at
    once), as a remote site that takes its time but never runs out of capacity."""

    def __init__(self, pages: Mapping[str, bytes], delay: float, context: multiprocessing.context.BaseContext) -> None:
        self.pages = {SearchQuery.build(query).text: page for query, page in pages.items()}
        self.delay = delay
        self._requests: Synchronized[int] = context.Value("q", 0)  # type: ignore[assignment]
        self._most: Synchronized[int] = context.Value("i", 0)  # type: ignore[assignment]
        self._open = 0  # in the child only

    @property
    def requests(self) -> int:
        """Result pages asked for so far."""
        return self._requests.value

    @property
    def most_in_flight(self) -> int:
        """The most result-page requests the site held at once since the last reset."""
        return self._most.value

    def reset(self) -> None:
        with self._requests.get_lock():
            self._requests.value = 0
        with self._most.get_lock():
            self._most.value = 0

    async def _results(self, request: web.Request) -> web.Response:
        self._open += 1
        with self._requests.get_lock():
            self._requests.value += 1
        with self._most.get_lock():
            self._most.value = max(self._most.value, self._open)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self._open -= 1
        page = self.pages.get(request.query.get("_nkw", ""))
        if page is None:
            return web.Response(status=404, text="no such query")
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def serve(self, port_out: Connection, stop: Event) -> None:
        await serve_ebay(self._results, port_out, stop, backlog=1024)


@dataclass
class ServedSite:
    url: str
    site: SlowSite
    pid: int


@contextmanager
def serving(pages: Mapping[str, bytes], delay: float) -> Iterator[ServedSite]:
    """A SlowSite in a forked child process (its CPU is not the bench's), pages built beforehand."""
    context = multiprocessing.get_context("fork")
    site = SlowSite(pages, delay, context)
    with in_child(site.serve, context) as (url, pid):
        yield ServedSite(url, site, pid)
