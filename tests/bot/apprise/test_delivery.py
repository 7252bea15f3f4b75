"""Apprise delivery through the real Dispatcher to a local fake service: sent, retried, refused by the guard."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from bot.apprise.guard import ConnectGuard
from bot.apprise.notifier import AppriseNotifier
from scout.delivery import Dispatcher
from scout.models import Destination, SearchSpec, SearchStatus
from scout.pacing import Rate
from storage.repo import Repository
from tests.bot.apprise.fake_service import FakeService
from tests.bot.telegram.helpers import queue_alerts
from tests.scout.clock import ManualClock

OPEN = ConnectGuard(open_for_tests={"127.0.0.1"})  # the test-only opening: the fake service listens on loopback
SECRET = "s3cret-topic"


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    async with FakeService() as fake:
        yield fake


def notifier(guard: ConnectGuard = OPEN) -> AppriseNotifier:
    # Fast pacing: these tests are about outcomes, not rates.
    return AppriseNotifier(guard=guard, per_destination=Rate(1000, 1.0), marketplace_names={"ebay": "eBay"})


async def queued(repo: Repository, clock: ManualClock, url: str, count: int = 1) -> Destination:
    destination = Destination("apprise", url)
    search = await repo.save_search(owner="me", destination=destination, scope=None, now=clock(),
                                    spec=SearchSpec("lego", ("ebay",), 15), first_run_at=clock())
    await queue_alerts(repo, clock(), search, count)
    return destination


async def test_alerts_reach_a_json_webhook_through_the_outbox(repo: Repository, service: FakeService) -> None:
    clock = ManualClock()
    await queued(repo, clock, f"json://127.0.0.1:{service.port}/hooks/{SECRET}", count=2)
    report = await Dispatcher(repo, {"apprise": notifier()}, clock=clock).drain()
    assert report.sent == 2
    bodies = [json.loads(request.body) for request in service.at(f"/hooks/{SECRET}")]
    assert [body["title"] for body in bodies] == ["lego 0", "lego 1"]
    assert bodies[0]["message"] == ("10.00 USD \u00b7 eBay\nsearch #1 \u201clego\u201d\n"
                                    "https://www.ebay.com/itm/0")
    assert (await repo.outbox_summary()).pending == 0


async def test_alerts_reach_an_ntfy_server(repo: Repository, service: FakeService) -> None:
    clock = ManualClock()
    await queued(repo, clock, f"ntfy://127.0.0.1:{service.port}/{SECRET}")
    assert (await Dispatcher(repo, {"apprise": notifier()}, clock=clock).drain()).sent == 1
    (request,) = service.received
    assert json.loads(request.body)["topic"] == SECRET


@pytest.mark.parametrize(("status", "headers", "retry_after"), [
    (429, {"Retry-After": "42"}, 42.0), (429, {}, 60.0), (500, {}, None), (503, {}, None),
])
async def test_a_busy_or_failing_service_is_retried(repo: Repository, service: FakeService, status: int,
                                                    headers: dict[str, str], retry_after: float | None,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    destination = await queued(repo, clock, f"json://user:hunter2@127.0.0.1:{service.port}/{SECRET}")
    service.answer(status, times=2, **headers)
    apprise_notifier = notifier()
    with caplog.at_level(logging.DEBUG):
        result = await apprise_notifier.send_alert(destination, (await repo.load_due_deliveries(
            now=clock(), limit=10, platforms=["apprise"]))[0])  # type: ignore[arg-type]
        assert not result.delivered and not result.permanent and result.retry_after == retry_after
        assert f"HTTP {status}" in (result.error or "")
        report = await Dispatcher(repo, {"apprise": apprise_notifier}, clock=clock).drain()
    assert (report.sent, report.retried) == (0, 1)
    assert len(service.received) == 2
    # Every line of ours, Apprise's, requests' and urllib3's, at any level (the database driver's debug lines of
    # SQL parameters are the storage layer's, not a send's).
    lines = "\n".join(record.getMessage() for record in caplog.records
                      if not record.name.startswith(("aiosqlite", "sqlalchemy", "asyncio")))
    assert SECRET not in lines and "hunter2" not in lines
    assert f"json://***@127.0.0.1:{service.port}/***" in lines


async def test_an_unreachable_service_is_retried(repo: Repository, service: FakeService) -> None:
    clock = ManualClock()
    await queued(repo, clock, "json://127.0.0.1:1/hook")  # nothing listens on port 1
    report = await Dispatcher(repo, {"apprise": notifier()}, clock=clock).drain()
    assert (report.sent, report.retried, report.dead, report.held) == (0, 1, 0, 0)


async def test_a_loopback_target_is_refused_for_good(repo: Repository, service: FakeService) -> None:
    """Without the test-only opening the guard is production's: the fake service on 127.0.0.1 is never reached."""
    clock = ManualClock()
    await queued(repo, clock, f"json://127.0.0.1:{service.port}/{SECRET}", count=2)
    report = await Dispatcher(repo, {"apprise": notifier(ConnectGuard())}, clock=clock).drain()
    assert (report.sent, report.held) == (0, 2)
    assert service.received == []
    search = await repo.load_search(1)
    assert search is not None and search.status is SearchStatus.PAUSED
    assert "refused to connect to a loopback address (127.0.0.1)" in (search.paused_reason or "")
    assert SECRET not in (search.paused_reason or "")


