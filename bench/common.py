"""Shared benchmark helpers: an event-loop lag probe, percentiles, a plain-text table, a free port and a
throw-away PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
from collections.abc import AsyncIterator, Sequence

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """A database of its own (`<prefix>_<pid>`) on the server of `admin_url`, created here and dropped at the end
    (forced)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from storage.db import normalise_url

    name = f"{prefix}_{os.getpid()}"
    admin = create_async_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()
