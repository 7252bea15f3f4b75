"""Pure: what the status page says, built from the stored readings: each marketplace's light, alert delivery, the
week's incidents and the active maintenance notices. Nothing private passes: no actor, owner, chat or query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from api.status.light import Light, marketplace_light, summarise_error
from ops.thresholds import DEFAULT_THRESHOLDS, Threshold

if TYPE_CHECKING:
    from scout.models import MarketplaceState
    from storage.ops_queries import CircuitChange, FetchHealth, Notice, PublicEvent

# How far back the page lists incidents.
INCIDENT_DAYS = 7
# Alert delivery counts as delayed from the ops warning thresholds on: alert lag p95 and the oldest unsent alert.
THRESHOLDS: Mapping[str, Threshold] = {t.name: t for t in DEFAULT_THRESHOLDS}
LAG_DELAYED_SECONDS = THRESHOLDS["alert_lag_p95_seconds"].warning
BACKLOG_DELAYED_SECONDS = THRESHOLDS["outbox_oldest_seconds"].warning
LEVEL_WORDS = {"warning": "warning", "critical": "critical", "ok": "recovered"}


@dataclass(frozen=True, slots=True)
class Readings:
    """What the page is built from, read from storage in one go (api.status.reading)."""

    now: datetime
    states: Mapping[str, MarketplaceState]
    fetches: Mapping[str, FetchHealth]  # the last hour's, per marketplace
    circuits: Sequence[CircuitChange]  # the last INCIDENT_DAYS', newest first
    events: Sequence[PublicEvent]  # likewise
    notices: Sequence[Notice]
    alert_lag_p95_seconds: float | None  # None: no alert was sent in the last hour
    pending_alerts: int
    oldest_pending_seconds: float


@dataclass(frozen=True, slots=True)
class MarketRow:
    name: str
    light: Light
    since: datetime | None
    why: str | None


@dataclass(frozen=True, slots=True)
class Incident:
    at: datetime
    title: str
    detail: str | None
    light: Light  # how it left things, for its marker


@dataclass(frozen=True, slots=True)
class NoticeRow:
    text: str
    since: datetime
    until: datetime | None


@dataclass(frozen=True, slots=True)
class StatusView:
    generated_at: datetime
    headline: str
    light: Light  # the worst marketplace's, or degraded when alerts are late
    notices: list[NoticeRow]
    markets: list[MarketRow]
    alert_lag_p95_seconds: float | None
    pending_alerts: int
    oldest_pending_seconds: float
    delivery_delayed: bool
    incidents: list[Incident]


def build_status_view(readings: Readings, names: Mapping[str, str]) -> StatusView:
    """The page's content. `names` maps each marketplace's key to its display name, in the order to show."""
    opened: dict[str, datetime] = {}
    for change in readings.circuits:  # newest first: the first opening met is the last one
        if change.opened:
            opened.setdefault(change.marketplace, change.created_at)
    markets = []
    for key, name in names.items():
        light = marketplace_light(readings.states.get(key), readings.fetches.get(key), opened_at=opened.get(key))
        markets.append(MarketRow(name, light.light, light.since, light.why))
    lag = readings.alert_lag_p95_seconds
    delayed = ((lag is not None and lag >= LAG_DELAYED_SECONDS)
               or readings.oldest_pending_seconds >= BACKLOG_DELAYED_SECONDS)
    worst = max((row.light for row in markets), key=lambda light: light.rank, default=Light.OK)
    if delayed and worst.rank < Light.DEGRADED.rank:
        worst = Light.DEGRADED
    return StatusView(
        generated_at=readings.now, headline=headline(markets, delayed), light=worst,
        notices=[NoticeRow(n.text, n.created_at, n.until) for n in readings.notices if n.active(readings.now)],
        markets=markets, alert_lag_p95_seconds=lag, pending_alerts=readings.pending_alerts,
        oldest_pending_seconds=readings.oldest_pending_seconds, delivery_delayed=delayed,
        incidents=build_incidents(readings, names),
    )


def headline(markets: Sequence[MarketRow], delayed: bool) -> str:
    """One sentence for the top of the page, naming the worst thing first."""
    count = {light: sum(1 for row in markets if row.light is light) for light in Light}
    parts = []
    if count[Light.BLOCKED]:
        parts.append(f"{_many(count[Light.BLOCKED])} blocked")
    if count[Light.DEGRADED]:
        parts.append(f"{_many(count[Light.DEGRADED])} degraded")
    if count[Light.PAUSED]:
        parts.append(f"{_many(count[Light.PAUSED])} paused by operators")
    if delayed:
        parts.append("alerts are delayed")
    if not parts:
        return "All systems working."
    text = ", ".join(parts)
    return text[0].upper() + text[1:] + "."


def _many(n: int) -> str:
    return "1 marketplace" if n == 1 else f"{n} marketplaces"


def build_incidents(readings: Readings, names: Mapping[str, str]) -> list[Incident]:
    """Circuit openings and closings, operator pauses and resumes, and threshold level changes of the last
    INCIDENT_DAYS, newest first."""
    since = readings.now - timedelta(days=INCIDENT_DAYS)
    incidents = []
    for change in readings.circuits:
        name = names.get(change.marketplace, change.marketplace)
        if change.opened:
            incidents.append(Incident(change.created_at, f"{name}: checks stopped",
                                      summarise_error(None, change.reason), Light.BLOCKED))
        else:
            incidents.append(Incident(change.created_at, f"{name}: checks work again", None, Light.OK))
    for event in readings.events:
        incident = _event_incident(event, names)
        if incident is not None:
            incidents.append(incident)
    return sorted((i for i in incidents if i.at >= since), key=lambda i: i.at, reverse=True)


def _event_incident(event: PublicEvent, names: Mapping[str, str]) -> Incident | None:
    target = event.target or ""
    if event.action == "marketplace.pause":
        return Incident(event.created_at, f"{names.get(target, target)}: paused by operators",
                        event.detail, Light.PAUSED)
    if event.action == "marketplace.resume":
        return Incident(event.created_at, f"{names.get(target, target)}: resumed by operators", None, Light.OK)
    level = event.action.rsplit(".", 1)[-1]
    name, _, subject = target.partition(":")
    threshold = THRESHOLDS.get(name)
    if threshold is None or level not in LEVEL_WORDS:
        return None
    title = threshold.title + (f" ({names.get(subject, subject)})" if subject else "")
    light = Light.OK if level == "ok" else Light.DEGRADED
    return Incident(event.created_at, f"{title}: {LEVEL_WORDS[level]}", None, light)
