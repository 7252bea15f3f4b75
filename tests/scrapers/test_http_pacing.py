"""The fetcher's pacing against the local fake marketplace: host budgets, requests in flight, waits told."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from scrapers.base import Request
from scrapers.host_pacer import turn_waits
from scrapers.http import HttpFetcher
from tests.fakes.marketplace import TEST_USER_AGENT as UA
from tests.fakes.marketplace import FakeMarketplace, FakeTime
from tests.scrapers.test_http import MakeFetcher

INF = float("inf")


class HeldTime:
    """A monotonic clock that moves only when the test says, and sleeps that last until it has moved far enough."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeping = 0
        self._moved = asyncio.Condition()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        async with self._moved:
            self.sleeping += 1
            self._moved.notify_all()
            await self._moved.wait_for(lambda: self.now >= until)
            self.sleeping -= 1

    async def advance(self, seconds: float) -> None:
        async with self._moved:
            self.now += seconds
            self._moved.notify_all()

    async def until_sleeping(self, count: int) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self.sleeping >= count)


def held_fetcher(market: FakeMarketplace, held: HeldTime, **options: object) -> HttpFetcher:
    return HttpFetcher(user_agent=UA, clock=held.clock, sleep=held.sleep, respect_robots=False,
                       default_rate_per_minute=INF, resolve=market.resolving("slow.example", "fast.example"),
                       **options)  # type: ignore[arg-type]


async def test_a_request_waiting_for_its_hosts_budget_holds_no_place(fake_market: FakeMarketplace) -> None:
    """Regression: a fetch waiting for its host's request budget held one of the scan's few concurrency slots, so
    a rate-limited marketplace kept the others' fetches waiting."""
    held = HeldTime()
    fake_market.route("/s", "ok")
    async with held_fetcher(fake_market, held, max_in_flight=1, host_rates={"slow.example": 1}) as fetcher:
        await fetcher.fetch(Request("http://slow.example/s"))  # spends slow.example's budget for a minute
        waiting = asyncio.create_task(fetcher.fetch(Request("http://slow.example/s")))
        await held.until_sleeping(1)  # it waits for its host's next turn...

        page = await fetcher.fetch(Request("http://fast.example/s"))  # ...while the only place serves another host

        assert page.status == 200 and not waiting.done()
        await held.advance(60)
        assert (await waiting).status == 200


async def test_requests_in_flight_are_capped(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    release = fake_market.hold("/slow")
    fetcher = make_fetcher(respect_robots=False, max_in_flight=2)
    requests = [asyncio.create_task(fetcher.fetch(Request(f"{fake_market.url}/slow?n={n}"))) for n in range(5)]
    await fake_market.wait_for_requests("/slow", count=2)

    freed_at = asyncio.get_running_loop().time()
    release.set()
    assert [page.status for page in await asyncio.gather(*requests)] == [200] * 5

    # The three others were sent only once the first two had their answers.
    assert all(request.at >= freed_at for request in fake_market.requests_to("/slow")[2:])


async def test_a_host_keeps_its_spacing_when_a_request_waited_for_a_place(fake_market: FakeMarketplace) -> None:
    """The next slot of a host counts from when its request really started, not from when it was due."""
    held = HeldTime()
    release = fake_market.hold("/busy")
    fake_market.route("/s", "ok")
    async with held_fetcher(fake_market, held, max_in_flight=1, host_rates={"slow.example": 6}) as fetcher:
        busy = asyncio.create_task(fetcher.fetch(Request("http://fast.example/busy")))
        await fake_market.wait_for_requests("/busy")  # the only place is taken
        first = asyncio.create_task(fetcher.fetch(Request("http://slow.example/s")))
        second = asyncio.create_task(fetcher.fetch(Request("http://slow.example/s")))
        await held.advance(30)  # slow.example's first request waits 30 s for the place, not for its budget
        release.set()
        await busy
        await first
        await held.until_sleeping(1)
        assert not second.done()  # 10 s after the first really started, not at once
        await held.advance(10)
        await second
    assert len(fake_market.requests_to("/s")) == 2


async def test_a_fetch_is_told_while_it_waits_for_its_turn(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher, fake_time: FakeTime
) -> None:
    fake_market.route("/s", "ok")
    fetcher = make_fetcher(respect_robots=False, host_rates={"127.0.0.1": 6})
    waits: list[float] = []

    @contextlib.contextmanager
    def timed() -> Iterator[None]:
        entered = fake_time.now
        yield
        waits.append(fake_time.now - entered)

    async def fetch_telling_waits() -> None:
        turn_waits.set(timed)
        await fetcher.fetch(Request(f"{fake_market.url}/s"))

    await fetch_telling_waits()
    await asyncio.create_task(fetch_telling_waits())  # its own context, as each fetch of a scan has
    assert waits == [0.0, 10.0]
