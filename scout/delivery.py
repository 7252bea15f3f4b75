"""The outbox dispatcher: sends pending alerts through each platform's notifier, with retries, backoff and dead rows."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from scout.models import Alert, Destination
from storage.repo import Repository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one send went. Expected failures are values, so one dead chat cannot stop the batch."""

    delivered: bool
    error: str | None = None
    retry_after: float | None = None  # the platform told us when to come back
    permanent: bool = False  # retrying cannot help: chat gone, bot blocked, message refused

    @classmethod
    def ok(cls) -> DeliveryResult:
        return cls(True)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(False, error, retry_after)

    @classmethod
    def dead(cls, error: str) -> DeliveryResult:
        return cls(False, error, permanent=True)


class Notifier(Protocol):
    platform: str

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult: ...

    async def send_ops(self, message: str) -> DeliveryResult: ...


@dataclass(frozen=True, slots=True)
class DrainReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0


def backoff_delay(attempt: int, *, base: float, cap: float, rand: float) -> float:
    """Exponential backoff with full jitter: a random wait up to base * 2^(attempt-1), capped."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return max(base / 2, ceiling * rand)


class Dispatcher:
    """Drains the outbox: alerts of one destination go in order, destinations go concurrently."""

    def __init__(
        self,
        repo: Repository,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        max_attempts: int = 8,
        backoff_seconds: float = 5.0,
        backoff_max_seconds: float = 900.0,
        batch_size: int = 200,
    ) -> None:
        self._repo = repo
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._rng = rng or random.Random()
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._backoff_max = backoff_max_seconds
        self._batch = batch_size
        self.last_delivery_at: dict[str, datetime] = {}

    async def drain_once(self) -> DrainReport:
        """Send one batch of due alerts; returns what happened."""
        alerts = await self._repo.load_due_alerts(now=self._clock(), limit=self._batch, platforms=self._notifiers)
        by_destination: dict[Destination, list[Alert]] = {}
        for alert in alerts:
            by_destination.setdefault(alert.destination, []).append(alert)
        reports = await asyncio.gather(*(self._send_in_order(batch) for batch in by_destination.values()))
        return DrainReport(
            sum(r.sent for r in reports), sum(r.retried for r in reports), sum(r.dead for r in reports)
        )

    async def drain(self, *, max_batches: int = 50) -> DrainReport:
        """Drain until nothing is due (or max_batches were sent, to let other jobs run)."""
        total = DrainReport()
        for _ in range(max_batches):
            report = await self.drain_once()
            total = DrainReport(total.sent + report.sent, total.retried + report.retried, total.dead + report.dead)
            if report == DrainReport() or report.sent == 0:
                break
        return total

    async def _send_in_order(self, alerts: list[Alert]) -> DrainReport:
        sent = retried = dead = 0
        for index, alert in enumerate(alerts):
            result = await self._send(alert)
            if result.delivered:
                await self._repo.mark_alert_sent(alert.outbox_id, now=self._clock())
                self.last_delivery_at[alert.destination.platform] = self._clock()
                sent += 1
                continue
            attempt = alert.attempts + 1
            if result.permanent or attempt >= self._max_attempts:
                reason = result.error or "unknown error"
                if not result.permanent:
                    reason = f"gave up after {attempt} attempts: {reason}"
                await self._repo.mark_alert_dead(alert.outbox_id, reason=reason)
                log.warning("alert %s to %s is dead: %s", alert.outbox_id, alert.destination.platform, reason)
                dead += 1
                continue
            if result.retry_after is not None:
                # The platform set the pace: wait exactly that long, and keep this destination's queue behind it.
                wait = result.retry_after
            else:
                wait = backoff_delay(attempt, base=self._backoff, cap=self._backoff_max, rand=self._rng.random())
            next_at = self._clock() + timedelta(seconds=wait)
            await self._repo.mark_alert_retry(alert.outbox_id, next_attempt_at=next_at, error=result.error or "")
            for later in alerts[index + 1 :]:
                await self._repo.defer_alert(later.outbox_id, next_attempt_at=next_at)
            retried += 1
            break
        return DrainReport(sent, retried, dead)

    async def _send(self, alert: Alert) -> DeliveryResult:
        notifier = self._notifiers[alert.destination.platform]
        try:
            return await notifier.send_alert(alert.destination, alert)
        except Exception as err:  # noqa: BLE001 - a notifier bug must not stop the batch; the row is retried
            log.exception("notifier %s raised while sending alert %s", alert.destination.platform, alert.outbox_id)
            return DeliveryResult.retry(f"{type(err).__name__}: {err}")
