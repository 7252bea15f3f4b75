"""Threshold evaluation: every boundary of the runbook's table, hysteresis, recoveries and critical reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops.thresholds import DEFAULT_THRESHOLDS, Level, Tracked, evaluate, level_of, parse_overrides

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BY_NAME = {t.name: t for t in DEFAULT_THRESHOLDS}


@pytest.mark.parametrize(
    ("name", "below", "warning", "critical"),
    [
        ("api_p95_seconds", 0.99, 1.0, 3.0),
        ("api_error_rate", 0.0099, 0.01, 0.05),
        ("queue_depth", 999, 1000, 5000),
        ("db_connections", 0.79, 0.80, 0.95),
        ("memory", 0.79, 0.80, 0.95),
        ("disk", 0.79, 0.80, 0.95),
        ("failed_tasks_hour", 49, 50, 200),
    ],
)
def test_the_runbook_table_boundaries(name: str, below: float, warning: float, critical: float) -> None:
    threshold = BY_NAME[name]
    assert level_of(below, threshold) is Level.OK
    assert level_of(warning, threshold) is Level.WARNING
    assert level_of(critical - 1e-9, threshold) is Level.WARNING
    assert level_of(critical, threshold) is Level.CRITICAL


@pytest.mark.parametrize(
    ("value", "previous", "expected"),
    [
        (960, Level.WARNING, Level.WARNING),  # under 1000 but within 10%: stays
        (900, Level.WARNING, Level.OK),  # clearly under: recovers
        (4600, Level.CRITICAL, Level.CRITICAL),
        (4400, Level.CRITICAL, Level.WARNING),
        (950, Level.CRITICAL, Level.WARNING),  # from critical, not straight to ok while near warning
        (800, Level.CRITICAL, Level.OK),
        (6000, Level.WARNING, Level.CRITICAL),  # going up is immediate
    ],
)
def test_hysteresis_on_the_way_down(value: float, previous: Level, expected: Level) -> None:
    assert level_of(value, BY_NAME["queue_depth"], previous) is expected


def test_changes_and_recoveries_are_announced_once() -> None:
    repeat = timedelta(minutes=30)
    state, alerts = evaluate({"queue_depth": 1200}, DEFAULT_THRESHOLDS, {}, now=T0, repeat_critical=repeat)
    assert [a.message() for a in alerts] == [
        "WARNING Alert queue depth: 1200 (threshold 1000). Runbook: 2. Celery Queue Backlog"]
    state, alerts = evaluate({"queue_depth": 1300}, DEFAULT_THRESHOLDS, state, now=T0, repeat_critical=repeat)
    assert alerts == []
    state, alerts = evaluate({"queue_depth": 100}, DEFAULT_THRESHOLDS, state, now=T0, repeat_critical=repeat)
    assert [a.message() for a in alerts] == ["RECOVERED Alert queue depth: 100 (back under 1000)"]
    assert alerts[0].recovered


def test_a_state_that_stays_critical_is_repeated_at_the_interval_only() -> None:
    repeat = timedelta(minutes=30)
    state, alerts = evaluate({"memory": 0.97}, DEFAULT_THRESHOLDS, {}, now=T0, repeat_critical=repeat)
    assert alerts[0].message() == "CRITICAL Memory usage: 97.0% (threshold 95.0%). Runbook: 6. Memory Leak / High Memory Usage"
    state, alerts = evaluate({"memory": 0.97}, DEFAULT_THRESHOLDS, state, now=T0 + timedelta(minutes=29),
                             repeat_critical=repeat)
    assert alerts == []
    state, alerts = evaluate({"memory": 0.98}, DEFAULT_THRESHOLDS, state, now=T0 + timedelta(minutes=30),
                             repeat_critical=repeat)
    assert [a.message() for a in alerts] == [
        "CRITICAL Memory usage: still 98.0% (threshold 95.0%). Runbook: 6. Memory Leak / High Memory Usage"]


def test_per_marketplace_figures_and_unknown_ones() -> None:
    state, alerts = evaluate({"marketplace:ebay": 2, "db_connections": None}, DEFAULT_THRESHOLDS,
                             {"db_connections": Tracked(Level.WARNING)}, now=T0, repeat_critical=timedelta(hours=1))
    assert [a.message() for a in alerts] == [
        "CRITICAL Marketplace health (ebay): 2 (threshold 2). Runbook: 5. External API Outage"]
    assert state["db_connections"].level is Level.WARNING  # unknown this time: left as it was


def test_overrides() -> None:
    changed = {t.name: t for t in parse_overrides("queue_depth=500/2000, memory=0.7/0.9")}
    assert (changed["queue_depth"].warning, changed["queue_depth"].critical) == (500, 2000)
    assert (changed["memory"].warning, changed["memory"].critical) == (0.7, 0.9)
    for bad in ("nope=1/2", "queue_depth=5/1", "queue_depth=x/1"):
        with pytest.raises(ValueError):
            parse_overrides(bad)
