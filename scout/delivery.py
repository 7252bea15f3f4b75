"""The outbox dispatcher: sends pending alerts through each platform's notifier, with retries, backoff and dead rows."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from scout.models import Alert, Destination, SavedSearch
from storage.repo import Repository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one send went. Expected failures are values, so one dead chat cannot stop the batch."""

    delivered: bool
    error: str | None = None
    retry_after: float | None = None  # the platform told us when to come back
    permanent: bool = False  # retrying this message cannot help: the platform refused it
    destination_gone: bool = False  # the chat or channel is gone, or we lost access to it
    moved_to: str | None = None  # the chat has a new id (a Telegram group became a supergroup)

    @classmethod
    def ok(cls) -> DeliveryResult:
        return cls(True)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(False, error, retry_after)

    @classmethod
    def dead(cls, error: str) -> DeliveryResult:
        return cls(False, error, permanent=True)

    @classmethod
    def gone(cls, error: str) -> DeliveryResult:
        return cls(False, error, permanent=True, destination_gone=True)

    @classmethod
    def moved(cls, new_target: str) -> DeliveryResult:
        return cls(False, f"chat moved to {new_target}", moved_to=new_target)


class Notifier(Protocol):
    """A chat platform. Expected failures come back as DeliveryResult values, never as exceptions."""

    platform: str

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult: ...

    async def send_ops(self, message: str) -> DeliveryResult: ...


@runtime_checkable
class DigestNotifier(Notifier, Protocol):
    """A platform that can fold several alerts into one message when a destination falls behind."""

    digest_size: int

    def wants_digest(self, destination: Destination, waiting: int) -> bool:
        """True when `waiting` alerts would trail behind this destination's rate limit one by one."""
        ...

    async def send_digest(self, destination: Destination, alerts: list[Alert]) -> DeliveryResult: ...


class DeliveryObserver(Protocol):
    """Told what each send did (metrics)."""

    def alerts_sent(self, platform: str, alerts: list[Alert], now: datetime) -> None: ...

    def alerts_not_sent(self, platform: str, count: int, result: str) -> None: ...


DestinationGoneHook = Callable[[Destination, str, list[SavedSearch]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DrainReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0


def backoff_delay(attempt: int, *, base: float, cap: float, rand: float) -> float:
    """Exponential backoff with equal jitter: between half and all of base * 2^(attempt-1), capped.

    Half the wait is fixed so that the attempts of one alert always span a real outage (with the defaults, 8
    attempts cover at least ten minutes); the random half keeps many alerts from retrying in step.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + ceiling / 2 * rand


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
        batch_size: int = 1000,
        per_destination: int = 30,
        on_destination_gone: DestinationGoneHook | None = None,
        observer: DeliveryObserver | None = None,
    ) -> None:
        self._repo = repo
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._rng = rng or random.Random()
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._backoff_max = backoff_max_seconds
        self._batch = batch_size
        # A pass ends when its slowest chat is done: a cap per chat keeps a long queue in one chat (sent as
        # digests) from holding every other chat's alerts until the next pass.
        self._per_destination = per_destination
        self._on_gone = on_destination_gone
        self._observer = observer
        self.last_delivery_at: dict[str, datetime] = {}

    def observe(self, observer: DeliveryObserver) -> None:
        self._observer = observer

    async def drain_once(self) -> DrainReport:
        """Send one batch of due alerts; returns what happened."""
        alerts = await self._repo.load_due_alerts(now=self._clock(), limit=self._batch, platforms=self._notifiers,
                                                  per_destination=self._per_destination)
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
        destination = alerts[0].destination
        notifier = self._notifiers[destination.platform]
        batches: list[list[Alert]]
        if isinstance(notifier, DigestNotifier) and len(alerts) > 1 and notifier.wants_digest(destination,
                                                                                              len(alerts)):
            size = max(1, notifier.digest_size)
            batches = [alerts[start : start + size] for start in range(0, len(alerts), size)]
        else:
            batches = [[alert] for alert in alerts]
        sent = retried = dead = 0
        for batch in batches:
            result = await self._send(notifier, batch)
            if result.delivered:
                now = self._clock()
                await self._repo.mark_alerts_sent([alert.outbox_id for alert in batch], now=now)
                self.last_delivery_at[destination.platform] = now
                sent += len(batch)
                if self._observer is not None:
                    self._observer.alerts_sent(destination.platform, batch, now)
                continue
            if result.moved_to:
                # Everything waiting for the old id now waits for the new one and goes out on the next pass.
                await self._repo.move_destination(destination, Destination(destination.platform, result.moved_to))
                log.info("%s chat moved; its searches and pending alerts follow it", destination.platform)
                return DrainReport(sent, retried + len(alerts) - sent, dead)
            if result.destination_gone:
                reason = result.error or "destination unreachable"
                searches, dropped = await self._repo.mark_destination_gone(destination, reason=reason,
                                                                           now=self._clock())
                log.warning("%s destination unreachable (%s): %d searches paused, %d alerts dropped",
                            destination.platform, reason, len(searches), dropped)
                self._observed(destination.platform, dropped, "dead")
                if self._on_gone is not None:
                    await self._tell_owners(self._on_gone, destination, reason, searches)
                return DrainReport(sent, retried, dead + dropped)
            attempt = max(alert.attempts for alert in batch) + 1
            if result.permanent or attempt >= self._max_attempts:
                reason = result.error or "unknown error"
                if not result.permanent:
                    reason = f"gave up after {attempt} attempts: {reason}"
                for alert in batch:
                    await self._repo.mark_alert_dead(alert.outbox_id, reason=reason)
                log.warning("%d alerts to %s are dead: %s", len(batch), destination.platform, reason)
                self._observed(destination.platform, len(batch), "dead")
                dead += len(batch)
                continue
            if result.retry_after is not None:
                # The platform set the pace: wait exactly that long, and keep this destination's queue behind it.
                wait = result.retry_after
            else:
                wait = backoff_delay(attempt, base=self._backoff, cap=self._backoff_max, rand=self._rng.random())
            next_at = self._clock() + timedelta(seconds=wait)
            for alert in batch:
                await self._repo.mark_alert_retry(alert.outbox_id, next_attempt_at=next_at, error=result.error or "")
            # Everything else waiting for this chat waits as long, loaded in this pass or not: one schedule of
            # attempts per chat, not one per slice of its queue.
            await self._repo.defer_destination(destination, next_attempt_at=next_at)
            retried += len(batch)
            self._observed(destination.platform, len(batch), "retry")
            break
        return DrainReport(sent, retried, dead)

    def _observed(self, platform: str, count: int, result: str) -> None:
        if self._observer is not None and count:
            self._observer.alerts_not_sent(platform, count, result)

    @staticmethod
    async def _tell_owners(hook: DestinationGoneHook, destination: Destination, reason: str,
                           searches: list[SavedSearch]) -> None:
        try:
            await hook(destination, reason, searches)
        except Exception:  # noqa: BLE001 - telling the owner is best effort; the searches are already paused
            log.exception("could not tell the owners of a gone %s destination", destination.platform)

    async def _send(self, notifier: Notifier, batch: list[Alert]) -> DeliveryResult:
        destination = batch[0].destination
        try:
            if len(batch) == 1:
                return await notifier.send_alert(destination, batch[0])
            return await notifier.send_digest(destination, batch)  # type: ignore[attr-defined]
        except Exception as err:  # noqa: BLE001 - a notifier bug must not stop the batch; the rows are retried
            log.exception("notifier %s raised while sending %d alerts", destination.platform, len(batch))
            return DeliveryResult.retry(f"{type(err).__name__}: {err}")
