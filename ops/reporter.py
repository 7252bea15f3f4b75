"""The ops channel: threshold changes and recoveries, circuit transitions, admin actions, start-up and daily summary."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from ops.thresholds import DEFAULT_THRESHOLDS, Threshold, Tracked, evaluate
from scout.circuit import CircuitState, Transition
from scout.delivery import DeliveryResult

log = logging.getLogger(__name__)

OpsChannel = Callable[[str], Awaitable[DeliveryResult]]
# Where the runbook sends an on-call engineer for a marketplace that blocks us or breaks.
CIRCUIT_RUNBOOK = "3. Scraping Failures / 5. External API Outage"


class OpsReporter:
    """Says each thing once: a level change, a recovery, a reminder while critical at the configured interval."""

    def __init__(
        self,
        channels: Sequence[OpsChannel],
        *,
        clock: Callable[[], datetime],
        thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS,
        repeat_critical: timedelta = timedelta(minutes=30),
    ) -> None:
        self._channels = list(channels)
        self._clock = clock
        self._thresholds = thresholds
        self._repeat = repeat_critical
        self.tracked: dict[str, Tracked] = {}

    async def say(self, message: str) -> None:
        """Send to every ops channel; a channel that fails is logged, the others still hear it."""
        for channel in self._channels:
            try:
                result = await channel(message)
            except Exception:  # noqa: BLE001 - the ops channel must never take the service down
                log.exception("ops channel raised")
                continue
            if not result.delivered:
                log.warning("ops message not delivered: %s", result.error)

    async def evaluate(self, figures: Mapping[str, float | None]) -> None:
        self.tracked, alerts = evaluate(figures, self._thresholds, self.tracked, now=self._clock(),
                                        repeat_critical=self._repeat)
        for alert in alerts:
            # Marketplace health is told by the circuit transitions, which carry the cause.
            if alert.key.startswith("marketplace:"):
                continue
            await self.say(alert.message())

    async def circuit_changed(self, transitions: Sequence[Transition]) -> None:
        for change in transitions:
            if change.after is CircuitState.OPEN:
                await self.say(f"CRITICAL {change.marketplace}: {change.reason}. Its searches wait; an operator "
                               f"can `/admin resume {change.marketplace}` to probe now. Runbook: {CIRCUIT_RUNBOOK}")
            elif change.after is CircuitState.CLOSED:
                await self.say(f"RECOVERED {change.marketplace}: fetches succeed again; its searches run as usual.")

    async def daily_summary(self, activity: Mapping[str, object]) -> None:
        fetches: dict[str, dict[str, int]] = activity["fetches"]  # type: ignore[assignment]
        searches: dict[str, int] = activity["searches"]  # type: ignore[assignment]
        lines = [
            "Daily summary: "
            f"{searches.get('active', 0)} active and {searches.get('paused', 0)} paused searches, "
            f"{sum(sum(v.values()) for v in fetches.values())} fetches, {activity['new_listings']} new listings, "
            f"{activity['alerts_sent']} alerts sent."
        ]
        for market, outcomes in sorted(fetches.items()):
            failing = outcomes.get("failed", 0) + outcomes.get("blocked", 0)
            lines.append(f"- {market}: {sum(outcomes.values())} fetches, {failing} failed or blocked "
                         f"({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))})")
        await self.say("\n".join(lines))
