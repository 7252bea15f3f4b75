"""The one scheduler: a job never runs twice at once, a failing job keeps its schedule, stop cancels cleanly."""

from __future__ import annotations

import asyncio

from scout.scheduler import ScoutScheduler


async def test_a_job_never_overlaps_itself_and_stop_cancels_it() -> None:
    scheduler = ScoutScheduler(scan_tick_seconds=0.01, delivery_tick_seconds=0.01)
    started = asyncio.Event()
    release = asyncio.Event()
    runs = 0
    ticks = 0
    ticked_enough = asyncio.Event()

    async def slow_scan() -> None:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()

    async def count_ticks() -> None:
        nonlocal ticks
        ticks += 1
        if ticks >= 20:
            ticked_enough.set()

    scheduler.add_scan(slow_scan)
    scheduler.add_delivery(count_ticks)
    scheduler.start()
    await asyncio.wait_for(started.wait(), timeout=10)
    # The other job ticks many times while the scan is stuck, and so do the scan's own ticks: it never restarts.
    await asyncio.wait_for(ticked_enough.wait(), timeout=10)
    assert runs == 1
    await scheduler.stop(grace_seconds=0.01)
    assert not scheduler.running
    assert not release.is_set()  # it was cancelled, not finished


async def test_a_failing_job_keeps_running_on_schedule() -> None:
    scheduler = ScoutScheduler(scan_tick_seconds=0.01, delivery_tick_seconds=0.01)
    calls = 0
    done = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls >= 3:
            done.set()
        raise RuntimeError("boom")

    scheduler.add_scan(flaky)
    scheduler.start()
    await asyncio.wait_for(done.wait(), timeout=10)
    await scheduler.stop()
    assert calls >= 3
