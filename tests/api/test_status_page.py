"""GET /status on a real database through a real server: each marketplace's light, the notice, the week's
incidents, alert delivery, nothing private, one reading per few seconds, and the page while the database is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from api.status.router import build_status_router
from ops.reporter import OpsReporter, audit_threshold_changes
from ops.thresholds import Threshold
from scout.config import load_settings
from scout.models import Destination, NoticeKind
from scrapers.registry import build_adapters
from storage.db import create_engine, session_factory, upgrade
from storage.repo import Repository
from storage.tables import MarketplaceStateRow, TaskLogRow
from tests.api.helpers import running_api

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
# What the seeded database holds that is nobody's business but its users' and operators'.
PRIVATE = ("chat-987654321", "secret-query-xyzzy", "alice-operator", "user-4242", "HTTP 403", "www.ebay.com",
           "feeds.private.example")
NOTICE = "Planned maintenance: alerts may be late until 14:00 UTC."
PAUSE_REASON = "Facebook asked us to slow down"


async def seed_status(repo: Repository, database_url: str, *, now: datetime) -> None:
    """Marketplace states of every light, a pause, a circuit opening, a notice, a threshold change and an alert
    waiting, with private words in every place they are stored."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    error = "HTTP 403 from https://www.ebay.com/sch/i.html?_nkw=secret-query-xyzzy"
    async with sessions.begin() as session:
        session.add_all([
            MarketplaceStateRow(marketplace="ebay", status="active", consecutive_failures=5, total_successes=10,
                                total_failures=5, total_blocked=5, last_status="blocked",
                                last_success_at=now - timedelta(hours=2), last_failure_at=now - timedelta(minutes=3),
                                last_error=error, circuit_state="open", circuit_openings=1,
                                circuit_open_until=now + timedelta(minutes=5)),
            MarketplaceStateRow(marketplace="vinted", status="active", consecutive_failures=2, total_successes=10,
                                total_failures=2, total_blocked=0, last_status="failed",
                                last_success_at=now - timedelta(minutes=30), last_failure_at=now - timedelta(minutes=2),
                                last_error="timed out fetching secret-query-xyzzy", circuit_state="closed",
                                circuit_openings=0),
            MarketplaceStateRow(marketplace="craigslist", status="active", consecutive_failures=0,
                                total_successes=4, total_failures=0, total_blocked=0, last_status="success",
                                last_success_at=now - timedelta(minutes=1), circuit_state="closed", circuit_openings=0),
            TaskLogRow(task_name="scrape_circuit", marketplace="ebay", status="failed",
                       error=f"circuit open for 5 min after 5 failed fetches: {error}", query="circuit closed -> open",
                       created_at=now - timedelta(minutes=3)),
            TaskLogRow(task_name="scrape_circuit", marketplace="ebay", status="success", error=None,
                       query="circuit open -> closed", created_at=now - timedelta(days=2)),
            TaskLogRow(task_name="scrape_circuit", marketplace="rss", status="failed", error="HTTP 403",
                       query="circuit closed -> open for feeds.private.example", created_at=now - timedelta(hours=1)),
            TaskLogRow(task_name="scrape_circuit", marketplace="ebay", status="failed", error="old",
                       query="circuit closed -> open", created_at=now - timedelta(days=8)),
            *[TaskLogRow(task_name="run_search_task", marketplace="vinted", status=status, query="secret-query-xyzzy",
                         error="timed out" if status == "failed" else None, created_at=now - timedelta(minutes=m))
              for m, status in ((20, "success"), (10, "failed"), (2, "failed"))],
        ])
    await engine.dispose()
    await repo.set_marketplace_status("facebook", status="paused", reason=PAUSE_REASON, actor="alice-operator",
                                      now=now - timedelta(hours=1))
    await repo.add_notice(text=NOTICE, until=now + timedelta(hours=2), actor="alice-operator", now=now)
    ended = await repo.add_notice(text="An old notice", until=None, actor="cli", now=now - timedelta(days=1))
    await repo.end_notice(ended, actor="cli", now=now - timedelta(hours=20))
    await repo.add_audit(actor="ops", action="ops.threshold.warning", target="alert_lag_p95_seconds",
                         detail="WARNING Alert lag (p95): 320 s", now=now - timedelta(hours=5))
    await repo.queue_notices([Destination("telegram", "chat-987654321")], "user-4242's alerts", kind=NoticeKind.OPS,
                             now=now - timedelta(seconds=30))


@pytest.fixture
async def seeded(database_url: str) -> AsyncIterator[Repository]:
    engine = create_engine(database_url)
    await upgrade(engine)
    repo = Repository(session_factory(engine))
    await seed_status(repo, database_url, now=NOW)
    try:
        yield repo
    finally:
        await engine.dispose()


