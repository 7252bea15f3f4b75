"""A job that keeps failing keeps the log readable: a line when the failures start, a reminder a minute, a line when
the job works again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from scout.scheduler import SCAN_JOB, ScoutScheduler
from storage.db import create_engine, session_factory, upgrade
from storage.repo import Repository

RUN_EVERY_SECONDS = 2.0  # the delivery tick that drove the scan job during the outage drills


class Seconds:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def run_job(scheduler: ScoutScheduler, job: Callable[[], Awaitable[object]], runs: int,
                  clock: Seconds) -> None:
    """Run the scan job `runs` times through the real scheduler, RUN_EVERY_SECONDS apart on `clock`."""
    done = asyncio.Event()

    async def scan() -> None:
        try:
            await job()
        finally:
            done.set()  # the guard logs in this same step, before the test resumes

    scheduler.add_scan(scan)
    if not scheduler.running:
        scheduler.start()
    for run in range(runs):
        if run:
            clock.now += RUN_EVERY_SECONDS
            scheduler.wake(SCAN_JOB)
        await asyncio.wait_for(done.wait(), timeout=10)
        done.clear()


async def test_a_database_outage_logs_when_it_starts_once_a_minute_and_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pins the job guard logging a full traceback (165 lines) for every failed scan, every 2 s, all through a
    database outage."""
    down = create_engine("postgresql://scout@127.0.0.1:1/deals")  # nothing listens: each connection is refused
    up = create_engine(f"sqlite:///{tmp_path / 'dealscout.db'}")
    await upgrade(up)
    repos = {"down": Repository(session_factory(down)), "up": Repository(session_factory(up))}
    database = {"now": "down"}
    clock = Seconds()
    scheduler = ScoutScheduler(scan_tick_seconds=3600, delivery_tick_seconds=3600, clock=clock)
    caplog.set_level(logging.INFO, logger="scout.scheduler")

    async def claim() -> None:
        await repos[database["now"]].count_searches()

    try:
        await run_job(scheduler, claim, 91, clock)  # three minutes down
        database["now"] = "up"
        clock.now += RUN_EVERY_SECONDS
        scheduler.wake(SCAN_JOB)
        await run_job(scheduler, claim, 1, clock)
    finally:
        await scheduler.stop()
        await down.dispose()
        await up.dispose()

    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "scout.scheduler"]
    assert not any(r.exc_info for r in caplog.records)
    assert [level for level, _ in lines] == ["ERROR", "WARNING", "WARNING", "WARNING", "INFO"]
    assert lines[0][1].startswith("job scan: the database is failing (ConnectionRefusedError: ")
    assert [message.split(" (")[0] for _, message in lines[1:4]] == [
        "job scan still failing after 60 s, 31 runs in a row",
        "job scan still failing after 120 s, 61 runs in a row",
        "job scan still failing after 180 s, 91 runs in a row",
    ]
    assert lines[4][1] == "job scan works again after 182 s and 91 failed runs"


async def test_a_bug_keeps_its_first_traceback_and_is_reminded_without_it(caplog: pytest.LogCaptureFixture) -> None:
    clock = Seconds()
    scheduler = ScoutScheduler(scan_tick_seconds=3600, delivery_tick_seconds=3600, clock=clock)
    caplog.set_level(logging.INFO, logger="scout.scheduler")

    async def broken() -> None:
        raise KeyError("listing")

    try:
        await run_job(scheduler, broken, 40, clock)
    finally:
        await scheduler.stop()
    records = [r for r in caplog.records if r.name == "scout.scheduler"]
    assert [(r.levelname, bool(r.exc_info)) for r in records] == [("ERROR", True), ("WARNING", False)]
    assert records[0].getMessage() == "job scan failed"
    assert records[1].getMessage() == "job scan still failing after 60 s, 31 runs in a row (KeyError: 'listing')"
