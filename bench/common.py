"""Shared benchmark helpers: an event-loop lag probe, percentiles, and a plain-text table."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence

# The probe wakes every 10 ms; how late each wake-up comes is the loop's lag.
PROBE_INTERVAL_S = 0.010


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class LagProbe:
    """A task that sleeps PROBE_INTERVAL_S over and over and records how late it wakes, in seconds."""

    def __init__(self, interval: float = PROBE_INTERVAL_S) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - due))

    async def __aenter__(self) -> LagProbe:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)  # let it take its first timestamp
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def summary_ms(self) -> tuple[float, float, float]:
        """(p50, p99, max) lag in milliseconds."""
        return tuple(1000 * x for x in (percentile(self.lags, 0.5), percentile(self.lags, 0.99),
                                        max(self.lags, default=0.0)))  # type: ignore[return-value]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Left-align the first column, right-align the rest."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
