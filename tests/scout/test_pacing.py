"""Token-bucket pacing on a fake clock: per-key limits, the global limit, and no head-of-line blocking."""

from __future__ import annotations

import asyncio

from scout.pacing import Pacer, Rate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_a_key_gets_its_burst_then_waits_for_refill() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limits = [(("chan", 1), Rate(5, 5.0))]
    stamps = []
    for _ in range(7):
        await pacer.acquire(limits)
        stamps.append(clock.now)
    assert stamps[:5] == [0.0] * 5
    assert stamps[5:] == [1.0, 2.0]  # then one per second: 5 per 5 s


async def test_the_global_rate_caps_all_keys_together() -> None:
    clock = FakeClock()
    pacer = Pacer(global_rate=Rate(2, 1.0), clock=clock, sleep=clock.sleep)
    stamps = []
    for n in range(6):
        await pacer.acquire([(("chan", n), Rate(5, 5.0))])
        stamps.append(clock.now)
    assert stamps == [0.0, 0.0, 0.5, 1.0, 1.5, 2.0]


async def test_delay_reports_without_taking() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limits = [(("chat", 1), Rate(1, 1.0))]
    assert pacer.delay(limits) == 0.0
    await pacer.acquire(limits)
    assert pacer.delay(limits) == 1.0
    assert pacer.delay(limits) == 1.0


async def test_a_waiting_key_does_not_block_another() -> None:
    """Regression: a lock held while sleeping made every chat wait behind the slowest one."""
    clock = FakeClock()
    gate = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await gate.wait()  # the slow chat's wait does not end until the test says so

    pacer = Pacer(clock=clock, sleep=held_sleep)
    slow = [(("chat", "slow"), Rate(1, 60.0))]
    await pacer.acquire(slow)
    waiting = asyncio.create_task(pacer.acquire(slow))
    await asyncio.sleep(0)
    await asyncio.wait_for(pacer.acquire([(("chat", "fast"), Rate(1, 60.0))]), timeout=5)
    assert not waiting.done()
    waiting.cancel()


async def test_a_sliding_window_allows_the_full_burst_and_no_more() -> None:
    from scout.pacing import SlidingWindow

    clock = FakeClock()
    window = SlidingWindow(3, 1.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(7):
        await window.acquire()
        stamps.append(clock.now)
        clock.now += 0.1  # the answer takes 100 ms; the window counts from it
        window.release()
        clock.now -= 0.1
    assert stamps == [0.0, 0.0, 0.0, 1.1, 1.1, 1.1, 2.2]


async def test_a_sliding_window_waits_for_answers_when_every_slot_is_in_flight() -> None:
    from scout.pacing import SlidingWindow

    clock = FakeClock()
    window = SlidingWindow(2, 1.0, clock=clock, sleep=clock.sleep)
    await window.acquire()
    await window.acquire()
    third = asyncio.create_task(window.acquire())
    await asyncio.sleep(0)
    assert not third.done()
    window.release()  # the answer arrives at t=0: the third may go once the window has passed
    await asyncio.wait_for(third, timeout=5)
    assert clock.now == 1.0


def test_a_token_short_by_a_rounding_error_is_no_wait() -> None:
    """Regression: refilling at 1/1.1 per second from 7.0 left 0.9999999999999997 tokens at 8.1, so the pacer asked
    for a wait of 3e-16 s, which 8.1 + 3e-16 cannot show: a sender on a hand-moved clock looped for ever."""
    now = 7.0
    pacer = Pacer(clock=lambda: now)
    limits = [(("chat", 1), Rate(1, 1.1))]
    assert pacer.delay(limits) == 0.0
    pacer._buckets[("chat", 1)].take()
    now += 1.1
    assert pacer.delay(limits) == 0.0
