"""The outbox dispatcher: order, retries with backoff, retry-after, dead rows, isolation between destinations."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from scout.delivery import DeliveryResult, Dispatcher, backoff_delay
from scout.models import Destination, FetchOutcome, SearchRun, SearchSpec
from storage.repo import Repository
from tests.fakes.adapters import make_listing
from tests.fakes.notifier import DigestingNotifier, RecordingNotifier
from tests.scout.clock import ManualClock


async def queue_alerts(repo: Repository, clock: ManualClock, target: str, count: int, start: int = 0) -> None:
    spec = SearchSpec(query="lego", marketplaces=("fakebay",), check_interval_minutes=5)
    search = await repo.save_search(owner="a", destination=Destination("console", target), scope=None, spec=spec,
                                    now=clock(), first_run_at=clock())
    listings = tuple(make_listing(start + n, f"lego {n}") for n in range(count))
    fetch = FetchOutcome("fakebay", "lego", "success", 1, listings, matches={search.id: listings})
    run = SearchRun(search.id, clock() + timedelta(minutes=5), frozenset({"fakebay"}))
    await repo.save_scan(now=clock(), fetches=[fetch], runs=[run], searches={search.id: search},
                         baseline_first_scan=False)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def dispatcher(repo: Repository, notifier: RecordingNotifier, clock: ManualClock) -> Dispatcher:
    return Dispatcher(repo, {"console": notifier}, clock=clock, rng=random.Random(3), max_attempts=4,
                      backoff_seconds=10, backoff_max_seconds=300)


async def test_alerts_go_out_once_in_order(repo: Repository, dispatcher: Dispatcher, notifier: RecordingNotifier,
                                           clock: ManualClock) -> None:
    await queue_alerts(repo, clock, "main", 5)
    report = await dispatcher.drain()
    assert report.sent == 5
    assert notifier.delivered_ids() == ["0", "1", "2", "3", "4"]
    assert (await dispatcher.drain()).sent == 0
    assert (await repo.outbox_summary()).sent == 5


async def test_retry_after_is_honoured_and_holds_the_queue_behind_it(
    repo: Repository, dispatcher: Dispatcher, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    await queue_alerts(repo, clock, "main", 3)
    notifier.answer("main", DeliveryResult.ok(), DeliveryResult.retry("429", retry_after=30))
    await dispatcher.drain()
    assert notifier.delivered_ids() == ["0"]
    clock.advance(seconds=29)
    assert (await dispatcher.drain()).sent == 0
    clock.advance(seconds=1)
    await dispatcher.drain()
    assert notifier.delivered_ids() == ["0", "1", "2"]  # order kept


async def test_backoff_grows_then_the_alert_is_dead_with_its_reason(
    repo: Repository, dispatcher: Dispatcher, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    await queue_alerts(repo, clock, "main", 1)
    notifier.answer("main", *[DeliveryResult.retry("HTTP 502")] * 4)
    waits = []
    for _ in range(3):
        await dispatcher.drain()
        due = await repo.load_due_alerts(now=clock() + timedelta(hours=1), limit=1, platforms=["console"])
        pending = await repo.load_due_alerts(now=clock(), limit=1, platforms=["console"])
        assert pending == []  # not due again straight away
        summary = await repo.outbox_summary()
        assert summary.pending == 1
        clock.advance(hours=1)
        waits.append(due[0].attempts)
    assert waits == [1, 2, 3]
    await dispatcher.drain()
    summary = await repo.outbox_summary()
    assert (summary.pending, summary.dead) == (0, 1)
    recent = await repo.load_recent_alerts(1)
    assert recent[0].status == "dead"


async def test_a_dead_destination_does_not_hold_up_the_others(
    repo: Repository, dispatcher: Dispatcher, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    await queue_alerts(repo, clock, "gone", 2)
    await queue_alerts(repo, clock, "fine", 2, start=10)
    notifier.answer("gone", DeliveryResult.dead("chat not found"), DeliveryResult.dead("chat not found"))
    report = await dispatcher.drain()
    assert (report.sent, report.dead) == (2, 2)
    assert notifier.delivered_ids() == ["10", "11"]


async def test_a_notifier_that_raises_is_retried_not_fatal(
    repo: Repository, dispatcher: Dispatcher, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    await queue_alerts(repo, clock, "main", 1)
    notifier.answer("main", RuntimeError("socket closed"))
    report = await dispatcher.drain()
    assert report.retried == 1
    clock.advance(minutes=10)
    assert (await dispatcher.drain()).sent == 1


@pytest.mark.parametrize("attempt", [1, 2, 5, 12])
def test_backoff_delay_is_bounded_and_grows(attempt: int) -> None:
    ceiling = min(300, 5 * 2 ** (attempt - 1))
    low = backoff_delay(attempt, base=5, cap=300, rand=0.0)
    high = backoff_delay(attempt, base=5, cap=300, rand=0.999)
    assert low == ceiling / 2 and ceiling * 0.99 <= high <= ceiling


def test_the_attempts_of_one_alert_span_a_five_minute_outage() -> None:
    """Regression: with full jitter, eight unlucky attempts could all fall within 20 s and lose the alert."""
    shortest = sum(backoff_delay(attempt, base=5, cap=900, rand=0.0) for attempt in range(1, 8))
    assert shortest > 5 * 60


async def test_a_destination_that_falls_behind_gets_digests(repo: Repository, clock: ManualClock) -> None:
    notifier = DigestingNotifier(digest_size=4, digest_after=3)
    dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock)
    await queue_alerts(repo, clock, "busy", 10)
    await queue_alerts(repo, clock, "quiet", 2, start=100)
    report = await dispatcher.drain()
    assert report.sent == 12
    assert notifier.digests == [["0", "1", "2", "3"], ["4", "5", "6", "7"], ["8", "9"]]
    assert sorted(notifier.delivered_ids()) == sorted([str(n) for n in range(10)] + ["100", "101"])


async def test_a_gone_destination_pauses_its_searches_and_tells_the_owner(
    repo: Repository, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    told = []

    async def tell(destination: Destination, reason: str, searches: list) -> None:  # type: ignore[type-arg]
        told.append((destination.target, reason, [s.id for s in searches]))

    dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock, on_destination_gone=tell)
    await queue_alerts(repo, clock, "deleted", 3)
    await queue_alerts(repo, clock, "fine", 1, start=50)
    notifier.answer("deleted", DeliveryResult.gone("404 Unknown Channel"))
    report = await dispatcher.drain()
    assert (report.sent, report.dead) == (1, 3)
    assert told == [("deleted", "404 Unknown Channel", [1])]
    search = await repo.load_search(1)
    assert search.status.value == "paused"
    assert search.paused_reason == "alerts cannot reach this chat: 404 Unknown Channel"
    assert (await repo.outbox_summary()).pending == 0


async def test_a_moved_chat_takes_its_searches_and_alerts_along(
    repo: Repository, notifier: RecordingNotifier, dispatcher: Dispatcher, clock: ManualClock
) -> None:
    await queue_alerts(repo, clock, "-100", 2)
    notifier.answer("-100", DeliveryResult.moved("-100999"))
    await dispatcher.drain()
    await dispatcher.drain()
    assert [(d.target, a.listing.external_id) for d, a in notifier.sent] == [("-100999", "0"), ("-100999", "1")]
    assert (await repo.load_search(1)).destination == Destination("console", "-100999")


async def test_a_long_queue_in_one_chat_does_not_fill_the_batch(repo: Repository, clock: ManualClock) -> None:
    await queue_alerts(repo, clock, "busy", 50)
    await queue_alerts(repo, clock, "quiet", 2, start=100)
    due = await repo.load_due_alerts(now=clock(), limit=20, platforms=["console"], per_destination=5)
    assert [a.destination.target for a in due].count("busy") == 5
    assert [a.listing.external_id for a in due if a.destination.target == "quiet"] == ["100", "101"]
    assert [a.listing.external_id for a in due if a.destination.target == "busy"] == ["0", "1", "2", "3", "4"]
