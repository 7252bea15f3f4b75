"""Per-host request spacing and the cap on requests in flight: a request waits its host's turn, then for a place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar

# A robots.txt Crawl-delay above this would stall a whole scan; beyond it the adapter's own interval is the brake.
MAX_CRAWL_DELAY_SECONDS = 60.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

# Entered, in the task that makes a request, for as long as it waits for its turn (its host's budget, then a place
# among the requests in flight). A caller that caps the time of a fetch sets one that stops the fetch's clock, so
# queueing behind other requests never counts as the fetch being slow.
turn_waits: ContextVar[Callable[[], AbstractContextManager[object]] | None] = ContextVar("turn_waits", default=None)


def rate_interval(per_minute: float) -> float:
    """Seconds between two requests at `per_minute`; ValueError unless positive."""
    if per_minute <= 0:
        raise ValueError(f"a rate must be > 0 requests per minute, got {per_minute}")
    return 60.0 / per_minute


class HostPacer:
    """Spaces requests per rate-limit lane (a registered domain, its subdomains sharing it, or else the bare host)
    and lets at most `max_in_flight` requests run at once across all lanes.

    A request first waits for its lane's next slot, then for a place: one that waits for its host's budget holds
    no place, so a slow or rate-limited host never keeps another host's requests waiting. Each lane's requests
    queue in arrival order, and the next slot is counted from when a request really started.
    """

    def __init__(self, default_rate_per_minute: float, clock: Clock, sleep: Sleep,
                 max_in_flight: int | None = None) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self._default_interval = rate_interval(default_rate_per_minute)
        self._intervals: dict[str, float] = {}
        # Per lane: the earliest monotonic time the next request may start, and the queue for it.
        self._next_slot: dict[str, float] = {}
        self._queues: dict[str, asyncio.Lock] = {}
        self._places = asyncio.Semaphore(max_in_flight) if max_in_flight is not None else None
        self._clock = clock
        self._sleep = sleep

    def set_rate(self, domain: str, per_minute: float) -> None:
        self._intervals[domain.lower().strip(".")] = rate_interval(per_minute)

    def lane(self, host: str) -> tuple[str, float]:
        """The budget a host draws on: the nearest registered parent domain, else the host itself at the default."""
        labels = host.lower().split(".")
        for i in range(len(labels)):
            candidate = ".".join(labels[i:])
            if candidate in self._intervals:
                return candidate, self._intervals[candidate]
        return host.lower(), self._default_interval

    @contextlib.asynccontextmanager
    async def turn(self, host: str, crawl_delay: float = 0.0, *, budget: bool = True) -> AsyncIterator[None]:
        """Hold a place among the requests in flight for the body of the `async with`, once the host's turn came.

        budget=False skips the host's budget: for a retry of a request that never reached the host (it could not
        connect), which spent none of it.
        """
        with _waiting():
            if budget:
                await self._take_slot(host, crawl_delay, place=True)
            else:
                await self._take_place()
        try:
            yield
        finally:
            if self._places is not None:
                self._places.release()

    async def wait_turn(self, host: str, crawl_delay: float = 0.0) -> None:
        """Spend one request of the host's budget, waiting for it, but take no place (robots.txt: one small
        request per site at a time, which must not wait behind the pages it guards)."""
        with _waiting():
            await self._take_slot(host, crawl_delay, place=False)

    async def _take_slot(self, host: str, crawl_delay: float, *, place: bool) -> None:
        lane, interval = self.lane(host)
        interval = max(interval, min(crawl_delay, MAX_CRAWL_DELAY_SECONDS))
        async with self._queues.setdefault(lane, asyncio.Lock()):
            now = self._clock()
            slot = max(now, self._next_slot.get(lane, now))
            if slot > now:
                await self._sleep(slot - now)
            if place:
                await self._take_place()
            # Counted from the later of the slot and the real start: a request that waited for a place keeps the
            # host's spacing for the next one.
            self._next_slot[lane] = max(slot, self._clock()) + interval

    async def _take_place(self) -> None:
        if self._places is not None:
            await self._places.acquire()


def _waiting() -> AbstractContextManager[object]:
    waits = turn_waits.get()
    return waits() if waits is not None else contextlib.nullcontext()
