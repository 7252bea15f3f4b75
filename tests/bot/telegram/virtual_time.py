"""A virtual clock for pacing tests: seconds pass only while every participant waits on it, so bursts run fast.

`sleep` waits for the clock; the clock jumps to the next sleeper's wake-up only when no tracked request is in
flight (`VirtualRequest` for PTB, `track(repo)` for the database) and the event loop has settled. So a notifier
paced at Telegram's real limits, and a fake API enforcing them on the same clock, see exactly the times they
would see in production, and no send is ever counted late because time moved while it was on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram.request import HTTPXRequest


class VirtualTime:
    """Simulated time: `sleep` waits for the clock, and the clock jumps to the next sleeper's wake-up only when no
    tracked request is in flight and the event loop has settled. Use `async with VirtualTime() as vt:`."""

    EPOCH = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __init__(self, start: float = 0.0, *, settle_rounds: int = 20) -> None:
        self.now = start
        self._settle = settle_rounds
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._kick = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None

    def clock(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return self.EPOCH + timedelta(seconds=self.now)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # At least a microsecond: a pacer's float rounding can ask for 1e-16 s, and now + 1e-16 == now.
        heapq.heappush(self._sleepers, (self.now + max(seconds, 1e-6), next(self._seq), future))
        self._kick.set()
        await future

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self._kick.set()

    def track(self, target: Any) -> Any:
        """A proxy of `target` (a repository, say) whose coroutine methods hold the clock while they run."""
        clock = self

        class Tracked:
            def __getattr__(self, name: str) -> Any:
                value = getattr(target, name)
                if not asyncio.iscoroutinefunction(value):
                    return value

                async def call(*args: Any, **kwargs: Any) -> Any:
                    with clock.busy():
                        return await value(*args, **kwargs)

                return call

        return Tracked()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._wake_due()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def _drive(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            for _ in range(self._settle):
                await asyncio.sleep(0)
            self._sleepers = [s for s in self._sleepers if not s[2].done()]
            heapq.heapify(self._sleepers)
            if self._busy or not self._sleepers or self._kick.is_set():
                continue
            self.now = max(self.now, self._sleepers[0][0])
            self._wake_due()
            self._kick.set()

    async def __aenter__(self) -> VirtualTime:
        self._driver = asyncio.create_task(self._drive())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._driver is not None
        self._driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._driver


class VirtualRequest(HTTPXRequest):
    """PTB's HTTP client, holding a VirtualTime's clock while each request is in flight."""

    def __init__(self, clock: VirtualTime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clock = clock

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        with self._clock.busy():
            return await super().do_request(*args, **kwargs)
