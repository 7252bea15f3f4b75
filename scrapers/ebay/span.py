"""Where an eBay results list lies in the raw page, so that it can be parsed without the rest; pure."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

RESULT_LISTS = "ul.srp-results"
# Where the first results list opens, found in the raw page (bytes or text) before any parsing.
_RESULTS_START_PATTERN = r"""<ul\b[^>]*?\bclass\s*=\s*["']?[^"'>]*\bsrp-results\b"""
_RESULTS_START_BYTES = re.compile(_RESULTS_START_PATTERN.encode(), re.IGNORECASE)
_RESULTS_START_TEXT = re.compile(_RESULTS_START_PATTERN, re.IGNORECASE)
# List start and end tags, counted to find where the results list ends in the raw page.
_LIST_TAGS_BYTES = re.compile(rb"<(/?)ul\b[^>]*>", re.IGNORECASE)
_LIST_TAGS_TEXT = re.compile(r"<(/?)ul\b[^>]*>", re.IGNORECASE)
# An element put after the cut end of the results list: it proves the list was closed before it.
_END_MARK = '<i id="dealscout-results-end"></i>'
_END_MARK_BYTES = _END_MARK.encode()
_END_MARK_SELECTOR = "#dealscout-results-end"
_MARK_IN_LIST = f"{RESULT_LISTS} {_END_MARK_SELECTOR}"
# How far before its class name a start tag may begin (eBay's tags carry long tracking attributes).
_START_TAG_REACH = 4096


def results_span(page: bytes | str, start: int) -> bytes | str | None:
    """The results list opening at `start`, cut after its end tag and followed by an end mark; None when it is
    never closed or another results list follows it (the caller then parses from `start` to the end)."""
    end = _results_end(page, start)
    if end is None or results_start(page, end) >= 0:
        return None
    if isinstance(page, str):
        return page[start:end] + _END_MARK
    return b"".join((memoryview(page)[start:end], _END_MARK_BYTES))  # one copy of the list's bytes


def span_was_closed(doc: LexborHTMLParser) -> bool:
    """True when the cut was right: the end mark stands after the list. An end tag counted inside a script or an
    attribute closes nothing, and the mark then lands inside the still open list, or in the script's text."""
    return doc.css_first(_END_MARK_SELECTOR) is not None and doc.css_first(_MARK_IN_LIST) is None


def _results_end(page: bytes | str, start: int) -> int | None:
    """Just past the end tag that closes the list opening at `start`, counting nested lists; None if never closed.
    A tag counted inside a script or an attribute is caught by the caller's end mark."""
    depth = 0
    pattern = _LIST_TAGS_BYTES if isinstance(page, bytes) else _LIST_TAGS_TEXT
    for tag in pattern.finditer(page, start):  # type: ignore[arg-type]
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return tag.end()
    return None


def results_start(page: bytes | str, begin: int = 0) -> int:
    """Where the first results list's start tag from `begin` on begins in the raw page; -1 when there is none."""
    if isinstance(page, bytes):
        needle, tag, pattern = b"srp-results", b"<ul", _RESULTS_START_BYTES
    else:
        needle, tag, pattern = "srp-results", "<ul", _RESULTS_START_TEXT
    # Finding the class name first is far faster than a regex over the page; stylesheets name it too, so each
    # find is checked to be inside a <ul> start tag.
    at = page.find(needle, begin)  # type: ignore[arg-type]
    while at >= 0:
        tag_at = page.rfind(tag, max(begin, at - _START_TAG_REACH), at)  # type: ignore[arg-type]
        if tag_at >= 0:
            match = pattern.match(page, tag_at)  # type: ignore[arg-type]
            if match is not None and match.end() == at + len(needle):
                return tag_at
        at = page.find(needle, at + 1)  # type: ignore[arg-type]
    return -1
