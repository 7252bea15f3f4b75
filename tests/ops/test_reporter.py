"""The ops reporter: what the ops channel hears, once; a failing channel does not silence the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ops.reporter import OpsReporter
from scout.circuit import Circuit, CircuitState, Transition
from scout.delivery import DeliveryResult

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Channel:
    def __init__(self, result: DeliveryResult | Exception = DeliveryResult.ok()) -> None:
        self.heard: list[str] = []
        self.result = result

    async def __call__(self, message: str) -> DeliveryResult:
        if isinstance(self.result, Exception):
            raise self.result
        self.heard.append(message)
        return self.result


async def test_each_change_is_said_once_on_every_channel_even_when_one_fails() -> None:
    broken, working = Channel(RuntimeError("down")), Channel()
    reporter = OpsReporter([broken, working], clock=lambda: T0, repeat_critical=timedelta(minutes=30))
    await reporter.evaluate({"queue_depth": 1500, "marketplace:ebay": 2})
    await reporter.evaluate({"queue_depth": 1600, "marketplace:ebay": 2})
    await reporter.evaluate({"queue_depth": 10, "marketplace:ebay": 0})
    assert working.heard == [
        "WARNING Alert queue depth: 1500 (threshold 1000). Runbook: 2. Celery Queue Backlog",
        "RECOVERED Alert queue depth: 10 (back under 1000)",
    ]  # marketplace health is told by the circuit transitions, which carry the cause


async def test_circuit_transitions() -> None:
    channel = Channel()
    reporter = OpsReporter([channel], clock=lambda: T0)
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
    reporter = OpsReporter([channel], clock=lambda: T0)
    await reporter.daily_summary({
        "fetches": {"ebay": {"success": 280, "blocked": 8}, "craigslist": {"empty": 140, "failed": 4}},
        "new_listings": 1234, "alerts_sent": 321, "searches": {"active": 40, "paused": 2},
    })
    assert channel.heard == [
        "Daily summary: 40 active and 2 paused searches, 432 fetches, 1234 new listings, 321 alerts sent.\n"
        "- craigslist: 144 fetches, 4 failed or blocked (empty 140, failed 4)\n"
        "- ebay: 288 fetches, 8 failed or blocked (blocked 8, success 280)"
    ]
