"""The ops channel: threshold changes and recoveries, circuit transitions, admin actions, start-up and daily summary;
and the record of threshold changes the public status page shows.

Every message is queued in the outbox for each ops destination, so it goes out with the same retries and pacing
as alerts, in the order it was said: a WARNING is never lost, and its RECOVERED never overtakes it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from ops.thresholds import DEFAULT_THRESHOLDS, OpsAlert, Threshold, Tracked, evaluate
from scout.circuit import CircuitState, Transition
from scout.config import Settings
from scout.delivery import STORAGE_ERRORS
from scout.models import Destination, NoticeKind
from storage.repo import Repository

log = logging.getLogger(__name__)

# Where the runbook sends an on-call engineer for a marketplace that blocks us or breaks.
CIRCUIT_RUNBOOK = "3. Scraping Failures / 5. External API Outage"
# The service's own output hears every ops message (a line starting "OPS").
CONSOLE_OPS = Destination("console", "ops")


def ops_destinations(settings: Settings, platforms: Iterable[str]) -> list[Destination]:
    """The console, and each ops channel configured on a platform that is in use."""
    wanted = [CONSOLE_OPS]
    if settings.ops_discord_channel_id is not None:
        wanted.append(Destination("discord", str(settings.ops_discord_channel_id)))
    if settings.ops_telegram_chat_id is not None:
        wanted.append(Destination("telegram", str(settings.ops_telegram_chat_id)))
    available = set(platforms)
    return [destination for destination in wanted if destination.platform in available]


class OpsOutbox:
    """Says an ops message by queueing it in the outbox for every ops destination; delivery sends it."""

    def __init__(self, repo: Repository, destinations: Sequence[Destination], *, clock: Callable[[], datetime],
                 queued: Callable[[], None] | None = None) -> None:
        self._repo = repo
        self._destinations = list(destinations)
        self._clock = clock
        self._queued = queued

    async def __call__(self, message: str) -> None:
        try:
            await self._repo.queue_notices(self._destinations, message, kind=NoticeKind.OPS, now=self._clock())
        except STORAGE_ERRORS as err:
            # The database is what failed: the log is the one place left to say it.
            log.error("could not queue an ops message (%s): %s", type(err).__name__, message)
            return
        if self._queued is not None:
            self._queued()


def audit_threshold_changes(repo: Repository, *,
                            clock: Callable[[], datetime]) -> Callable[[OpsAlert], Awaitable[None]]:
    """A recorder for OpsReporter: each level change as an audit row 'ops.threshold.<level>' on the figure's key."""

    async def record(alert: OpsAlert) -> None:
        try:
            await repo.add_audit(actor="ops", action=f"ops.threshold.{alert.level.label}", target=alert.key,
                                 detail=alert.message(), now=clock())
        except STORAGE_ERRORS as err:
            # The message went out (or is logged); the status page misses one line of history, no more.
            log.error("could not record a threshold change (%s): %s", type(err).__name__, alert.message())

    return record


class OpsReporter:
    """Says each thing once: a level change, a recovery, a reminder while critical at the configured interval."""

    def __init__(
        self,
        say: Callable[[str], Awaitable[None]],
        *,
        clock: Callable[[], datetime],
        thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS,
        repeat_critical: timedelta = timedelta(minutes=30),
    ) -> None:
        self.say = say
        self._clock = clock
        self._thresholds = thresholds
        self._repeat = repeat_critical
        self.tracked: dict[str, Tracked] = {}
        self._record: Callable[[OpsAlert], Awaitable[None]] | None = None

    def set_recorder(self, record: Callable[[OpsAlert], Awaitable[None]]) -> None:
        """Keep each level change (not the reminders) where the public status page reads its incidents."""
        self._record = record

    async def evaluate(self, figures: Mapping[str, float | None]) -> None:
        self.tracked, alerts = evaluate(figures, self._thresholds, self.tracked, now=self._clock(),
                                        repeat_critical=self._repeat)
        for alert in alerts:
            # Marketplace health is told by the circuit transitions, which carry the cause.
            if alert.key.startswith("marketplace:"):
                continue
            await self.say(alert.message())
            if self._record is not None and alert.level != alert.previous:
                await self._record(alert)

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
