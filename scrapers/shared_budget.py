"""Each rate-limit lane's request budget, shared by every process through a moving window in Redis."""

from __future__ import annotations

import asyncio
import math
import time
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self
from urllib.parse import urlsplit

from scout.errors import DealScoutError

if TYPE_CHECKING:
    from limits.aio.storage import RedisStorage
    from redis.asyncio import ConnectionPool

KEY_PREFIX = "dealscout:budget"
# A budget check sits in front of every request: a Redis that cannot answer within this long counts as down, so a
# stalled Redis costs a request a second or two, not a whole fetch timeout.
DEFAULT_TIMEOUT_SECONDS = 1.5
# Added to a denial's wait, so a caller that sleeps it wakes after the window's oldest request has left it, not a
# hair before (the window is measured on the workers' clocks, read a few milliseconds apart).
WAKE_MARGIN_SECONDS = 0.05
# A denial is told apart from a window that freed between the check and the look at it by taking again this often.
TAKE_TRIES = 2
# Past this many requests a minute a fractional budget is rounded down to whole requests a minute: under 1/60 lost.
WHOLE_MINUTE_FROM = 60.0

BudgetMode = Literal["wait", "deny"]
BUDGET_MODES: tuple[BudgetMode, ...] = ("wait", "deny")


class SharedBudgetError(DealScoutError):
    """The shared request budget stopped a request before it was sent.

    Not a FetchError: the host did nothing wrong, so an adapter does not turn it into a failed fetch (which would
    count against the host's circuit); it reaches whoever scheduled the fetch, which puts the fetch off.
    """


class BudgetUnavailable(SharedBudgetError):
    """Redis could not say whether a request fits its host's budget, so none was granted."""


class BudgetDenied(SharedBudgetError):
    """The host's shared budget is spent for now; a slot may be free after `retry_after` seconds."""

    def __init__(self, lane: str, retry_after: float) -> None:
        super().__init__(f"the shared request budget of {lane} is spent; next slot in {retry_after:.1f}s")
        self.lane = lane
        self.retry_after = retry_after


def budget_window(per_minute: float) -> tuple[int, int]:
    """The moving window that carries `per_minute`: (at most this many requests, in any span of this many seconds).

    A whole budget of N is N requests in any 60 s, as stated. A fractional one cannot be a whole count in 60 s, and
    Redis keeps a window's key for whole seconds, so it becomes H requests in W whole seconds, W = ceil(60 H / rate):
    on average never more than the rate (exactly the rate when 60 H / rate is whole: 0.5 -> 1 in 120 s, 2.5 -> 1 in
    24 s), and never more than ceil(rate) requests in any 60 s. Of the H that keep both, the one closest to the rate
    wins, the fewest requests on a tie (eBay's API at 5000 calls a day, 3.47/min -> 2 in 35 s, 3.43/min).
    """
    if not (per_minute > 0 and math.isfinite(per_minute)):
        raise ValueError(f"a shared budget must be a finite rate > 0 requests per minute, got {per_minute}")
    if per_minute == int(per_minute) or per_minute >= WHOLE_MINUTE_FROM:
        return max(1, math.floor(per_minute)), 60
    most_in_a_minute = math.ceil(per_minute)
    best = (1, math.ceil(60 / per_minute))  # always fits: one request per interval, rounded up to a whole second
    for hits in range(2, math.floor(per_minute) + 1):
        window = math.ceil(60 * hits / per_minute)
        if hits * math.ceil(60 / window) <= most_in_a_minute and hits * best[1] > best[0] * window:
            best = (hits, window)
    return best


