"""The outbox dispatcher: order, retries with backoff, retry-after, dead rows, isolation between destinations."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from bot.commands import Actor, Commands
from scout.delivery import DeliveryResult, Dispatcher, DrainReport, backoff_delay
from scout.errors import StorageError
from scout.models import Destination, FetchOutcome, NoticeKind, SearchRun, SearchSpec
from storage.db import create_engine, session_factory, upgrade
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


class SimulatedCrash(BaseException):
    """Stands for the process dying mid-send: no `except Exception` guard may catch it."""


class SimulatedCancel(asyncio.CancelledError):
    """Stands for the service stopping while a send is in flight."""


class FailingRepository(Repository):
    """Raises the error the repository gives for a full disk on the named methods; counts every call."""

    fail_on: set[str] = set()

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        calls = super().__getattribute__("__dict__").setdefault("calls", Counter())
        calls[name] += 1
        if name in super().__getattribute__("fail_on"):
            async def fail(*args: Any, **kwargs: Any) -> Any:
                raise StorageError("OperationalError: database or disk is full")
            return fail
        return attribute


@asynccontextmanager
async def repository(url: str, kind: type[Repository] = Repository) -> AsyncIterator[Any]:
    """A repository with its own engine: one life of the service on a shared database."""
    engine = create_engine(url)
    await upgrade(engine)
    try:
        yield kind(session_factory(engine))
    finally:
        await engine.dispose()


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
        due = await repo.load_due_deliveries(now=clock() + timedelta(hours=1), limit=1, platforms=["console"])
        pending = await repo.load_due_deliveries(now=clock(), limit=1, platforms=["console"])
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


async def test_a_destination_that_refuses_us_pauses_its_searches_and_keeps_their_alerts(
    repo: Repository, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """Regression: a chat that refused us (bot blocked, access lost) had its pending alerts marked dead, so the
    owner who fixed access and resumed the search never saw them."""
    told = []

    async def tell(destination: Destination, reason: str, searches: list) -> None:  # type: ignore[type-arg]
        told.append((destination.target, reason, [s.id for s in searches]))

    dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock, on_destination_gone=tell)
    await queue_alerts(repo, clock, "blocked", 3)
    await queue_alerts(repo, clock, "fine", 1, start=50)
    notifier.answer("blocked", DeliveryResult.gone("403 Missing Access"))
    report = await dispatcher.drain()
    assert (report.sent, report.held, report.dead) == (1, 3, 0)
    assert told == [("blocked", "403 Missing Access", [1])]
    search = await repo.load_search(1)
    assert search.status.value == "paused"
    assert search.paused_reason == "alerts cannot reach this chat: 403 Missing Access"
    summary = await repo.outbox_summary()
    assert (summary.pending, summary.held, summary.dead) == (0, 3, 0)

    clock.advance(hours=1)
    await Commands(repo, {}, clock=clock).resume_search(Actor("a"), 1)
    await dispatcher.drain()
    assert notifier.delivered_ids() == ["50", "0", "1", "2"]
    assert (await repo.outbox_summary()).held == 0


async def test_alerts_held_too_long_become_one_summary_when_the_search_resumes(
    repo: Repository, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """Held alerts older than the configured age arrive as one "N alerts while paused" message, newer ones as
    alerts."""
    dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock)
    await queue_alerts(repo, clock, "blocked", 3)
    notifier.answer("blocked", DeliveryResult.gone("bot was blocked by the user"))
    await dispatcher.drain()
    clock.advance(hours=5)
    fresh = make_listing(9, "lego 9")
    search = await repo.load_search(1)
    fetch = FetchOutcome("fakebay", "lego", "success", 1, (fresh,), matches={1: (fresh,)})
    await repo.save_scan(now=clock(), fetches=[fetch], runs=[], searches={1: search}, baseline_first_scan=False)
    await repo.hold_destination(Destination("console", "blocked"), reason="still blocked", now=clock())
    clock.advance(hours=2)

    await Commands(repo, {}, clock=clock, held_max_age=timedelta(hours=6)).resume_search(Actor("a"), 1)
    await dispatcher.drain()
    assert notifier.delivered_ids() == ["9"]
    [(destination, summary)] = notifier.notices
    assert destination == Destination("console", "blocked")
    assert summary.text.startswith("3 alerts while paused")
    assert "lego 2" in summary.text.splitlines()[1]  # the newest first
    outbox = await repo.outbox_summary()
    assert (outbox.pending, outbox.held, outbox.sent) == (0, 0, 2)


async def test_a_rate_limit_never_uses_up_an_alerts_attempts(
    repo: Repository, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """Regression: a Discord channel answering 429 for about 16 s made its alerts dead ("gave up after 8 attempts:
    429 rate limited")."""
    dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock, max_attempts=3)
    await queue_alerts(repo, clock, "main", 2)
    notifier.answer("main", *[DeliveryResult.wait("429 rate limited", 2.0)] * 40)
    for _ in range(40):
        await dispatcher.drain()
        clock.advance(seconds=2)
    await dispatcher.drain()
    assert notifier.delivered_ids() == ["0", "1"]
    summary = await repo.outbox_summary()
    assert (summary.sent, summary.dead) == (2, 0)


