"""Health tells the truth about chat platforms: one that is not connected, or whose every send fails, is degraded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops.health import CONNECT_GRACE_SECONDS, FAILING_SENDS, HealthChecker
from scout.delivery import PlatformSends
from storage.db import create_engine
from storage.repo import Repository

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Link:
    state: str
    since: datetime
    error: str | None = None

    @property
    def connected(self) -> bool:
        return self.state == "connected"


@pytest.fixture
def checker(repo: Repository, tmp_path: Path) -> HealthChecker:
    return HealthChecker(
        engine=create_engine(f"sqlite:///{tmp_path / 'unused.db'}"), repo=repo, adapters={}, clock=lambda: NOW,
        scheduler_ticks={"scan": NOW}, scan_tick_seconds=15, platforms={"console": None}, sends={},
        data_dir=tmp_path,
    )


async def test_a_platform_whose_every_send_fails_is_degraded(checker: HealthChecker) -> None:
    """Regression: health said `connected: true` while every send to the platform failed."""
    checker.platforms = {"console": None, "discord": lambda: Link("connected", NOW - timedelta(hours=1))}
    checker.sends = {"discord": PlatformSends(NOW - timedelta(minutes=30), FAILING_SENDS, "Discord answered 502")}
    report = await checker.detailed()
    assert report["status"] == "degraded"
    assert report["platforms"]["discord"] == {
        "connected": True, "state": "connected", "since": (NOW - timedelta(hours=1)).isoformat(), "error": None,
        "last_delivery": (NOW - timedelta(minutes=30)).isoformat(), "failing_sends": FAILING_SENDS,
        "last_send_error": "Discord answered 502",
    }
    assert (await checker.figures())["platform:discord"] == 1.0


@pytest.mark.parametrize(("link", "level", "status"), [
    (Link("connected", NOW), 0.0, "ok"),
    # Starting up: not connected yet, which health says; the ops channel is told only if it lasts.
    (Link("connecting", NOW - timedelta(seconds=10), "ConnectionRefusedError"), 0.0, "degraded"),
    (Link("connecting", NOW - timedelta(seconds=CONNECT_GRACE_SECONDS), "ConnectionRefusedError"), 1.0, "degraded"),
    (Link("down", NOW, "TELEGRAM_TOKEN was refused by Telegram"), 2.0, "degraded"),
])
async def test_a_platform_that_is_not_connected_is_reported(checker: HealthChecker, link: Link, level: float,
                                                            status: str) -> None:
    checker.platforms = {"console": None, "telegram": lambda: link}
    report = await checker.detailed()
    assert (report["status"], report["platforms"]["telegram"]["state"]) == (status, link.state)
    assert report["platforms"]["telegram"]["error"] == link.error
    assert report["platforms"]["console"]["connected"] is True
    assert (await checker.figures())["platform:telegram"] == level


async def test_a_feeds_error_does_not_show_its_users_address(checker: HealthChecker, repo: Repository) -> None:
    """The detailed health answers without a key: a feed's fetch error names the user's feed, so it says only that a
    feed failed; a fixed marketplace's error is shown as it is."""
    from scout.config import load_settings
    from scout.models import FetchOutcome
    from scrapers.registry import build_adapters

    adapters = build_adapters(load_settings({}, env_file=None))
    checker.adapters = {key: adapters[key] for key in ("rss", "ebay")}
    await repo.save_scan(now=NOW, runs=[], searches={}, fetches=[
        FetchOutcome("rss", "q", "failed", 10, error="https://feeds.example.org/private-list answered HTTP 500"),
        FetchOutcome("ebay", "lego", "failed", 10, error="eBay answered HTTP 503"),
    ])
    markets = (await checker.detailed())["marketplaces"]
    assert "feeds.example.org" not in str(markets["rss"]) and "private-list" not in str(markets)
    assert markets["rss"]["last_error"] == "a user's feed failed (its host's circuit is in the log)"
    assert markets["ebay"]["last_error"] == "eBay answered HTTP 503"
