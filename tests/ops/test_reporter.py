"""The ops reporter: what the ops channel hears, once, queued in the outbox for every ops destination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops.reporter import OpsOutbox, OpsReporter, ops_destinations
from scout.circuit import Circuit, CircuitState, Transition
from scout.config import load_settings
from scout.errors import StorageError
from scout.models import Destination
from storage.repo import Repository

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Channel:
    def __init__(self) -> None:
        self.heard: list[str] = []

    async def __call__(self, message: str) -> None:
        self.heard.append(message)


async def test_each_change_is_said_once() -> None:
    channel = Channel()
    reporter = OpsReporter(channel, clock=lambda: T0, repeat_critical=timedelta(minutes=30))
    await reporter.evaluate({"queue_depth": 1500, "marketplace:ebay": 2})
    await reporter.evaluate({"queue_depth": 1600, "marketplace:ebay": 2})
    await reporter.evaluate({"queue_depth": 10, "marketplace:ebay": 0})
    assert channel.heard == [
        "WARNING Alert queue depth: 1500 (threshold 1000). Runbook: 2. Celery Queue Backlog",
        "RECOVERED Alert queue depth: 10 (back under 1000)",
    ]  # marketplace health is told by the circuit transitions, which carry the cause


async def test_ops_messages_are_queued_for_every_ops_destination_in_use(repo: Repository) -> None:
    settings = load_settings({"OPS_DISCORD_CHANNEL_ID": "55", "OPS_TELEGRAM_CHAT_ID": "-77"}, env_file=None)
    destinations = ops_destinations(settings, ["console", "telegram"])
    assert destinations == [Destination("console", "ops"), Destination("telegram", "-77")]
    woken = []
    say = OpsOutbox(repo, destinations, clock=lambda: T0, queued=lambda: woken.append(True))
    await say("WARNING disk")
    due = await repo.load_due_deliveries(now=T0, limit=10, platforms=["console", "telegram"])
    assert [(item.destination, item.text) for item in due] == [(d, "WARNING disk") for d in destinations]
    assert woken == [True], "delivery is woken at once"


async def test_an_ops_message_the_database_cannot_take_is_logged(repo: Repository,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Repository):
        async def queue_notices(self, *args: Any, **kwargs: Any) -> None:
            raise StorageError("OperationalError: database or disk is full")

    say = OpsOutbox(Broken(repo._sessions), [Destination("console", "ops")], clock=lambda: T0)
    await say("CRITICAL disk")
    assert "could not queue an ops message (StorageError): CRITICAL disk" in caplog.text


async def test_circuit_transitions() -> None:
    channel = Channel()
    reporter = OpsReporter(channel, clock=lambda: T0)
    opened = Transition("ebay", CircuitState.CLOSED, CircuitState.OPEN, Circuit(CircuitState.OPEN, 5, 1, T0),
                        "circuit open for 5 min after 5 failed fetches: HTTP 429")
    closed = Transition("ebay", CircuitState.OPEN, CircuitState.CLOSED, Circuit(), "circuit closed")
    await reporter.circuit_changed([opened])
    await reporter.circuit_changed([closed])
    assert channel.heard[0].startswith("CRITICAL ebay: circuit open for 5 min after 5 failed fetches: HTTP 429.")
    assert "/admin resume ebay" in channel.heard[0] and "Runbook: 3. Scraping Failures" in channel.heard[0]
    assert channel.heard[1] == "RECOVERED ebay: fetches succeed again; its searches run as usual."


async def test_daily_summary() -> None:
    channel = Channel()
    reporter = OpsReporter(channel, clock=lambda: T0)
    await reporter.daily_summary({
        "fetches": {"ebay": {"success": 280, "blocked": 8}, "craigslist": {"empty": 140, "failed": 4}},
        "new_listings": 1234, "alerts_sent": 321, "searches": {"active": 40, "paused": 2},
    })
    assert channel.heard == [
        "Daily summary: 40 active and 2 paused searches, 432 fetches, 1234 new listings, 321 alerts sent.\n"
        "- craigslist: 144 fetches, 4 failed or blocked (empty 140, failed 4)\n"
        "- ebay: 288 fetches, 8 failed or blocked (blocked 8, success 280)"
    ]
