"""/api/v1/marketplaces and /api/v1/summary on the real server: states and budgets, operator actions audited and
announced as /admin's are, bad marketplace names refused, and the flat summary dashboards read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from storage.repo import Repository
from tests.api.rest import Rest, listing, running_rest, save_search, scan


@pytest.fixture
async def rest(repo: Repository) -> AsyncIterator[Rest]:
    async with running_rest(repo) as running:
        yield running


async def test_marketplaces_show_state_circuit_and_budget(rest: Rest) -> None:
    key = await rest.key("alice", "read")
    status, markets = await rest.call("GET", "/api/v1/marketplaces", key)
    assert status == 200
    ebay = next(m for m in markets if m["key"] == "ebay")
    assert (ebay["name"], ebay["state"], ebay["health"], ebay["circuit"], ebay["min_interval_minutes"]) == (
        "eBay", "active", "healthy", "closed", 5)
    assert ebay["requests_per_minute"] > 0
    assert [m["key"] for m in markets] == sorted(m["key"] for m in markets)


async def test_operator_actions_are_audited_and_announced(rest: Rest) -> None:
    admin = await rest.key("ops", "admin")
    key_id = admin.split("_")[1]
    search = await save_search(rest.repo, "alice")
    status, done = await rest.call("POST", "/api/v1/marketplaces/ebay/pause", admin, json={"reason": "blocking us"})
    assert status == 200 and done["marketplace"] == "ebay" and "blocking us" in done["message"]
    status, markets = await rest.call("GET", "/api/v1/marketplaces", admin)
    ebay = next(m for m in markets if m["key"] == "ebay")
    assert (ebay["state"], ebay["health"], ebay["paused_reason"]) == ("paused", "paused", "blocking us")
    assert (await rest.call("POST", "/api/v1/marketplaces/ebay/backoff", admin))[0] == 200
    assert (await rest.repo.load_search(search.id)).spec.check_interval_minutes == 20  # type: ignore[union-attr]
    assert (await rest.call("POST", "/api/v1/marketplaces/EBAY/resume", admin))[0] == 200
    actor = f"ops (API key {key_id})"
    assert await rest.rows("SELECT actor, action, target, detail FROM audit_log ORDER BY id") == [
        (actor, "marketplace.pause", "ebay", "blocking us"), (actor, "marketplace.backoff", "ebay", "1 searches"),
        (actor, "marketplace.resume", "ebay", None)]
    assert rest.announced == [
        f"eBay paused by {actor}: blocking us. Its searches are skipped until resumed.",
        f"eBay: {actor} doubled the check interval of 1 active searches (capped at 120 min).",
        f"eBay resumed by {actor}."]


async def test_a_bad_operator_request_is_422_and_changes_nothing(rest: Rest) -> None:
    admin = await rest.key("ops", "admin")
    status, refused = await rest.call("POST", "/api/v1/marketplaces/amazon/pause", admin)
    assert status == 422 and refused["detail"][0]["loc"] == ["path", "key"]
    assert "Unknown marketplace 'amazon'" in refused["detail"][0]["msg"]
    status, refused = await rest.call("POST", "/api/v1/marketplaces/ebay/pause", admin, json={"reason": "r" * 10_000})
    assert status == 422 and refused["detail"][0]["loc"] == ["body", "reason"]
    status, refused = await rest.call("POST", "/api/v1/marketplaces/ebay/pause", admin, json={"reason": 5})
    assert status == 422 and refused["detail"][0]["loc"] == ["body", "reason"]
    assert await rest.rows("SELECT count(*) FROM audit_log") == [(0,)]
    assert await rest.repo.load_marketplace_states() == {} and rest.announced == []


async def test_the_summary_is_one_flat_object_of_figures(rest: Rest) -> None:
    key = await rest.key("alice", "read")
    search = await save_search(rest.repo, "alice")
    paused = await save_search(rest.repo, "bob", "bike")
    await rest.repo.update_search(paused.id, now=rest.clock(), status=paused.status.PAUSED, paused_reason="x")
    start = rest.clock()
    await scan(rest.repo, search, [], now=start)
    await scan(rest.repo, search, [listing(1, "10"), listing(2, "20")], now=start + timedelta(minutes=10))
    await rest.repo.set_marketplace_status("craigslist", status="paused", reason="r", actor="ops", now=start)
    rest.clock.now = start + timedelta(minutes=15)
    status, summary = await rest.call("GET", "/api/v1/summary", key)
    assert status == 200
    assert all(isinstance(value, int | float | str) for value in summary.values())  # flat: widgets read a field
    assert (summary["active_searches"], summary["paused_searches"], summary["alerts_last_24h"]) == (1, 1, 2)
    assert (summary["outbox_backlog"], summary["outbox_oldest_seconds"]) == (2, 300.0)
    assert summary["marketplaces_paused"] == 1 and summary["marketplaces_blocked"] == 0
    assert summary["marketplaces_healthy"] + summary["marketplaces_failing"] == len(
        (await rest.call("GET", "/api/v1/marketplaces", key))[1]) - 1
    assert summary["alert_lag_p95_seconds"] == 0.0