async def test_a_send_that_cannot_be_recorded_is_not_sent_again(
    database_url: str, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """Regression: with SQLite on a full disk one alert was printed 84 times in 25 s: recording it as sent failed,
    so every tick sent it again. (Each send is recorded before the next, as a slow send is.)"""
    async with repository(database_url, FailingRepository) as repo:
        dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock, record_within_seconds=0)
        await queue_alerts(repo, clock, "main", 2)
        repo.fail_on = {"record_sent", "release_claims"}
        for _ in range(30):
            await dispatcher.drain()
            clock.advance(seconds=2)
        assert notifier.delivered_ids() == ["0"], "sent once; the database failed to record it; nothing else went"
        assert repo.calls["claim_deliveries"] < 10, "delivery backed off the failing database"
        repo.fail_on = set()
        clock.advance(seconds=60)  # the database is back long before the claims' deadline
        await dispatcher.drain()
    assert notifier.delivered_ids() == ["0", "1"]
    assert (await repo.outbox_summary()).sent == 2


async def test_nothing_is_sent_that_could_not_be_claimed(
    database_url: str, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """A claim is written before the send: when the database cannot take it, nothing goes out."""
    async with repository(database_url, FailingRepository) as repo:
        dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock)
        await queue_alerts(repo, clock, "main", 1)
        repo.fail_on = {"claim_deliveries"}
        assert await dispatcher.drain() == DrainReport()
        assert notifier.sent == []


async def test_a_digest_cut_short_by_a_crash_goes_out_again_as_the_same_digest(
    database_url: str, clock: ManualClock
) -> None:
    """Regression: after a kill during a Discord digest its alerts were resent as singles with new nonces; the
    same rows must go out again in the same grouping (so the same nonce)."""
    crashing = DigestingNotifier(digest_size=4, digest_after=1)
    crashing.answer("busy", SimulatedCrash())
    async with repository(database_url) as repo:
        await queue_alerts(repo, clock, "busy", 6)
        with pytest.raises(SimulatedCrash):
            await Dispatcher(repo, {"console": crashing}, clock=clock).drain()
    after = DigestingNotifier(digest_size=10, digest_after=100)  # would send singles if it were free to choose
    async with repository(database_url) as repo:
        dispatcher = Dispatcher(repo, {"console": after}, clock=clock)
        assert await dispatcher.recover() == 6
        await dispatcher.drain()
    assert after.digests == [["0", "1", "2", "3"], ["4", "5"]], "both digests claimed before the crash, as claimed"
    assert after.delivered_ids() == ["0", "1", "2", "3", "4", "5"]