ADAPTERS = build_adapters(load_settings(env_file=None))


async def test_the_page_tells_each_marketplace_the_notice_and_the_incidents_and_nothing_private(
        seeded: Repository) -> None:
    async with running_api([build_status_router(seeded, ADAPTERS, clock=lambda: NOW)]) as api:
        async with api.client.get("/status") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert response.headers["Cache-Control"] == "public, max-age=5"
            page = await response.text()
        async with api.client.head("/status") as response:
            assert response.status == 200
    cards = {name: page.split(f"<h3>{name}</h3>", 1)[1].split("</li>", 1)[0]
             for name in ("eBay", "Vinted", "Facebook Marketplace", "Craigslist", "Reddit")}
    assert "Blocked" in cards["eBay"] and "refusing our requests" in cards["eBay"]
    assert "2025-06-01 11:57 UTC" in cards["eBay"]  # since the circuit opened
    assert "Degraded" in cards["Vinted"] and "not answering in time" in cards["Vinted"]
    assert "Paused by operators" in cards["Facebook Marketplace"] and PAUSE_REASON in cards["Facebook Marketplace"]
    assert "Working" in cards["Craigslist"]
    assert "Working" in cards["Reddit"] and "Not checked yet" in cards["Reddit"]
    assert NOTICE in page and "An old notice" not in page
    assert page.index(NOTICE) < page.index("Marketplaces")  # at the top
    assert "1 marketplace blocked, 1 marketplace degraded, 1 marketplace paused by operators." in page
    incidents = page.split("Incidents in the last 7 days", 1)[1]
    assert incidents.index("eBay: checks stopped") < incidents.index("Facebook Marketplace: paused by operators")
    assert incidents.index("Alert lag (p95): warning") < incidents.index("eBay: checks work again")
    assert "old" not in incidents.split("eBay: checks work again", 1)[1].split("</ol>")[0]  # 8 days ago: gone
    assert "RSS" not in incidents  # one user's feed host is not the marketplace
    assert "Alerts waiting to be sent</dt>\n      <dd>1 (oldest waiting 30 s)" in page
    for word in PRIVATE:
        assert word not in page, word
    assert "<script" not in page.lower()


async def test_a_flood_costs_one_reading_per_period(seeded: Repository) -> None:
    reads = 0
    clock_now = NOW

    def clock() -> datetime:
        nonlocal reads
        reads += 1  # the router asks the time once per reading
        return clock_now

    router = build_status_router(seeded, ADAPTERS, clock=clock, max_age=3600)
    async with running_api([router]) as api:
        for _ in range(20):
            async with api.client.get("/status") as response:
                assert response.status == 200
    assert reads == 1


async def test_the_page_says_so_while_the_database_cannot_be_read(database_url: str) -> None:
    engine = create_engine(database_url)  # never migrated: every read fails
    try:
        router = build_status_router(Repository(session_factory(engine)), ADAPTERS, clock=lambda: NOW)
        async with running_api([router]) as api, api.client.get("/status") as response:
            assert response.status == 503
            assert "cannot read its own status" in await response.text()
    finally:
        await engine.dispose()


async def test_threshold_changes_are_recorded_for_the_page_and_reminders_are_not(seeded: Repository) -> None:
    said: list[str] = []

    async def say(message: str) -> None:
        said.append(message)

    clock = [NOW]
    threshold = Threshold("alert_lag_p95_seconds", "Alert lag (p95)", 300, 1800, "s", "2. Celery Queue Backlog")
    reporter = OpsReporter(say, clock=lambda: clock[0], thresholds=(threshold,),
                           repeat_critical=timedelta(minutes=30))
    reporter.set_recorder(audit_threshold_changes(seeded, clock=lambda: clock[0]))
    for minutes, lag in ((1, 2000.0), (40, 2000.0), (41, 10.0)):  # critical, a reminder, recovered
        clock[0] = NOW + timedelta(minutes=minutes)
        await reporter.evaluate({"alert_lag_p95_seconds": lag})
    assert len(said) == 3
    events = await seeded.load_public_events(since=NOW)
    assert [(e.action, e.target) for e in events] == [("ops.threshold.ok", "alert_lag_p95_seconds"),
                                                      ("ops.threshold.critical", "alert_lag_p95_seconds")]
    async with running_api([build_status_router(seeded, ADAPTERS, clock=lambda: clock[0])]) as api:
        async with api.client.get("/status") as response:
            page = await response.text()
    assert "Alert lag (p95): critical" in page and "Alert lag (p95): recovered" in page
