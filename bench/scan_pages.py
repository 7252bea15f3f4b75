"""The result pages bench.scan serves: real eBay pages with their item ids rewritten per query, or small synthetic ones,
from a local HTTP server in a child process (as a remote site would be: its work is not the scan process's)."""

from __future__ import annotations

import asyncio
import html
import multiprocessing
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

from aiohttp import web

from scout.matching import tokenize
from scrapers.base import Page, SearchQuery
from scrapers.ebay.adapter import EbayAdapter
from tests.fakes.ebay_pages import ebay_results_page

EBAY_HOST = "www.ebay.com"
REAL_PAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "ebay"
# Served item ids: 12 digits like eBay's, unique per (query, place on the page), and never one of the seeded ids
# (bench.scan_db.SEEDED_ID_BASE + n).
SERVED_ID_BASE = 900_000_000_000
SERVED_IDS_PER_QUERY = 1000

BRANDS = ["sony", "nikon", "canon", "lego", "nintendo", "apple", "dell", "bose", "fender", "gibson",
          "yamaha", "dyson", "garmin", "kitchenaid", "makita", "dewalt", "lenovo", "samsung", "omega", "seiko"]
PRODUCTS = ["camera", "lens", "console", "laptop", "headphones", "guitar", "watch", "drill", "speaker", "monitor"]
NOTES = ["new", "used", "mint", "boxed", "sealed", "bundle", "broken", "for parts", "refurbished", "vintage"]
SYNTHETIC_LISTINGS = 50


def served_id(query_index: int, place: int) -> str:
    return str(SERVED_ID_BASE + query_index * SERVED_IDS_PER_QUERY + place)


@dataclass(frozen=True)
class Template:
    """A real page cut where its item ids sit (int >= 0: the listing's place) and where its titles start (-1)."""

    name: str
    parts: tuple[bytes | int, ...]
    listings: int
    core_word: str  # the word most of its titles hold: every query served this page asks for it

    def render(self, query_index: int, tag: str) -> bytes:
        prefix = f"{tag} ".encode()
        return b"".join(
            part if isinstance(part, bytes) else prefix if part < 0 else served_id(query_index, part).encode()
            for part in self.parts
        )


def _title_pattern(title: str) -> str:
    """A title as the page's markup may write it: escaped or not, with any whitespace between words."""
    def variants(word: str) -> str:
        forms = {word, html.escape(word, quote=False), html.escape(word), word.replace("'", "&#39;"),
                 word.replace("'", "&#x27;")}
        return "(?:" + "|".join(re.escape(form) for form in sorted(forms)) + ")"
    return r">\s*(?=" + r"\s+".join(variants(word) for word in title.split()) + ")"


def load_template(path: Path) -> Template | None:
    """Cut a real page where the adapter finds its listings' ids and titles; None when it finds none."""
    body = path.read_bytes()
    result = EbayAdapter(EBAY_HOST).parse(Page(url=f"https://{EBAY_HOST}/sch/i.html", status=200, body=body,
                                                  content_type="text/html; charset=utf-8"))
    if not result.listings:
        return None
    text = body.decode("utf-8", errors="surrogateescape")
    places = {listing.external_id: place for place, listing in enumerate(result.listings)}
    cuts: list[tuple[int, int, int]] = []  # (start, end, place or -1 for a title's start)
    ids = re.compile(r"(?<!\d)(" + "|".join(re.escape(i) for i in places) + r")(?!\d)")
    cuts += [(m.start(), m.end(), places[m.group(1)]) for m in ids.finditer(text)]
    for listing in result.listings:
        cuts += [(m.end(), m.end(), -1) for m in re.finditer(_title_pattern(listing.title), text)]
    parts: list[bytes | int] = []
    at = 0
    for start, end, place in sorted(cuts):
        if start < at:
            continue  # inside an id already cut
        parts += [text[at:start].encode("utf-8", errors="surrogateescape"), place]
        at = end
    parts.append(text[at:].encode("utf-8", errors="surrogateescape"))
    words = Counter(word for listing in result.listings for word in set(tokenize(listing.title)) if len(word) >= 3)
    return Template(path.name, tuple(parts), len(result.listings), words.most_common(1)[0][0])