async def test_ops_messages_keep_their_order_and_are_never_given_up(
    repo: Repository, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """A WARNING that fails to go out holds back the RECOVERED said after it, and is retried past the alerts'
    attempt limit: an ops channel never hears a recovery alone."""
    ops = Destination("console", "ops")
    dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock, max_attempts=2, backoff_seconds=1,
                            backoff_max_seconds=4)
    notifier.answer("ops", *[DeliveryResult.retry("HTTP 502")] * 5)
    await repo.queue_notices([ops], "WARNING queue depth", kind=NoticeKind.OPS, now=clock())
    await dispatcher.drain()
    await repo.queue_notices([ops], "RECOVERED queue depth", kind=NoticeKind.OPS, now=clock())
    for _ in range(8):
        await dispatcher.drain()
        clock.advance(seconds=5)
    assert [n.text for _, n in notifier.notices] == ["WARNING queue depth", "RECOVERED queue depth"]
    assert (await repo.outbox_summary()).dead == 0


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
    due = await repo.load_due_deliveries(now=clock(), limit=20, platforms=["console"], per_destination=5)
    assert [a.destination.target for a in due].count("busy") == 5
    assert [a.listing.external_id for a in due if a.destination.target == "quiet"] == ["100", "101"]
    assert [a.listing.external_id for a in due if a.destination.target == "busy"] == ["0", "1", "2", "3", "4"]


async def test_sends_that_return_at_once_are_recorded_together(
    database_url: str, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """Delivery bookkeeping is batched: a share of quick sends is one claim and one record, not one per alert.
    (A window of a minute: however busy the machine, none of these sends outlasts it, as a console's never do.)"""
    async with repository(database_url, FailingRepository) as repo:
        await queue_alerts(repo, clock, "main", 30)
        await queue_alerts(repo, clock, "other", 5, start=100)
        dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock, record_within_seconds=60)
        assert (await dispatcher.drain()).sent == 35
        assert repo.calls["record_sent"] <= 2, "one record per share at most, however many alerts"
        assert repo.calls["claim_deliveries"] == 1
        summary = await repo.outbox_summary()
    assert (summary.sent, summary.pending) == (35, 0)
    assert [n for d, n in [(d.target, a.listing.external_id) for d, a in notifier.sent] if d == "main"] == [
        str(n) for n in range(30)]


async def test_a_failed_record_stops_every_destination_until_the_database_works(
    database_url: str, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """When recording fails, no destination sends more; what was sent is recorded once the database works, and
    nothing goes out twice."""
    async with repository(database_url, FailingRepository) as repo:
        dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock, record_within_seconds=0)
        await queue_alerts(repo, clock, "a", 3)
        await queue_alerts(repo, clock, "b", 3, start=10)
        repo.fail_on = {"record_sent", "release_claims"}
        await dispatcher.drain()
        sent_while_failing = len(notifier.sent)
        assert sent_while_failing <= 2, "at most the one send in flight per destination"
        repo.fail_on = set()
        clock.advance(seconds=60)
        await dispatcher.drain()
        summary = await repo.outbox_summary()
    assert sorted(notifier.delivered_ids()) == sorted([str(n) for n in range(3)] + [str(n) for n in range(10, 13)])
    assert (summary.sent, summary.pending) == (6, 0)


async def test_a_drain_cut_short_records_what_it_sent(database_url: str, clock: ManualClock) -> None:
    """A drain cancelled mid-share (the service stopping) still records the sends it made: the next start sends
    none of them again."""
    notifier = RecordingNotifier()
    notifier.answer("main", *[DeliveryResult.ok()] * 2, SimulatedCancel())
    async with repository(database_url) as repo:
        await queue_alerts(repo, clock, "main", 5)
        with pytest.raises(asyncio.CancelledError):
            await Dispatcher(repo, {"console": notifier}, clock=clock).drain()
        summary = await repo.outbox_summary()
    assert (summary.sent, summary.pending) == (2, 3)
