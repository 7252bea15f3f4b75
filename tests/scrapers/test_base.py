"""The adapter contract's pure parts: how a search's text and location are normalised into the shared fetch key."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from scrapers.base import (
    INLINE_PARSE_MAX_BYTES,
    PARSE_THREAD_NICENESS,
    Page,
    ScrapeResult,
    SearchQuery,
    normalise_location,
)
from tests.fakes.adapters import TableAdapter


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (None, None),
        ("   ", None),
        (" SFBay ", "sfbay"),
        ("San Francisco", "san francisco"),
        ("40.7128,-74.0060", "40.7128,-74.0060"),
        ("HTTPS://Feeds.FeedBurner.com/SlickdealsnetFP", "https://feeds.feedburner.com/SlickdealsnetFP"),
        ("https://Deals.Example?Feed=Hot#Top", "https://deals.example?Feed=Hot#Top"),
        ("http://User:PassWord@Host.Example:8080/Rss", "http://User:PassWord@host.example:8080/Rss"),
    ],
)
def test_places_are_casefolded_and_urls_keep_their_path_and_query(location: str | None, expected: str | None) -> None:
    """Regression: SearchQuery.build casefolded a feed URL whole, so /SlickdealsnetFP became a 404."""
    assert normalise_location(location) == expected


def test_searches_that_differ_only_in_case_and_spacing_share_a_query() -> None:
    assert SearchQuery.build(" Lego  Castle ", "SFBay", 10) == SearchQuery.build("lego castle", "sfbay", 10)


class _ThreadNoting(TableAdapter):
    """Parses nothing, and notes the thread each parse ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def parse(self, page: Page) -> ScrapeResult:
        self.threads.append(threading.current_thread().name)
        return ScrapeResult.of([])


async def test_big_pages_are_parsed_by_one_thread_in_turn_and_small_ones_inline() -> None:
    adapter = _ThreadNoting()
    big = Page(url="https://fakebay.test/", status=200, body=b"x" * (INLINE_PARSE_MAX_BYTES + 1))
    small = Page(url="https://fakebay.test/", status=200, body=b"<html></html>")
    await asyncio.gather(*(adapter.parse_off_loop(big) for _ in range(8)))
    await adapter.parse_off_loop(small)
    parsers, inline = set(adapter.threads[:-1]), adapter.threads[-1]
    assert len(parsers) == 1 and parsers.pop().startswith("parse")
    assert inline == threading.current_thread().name


class _PriorityNoting(TableAdapter):
    """Parses nothing, and notes the nice value of the thread each parse ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.niceness: list[int] = []

    def parse(self, page: Page) -> ScrapeResult:
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return ScrapeResult.of([])


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux keeps a scheduling priority per thread")
async def test_the_parsing_thread_yields_the_cores_to_the_event_loop() -> None:
    adapter = _PriorityNoting()
    big = Page(url="https://fakebay.test/", status=200, body=b"x" * (INLINE_PARSE_MAX_BYTES + 1))
    await adapter.parse_off_loop(big)
    loop_thread = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert adapter.niceness == [min(loop_thread + PARSE_THREAD_NICENESS, 19)]
