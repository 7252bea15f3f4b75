"""Per-host request spacing for the fetcher: each domain's budget as a queue of time slots; no locks, no polling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

# A robots.txt Crawl-delay above this would stall a whole scan; beyond it the adapter's own interval is the brake.
MAX_CRAWL_DELAY_SECONDS = 60.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


def rate_interval(per_minute: float) -> float:
    """Seconds between two requests at `per_minute`; ValueError unless positive."""
    if per_minute <= 0:
        raise ValueError(f"a rate must be > 0 requests per minute, got {per_minute}")
    return 60.0 / per_minute


class HostPacer:
    """Spaces requests per rate-limit lane: a registered domain (its subdomains share it) or else the bare host."""

    def __init__(self, default_rate_per_minute: float, clock: Clock, sleep: Sleep) -> None:
        self._default_interval = rate_interval(default_rate_per_minute)
        self._intervals: dict[str, float] = {}
        # Per lane: the earliest monotonic time the next request may start.
        self._next_slot: dict[str, float] = {}
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

    async def wait_turn(self, host: str, crawl_delay: float = 0.0) -> None:
        # Reserve a slot with no await between reading and writing the lane, so concurrent callers queue up
        # one interval apart without a lock, and other hosts never wait on this one.
        lane, interval = self.lane(host)
        interval = max(interval, min(crawl_delay, MAX_CRAWL_DELAY_SECONDS))
        now = self._clock()
        slot = max(now, self._next_slot.get(lane, now))
        self._next_slot[lane] = slot + interval
        if slot > now:
            await self._sleep(slot - now)
