"""The outbox dispatcher: claims due rows, sends them through each platform's notifier, records what happened.

Each destination is a queue served in order. A row is claimed (in the database) before it is sent and only claimed
rows are sent, so a send is never repeated because recording it failed; a process that dies leaves its claims
behind, and the next one sends them again at once, in the same grouping, so Discord's nonce drops the repeat.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from scout.errors import StorageError
from scout.models import Alert, Delivery, Destination, Notice, NoticeKind, SavedSearch
from scout.ports import STORAGE_ERRORS, OutboxStore

log = logging.getLogger(__name__)

# A claimed row that was neither recorded as sent nor released by then is due again: its process died, or the
# database failed while recording it. Far longer than one pass takes to send a destination's share.
CLAIM_SECONDS = 300.0
# After the database fails, delivery pauses this long, doubling while it keeps failing.
STORAGE_BACKOFF_SECONDS = 2.0
STORAGE_BACKOFF_MAX_SECONDS = 60.0
# While chats are being served, what became due meanwhile is looked for this often (the service passes its
# DELIVERY_TICK_SECONDS).
POLL_SECONDS = 2.0
# Sends are recorded together: one statement records every send made since the last, of every destination. A send
# that began this long ago is recorded before the next send of its destination: any send that waited for an answer
# over the network, so a crash repeats at most that message and a database that fails meanwhile stops delivery after
# it. Sends that return at once (a console) are recorded a share at a time. Also how far sent_at may trail a send.
RECORD_WITHIN_SECONDS = 0.001


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one send went. Expected failures are values, so one dead chat cannot stop the batch."""

    delivered: bool
    error: str | None = None
    retry_after: float | None = None  # the platform told us when to come back
    permanent: bool = False  # retrying this message cannot help: the platform refused it
    destination_gone: bool = False  # the chat or channel is gone, or we lost access to it
    moved_to: str | None = None  # the chat has a new id (a Telegram group became a supergroup)
    waiting: bool = False  # asked to wait (a rate limit, or not connected yet): not a failed attempt

    @classmethod
    def ok(cls) -> DeliveryResult:
        return cls(True)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(False, error, retry_after)

    @classmethod
    def wait(cls, reason: str, seconds: float) -> DeliveryResult:
        """Come back after `seconds`; however long this goes on, it never uses up an alert's attempts."""
        return cls(False, reason, max(0.0, seconds), waiting=True)

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

    async def send_notice(self, destination: Destination, notice: Notice) -> DeliveryResult: ...


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
    held: int = 0

    def __add__(self, other: DrainReport) -> DrainReport:
        return DrainReport(self.sent + other.sent, self.retried + other.retried, self.dead + other.dead,
                           self.held + other.held)


@dataclass(slots=True)
class PlatformSends:
    """How sends to one platform have gone lately, for health: a platform whose every send fails is degraded."""

    last_delivered_at: datetime | None = None
    failures_in_row: int = 0
    last_error: str | None = None


def _failure(err: BaseException) -> str:
    """A failing database as the log names it: the storage layer's words (the driver's error, never the SQL or its
    values), or the type of an OSError."""
    return str(err) if isinstance(err, StorageError) and str(err) else type(err).__name__


