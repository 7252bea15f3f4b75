"""Token buckets for pacing sends to chat platforms: per destination and global, with an injectable clock."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

TOKEN_ROUNDING = 1e-9


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` events per `per_seconds`, with bursts of up to `count`."""

    count: float
    per_seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.per_seconds


class _Bucket:
    __slots__ = ("capacity", "refill", "tokens", "stamp")

    def __init__(self, rate: Rate, now: float) -> None:
        self.capacity = rate.count
        self.refill = rate.per_second
        self.tokens = rate.count
        self.stamp = now

    def wait_time(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        # A token short by a rounding error is a whole token: a wait of 1e-14 s would not move a clock near 1000.
        return 0.0 if self.tokens >= 1 - TOKEN_ROUNDING else (1 - self.tokens) / self.refill

    def take(self) -> None:
        self.tokens -= 1


class Pacer:
    """Waits until a send to `key` fits every limit that applies to it (its own, its class's and the global one).

    Limits are token buckets, so a quiet destination may send a short burst; waiting is done with the
    injected `sleep`, so tests run the real limits on a fake clock.
    """

    def __init__(
        self,
        *,
        global_rate: Rate | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._global_rate = global_rate
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[Hashable, _Bucket] = {}

    def _bucket(self, key: Hashable, rate: Rate, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(rate, now)
        return bucket

    def delay(self, limits: list[tuple[Hashable, Rate]]) -> float:
        """How long a send under these limits would wait now, without taking a token."""
        now = self._clock()
        return max((self._bucket(key, rate, now).wait_time(now) for key, rate in self._all(limits)), default=0.0)

    async def acquire(self, limits: list[tuple[Hashable, Rate]]) -> None:
        """Wait for a token in every bucket that applies, then take them all at once."""
        everything = self._all(limits)
        # No lock: checking and taking happen with no await between them, and a waiter sleeps without
        # holding anything, so a slow destination never holds up the others.
        while True:
            now = self._clock()
            buckets = [self._bucket(key, rate, now) for key, rate in everything]
            wait = max((bucket.wait_time(now) for bucket in buckets), default=0.0)
            if wait <= 0:
                for bucket in buckets:
                    bucket.take()
                return
            await self._sleep(wait)

    def _all(self, limits: list[tuple[Hashable, Rate]]) -> list[tuple[Hashable, Rate]]:
        if self._global_rate is None:
            return list(limits)
        return [*limits, (("global",), self._global_rate)]


class SlidingWindow:
    """At most `count` requests in any span of `window` seconds, counted the way the receiving side counts them.

    A request takes a slot with `acquire()` and hands it back with `release()` once its answer is in; the window
    counts answered requests by when their answers came. An answer comes after the request reached the server,
    so a request that leaves a window after an answer reaches the server a window after that request did: bursts
    up to the full count, and network jitter cannot bunch them past it.
    """

    def __init__(
        self,
        count: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._count = count
        self._window = window
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._in_flight = 0
        self._released = asyncio.Event()

    async def acquire(self) -> None:
        while True:
            now = self._clock()
            while self._stamps and self._stamps[0] <= now - self._window:
                self._stamps.popleft()
            if len(self._stamps) + self._in_flight < self._count:
                self._in_flight += 1
                return
            if self._stamps:
                await self._sleep(self._stamps[0] + self._window - now)
            else:  # every slot is a request still waiting for its answer
                self._released.clear()
                await self._released.wait()

    def release(self) -> None:
        self._in_flight -= 1
        self._stamps.append(self._clock())
        self._released.set()
