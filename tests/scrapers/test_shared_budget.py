"""The request budget shared through Redis: its windows, several holders and processes, Redis down, the fetcher."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from scout.errors import FetchError
from scrapers.base import Request
from scrapers.host_pacer import HostPacer
from scrapers.http import HttpFetcher
from scrapers.shared_budget import (
    KEY_PREFIX,
    BudgetDenied,
    BudgetUnavailable,
    SharedBudget,
    budget_window,
)
from tests.fakes.marketplace import TEST_USER_AGENT as UA
from tests.fakes.marketplace import FakeMarketplace, FakeTime

REDIS_URL = os.environ.get("DEALSCOUT_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="DEALSCOUT_TEST_REDIS_URL is not set (a Redis to share budgets)")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
INF = float("inf")


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but never listening: connecting to it is refused, and nobody else can take it meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never answers a byte."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
async def lanes() -> AsyncIterator[Callable[[], str]]:
    """Fresh lane names (domains) for one test; their keys, and only theirs, are deleted afterwards."""
    assert REDIS_URL is not None
    token = uuid.uuid4().hex[:12]
    count = 0

    def lane() -> str:
        nonlocal count
        count += 1
        return f"lane{count}-{token}.test"

    yield lane
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{KEY_PREFIX}:*{token}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def budgets() -> AsyncIterator[Callable[[], SharedBudget]]:
    """Independent SharedBudget objects on the test Redis, as separate processes would each hold one."""
    assert REDIS_URL is not None
    made: list[SharedBudget] = []
    # The budgets have been kept here for long: these tests are about windows, not a Redis that lost its data.
    client = aioredis.Redis.from_url(REDIS_URL)
    await client.set(f"{KEY_PREFIX}#epoch", "0")
    await client.aclose()

    def make() -> SharedBudget:
        made.append(SharedBudget(REDIS_URL))
        return made[-1]

    yield make
    for budget in made:
        await budget.close()


# -- the window a budget becomes (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(("per_minute", "window"), [
    (1, (1, 60)), (3, (3, 60)), (30, (30, 60)),  # whole budgets: N in any 60 s
    (0.5, (1, 120)), (0.25, (1, 240)), (1.5, (1, 40)), (2.5, (1, 24)),  # the same average, exactly
    (0.7, (1, 86)),  # 0.698/min: a window's key lives for whole seconds, so rounded to the safe side
    (5000 / 1440, (2, 35)),  # eBay's API budget spread over the day: 3.43 of 3.47/min, never 4+ in a minute
    (90.5, (90, 60)),
])
def test_a_budget_becomes_a_window_that_never_allows_more(per_minute: float, window: tuple[int, int]) -> None:
    hits, seconds = budget_window(per_minute)
    assert (hits, seconds) == window
    assert hits * 60 / seconds <= per_minute  # never more on average
    assert hits * -(-60 // seconds) <= -(-per_minute // 1)  # never more than ceil(rate) in any minute


@pytest.mark.parametrize("per_minute", [0, -1, INF, float("nan")])
def test_a_budget_must_be_a_finite_positive_rate(per_minute: float) -> None:
    with pytest.raises(ValueError):
        budget_window(per_minute)


def test_only_redis_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="redis://"):
        SharedBudget("http://127.0.0.1:6379/0")


# -- the pacer with a budget it shares (an in-memory stand-in: no Redis needed) -----------------------------------


class CountingBudget:
    """A LaneBudget of `room` requests per lane, then a told wait; records what was asked."""

    def __init__(self, room: int, wait: float = 42.0) -> None:
        self.room = room
        self.wait = wait
        self.asked: list[tuple[str, float]] = []

    async def take(self, lane: str, per_minute: float) -> float:
        self.asked.append((lane, per_minute))
        if self.room > 0:
            self.room -= 1
            return 0.0
        return self.wait


class BlockedSleep:
    """A sleep that records its length and lasts until the test ends it."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.started = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.started.set()
        await asyncio.Event().wait()


