"""Fixtures for scraper tests: a started fake marketplace, a fake clock, and fetchers wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from scrapers.http import HttpFetcher
from tests.fakes.marketplace import TEST_USER_AGENT, FakeMarketplace, FakeTime


@pytest.fixture
async def fake_market() -> AsyncIterator[FakeMarketplace]:
    async with FakeMarketplace() as market:
        yield market


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_fetcher(fake_time: FakeTime) -> AsyncIterator[Callable[..., HttpFetcher]]:
    """Build HttpFetchers on the fake clock (closed after the test); keyword arguments override the defaults."""
    made: list[HttpFetcher] = []

    def make(**overrides: object) -> HttpFetcher:
        options: dict[str, object] = {
            "user_agent": TEST_USER_AGENT,
            "clock": fake_time.clock,
            "sleep": fake_time.sleep,
            "random": lambda: 0.5,
            # No rate limit unless a test sets one, so the sleeps a test sees are the ones it is about.
            "default_rate_per_minute": float("inf"),
            "timeout_seconds": 5.0,
        }
        options.update(overrides)
        fetcher = HttpFetcher(**options)  # type: ignore[arg-type]
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.close()