@pytest.mark.parametrize("answers", [["10.0.0.5"], ["93.184.215.14", "127.0.0.1"], ["::ffff:169.254.169.254"]])
async def test_a_name_that_resolves_inside_is_refused_before_connecting(repo: Repository, answers: list[str]) -> None:
    asked: list[tuple[str, int]] = []

    def lookup(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answers

    clock = ManualClock()
    destination = await queued(repo, clock, "jsons://alerts.example/hook")
    due = await repo.load_due_deliveries(now=clock(), limit=10, platforms=["apprise"])
    result = await notifier(ConnectGuard(lookup)).send_alert(destination, due[0])  # type: ignore[arg-type]
    assert result.permanent and result.destination_gone
    assert "alerts.example resolves to" in (result.error or "")
    assert asked == [("alerts.example", 443)]


async def test_a_redirect_is_not_followed_and_a_followed_one_is_guarded(repo: Repository,
                                                                         service: FakeService) -> None:
    clock = ManualClock()
    destination = await queued(repo, clock, f"json://127.0.0.1:{service.port}/hook")
    due = (await repo.load_due_deliveries(now=clock(), limit=10, platforms=["apprise"]))[0]
    service.answer(302, Location=f"http://127.0.0.1:{service.port}/elsewhere")
    result = await notifier().send_alert(destination, due)  # type: ignore[arg-type]
    assert result.destination_gone and "redirect (HTTP 302), which is not followed" in (result.error or "")
    assert service.at("/elsewhere") == []
    # A URL may ask Apprise to follow redirects: each hop still passes the guard (here, to a private address).
    following = Destination("apprise", f"json://127.0.0.1:{service.port}/hook?redirect=yes")
    service.answer(302, Location="http://10.0.0.7/internal")
    result = await notifier().send_alert(following, due)  # type: ignore[arg-type]
    assert result.destination_gone and "private address (10.0.0.7)" in (result.error or "")


async def test_a_destination_apprise_cannot_read_is_refused_for_good(repo: Repository) -> None:
    clock = ManualClock()
    destination = await queued(repo, clock, "mailto://me:hunter2@mail.example")
    due = (await repo.load_due_deliveries(now=clock(), limit=10, platforms=["apprise"]))[0]
    result = await notifier().send_alert(destination, due)  # type: ignore[arg-type]
    assert result.permanent and "mailto://" in (result.error or "") and "hunter2" not in (result.error or "")


async def test_sends_never_block_the_event_loop(service: FakeService) -> None:
    """The fake service runs on this same event loop: a send made on the loop itself could never be answered."""
    destination = Destination("apprise", f"json://127.0.0.1:{service.port}/hook")
    from scout.models import Notice

    result = await notifier().send_notice(destination, Notice(1, destination, "hello"))
    assert result.delivered