async def test_deny_mode_raises_the_wait_and_frees_its_place_and_slot() -> None:
    fake = FakeTime()
    budget = CountingBudget(room=1, wait=37.5)
    pacer = HostPacer(INF, fake.clock, fake.sleep, max_in_flight=1, shared=budget, mode="deny")
    pacer.set_rate("shop.example", 2)
    async with pacer.turn("www.shop.example"):
        pass

    with pytest.raises(BudgetDenied) as denied:
        async with pacer.turn("www.shop.example"):
            raise AssertionError("a denied request must not run")

    assert denied.value.retry_after == 37.5 and denied.value.lane == "shop.example"
    assert not isinstance(denied.value, FetchError)  # adapters let it through to the scheduler
    assert budget.asked == [("shop.example", 2), ("shop.example", 2)]
    async with pacer.turn("other.example"):  # the only place was given back
        pass
    budget.room = 1
    async with pacer.turn("www.shop.example"):
        pass
    # The denied request had waited out the local spacing and sent nothing: the next one need not wait again.
    assert fake.sleeps == [30.0]


async def test_wait_mode_sleeps_the_told_wait_holding_no_place() -> None:
    sleep = BlockedSleep()
    budget = CountingBudget(room=0, wait=12.0)
    pacer = HostPacer(INF, time.monotonic, sleep, max_in_flight=1, shared=budget)
    pacer.set_rate("shop.example", 2)
    waiting = asyncio.create_task(pacer.turn("shop.example").__aenter__())
    await asyncio.wait_for(sleep.started.wait(), timeout=10)  # a deadline, so a pacer that never waits fails

    async with pacer.turn("other.example"):  # the only place is free; no shared budget asked: its rate is unlimited
        pass

    assert sleep.asked == [12.0] and budget.asked == [("shop.example", 2)]
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)


async def test_robots_txt_spends_the_shared_budget_too() -> None:
    fake = FakeTime()
    budget = CountingBudget(room=0, wait=5.0)
    pacer = HostPacer(60, fake.clock, fake.sleep, shared=budget, mode="deny")
    with pytest.raises(BudgetDenied):
        await pacer.wait_turn("shop.example")
    assert budget.asked == [("shop.example", 60)]


async def test_a_retry_that_never_reached_the_host_asks_no_budget() -> None:
    fake = FakeTime()
    budget = CountingBudget(room=0)
    pacer = HostPacer(60, fake.clock, fake.sleep, shared=budget, mode="deny")
    async with pacer.turn("shop.example", budget=False):
        pass
    assert budget.asked == []


def test_the_mode_is_wait_or_deny() -> None:
    with pytest.raises(ValueError, match="wait, deny"):
        HostPacer(60, time.monotonic, asyncio.sleep, mode="later")  # type: ignore[arg-type]


# -- the budget in Redis ------------------------------------------------------------------------------------------


@needs_redis
async def test_several_holders_together_never_get_more_than_the_budget(
    budgets: Callable[[], SharedBudget], lanes: Callable[[], str]
) -> None:
    lane = lanes()
    holders = [budgets() for _ in range(3)]

    waits = await asyncio.gather(*(holders[n % 3].take(lane, 5) for n in range(30)))

    granted = [wait for wait in waits if wait == 0.0]
    denied = [wait for wait in waits if wait > 0.0]
    assert len(granted) == 5 and len(denied) == 25
    # The window is 60 s and its oldest request was granted a moment ago.
    assert all(55.0 < wait <= 60.1 for wait in denied), denied


@needs_redis
async def test_a_denial_spends_nothing(budgets: Callable[[], SharedBudget], lanes: Callable[[], str]) -> None:
    lane = lanes()
    first, second = budgets(), budgets()
    assert [await first.take(lane, 2) for _ in range(2)] == [0.0, 0.0]
    assert all([await second.take(lane, 2) > 0 for _ in range(10)])
    # Had the ten denials been counted, a budget one larger would have no room left either.
    assert await second.take(lane, 3) == 0.0
    assert await first.take(lane, 3) > 0


@needs_redis
async def test_a_fractional_budget_keeps_its_longer_window(
    budgets: Callable[[], SharedBudget], lanes: Callable[[], str]
) -> None:
    lane = lanes()
    holders = [budgets(), budgets()]
    waits = [await holders[n % 2].take(lane, 0.5) for n in range(4)]
    assert waits[0] == 0.0
    assert all(115.0 < wait <= 120.1 for wait in waits[1:]), waits


@needs_redis
async def test_lanes_have_budgets_of_their_own_under_the_namespace(
    budgets: Callable[[], SharedBudget], lanes: Callable[[], str]
) -> None:
    assert REDIS_URL is not None
    one, two = lanes(), lanes()
    budget = budgets()
    assert [await budget.take(one, 1), await budget.take(two, 1)] == [0.0, 0.0]
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        assert await client.exists(f"dealscout:budget:{one}", f"dealscout:budget:{two}") == 2
    finally:
        await client.aclose()


