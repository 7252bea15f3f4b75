"""The end-to-end matrix every adapter faces: adapter -> real HttpFetcher -> FakeMarketplace answering each way."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dealscout import cli
from scrapers.base import Adapter, ScrapeResult, ScrapeStatus, SearchQuery
from scrapers.http import HttpFetcher
from tests.fakes.marketplace import FakeMarketplace

MakeFetcher = Callable[..., HttpFetcher]


@dataclass(frozen=True)
class Site:
    """One adapter and the synthetic answers its site gives."""

    name: str
    build: Callable[[], Adapter]
    host: str
    path: str
    query: SearchQuery
    page: bytes
    ids: tuple[str, ...]
    empty: bytes
    challenge: bytes
    content_type: str
    # The document is cut a little after this marker, which opens the results and precedes any whole listing.
    cut_after: bytes

    @property
    def cut_page(self) -> bytes:
        """A complete response holding a document that stops right after its results open."""
        return self.page[: self.page.index(self.cut_after) + len(self.cut_after) + 20]


async def run_search(site: Site, market: FakeMarketplace, make_fetcher: MakeFetcher, **options: object) -> ScrapeResult:
    """One search as the scanner runs it: the adapter's budget on a fetcher that sends its host to the fake."""
    settings: dict[str, object] = {"resolve": market.resolving(site.host), "max_retries": 2}
    settings.update(options)
    fetcher = make_fetcher(**settings)
    adapter = site.build()
    fetcher.set_host_rate(site.host, adapter.requests_per_minute)
    return await adapter.search(site.query, fetcher)


Arrange = Callable[[FakeMarketplace, Site], None]


@dataclass(frozen=True)
class Case:
    """How the fake answers, and the verdict the adapter must reach (with words its detail must hold)."""

    name: str
    arrange: Arrange
    status: ScrapeStatus
    detail: str = ""
    fetcher_options: tuple[tuple[str, object], ...] = ()


def _route(body: Callable[[Site], bytes], *, content_type: Callable[[Site], str] | None = None) -> Arrange:
    def arrange(market: FakeMarketplace, site: Site) -> None:
        market.route(site.path, body(site), content_type=content_type(site) if content_type else site.content_type)

    return arrange


def _one_503_then_page(market: FakeMarketplace, site: Site) -> None:
    market.fail(site.path, 503, times=1)
    market.route(site.path, site.page, content_type=site.content_type)


CASES = (
    Case("page", _route(lambda s: s.page), ScrapeStatus.SUCCESS),
    Case("no-results", _route(lambda s: s.empty), ScrapeStatus.EMPTY),
    Case("challenge-200", _route(lambda s: s.challenge, content_type=lambda s: "text/html; charset=utf-8"),
         ScrapeStatus.BLOCKED),
    Case("429", lambda m, s: m.fail(s.path, 429, retry_after=5, times=None), ScrapeStatus.BLOCKED, "429"),
    Case("403", lambda m, s: m.fail(s.path, 403, times=None), ScrapeStatus.BLOCKED, "403"),
    Case("503", lambda m, s: m.fail(s.path, 503, times=None), ScrapeStatus.FAILED, "503"),
    Case("503-once", _one_503_then_page, ScrapeStatus.SUCCESS),
    Case("connection-cut", lambda m, s: m.truncate(s.path, s.page[:200]), ScrapeStatus.FAILED, "cut short"),
    Case("document-cut", _route(lambda s: s.cut_page), ScrapeStatus.BROKEN),
    Case("garbage", lambda m, s: m.garbage(s.path, size=8192, seed=3), ScrapeStatus.BROKEN),
    Case("empty-body", _route(lambda s: b""), ScrapeStatus.BROKEN),
    Case("timeout", lambda m, s: m.hold(s.path), ScrapeStatus.FAILED, "timed out",
         (("timeout_seconds", 0.05), ("max_retries", 1))),
)


async def check(site: Site, case: Case, market: FakeMarketplace, make_fetcher: MakeFetcher) -> ScrapeResult:
    case.arrange(market, site)
    result = await run_search(site, market, make_fetcher, **dict(case.fetcher_options))
    assert result.status is case.status, f"{site.name}/{case.name}: {result.status} ({result.detail})"
    assert case.detail in result.detail, result.detail
    if case.status is ScrapeStatus.SUCCESS:
        assert tuple(listing.external_id for listing in result.listings) == site.ids
    return result


def run_cli_parse(key: str, path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                  tmp_path: Path) -> tuple[int, list[dict[str, object]], str]:
    """`dealscout parse KEY PATH --format json`: the exit code, the listings printed, and the summary line."""
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env file
    code = cli.main(["parse", key, str(path), "--format", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else [], err.strip().splitlines()[-1]
