"""Alert thresholds, pure: (figures, thresholds, previous levels) -> new levels and the changes worth announcing."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# A level only drops once the figure is this far (as a fraction of the threshold) below the threshold that
# raised it, so a figure hovering at a boundary does not flap between two levels every evaluation.
HYSTERESIS = 0.1


class Level(enum.IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Threshold:
    name: str
    title: str
    warning: float
    critical: float
    unit: str
    runbook: str

    def show(self, value: float) -> str:
        if self.unit == "%":
            return f"{value * 100:.1f}%"
        if self.unit == "s":
            return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"
        return f"{value:g}"


# The runbook's alert-threshold table ("Monitoring & Alerts"), then the scout's own.
DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("api_p95_seconds", "API response time (p95)", 1.0, 3.0, "s", "1. High API Response Time"),
    Threshold("api_error_rate", "API error rate", 0.01, 0.05, "%", "1. High API Response Time"),
    Threshold("queue_depth", "Alert queue depth", 1000, 5000, "", "2. Celery Queue Backlog"),
    Threshold("db_connections", "Database connections", 0.80, 0.95, "%", "4. Database Connection Pool Exhausted"),
    Threshold("memory", "Memory usage", 0.80, 0.95, "%", "6. Memory Leak / High Memory Usage"),
    Threshold("disk", "Disk usage", 0.80, 0.95, "%", "Maintenance Windows"),
    Threshold("failed_tasks_hour", "Failed tasks (1 h)", 50, 200, "", "3. Scraping Failures"),
    Threshold("outbox_oldest_seconds", "Oldest undelivered alert", 600, 3600, "s", "2. Celery Queue Backlog"),
    Threshold("alert_lag_p95_seconds", "Alert lag (p95)", 300, 1800, "s", "2. Celery Queue Backlog"),
    Threshold("stale_searches", "Searches with no good scan for 3 intervals", 1, 25, "", "3. Scraping Failures"),
    # Per marketplace: 1 while its fetches fail or are blocked, 2 while its circuit is open.
    Threshold("marketplace", "Marketplace health", 1, 2, "", "5. External API Outage"),
    # Per chat platform: 1 while it stays unconnected or its sends keep failing, 2 while it refuses our token.
    Threshold("platform", "Chat platform health", 1, 2, "", "5. External API Outage"),
)


@dataclass(frozen=True, slots=True)
class OpsAlert:
    """A change of level worth telling the ops channel, or a reminder of one that stays critical."""

    key: str
    threshold: Threshold
    level: Level
    previous: Level
    value: float

    @property
    def recovered(self) -> bool:
        return self.level < self.previous

    def message(self) -> str:
        t = self.threshold
        subject = t.title + (f" ({self.key.split(':', 1)[1]})" if ":" in self.key else "")
        figure = t.show(self.value)
        if self.level is Level.OK:
            return f"RECOVERED {subject}: {figure} (back under {t.show(t.warning)})"
        bound = t.critical if self.level is Level.CRITICAL else t.warning
        verb = "still " if self.level == self.previous else ""
        return (f"{self.level.label.upper()} {subject}: {verb}{figure} (threshold {t.show(bound)}). "
                f"Runbook: {t.runbook}")


@dataclass(frozen=True, slots=True)
class Tracked:
    level: Level = Level.OK
    announced_at: datetime | None = None


def parse_overrides(text: str, thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS) -> tuple[Threshold, ...]:
    """Apply 'name=warning/critical,...' overrides, e.g. 'queue_depth=500/2000'. Raises ValueError on a bad one."""
    by_name = {t.name: t for t in thresholds}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, bounds = item.partition("=")
        warning, _, critical = bounds.partition("/")
        if name.strip() not in by_name:
            raise ValueError(f"unknown threshold {name.strip()!r}; known: {', '.join(by_name)}")
        low, high = float(warning), float(critical)
        if not 0 <= low <= high:
            raise ValueError(f"{name.strip()}: expected 0 <= warning <= critical")
        by_name[name.strip()] = replace(by_name[name.strip()], warning=low, critical=high)
    return tuple(by_name.values())


def level_of(value: float, threshold: Threshold, previous: Level = Level.OK) -> Level:
    """The level of a figure, with hysteresis on the way down."""
    raw = Level.CRITICAL if value >= threshold.critical else Level.WARNING if value >= threshold.warning else Level.OK
    if raw >= previous:
        return raw
    # Going down: leave a level only once clearly below the bound that raised it.
    bound = threshold.critical if previous is Level.CRITICAL else threshold.warning
    if value > bound * (1 - HYSTERESIS):
        return previous
    if previous is Level.CRITICAL and value > threshold.warning * (1 - HYSTERESIS) and raw is Level.OK:
        return Level.WARNING
    return raw


def evaluate(
    figures: Mapping[str, float | None],
    thresholds: tuple[Threshold, ...],
    tracked: Mapping[str, Tracked],
    *,
    now: datetime,
    repeat_critical: timedelta,
) -> tuple[dict[str, Tracked], list[OpsAlert]]:
    """New levels for every figure, and the alerts to send: each change, each recovery, and overdue reminders.

    A figure's key is a threshold name, or 'name:subject' for a per-subject figure (a marketplace).
    Figures that are None (unknown on this deployment) keep their level and raise nothing.
    """
    by_name = {t.name: t for t in thresholds}
    new_state = dict(tracked)
    alerts: list[OpsAlert] = []
    for key, value in figures.items():
        threshold = by_name.get(key.split(":", 1)[0])
        if threshold is None or value is None:
            continue
        before = tracked.get(key, Tracked())
        level = level_of(value, threshold, before.level)
        if level != before.level:
            alerts.append(OpsAlert(key, threshold, level, before.level, value))
            new_state[key] = Tracked(level, now)
        elif level is Level.CRITICAL and (before.announced_at is None or now - before.announced_at >= repeat_critical):
            alerts.append(OpsAlert(key, threshold, level, before.level, value))
            new_state[key] = Tracked(level, now)
    return new_state, alerts