@needs_redis
async def test_separate_processes_share_one_budget(lanes: Callable[[], str]) -> None:
    """The proof that matters: each process holds its own connection and objects, and the total still holds."""
    lane = lanes()
    script = (
        "import asyncio, sys\n"
        "from scrapers.shared_budget import SharedBudget\n"
        "async def main():\n"
        "    async with SharedBudget(sys.argv[1]) as budget:\n"
        "        waits = [await budget.take(sys.argv[2], 4) for _ in range(10)]\n"
        "    print(sum(1 for wait in waits if wait == 0.0))\n"
        "asyncio.run(main())\n"
    )
    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(REDIS_URL), lane, cwd=PROJECT_ROOT,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(worker.communicate() for worker in workers)), timeout=60)

    assert all(worker.returncode == 0 for worker in workers), [err.decode() for _, err in outputs]
    granted = [int(out) for out, _ in outputs]
    assert sum(granted) == 4, granted


# -- Redis that cannot answer ---------------------------------------------------------------------------------------


async def test_an_unreachable_redis_grants_nothing_and_says_so(refused_port: int) -> None:
    async with SharedBudget(f"redis://:hunter2@127.0.0.1:{refused_port}/11") as budget:
        with pytest.raises(BudgetUnavailable) as err:
            await budget.take("shop.example", 5)
    assert not isinstance(err.value, FetchError)
    assert f"127.0.0.1:{refused_port}" in str(err.value) and "hunter2" not in str(err.value)
    assert "hunter2" not in repr(budget)


async def test_a_redis_that_does_not_answer_times_out_quickly(silent_port: int) -> None:
    async with SharedBudget(f"redis://127.0.0.1:{silent_port}/11", timeout_seconds=0.2) as budget:
        started = time.monotonic()
        with pytest.raises(BudgetUnavailable):
            await budget.take("shop.example", 5)
    assert time.monotonic() - started < 2.0


async def test_a_fetcher_sends_nothing_when_redis_cannot_say(fake_market: FakeMarketplace, refused_port: int) -> None:
    fake_market.route("/s", "ok")
    async with (
        SharedBudget(f"redis://127.0.0.1:{refused_port}/11") as budget,
        HttpFetcher(user_agent=UA, resolve=fake_market.resolving("shop.example"), shared_budget=budget) as fetcher,
    ):
        with pytest.raises(BudgetUnavailable):
            await fetcher.fetch(Request("http://shop.example/s"))
        with pytest.raises(BudgetUnavailable):  # robots.txt was not taken to be missing meanwhile
            await fetcher.robots_verdict(Request("http://shop.example/s"))
    assert fake_market.requests == []


# -- fetchers sharing a budget, end to end ---------------------------------------------------------------------------


def shared_fetcher(market: FakeMarketplace, budget: SharedBudget, lane: str, per_minute: float,
                   **options: object) -> HttpFetcher:
    fake = FakeTime()  # the local spacing passes at once, so the shared budget is what stops requests
    return HttpFetcher(user_agent=UA, clock=fake.clock, sleep=fake.sleep, resolve=market.resolving(f"www.{lane}"),
                       host_rates={lane: per_minute}, shared_budget=budget, **options)  # type: ignore[arg-type]


@needs_redis
async def test_two_fetchers_together_keep_the_hosts_budget(
    fake_market: FakeMarketplace, budgets: Callable[[], SharedBudget], lanes: Callable[[], str]
) -> None:
    lane = lanes()
    fake_market.route("/s", "ok")
    async with (
        shared_fetcher(fake_market, budgets(), lane, 6, budget_mode="deny") as first,
        shared_fetcher(fake_market, budgets(), lane, 6, budget_mode="deny") as second,
    ):
        results = await asyncio.gather(
            *(fetcher.fetch(Request(f"http://www.{lane}/s?n={n}")) for n in range(8) for fetcher in (first, second)),
            return_exceptions=True,
        )

    pages = [result for result in results if not isinstance(result, BaseException)]
    denials = [result for result in results if isinstance(result, BudgetDenied)]
    assert len(pages) + len(denials) == 16, [r for r in results if isinstance(r, BaseException)]
    # Each fetcher read robots.txt once, and it counts: six requests reached the host in all.
    assert len(fake_market.requests) == 6 and len(fake_market.requests_to("/robots.txt")) == 2
    assert len(pages) == 4
    assert all(55.0 < denied.retry_after <= 60.1 for denied in denials)