class SharedBudget:
    """The request budget of each lane, spent by every process that points at the same Redis.

    The window is `limits`' moving window: one Lua script checks and records a request atomically in Redis, under
    the key `dealscout:budget:<lane>`, so no two processes can both take the last slot. Its timestamps are the
    workers' own clocks (time.time()): the budget holds across machines as well as their clocks agree (NTP).
    Every process must give a lane the same budget; one that asks a smaller count trims the shared history to it.

    A Redis connection belongs to the event loop that made it: make one SharedBudget per event loop, like the
    fetcher, and close it when done.
    """

    def __init__(self, url: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                 key_prefix: str = KEY_PREFIX) -> None:
        # Imported here, not above: the pacer needs this module's errors, and the core imports the pacer, which
        # must load no Redis client with it.
        import redis.asyncio as aioredis
        from limits.aio.storage import RedisStorage
        from limits.errors import StorageError
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError
        from redis.retry import Retry

        parsed = urlsplit(url)
        if parsed.scheme not in ("redis", "rediss"):
            raise ValueError(f"a shared budget needs a redis:// or rediss:// URL, got scheme {parsed.scheme!r}")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        self._timeout = timeout_seconds
        self._secret = parsed.password
        self._where = f"{parsed.hostname}:{parsed.port or 6379}{parsed.path}"  # never the password
        self._failures: tuple[type[BaseException], ...] = (StorageError, RedisError, TimeoutError, OSError)
        # One retry inside the client, at once: a pooled connection that a Redis restart closed is replaced instead
        # of failing the check; past that, a budget check that fails says so (the whole check stays within the
        # timeout), and the fetcher's caller decides.
        self._pool: ConnectionPool = aioredis.ConnectionPool.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds, retry=Retry(NoBackoff(), 1),
        )
        self._redis = aioredis.Redis(connection_pool=self._pool)
        self._epoch_key = f"{key_prefix}#epoch"
        self._storage: RedisStorage = RedisStorage(
            f"async+{url}", implementation="redispy", key_prefix=key_prefix, wrap_exceptions=True,
            connection_pool=self._pool,
        )

    def __repr__(self) -> str:
        return f"SharedBudget({self._where!r})"

    async def take(self, lane: str, per_minute: float) -> float:
        """Spend one request of `lane`'s budget: 0.0 when granted, else the seconds until a slot may be free
        (nothing spent). Raises BudgetUnavailable when Redis cannot answer within the timeout."""
        hits, window = budget_window(per_minute)
        try:
            async with asyncio.timeout(self._timeout):
                known_for = await self._known_for()
                if known_for < window:
                    return window - known_for + WAKE_MARGIN_SECONDS
                for _ in range(TAKE_TRIES):
                    if await self._storage.acquire_entry(lane, hits, window):
                        return 0.0
                    oldest, counted = await self._storage.get_moving_window(lane, hits, window)
                    if counted >= hits:
                        # The slot frees when the oldest of the window's requests leaves it.
                        return min(max(oldest + window - time.time(), 0.0), float(window)) + WAKE_MARGIN_SECONDS
        except self._failures as err:
            raise BudgetUnavailable(
                f"the shared request budget at {self._where} did not answer for {lane}: {self._describe(err)}"
            ) from err
        return WAKE_MARGIN_SECONDS  # the window kept freeing and filling under us: ask again in a moment

    async def _known_for(self) -> float:
        """Seconds this Redis has kept the budgets. A Redis that lost its data (restarted without persistence) or
        a new one starts counting again, and no lane is granted anything until its window has passed since: what
        was spent before it cannot be known, and a budget must hold across the restart too."""
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._epoch_key, repr(now), nx=True)
            pipe.get(self._epoch_key)
            _, since = await pipe.execute()
        return now - float(since)

    async def close(self) -> None:
        await self._pool.disconnect()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _describe(self, err: BaseException) -> str:
        cause = getattr(err, "storage_error", err)  # limits wraps the Redis client's error
        if isinstance(cause, TimeoutError) and not str(cause):
            return f"no answer within {self._timeout}s"
        detail = f"{type(cause).__name__}: {str(cause)[:200]}"
        return detail.replace(self._secret, "***") if self._secret else detail
