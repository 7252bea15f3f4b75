"""The status page's pure parts: each marketplace's light as a table, the error summary, the headline, incidents
and the rendered page's escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.status.light import (BLOCKED_TEXT, BROKEN_TEXT, FAILING_TEXT, TIMEOUT_TEXT, UNREACHABLE_TEXT, Light,
                              marketplace_light, summarise_error)
from api.status.render import render_status_page, show_duration
from api.status.view import Readings, build_status_view
from scout.circuit import Circuit, CircuitState
from scout.models import MarketplaceState
from storage.ops_queries import CircuitChange, FetchHealth, Notice, PublicEvent

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
AGO = NOW - timedelta(minutes=10)
OPENED = NOW - timedelta(minutes=3)


def state(**fields: object) -> MarketplaceState:
    base: dict[str, object] = {"key": "ebay", "last_success_at": NOW - timedelta(hours=1)}
    return MarketplaceState(**{**base, **fields})  # type: ignore[arg-type]


OPEN = Circuit(CircuitState.OPEN, 5, 1, NOW + timedelta(minutes=5))
HALF_OPEN = Circuit(CircuitState.HALF_OPEN, 5, 1, NOW)

# (case, state, recent fetches, circuit opened at) -> (light, since, why)
CASES = [
    ("never checked", None, None, None, Light.OK, None, "Not checked yet."),
    ("fetches work", state(), FetchHealth(ok=12), None, Light.OK, None, None),
    ("paused with a reason", state(status="paused", reason="Site asked us to stop", changed_at=AGO), None, None,
     Light.PAUSED, AGO, "Site asked us to stop"),
    ("paused without a reason", state(status="paused", changed_at=AGO), None, None,
     Light.PAUSED, AGO, "Paused for maintenance."),
    ("paused beats an open circuit", state(status="paused", reason="r", changed_at=AGO, circuit=OPEN), None, OPENED,
     Light.PAUSED, AGO, "r"),
    ("open circuit, blocked", state(circuit=OPEN, last_status="blocked", last_error="HTTP 429",
                                    last_failure_at=NOW), None, OPENED, Light.BLOCKED, OPENED, BLOCKED_TEXT),
    ("half-open circuit, opening unknown", state(circuit=HALF_OPEN, last_status="failed", last_error="HTTP 503",
                                                 last_failure_at=AGO), None, None,
     Light.BLOCKED, AGO, UNREACHABLE_TEXT),
    ("last fetches failed", state(consecutive_failures=2, last_status="broken", last_failure_at=NOW),
     FetchHealth(ok=3, failing=2, first_failure_at=AGO), None, Light.DEGRADED, AGO, BROKEN_TEXT),
    ("a fifth of the hour failed, last one worked", state(last_status="success", last_error="timed out"),
     FetchHealth(ok=8, failing=2, first_failure_at=AGO), None, Light.DEGRADED, AGO, TIMEOUT_TEXT),
    ("a few failures in a busy hour", state(last_status="success"), FetchHealth(ok=90, failing=2,
                                                                                first_failure_at=AGO), None,
     Light.OK, None, None),
]


@pytest.mark.parametrize(("case", "market", "recent", "opened", "light", "since", "why"), CASES,
                         ids=[case[0] for case in CASES])
def test_marketplace_light(case: str, market: MarketplaceState | None, recent: FetchHealth | None,
                           opened: datetime | None, light: Light, since: datetime | None, why: str | None) -> None:
    result = marketplace_light(market, recent, opened_at=opened)
    assert (result.light, result.since, result.why) == (light, since, why)


@pytest.mark.parametrize(("status", "error", "text"), [
    ("blocked", "anything at all", BLOCKED_TEXT),
    ("broken", None, BROKEN_TEXT),
    ("failed", "HTTP 403 at https://example.com/?q=private", BLOCKED_TEXT),
    ("failed", "Captcha page", BLOCKED_TEXT),
    ("failed", "TimeoutError after 20 s", TIMEOUT_TEXT),
    ("failed", "HTTP 502", UNREACHABLE_TEXT),
    ("failed", "Cannot connect to host 10.0.0.1:8080", UNREACHABLE_TEXT),
    (None, "circuit open for 5 min after 5 failed fetches: could not parse the page", BROKEN_TEXT),
    ("failed", "something else entirely", FAILING_TEXT),
    (None, None, FAILING_TEXT),
])
def test_an_error_is_summarised_never_shown(status: str | None, error: str | None, text: str) -> None:
    assert summarise_error(status, error) == text


def readings(**fields: object) -> Readings:
    base: dict[str, object] = dict(now=NOW, states={}, fetches={}, circuits=[], events=[], notices=[],
                                   alert_lag_p95_seconds=None, pending_alerts=0, oldest_pending_seconds=0.0)
    return Readings(**{**base, **fields})  # type: ignore[arg-type]


NAMES = {"ebay": "eBay", "vinted": "Vinted"}


def test_all_working_says_so_and_late_alerts_are_told() -> None:
    view = build_status_view(readings(), NAMES)
    assert (view.headline, view.light, view.delivery_delayed) == ("All systems working.", Light.OK, False)
    view = build_status_view(readings(alert_lag_p95_seconds=400.0), NAMES)
    assert (view.headline, view.light, view.delivery_delayed) == ("Alerts are delayed.", Light.DEGRADED, True)
    view = build_status_view(readings(pending_alerts=3, oldest_pending_seconds=900.0), NAMES)
    assert view.delivery_delayed


def test_incidents_are_the_weeks_newest_first_and_notices_only_while_active() -> None:
    view = build_status_view(readings(
        circuits=[CircuitChange("ebay", True, "HTTP 403 private", NOW - timedelta(hours=1)),
                  CircuitChange("ebay", False, None, NOW - timedelta(days=8))],
        events=[PublicEvent("marketplace.pause", "vinted", "Maintenance", NOW - timedelta(hours=2)),
                PublicEvent("ops.threshold.critical", "platform:discord", "CRITICAL ...", NOW - timedelta(hours=3)),
                PublicEvent("marketplace.backoff", "vinted", None, NOW - timedelta(hours=4)),
                PublicEvent("ops.threshold.warning", "unknown_figure", None, NOW - timedelta(hours=4))],
        notices=[Notice(1, "now", NOW - timedelta(hours=1), None, None),
                 Notice(2, "expired", NOW - timedelta(days=1), NOW - timedelta(hours=1), None),
                 Notice(3, "ended", NOW - timedelta(days=1), None, NOW - timedelta(hours=1)),
                 Notice(4, "later", NOW, NOW + timedelta(hours=1), None)],
    ), NAMES)
    assert [(i.title, i.detail) for i in view.incidents] == [
        ("eBay: checks stopped", BLOCKED_TEXT),
        ("Vinted: paused by operators", "Maintenance"),
        ("Chat platform health (discord): critical", None),
    ]
    assert [n.text for n in view.notices] == ["now", "later"]


def test_the_page_escapes_what_operators_write_and_has_no_script() -> None:
    view = build_status_view(readings(
        states={"ebay": MarketplaceState("ebay", status="paused", reason="<img src=x onerror=alert(1)>",
                                         changed_at=AGO)},
        notices=[Notice(1, "<script>alert(1)</script> & more", NOW, None, None)]), NAMES)
    page = render_status_page(view)
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert 'name="viewport"' in page and "prefers-color-scheme: dark" in page
    assert "Paused by operators" in page and 'class="market state-paused"' in page


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0 s"), (59, "59 s"), (61, "1 min"), (3600, "1 h"),
                                                (3660 + 240, "1 h 5 min"), (3 * 86400, "3 days")])
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert show_duration(seconds) == text
