"""A process that dies at any step of scan and delivery loses no alert, and duplicates one only in send-before-mark."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.commands import Actor, Commands
from scout.delivery import Dispatcher
from scout.models import Destination
from scout.scan import Scanner
from storage.db import create_engine, session_factory, upgrade
from storage.repo import Repository
from tests.fakes.adapters import TableAdapter, make_listing
from tests.fakes.notifier import RecordingNotifier
from tests.scout.clock import ManualClock


class SimulatedCrash(BaseException):
    """Stands for the process dying: no `except Exception` guard may catch it."""


class CrashingRepository(Repository):
    def __init__(self, *args: Any, crash_at: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crash_at = crash_at

    async def save_scan(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        if self.crash_at == "after-fetch":
            raise SimulatedCrash  # fetched and parsed, nothing committed
        saved = await super().save_scan(**kwargs)
        if self.crash_at == "after-commit" and saved.alerts_queued:
            raise SimulatedCrash  # committed, nothing sent
        return saved

    async def record_sent(self, outbox_ids: Any, **kwargs: Any) -> None:
        if self.crash_at == "after-send":
            raise SimulatedCrash  # the chat has the message, the outbox does not know
        await super().record_sent(outbox_ids, **kwargs)


@asynccontextmanager
async def process(url: str, market: TableAdapter, notifier: RecordingNotifier, clock: ManualClock,
                  crash_at: str = "") -> AsyncIterator[tuple[Scanner, Dispatcher, Repository]]:
    """One life of the service: its own engine on the shared database, as after a restart."""
    engine = create_engine(url)
    await upgrade(engine)
    repo = CrashingRepository(session_factory(engine), crash_at=crash_at)
    await repo.release_all_leases()
    scanner = Scanner(repo, {market.key: market}, fetcher=None, clock=clock)  # type: ignore[arg-type]
    dispatcher = Dispatcher(repo, {"console": notifier}, clock=clock)
    await dispatcher.recover()
    try:
        yield scanner, dispatcher, repo
    finally:
        await engine.dispose()


@pytest.mark.parametrize("crash_at", ["after-fetch", "after-commit", "after-send"])
async def test_restart_loses_nothing(database_url: str, crash_at: str) -> None:
    clock = ManualClock()
    market = TableAdapter()
    notifier = RecordingNotifier()
    async with process(database_url, market, notifier, clock) as (scanner, dispatcher, repo):
        commands = Commands(repo, {market.key: market}, clock=clock)
        await commands.add_search(Actor("a"), Destination("console", "main"), query="lego")
        market.serve("lego", make_listing(1, "lego castle"))
        clock.advance(seconds=10)
        await scanner.run_until_idle()  # the baseline
    market.serve("lego", make_listing(1, "lego castle"), make_listing(2, "lego ship"), make_listing(3, "lego train"))
    clock.advance(minutes=6)

    with pytest.raises(SimulatedCrash):
        async with process(database_url, market, notifier, clock, crash_at) as (scanner, dispatcher, _):
            await scanner.run_until_idle()
            await dispatcher.drain()

    async with process(database_url, market, notifier, clock) as (scanner, dispatcher, repo):
        await scanner.run_until_idle()
        await dispatcher.drain()
        summary = await repo.outbox_summary()

    delivered = notifier.delivered_ids()
    assert sorted(set(delivered)) == ["2", "3"]  # nothing lost
    assert (summary.pending, summary.dead, summary.sent) == (0, 0, 2)
    if crash_at == "after-send":
        # The one window: the alerts reached the chat, then the process died before recording them. Sends that
        # return at once (a console) are recorded a share at a time, so the share is repeated; a send that waited
        # on the network is recorded before the next (see the drills), which repeats at most that one.
        assert delivered == ["2", "3", "2", "3"]
    else:
        assert delivered == ["2", "3"]  # nothing duplicated