class PageSource:
    """Each query's text and result page; the page for a query is the same at every fetch."""

    kind: str

    def query(self, index: int) -> str:
        raise NotImplementedError

    def page(self, index: int) -> bytes:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class RealPages(PageSource):
    """Query i is served real page i mod 5 with every item id rewritten (distinct listings per query) and a word of
    its own, `lot<i>`, put before each title, so a query's searches match that page only; the query asks for the
    page's most common title word and that tag ("pokemon lot17"), so they match about as many titles as a real
    search would. Prices, currencies, markup and size are the real page's."""

    kind = "real"

    def __init__(self, templates: list[Template]) -> None:
        self.templates = templates

    @classmethod
    def load(cls, folder: Path = REAL_PAGES) -> RealPages | None:
        templates = [t for t in (load_template(path) for path in sorted(folder.glob("*.html"))) if t is not None]
        return cls(templates) if templates else None

    def _template(self, index: int) -> Template:
        return self.templates[index % len(self.templates)]

    def query(self, index: int) -> str:
        return f"{self._template(index).core_word} lot{index}"

    def page(self, index: int) -> bytes:
        return self._template(index).render(index, f"lot{index}")

    def describe(self) -> str:
        sizes = ", ".join(f"{t.name} ({len(t.render(0, 'lot0')) // 1024} KB, {t.listings} listings, "
                          f"'{t.core_word}')" for t in self.templates)
        return f"real eBay pages from {REAL_PAGES}: {sizes}"


class SyntheticPages(PageSource):
    """Query i is "<brand> <product>" (with " v<n>" past the 200 pairs) and its page holds 50 small s-card listings
    whose titles all carry the query's words; about 35 KB."""

    kind = "synthetic"

    def query(self, index: int) -> str:
        base = f"{BRANDS[index % len(BRANDS)]} {PRODUCTS[index // len(BRANDS) % len(PRODUCTS)]}"
        pairs = len(BRANDS) * len(PRODUCTS)
        return base if index < pairs else f"{base} v{index // pairs}"

    def page(self, index: int) -> bytes:
        rng = random.Random(index)
        query = self.query(index)
        items = [(int(served_id(index, n)), f"{query.title()} {' '.join(rng.sample(NOTES, 2))} #{n}",
                  f"{rng.uniform(5, 600):.2f}") for n in range(SYNTHETIC_LISTINGS)]
        return ebay_results_page(items).encode()

    def describe(self) -> str:
        return f"synthetic s-card pages of {SYNTHETIC_LISTINGS} listings, {len(self.page(0)) // 1024} KB"


class PageServer:
    """Serves /sch/i.html?_nkw=<query> with that query's page (built on each request) and an open robots.txt."""

    def __init__(self, source: PageSource, queries: int, requests: Synchronized[int]) -> None:
        self.source = source
        self.by_text = {SearchQuery.build(source.query(i)).text: i for i in range(queries)}
        self._requests = requests

    @property
    def requests(self) -> int:
        """Result pages asked for so far."""
        return self._requests.value

    async def _results(self, request: web.Request) -> web.Response:
        with self._requests.get_lock():
            self._requests.value += 1
        index = self.by_text.get(request.query.get("_nkw", ""))
        if index is None:
            return web.Response(status=404, text="no such query")
        return web.Response(body=self.source.page(index), content_type="text/html", charset="utf-8")

    async def serve(self, port_out: Connection, stop: Event) -> None:
        await serve_ebay(self._results, port_out, stop)


@dataclass
class ServedSite:
    url: str
    server: PageServer

    @property
    def requests(self) -> int:
        return self.server.requests


@contextmanager
def serving(source: PageSource, queries: int) -> Iterator[ServedSite]:
    """A PageServer in a child process (forked, so it shares the loaded pages), as a remote site would be: its
    CPU and GIL are not the scan's. On a machine with few cores it still competes with the scan for them."""
    context = multiprocessing.get_context("fork")
    server = PageServer(source, queries, context.Value("q", 0))
    with in_child(server.serve, context) as (url, _):
        yield ServedSite(url, server)


Serve = Callable[[Connection, Event], Awaitable[None]]


async def _robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nDisallow:\n")


async def serve_ebay(results: Callable[[web.Request], Awaitable[web.StreamResponse]], port_out: Connection,
                     stop: Event, *, backlog: int = 128) -> None:
    """A fake eBay on a free port of 127.0.0.1: `results` answers /sch/i.html, robots.txt allows everything. Sends
    its port through `port_out` and serves until `stop` is set."""
    app = web.Application()
    app.router.add_get("/sch/i.html", results)
    app.router.add_get("/robots.txt", _robots)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=backlog)
    await site.start()
    port_out.send(runner.addresses[0][1])
    await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    await runner.cleanup()


@contextmanager
def in_child(serve: Serve, context: multiprocessing.context.BaseContext) -> Iterator[tuple[str, int]]:
    """Run `serve` in a forked child process (its CPU is not the bench's); yields its base URL and pid."""
    port_in, port_out = context.Pipe(duplex=False)
    stop = context.Event()
    child = context.Process(target=lambda: asyncio.run(serve(port_out, stop)), name="fake-ebay", daemon=True)
    child.start()
    try:
        if not port_in.poll(60):
            raise RuntimeError("the fake eBay did not start within 60 s")
        assert child.pid is not None
        yield f"http://127.0.0.1:{port_in.recv()}", child.pid
    finally:
        stop.set()
        child.join(10)
