"""A notifier that records what it was asked to send and answers from a script the test writes."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from scout.delivery import DeliveryResult
from scout.models import Alert, Destination, Notice


@dataclass
class RecordingNotifier:
    platform: str = "console"
    sent: list[tuple[Destination, Alert]] = field(default_factory=list)
    notices: list[tuple[Destination, Notice]] = field(default_factory=list)
    # Per destination target: results to answer with, in order; when empty, deliveries succeed.
    script: dict[str, deque[DeliveryResult | BaseException]] = field(default_factory=dict)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def answer(self, target: str, *results: DeliveryResult | BaseException) -> None:
        self.script.setdefault(target, deque()).extend(results)

    def next_outcome(self, destination: Destination) -> DeliveryResult:
        """The next scripted answer for this destination (raised when it is an exception), else a delivery."""
        queue = self.script.get(destination.target)
        outcome = queue.popleft() if queue else DeliveryResult.ok()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult:
        outcome = self.next_outcome(destination)
        if outcome.delivered:
            self.sent.append((destination, alert))
            async with self.changed:
                self.changed.notify_all()
        return outcome

    async def wait_for(self, count: int) -> None:
        """Return once `count` alerts have been delivered."""
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.sent) >= count)

    async def send_notice(self, destination: Destination, notice: Notice) -> DeliveryResult:
        outcome = self.next_outcome(destination)
        if outcome.delivered:
            self.notices.append((destination, notice))
        return outcome

    def delivered_ids(self) -> list[str]:
        return [alert.listing.external_id for _, alert in self.sent]


@dataclass
class DigestingNotifier(RecordingNotifier):
    """Folds alerts into digests when more than `digest_after` wait for one destination."""

    digest_size: int = 10
    digest_after: int = 3
    digests: list[list[str]] = field(default_factory=list)

    def wants_digest(self, destination: Destination, waiting: int) -> bool:
        return waiting > self.digest_after

    async def send_digest(self, destination: Destination, alerts: list[Alert]) -> DeliveryResult:
        outcome = self.next_outcome(destination)
        if outcome.delivered:
            self.digests.append([alert.listing.external_id for alert in alerts])
            self.sent.extend((destination, alert) for alert in alerts)
        return outcome