def backoff_delay(attempt: int, *, base: float, cap: float, rand: float) -> float:
    """Exponential backoff with equal jitter: between half and all of base * 2^(attempt-1), capped.

    Half the wait is fixed so that the attempts of one alert always span a real outage (with the defaults, 8
    attempts cover at least ten minutes); the random half keeps many alerts from retrying in step.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + ceiling / 2 * rand


def plan_messages(items: Sequence[Delivery], *, digest_size: int) -> list[list[Delivery]]:
    """Group one destination's due rows, in queue order, into the messages that carry them.

    Rows claimed before keep the grouping they were first claimed in (a resend must be the same message); notices
    go alone; the other alerts go alone, or `digest_size` to a message when the destination is falling behind.
    """
    messages: list[list[Delivery]] = []
    kept: dict[int, list[Delivery]] = {}
    digest: list[Delivery] | None = None
    for item in items:
        if item.batch is not None:
            group = kept.get(item.batch)
            if group is None:
                group = kept[item.batch] = []
                messages.append(group)
            group.append(item)
            digest = None
        elif isinstance(item, Notice) or digest_size <= 1:
            messages.append([item])
            digest = None
        else:
            if digest is None or len(digest) >= digest_size:
                digest = []
                messages.append(digest)
            digest.append(item)
    return messages


class Dispatcher:
    """Drains the outbox: each destination's rows go in order, destinations go concurrently and independently."""

    def __init__(
        self,
        repo: OutboxStore,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        max_attempts: int = 8,
        backoff_seconds: float = 5.0,
        backoff_max_seconds: float = 900.0,
        batch_size: int = 1000,
        per_destination: int = 30,
        claim_seconds: float = CLAIM_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        record_within_seconds: float = RECORD_WITHIN_SECONDS,
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
        # A long queue is claimed a share at a time: its claims stay well within their deadline, and the rows
        # loaded at once stay spread over every chat that has something due.
        self._per_destination = per_destination
        self._claim = timedelta(seconds=claim_seconds)
        self._poll = poll_seconds
        self._record_within = record_within_seconds
        self._on_gone = on_destination_gone
        self._observer = observer
        self.sends: dict[str, PlatformSends] = {platform: PlatformSends() for platform in self._notifiers}
        # Sent, not recorded yet: written down together (see RECORD_WITHIN_SECONDS), with when each went out.
        self._sent: dict[int, datetime] = {}
        self._sent_began: float | None = None  # event-loop time the oldest of them began
        self._recording = asyncio.Lock()
        # Sent, but recording that failed: never sent again by this process, recorded once the database is back.
        self._unrecorded: dict[int, datetime] = {}
        # Claimed, not sent, and handing them back failed: handed back once the database is back, not left to wait
        # for their claim's deadline.
        self._unreleased: set[int] = set()
        self._storage_failures = 0
        self._storage_hold_until: datetime | None = None

    def observe(self, observer: DeliveryObserver) -> None:
        self._observer = observer

    async def recover(self) -> int:
        """At start: rows claimed by a process that died are due at once, to be resent in their grouping."""
        return await self._repo.recover_claims(now=self._clock())

    async def drain(self) -> DrainReport:
        """Send until nothing is due. Each destination goes at its own pace: one that is done with its share takes
        the next at once, and one that is slow (a chat sent one message a second) holds up no other."""
        total = DrainReport()
        running: dict[Destination, asyncio.Task[DrainReport]] = {}
        try:
            while True:
                running.update(await self._start(busy=running.keys()))
                if not running:
                    return total
                # Also look again now and then: alerts queued meanwhile for an idle chat need not wait for a slow one.
                done, _ = await asyncio.wait(running.values(), timeout=self._poll,
                                             return_when=asyncio.FIRST_COMPLETED)
                for destination, task in list(running.items()):
                    if task in done:
                        del running[destination]
                        total += task.result()
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await asyncio.wait(running.values())
            await self._record_sends()

    async def _start(self, *, busy: Iterable[Destination]) -> dict[Destination, asyncio.Task[DrainReport]]:
        """Claim what is due for the destinations not busy, and start sending each one's share."""
        now = self._clock()
        if self._storage_hold_until is not None and now < self._storage_hold_until:
            return {}
        taken = set(busy)
        if not await self._record_sends():
            return {}
        try:
            await self._settle()
            due = await self._repo.load_due_deliveries(now=now, limit=self._batch, platforms=self._notifiers,
                                                       per_destination=self._per_destination, skip=taken)
            plans = self._plan([item for item in due if item.outbox_id not in self._unrecorded])
            if not plans:
                return {}
            claimed = await self._repo.claim_deliveries(
                [[item.outbox_id for item in message] for messages in plans.values() for message in messages],
                now=now, until=now + self._claim)
        except STORAGE_ERRORS as err:
            self._storage_failed(err)
            return {}
        self._storage_ok()
        started = {}
        for destination, messages in plans.items():
            mine = [kept for message in messages if (kept := [i for i in message if i.outbox_id in claimed])]
            if mine:
                started[destination] = asyncio.create_task(self._send_in_order(destination, mine),
                                                           name=f"deliver-{destination.platform}")
        return started

    def _plan(self, due: Sequence[Delivery]) -> dict[Destination, list[list[Delivery]]]:
        by_destination: dict[Destination, list[Delivery]] = {}
        for item in due:
            by_destination.setdefault(item.destination, []).append(item)
        plans = {}
        for destination, items in by_destination.items():
            notifier = self._notifiers[destination.platform]
            size = 1
            if isinstance(notifier, DigestNotifier) and len(items) > 1 and notifier.wants_digest(destination,
                                                                                                 len(items)):
                size = max(1, notifier.digest_size)
            plans[destination] = plan_messages(items, digest_size=size)
        return plans

    async def _send_in_order(self, destination: Destination, messages: list[list[Delivery]]) -> DrainReport:
        notifier = self._notifiers[destination.platform]
        loop = asyncio.get_running_loop()
        report = DrainReport()
        for index, message in enumerate(messages):
            ids = [item.outbox_id for item in message]
            rest = [item.outbox_id for later in messages[index + 1:] for item in later]
            if self._sent_began is not None and loop.time() - self._sent_began >= self._record_within:
                await self._record_sends()
            if self._storage_failures:
                # Recording failed (for this destination or another): nothing more goes out until it works.
                await self._release_quietly(ids + rest)
                return report
            began = loop.time()
            result = await self._send(notifier, destination, message)
            self._note(destination.platform, result)
            if result.delivered:
                self._sent_now(destination, message, began)
                report += DrainReport(sent=len(message))
                continue
            try:
                outcome = await self._record_failure(destination, message, result, rest)
            except STORAGE_ERRORS as err:
                self._storage_failed(err)
                await self._release_quietly(ids + rest)
                return report
            report += outcome
            if not outcome.dead:
                return report  # the destination waits, or is held: the rest of its queue stays behind it
        await self._record_sends()
        return report

    def _sent_now(self, destination: Destination, message: list[Delivery], began: float) -> None:
        """A message went out: it is recorded with the next sends recorded (see RECORD_WITHIN_SECONDS)."""
        now = self._clock()
        self._sent.update(dict.fromkeys((item.outbox_id for item in message), now))
        if self._sent_began is None:
            self._sent_began = began
        alerts = [item for item in message if isinstance(item, Alert)]
        if self._observer is not None and alerts:
            self._observer.alerts_sent(destination.platform, alerts, now)

    async def _record_sends(self) -> bool:
        """Record every send made so far, of every destination, in one statement (at the time of the newest);
        False when the database is failing (the sends are then recorded once it works, and never made again)."""
        async with self._recording:
            if not self._sent:
                return True
            sent, began = self._sent, self._sent_began
            self._sent, self._sent_began = {}, None
            at = max(sent.values())
            try:
                await self._repo.record_sent(list(sent), now=at)
            except STORAGE_ERRORS as err:
                self._unrecorded.update(dict.fromkeys(sent, at))
                self._storage_failed(err)
                return False
            except asyncio.CancelledError:
                # Stopping: the drain records them on its way out (recording twice is harmless; once is a must).
                self._sent = {**sent, **self._sent}
                self._sent_began = began
                raise
            return True

    async def _record_failure(self, destination: Destination, message: list[Delivery], result: DeliveryResult,
                              rest: list[int]) -> DrainReport:
        """Write down a send that did not go through; returns what it did to the destination's queue."""
        now = self._clock()
        ids = [item.outbox_id for item in message]
        platform = destination.platform
        reason = result.error or "unknown error"
        ops = all(isinstance(item, Notice) and item.kind is NoticeKind.OPS for item in message)
        if result.moved_to:
            # Everything waiting for the old id now waits for the new one and goes out on the next pass.
            await self._repo.release_claims(ids + rest, now=now)
            await self._repo.move_destination(destination, Destination(platform, result.moved_to))
            log.info("%s chat moved; its searches and pending alerts follow it", platform)
            return DrainReport(retried=len(ids) + len(rest))
        if result.waiting:
            await self._repo.record_retry(destination, failed=ids, released=rest, error=reason, counted=False,
                                          until=now + timedelta(seconds=result.retry_after or 0.0))
            self._observed(platform, len(ids), "wait")
            return DrainReport(retried=len(ids) + len(rest))
        if result.destination_gone and not ops:
            searches, held = await self._repo.hold_destination(destination, reason=reason, now=now)
            log.warning("%s destination refuses us (%s): %d searches paused, %d alerts held until resumed",
                        platform, reason, len(searches), held)
            self._observed(platform, held, "held")
            if self._on_gone is not None:
                await self._tell_owners(self._on_gone, destination, reason, searches)
            return DrainReport(held=held)
        attempt = max(item.attempts for item in message) + 1
        # Ops messages are never given up on for a passing failure: a WARNING lost would make its RECOVERED a
        # riddle. Only a message the platform refuses outright is dropped.
        if (result.permanent and not result.destination_gone) or (attempt >= self._max_attempts and not ops):
            if not result.permanent:
                reason = f"gave up after {attempt} attempts: {reason}"
            await self._repo.record_dead(ids, reason=reason, released=())
            log.warning("%d messages to %s are dead: %s", len(ids), platform, reason)
            self._observed(platform, len(ids), "dead")
            return DrainReport(dead=len(ids))
        if result.retry_after is not None and not result.destination_gone:
            wait = result.retry_after
        else:
            wait = backoff_delay(attempt, base=self._backoff, cap=self._backoff_max, rand=self._rng.random())
        await self._repo.record_retry(destination, failed=ids, released=rest, error=reason, counted=True,
                                      until=now + timedelta(seconds=wait))
        self._observed(platform, len(ids), "retry")
        return DrainReport(retried=len(ids))

    async def _settle(self) -> None:
        """Write down what the database could not take while it failed: sends made, claims not used."""
        if self._unrecorded:
            by_time: dict[datetime, list[int]] = {}
            for outbox_id, sent_at in self._unrecorded.items():
                by_time.setdefault(sent_at, []).append(outbox_id)
            for sent_at, ids in by_time.items():
                await self._repo.record_sent(ids, now=sent_at)
                for outbox_id in ids:
                    del self._unrecorded[outbox_id]
            log.info("recorded the alerts sent while the database was failing")
        if self._unreleased:
            await self._repo.release_claims(sorted(self._unreleased), now=self._clock())
            self._unreleased.clear()

    async def _release_quietly(self, ids: list[int]) -> None:
        """Hand back claims we will not use now; while the database fails, they are kept to hand back later."""
        if not ids:
            return
        try:
            await self._repo.release_claims(ids, now=self._clock())
        except STORAGE_ERRORS:
            self._unreleased.update(ids)

    def _storage_failed(self, err: BaseException) -> None:
        self._storage_failures += 1
        wait = min(STORAGE_BACKOFF_MAX_SECONDS, STORAGE_BACKOFF_SECONDS * 2 ** (self._storage_failures - 1))
        self._storage_hold_until = self._clock() + timedelta(seconds=wait)
        if self._storage_failures == 1:
            log.error("delivery paused: the database failed (%s); nothing is sent until it works again",
                      _failure(err))
        else:
            log.warning("the database still fails (%s); delivery tries again in %.0f s", _failure(err), wait)

    def _storage_ok(self) -> None:
        if self._storage_failures:
            log.info("the database works again; delivery resumes")
        self._storage_failures = 0
        self._storage_hold_until = None

    def _note(self, platform: str, result: DeliveryResult) -> None:
        sends = self.sends.setdefault(platform, PlatformSends())
        if result.delivered:
            sends.last_delivered_at, sends.failures_in_row, sends.last_error = self._clock(), 0, None
        elif not result.waiting:
            sends.failures_in_row += 1
            sends.last_error = result.error

    def _observed(self, platform: str, count: int, result: str) -> None:
        if self._observer is not None and count:
            self._observer.alerts_not_sent(platform, count, result)

    @staticmethod
    async def _tell_owners(hook: DestinationGoneHook, destination: Destination, reason: str,
                           searches: list[SavedSearch]) -> None:
        try:
            await hook(destination, reason, searches)
        except Exception:  # noqa: BLE001 - telling the owner is best effort; the searches are already paused
            log.exception("could not tell the owners of a %s destination that refuses us", destination.platform)

    @staticmethod
    async def _send(notifier: Notifier, destination: Destination, message: list[Delivery]) -> DeliveryResult:
        try:
            if len(message) > 1:
                alerts = [item for item in message if isinstance(item, Alert)]
                return await notifier.send_digest(destination, alerts)  # type: ignore[attr-defined]
            item = message[0]
            if isinstance(item, Notice):
                return await notifier.send_notice(destination, item)
            return await notifier.send_alert(destination, item)
        except Exception as err:  # noqa: BLE001 - a notifier bug must not stop the batch; the rows are retried
            log.exception("notifier %s raised while sending %d messages", destination.platform, len(message))
            return DeliveryResult.retry(f"{type(err).__name__}: {err}")
