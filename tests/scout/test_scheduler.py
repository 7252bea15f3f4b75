"""The one scheduler: a job never runs twice at once, a failing job keeps its schedule, stop cancels cleanly."""

from __future__ import annotations

import asyncio

import pytest

from scout.scheduler import DELIVERY_JOB, ScoutScheduler


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


async def test_stop_lets_a_running_job_finish_within_the_grace_period() -> None:
    """Regression: APScheduler's shutdown cancelled running jobs at once, so the grace period never applied."""
    scheduler = ScoutScheduler(scan_tick_seconds=3600, delivery_tick_seconds=3600)
    started, finished = asyncio.Event(), asyncio.Event()
    release = asyncio.Event()

    async def scan() -> None:
        started.set()
        await release.wait()
        finished.set()

    scheduler.add_scan(scan)
    scheduler.start()
    await asyncio.wait_for(started.wait(), timeout=10)
    stopping = asyncio.create_task(scheduler.stop(grace_seconds=30))
    await asyncio.sleep(0)
    release.set()
    await stopping
    assert finished.is_set() and not scheduler.running


async def test_a_job_woken_just_before_stop_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """Regression: a delivery woken as the service stopped was cancelled before it began, and APScheduler logged
    "Error running job deliver" with a traceback."""
    scheduler = ScoutScheduler(scan_tick_seconds=3600, delivery_tick_seconds=3600)
    ran = asyncio.Event()

    async def deliver() -> None:
        ran.set()

    scheduler.add_delivery(deliver)
    scheduler.start()
    await asyncio.wait_for(ran.wait(), timeout=10)
    ran.clear()
    scheduler.wake(DELIVERY_JOB)  # the ops message "stopping" wakes delivery, then the service stops
    await scheduler.stop()
    for _ in range(3):  # and reports how it ended on the turns after
        await asyncio.sleep(0)
    scheduler.wake(DELIVERY_JOB)  # after stop: nothing to wake, nothing raised
    assert "Error running job" not in caplog.text


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
