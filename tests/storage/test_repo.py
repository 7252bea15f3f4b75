"""The repository on a real database: searches, leases, one scan's transaction, the outbox, marketplace state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
import sqlalchemy as sa

from scout.errors import NotFoundError, StorageError
from scout.models import (
    Destination,
    FetchOutcome,
    Layout,
    Listing,
    MarketplaceOutcome,
    Money,
    SearchRun,
    SearchSpec,
    SearchStatus,
    SponsoredRule,
)
from scout.quiet import QuietHours
from storage.repo import DestinationSettings, Repository
from storage.tables import SearchRow

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DEST = Destination("console", "main")


def spec(query: str = "rtx 3080", **kw: object) -> SearchSpec:
    values: dict[str, object] = {"marketplaces": ("ebay",), "check_interval_minutes": 10}
    values.update(kw)
    return SearchSpec(query=query, **values)  # type: ignore[arg-type]


def listing(n: int, price: str | None = "100.00", marketplace: str = "ebay") -> Listing:
    return Listing(
        marketplace=marketplace, external_id=str(1000 + n), title=f"RTX 3080 card {n}",
        url=f"https://example.test/itm/{1000 + n}", price=Money(Decimal(price), "USD") if price else None,
    )


async def add(repo: Repository, query: str = "rtx 3080", owner: str = "alice", **kw: object):  # type: ignore[no-untyped-def]
    return await repo.save_search(owner=owner, destination=DEST, scope=None, spec=spec(query, **kw), now=NOW,
                                  first_run_at=NOW)


def fetch(search_ids: list[int], listings: list[Listing], status: str = "success") -> FetchOutcome:
    return FetchOutcome(
        marketplace=listings[0].marketplace if listings else "ebay", query="rtx 3080", status=status,
        duration_ms=12, listings=tuple(listings), matches={sid: tuple(listings) for sid in search_ids},
    )


def run(search_id: int, ok: bool = True) -> SearchRun:
    return SearchRun(search_id, NOW + timedelta(minutes=10), frozenset({"ebay"}) if ok else frozenset(),
                     frozenset() if ok else frozenset({"ebay"}))


async def test_search_round_trip_keeps_every_field(repo: Repository) -> None:
    saved = await add(repo, exclude=("broken", "parts"), min_price=Decimal("100"), max_price=Decimal("499.99"),
                      currency="USD", location="sfbay", radius_km=25, sponsored=SponsoredRule.EXCLUDE)
    loaded = await repo.load_search(saved.id)
    assert loaded == saved
    assert loaded.spec.max_price == Decimal("499.99")
    assert loaded.spec.exclude == ("broken", "parts")
    assert loaded.spec.sponsored is SponsoredRule.EXCLUDE
    assert loaded.status is SearchStatus.ACTIVE
    assert loaded.created_at.tzinfo is not None


async def test_update_and_delete_search(repo: Repository) -> None:
    saved = await add(repo)
    paused = await repo.update_search(saved.id, now=NOW, status=SearchStatus.PAUSED, paused_reason="holiday")
    assert (paused.status, paused.paused_reason) == (SearchStatus.PAUSED, "holiday")
    assert await repo.delete_search(saved.id)
    assert await repo.load_search(saved.id) is None
    with pytest.raises(NotFoundError):
        await repo.update_search(saved.id, now=NOW, status=SearchStatus.ACTIVE)


async def test_claim_takes_due_active_searches_once(repo: Repository) -> None:
    due = await add(repo)
    paused = await add(repo, "paused one")
    await repo.update_search(paused.id, now=NOW, status=SearchStatus.PAUSED)
    later = await repo.save_search(owner="bob", destination=DEST, scope=None, spec=spec("later"), now=NOW,
                                   first_run_at=NOW + timedelta(hours=1))
    claimed = await repo.claim_due_searches(now=NOW, lease_until=NOW + timedelta(minutes=5), limit=10)
    assert [s.id for s in claimed] == [due.id]
    # Held by the first claim: a second scan at the same moment gets nothing.
    assert await repo.claim_due_searches(now=NOW, lease_until=NOW + timedelta(minutes=5), limit=10) == []
    # A lease that expired (its scan died) frees the search again.
    again = await repo.claim_due_searches(now=NOW + timedelta(minutes=6), lease_until=NOW + timedelta(minutes=11),
                                          limit=10)
    assert [s.id for s in again] == [due.id]
    assert later.id not in {s.id for s in again}


async def test_first_scan_is_a_baseline_and_later_listings_are_queued_once(repo: Repository) -> None:
    search = await add(repo)
    first = [listing(1), listing(2)]
    saved = await repo.save_scan(now=NOW, fetches=[fetch([search.id], first)], runs=[run(search.id)],
                                 searches={search.id: search})
    assert (saved.new_listings, saved.new_matches, saved.alerts_queued) == (2, 2, 0)

    search = await repo.load_search(search.id)
    assert search.baselined == frozenset({"ebay"})
    second = [listing(1), listing(2), listing(3)]
    saved = await repo.save_scan(now=NOW, fetches=[fetch([search.id], second)], runs=[run(search.id)],
                                 searches={search.id: search})
    assert (saved.new_listings, saved.alerts_queued) == (1, 1)
    # The same listings again: nothing new, nothing queued.
    saved = await repo.save_scan(now=NOW, fetches=[fetch([search.id], second)], runs=[run(search.id)],
                                 searches={search.id: search})
    assert (saved.new_listings, saved.alerts_queued) == (0, 0)
    alerts = await repo.load_due_deliveries(now=NOW, limit=10, platforms=["console"])
    assert [a.listing.external_id for a in alerts] == ["1003"]
    assert alerts[0].search_query == "rtx 3080"


async def test_baseline_can_be_switched_off(repo: Repository) -> None:
    search = await add(repo)
    saved = await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1)])], runs=[run(search.id)],
                                 searches={search.id: search}, baseline_first_scan=False)
    assert saved.alerts_queued == 1


async def test_a_failed_fetch_does_not_complete_the_baseline(repo: Repository) -> None:
    search = await add(repo)
    await repo.save_scan(now=NOW, fetches=[fetch([search.id], [], status="blocked")], runs=[run(search.id, ok=False)],
                         searches={search.id: search})
    search = await repo.load_search(search.id)
    assert search.baselined == frozenset()
    assert search.last_success_at is None


async def test_one_alert_per_destination_even_when_two_searches_match(repo: Repository) -> None:
    a, b = await add(repo, "rtx"), await add(repo, "3080")
    searches = {a.id: a, b.id: b}
    await repo.save_scan(now=NOW, fetches=[fetch([a.id, b.id], [listing(1)])], runs=[run(a.id), run(b.id)],
                         searches=searches)
    a, b = await repo.load_search(a.id), await repo.load_search(b.id)
    saved = await repo.save_scan(now=NOW, fetches=[fetch([a.id, b.id], [listing(2)])], runs=[run(a.id), run(b.id)],
                                 searches={a.id: a, b.id: b})
    assert saved.new_matches == 2
    assert saved.alerts_queued == 1


async def test_price_changes_are_recorded(repo: Repository) -> None:
    search = await add(repo)
    await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1, "100.00")])], runs=[run(search.id)],
                         searches={search.id: search})
    saved = await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1, "89.50")])], runs=[run(search.id)],
                                 searches={search.id: search})
    assert saved.price_changes == 1
    saved = await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1, "89.50")])], runs=[run(search.id)],
                                 searches={search.id: search})
    assert saved.price_changes == 0


async def test_scan_writes_task_logs_and_marketplace_health(repo: Repository) -> None:
    search = await add(repo)
    await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1)])], runs=[run(search.id)],
                         searches={search.id: search})
    blocked = FetchOutcome("ebay", "rtx 3080", "blocked", 5, error="HTTP 429", matches={search.id: ()})
    await repo.save_scan(now=NOW, fetches=[blocked], runs=[run(search.id, ok=False)], searches={search.id: search})
    logs = await repo.load_task_logs(since=NOW - timedelta(minutes=1))
    assert [(log.status, log.error, log.listings_found) for log in logs] == [
        ("blocked", "HTTP 429", 0), ("success", None, 1)
    ]
    state = (await repo.load_marketplace_states())["ebay"]
    assert (state.consecutive_failures, state.last_status, state.last_error) == (1, "blocked", "HTTP 429")
    assert await repo.count_failed_tasks(since=NOW - timedelta(minutes=1)) == 1


async def test_outbox_transitions(repo: Repository) -> None:
    search = await add(repo)
    await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1), listing(2), listing(3)])],
                         runs=[run(search.id)], searches={search.id: search}, baseline_first_scan=False)
    first, second, third = await repo.load_due_deliveries(now=NOW, limit=10, platforms=["console"])
    ids = [[first.outbox_id], [second.outbox_id], [third.outbox_id]]
    assert await repo.claim_deliveries(ids, now=NOW, until=NOW + timedelta(minutes=5)) == {a[0] for a in ids}
    await repo.record_sent([first.outbox_id], now=NOW)
    await repo.record_retry(Destination("console", "main"), failed=[second.outbox_id], released=[], error="HTTP 502",
                            counted=True, until=NOW + timedelta(minutes=1))
    await repo.record_dead([third.outbox_id], reason="chat not found")
    assert await repo.load_due_deliveries(now=NOW, limit=10, platforms=["console"]) == []
    retry = await repo.load_due_deliveries(now=NOW + timedelta(minutes=1), limit=10, platforms=["console"])
    assert [(a.outbox_id, a.attempts) for a in retry] == [(second.outbox_id, 1)]
    summary = await repo.outbox_summary()
    assert (summary.pending, summary.sent, summary.dead) == (1, 1, 1)
    assert summary.oldest_pending_at == NOW
    recent = await repo.load_recent_alerts(search.id)
    assert {a.status for a in recent} == {"pending", "sent", "dead"}


async def test_the_ops_snapshot_reads_how_long_each_alert_sent_lately_waited(repo: Repository) -> None:
    search = await add(repo)
    await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1), listing(2), listing(3)])],
                         runs=[run(search.id)], searches={search.id: search}, baseline_first_scan=False)
    first, second, third = await repo.load_due_deliveries(now=NOW, limit=10, platforms=["console"])
    await repo.claim_deliveries([[first.outbox_id], [second.outbox_id]], now=NOW, until=NOW + timedelta(hours=1))
    await repo.record_sent([first.outbox_id], now=NOW + timedelta(seconds=2.25))
    await repo.record_sent([second.outbox_id], now=NOW + timedelta(minutes=3, microseconds=500))
    snapshot = await repo.load_ops_snapshot(now=NOW + timedelta(minutes=5))
    # The newest first; the one still waiting is no lag yet. To the millisecond, as p95 figures are shown.
    assert snapshot.recent_lags == pytest.approx([180.0005, 2.25], abs=1e-3)
    assert (await repo.load_ops_snapshot(now=NOW + timedelta(hours=2))).recent_lags == []


async def test_marketplace_pause_is_audited(repo: Repository) -> None:
    await repo.set_marketplace_status("ebay", status="paused", reason="blocked us", actor="cli:ops", now=NOW)
    state = (await repo.load_marketplace_states())["ebay"]
    assert state.paused and state.reason == "blocked us" and state.changed_by == "cli:ops"


async def test_searches_removed_mid_scan_are_left_alone(repo: Repository) -> None:
    search = await add(repo)
    await repo.delete_search(search.id)
    saved = await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1)])], runs=[run(search.id)],
                                 searches={search.id: search}, baseline_first_scan=False)
    assert (saved.new_listings, saved.alerts_queued) == (1, 0)


async def test_a_moved_chat_takes_its_scope_along(repo: Repository) -> None:
    """Regression: after a Telegram group became a supergroup its searches kept the old chat as their scope."""
    group = Destination("telegram", "-100")
    search = await repo.save_search(owner="u", destination=group, scope="-100", spec=spec(), now=NOW,
                                    first_run_at=NOW)
    other = await repo.save_search(owner="u", destination=group, scope="guild", spec=spec(), now=NOW,
                                   first_run_at=NOW)
    quiet = QuietHours(22 * 60, 7 * 60, "Europe/Berlin")
    await repo.save_destination_settings(DestinationSettings(group, quiet, Layout.COMPACT))
    await repo.move_destination(group, Destination("telegram", "-100999"))
    moved, kept = await repo.load_search(search.id), await repo.load_search(other.id)
    assert (moved.destination.target, moved.scope) == ("-100999", "-100999")
    assert (kept.destination.target, kept.scope) == ("-100999", "guild")
    # Its quiet hours and layout go along.
    assert await repo.load_destination_settings(Destination("telegram", "-100999")) == DestinationSettings(
        Destination("telegram", "-100999"), quiet, Layout.COMPACT)
    assert await repo.load_destination_settings(group) == DestinationSettings(group)


async def test_activity_for_the_daily_summary(repo: Repository) -> None:
    search = await add(repo)
    await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1), listing(2)])], runs=[run(search.id)],
                         searches={search.id: search}, baseline_first_scan=False)
    blocked = FetchOutcome("ebay", "rtx 3080", "blocked", 5, error="HTTP 429", matches={search.id: ()})
    await repo.save_scan(now=NOW, fetches=[blocked], runs=[run(search.id, ok=False)], searches={search.id: search})
    (first, _) = await repo.load_due_deliveries(now=NOW, limit=5, platforms=["console"])
    await repo.record_sent([first.outbox_id], now=NOW)
    activity = await repo.load_activity(since=NOW - timedelta(days=1))
    assert activity == {"fetches": {"ebay": {"success": 1, "blocked": 1}}, "new_listings": 2, "alerts_sent": 1,
                        "searches": {"active": 1}}


async def test_a_scan_stores_each_searchs_last_outcome_as_documented(repo: Repository) -> None:
    search = await add(repo, marketplaces=("ebay", "craigslist"))
    await repo.save_scan(now=NOW, fetches=[fetch([search.id], [listing(1), listing(2)])], runs=[],
                         searches={search.id: search})
    later = NOW + timedelta(minutes=1)
    blocked = FetchOutcome("craigslist", "rtx 3080", "blocked", 5, error="HTTP 403", matches={search.id: ()})
    await repo.save_scan(now=later, fetches=[blocked], runs=[run(search.id, ok=False)], searches={search.id: search})

    assert (await repo.load_search(search.id)).last_outcomes == {
        "ebay": MarketplaceOutcome("success", NOW, None, 2),
        "craigslist": MarketplaceOutcome("blocked", later, "HTTP 403", 0),
    }
    async with repo._sessions() as session:
        stored = (await session.execute(sa.select(SearchRow.last_outcomes).where(SearchRow.id == search.id))).scalar()
    assert stored == {
        "ebay": {"status": "success", "at": "2026-11-28T12:00:00+00:00", "error": None, "listings": 2},
        "craigslist": {"status": "blocked", "at": "2026-11-28T12:01:00+00:00", "error": "HTTP 403", "listings": 0},
    }


async def test_an_unreadable_last_outcome_is_skipped(repo: Repository) -> None:
    """An entry written by hand (the runbook's SQL, a bad edit) must not stop the search from loading."""
    search = await add(repo)
    async with repo._sessions.begin() as session:
        await session.execute(sa.update(SearchRow).where(SearchRow.id == search.id).values(last_outcomes={
            "ebay": {"status": "empty", "at": "2026-11-28T12:00:00+00:00", "error": None, "listings": 0},
            "craigslist": {"status": "failed", "at": "yesterday"}, "reddit": "broken"}))
    assert (await repo.load_search(search.id)).last_outcomes == {"ebay": MarketplaceOutcome("empty", NOW)}


async def test_a_write_the_database_refuses_raises_storage_error_and_keeps_nothing(repo: Repository) -> None:
    """Regression: a price beyond Numeric(18, 4) ("US $99,999,999,999,999,999.00") made PostgreSQL refuse the whole
    scan with an unhandled DataError; the scan now learns which fetch it was and why, and records it as failed."""
    if repo.dialect != "postgresql":
        pytest.skip("SQLite stores any number in a NUMERIC column; only PostgreSQL enforces the precision")
    search = await add(repo)
    absurd = msgspec.structs.replace(listing(1), price=Money(Decimal("99999999999999999.00"), "USD"))
    with pytest.raises(StorageError, match="numeric field overflow"):
        await repo.save_scan(now=NOW, fetches=[fetch([search.id], [absurd])], runs=[run(search.id)],
                             searches={search.id: search})
    assert (await repo.load_search(search.id)).last_outcomes == {}
    assert await repo.load_task_logs(since=NOW - timedelta(minutes=1)) == []
