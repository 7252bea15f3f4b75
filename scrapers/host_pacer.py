"""Per-host request spacing and the cap on requests in flight: a request waits its host's turn, then for a place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Protocol

from scrapers.shared_budget import BUDGET_MODES, BudgetDenied, BudgetMode

log = logging.getLogger(__name__)

# A robots.txt Crawl-delay above this would stall a whole scan; beyond it the adapter's own interval is the brake.
MAX_CRAWL_DELAY_SECONDS = 60.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

# Entered, in the task that makes a request, for as long as it waits for its turn (its host's budget, then a place
# among the requests in flight). A caller that caps the time of a fetch sets one that stops the fetch's clock, so
# queueing behind other requests never counts as the fetch being slow.
turn_waits: ContextVar[Callable[[], AbstractContextManager[object]] | None] = ContextVar("turn_waits", default=None)


class LaneBudget(Protocol):
    """A request budget per lane that other processes spend too (scrapers.shared_budget.SharedBudget)."""

    async def take(self, lane: str, per_minute: float) -> float:
        """0.0 when one request was granted and spent, else the seconds until one may be (nothing spent)."""
        ...


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

    With a `shared` budget the lane's rate also holds across every process spending it: once its local slot and a
    place are had, a request takes a slot of the shared budget too, just before it is sent, so that the window
    other processes see is the one the host sees. When the shared budget is spent, `mode` "wait" sleeps until a
    slot may be free (holding no place meanwhile) and asks again; "deny" raises BudgetDenied with the wait instead,
    for a caller that would rather reschedule than hold a worker. Either way the local spacing still applies. A
    lane without a limit (an infinite rate) spends no shared budget; robots.txt Crawl-delay is kept per process.
    """

    def __init__(self, default_rate_per_minute: float, clock: Clock, sleep: Sleep,
                 max_in_flight: int | None = None, *, shared: LaneBudget | None = None,
                 mode: BudgetMode = "wait") -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if mode not in BUDGET_MODES:
            raise ValueError(f"a shared budget's mode is one of {', '.join(BUDGET_MODES)}, got {mode!r}")
        rate_interval(default_rate_per_minute)
        self._default_rate = default_rate_per_minute
        self._rates: dict[str, float] = {}
        # Per lane: the earliest monotonic time the next request may start, and the queue for it.
        self._next_slot: dict[str, float] = {}
        self._queues: dict[str, asyncio.Lock] = {}
        self._places = asyncio.Semaphore(max_in_flight) if max_in_flight is not None else None
        self._clock = clock
        self._sleep = sleep
        self._shared = shared
        self._mode = mode

    def set_rate(self, domain: str, per_minute: float) -> None:
        rate_interval(per_minute)
        self._rates[domain.lower().strip(".")] = per_minute

    def lane(self, host: str) -> tuple[str, float]:
        """The budget a host draws on: the nearest registered parent domain, else the host itself at the default;
        with the seconds between two of its requests."""
        name, per_minute = self._lane_rate(host)
        return name, rate_interval(per_minute)

    def _lane_rate(self, host: str) -> tuple[str, float]:
        labels = host.lower().split(".")
        for i in range(len(labels)):
            candidate = ".".join(labels[i:])
            if candidate in self._rates:
                return candidate, self._rates[candidate]
        return host.lower(), self._default_rate

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
            self._release_place()

    async def wait_turn(self, host: str, crawl_delay: float = 0.0) -> None:
        """Spend one request of the host's budget, waiting for it, but take no place (robots.txt: one small
        request per site at a time, which must not wait behind the pages it guards)."""
        with _waiting():
            await self._take_slot(host, crawl_delay, place=False)

    async def _take_slot(self, host: str, crawl_delay: float, *, place: bool) -> None:
        lane, per_minute = self._lane_rate(host)
        interval = max(rate_interval(per_minute), min(crawl_delay, MAX_CRAWL_DELAY_SECONDS))
        async with self._queues.setdefault(lane, asyncio.Lock()):
            now = self._clock()
            slot = max(now, self._next_slot.get(lane, now))
            if slot > now:
                await self._sleep(slot - now)
            if place:
                await self._take_place()
            holding = place
            try:
                while self._shared is not None and not math.isinf(per_minute):
                    wait = await self._shared.take(lane, per_minute)
                    if wait <= 0:
                        break
                    if self._mode == "deny":
                        raise BudgetDenied(lane, wait)
                    log.info("%s: the shared request budget is spent; waiting %.1fs", lane, wait)
                    if holding:
                        self._release_place()
                        holding = False
                    await self._sleep(wait)
                    if place:
                        await self._take_place()
                        holding = True
            except BaseException:
                if holding:
                    self._release_place()
                raise
            # Counted from the later of the slot and the real start: a request that waited for a place keeps the
            # host's spacing for the next one.
            self._next_slot[lane] = max(slot, self._clock()) + interval

    async def _take_place(self) -> None:
        if self._places is not None:
            await self._places.acquire()

    def _release_place(self) -> None:
        if self._places is not None:
            self._places.release()


def _waiting() -> AbstractContextManager[object]:
    waits = turn_waits.get()
    return waits() if waits is not None else contextlib.nullcontext()