@needs_redis
async def test_a_denied_robots_txt_is_not_taken_for_a_missing_one(
    fake_market: FakeMarketplace, budgets: Callable[[], SharedBudget], lanes: Callable[[], str]
) -> None:
    lane = lanes()
    fake_market.route("/s", "ok")
    async with (
        shared_fetcher(fake_market, budgets(), lane, 2, budget_mode="deny") as first,
        shared_fetcher(fake_market, budgets(), lane, 2, budget_mode="deny") as second,
    ):
        assert (await first.fetch(Request(f"http://www.{lane}/s"))).status == 200  # robots.txt and the page
        with pytest.raises(BudgetDenied):
            await second.fetch(Request(f"http://www.{lane}/s"))
        with pytest.raises(BudgetDenied):
            await second.robots_verdict(Request(f"http://www.{lane}/s"))
    assert len(fake_market.requests) == 2


@needs_redis
async def test_a_waiting_fetcher_sleeps_until_the_window_frees(
    fake_market: FakeMarketplace, budgets: Callable[[], SharedBudget], lanes: Callable[[], str]
) -> None:
    lane = lanes()
    fake_market.route("/s", "ok")
    sleep = BlockedSleep()
    async with (
        shared_fetcher(fake_market, budgets(), lane, 1, respect_robots=False) as first,
        HttpFetcher(user_agent=UA, sleep=sleep, respect_robots=False, resolve=fake_market.resolving(f"www.{lane}"),
                    host_rates={lane: 1}, shared_budget=budgets()) as second,
    ):
        assert (await first.fetch(Request(f"http://www.{lane}/s"))).status == 200
        waiting = asyncio.create_task(second.fetch(Request(f"http://www.{lane}/s")))
        await asyncio.wait_for(sleep.started.wait(), timeout=10)  # a deadline, so a pacer that never waits fails
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    assert len(sleep.asked) == 1 and 55.0 < sleep.asked[0] <= 60.1
    assert len(fake_market.requests) == 1


@needs_redis
async def test_retries_that_never_reached_the_host_spend_no_shared_budget(
    refused_port: int, budgets: Callable[[], SharedBudget], lanes: Callable[[], str]
) -> None:
    lane = lanes()
    budget = budgets()
    fake = FakeTime()
    async with HttpFetcher(user_agent=UA, clock=fake.clock, sleep=fake.sleep, random=lambda: 0.5,
                           respect_robots=False, max_retries=2, backoff_base=0.01, host_rates={lane: 3},
                           resolve={f"www.{lane}": f"http://127.0.0.1:{refused_port}"},
                           shared_budget=budget, budget_mode="deny") as fetcher:
        with pytest.raises(FetchError, match="after 3 attempt"):
            await fetcher.fetch(Request(f"http://www.{lane}/s"))
    # Three attempts, one request of the budget: two are left.
    assert [await budget.take(lane, 3), await budget.take(lane, 3)] == [0.0, 0.0]
    assert await budget.take(lane, 3) > 0


@needs_redis
async def test_a_redis_that_lost_its_data_grants_nothing_until_a_window_has_passed() -> None:
    """Regression: a Redis restarted without persistence forgot every window, so a host could get its budget
    twice within one window; now a Redis whose budgets are new grants nothing until a lane's window has passed."""
    assert REDIS_URL is not None
    prefix = f"dealscout:budget-{uuid.uuid4().hex[:12]}"
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        async with SharedBudget(REDIS_URL, key_prefix=prefix) as budget:
            wait = await budget.take("shop.example", 6)  # a Redis that has never seen a budget: a new epoch
            assert 59 < wait <= 60.1
            await client.set(f"{prefix}#epoch", repr(time.time() - 61))  # a window later
            assert await budget.take("shop.example", 6) == 0.0
            await client.delete(*[key async for key in client.scan_iter(match=f"{prefix}*")])  # the restart
            assert await budget.take("shop.example", 6) > 59  # what was spent is unknown: nothing until a window
    finally:
        await client.delete(*[key async for key in client.scan_iter(match=f"{prefix}*")] or [f"{prefix}#epoch"])
        await client.aclose()
