"""The operations runbook's diagnosis and remediation SQL (sections 3 and 5), run verbatim on PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from scout.models import Destination, FetchOutcome, SearchRun, SearchSpec, SearchStatus
from storage.db import create_engine, session_factory, upgrade
from storage.repo import Repository
from tests.db import fresh_database

RUNBOOK = Path(__file__).resolve().parents[3] / "shared" / "seed" / "ops-runbook.md"

SECTION_3_BY_MARKETPLACE = """SELECT marketplace, status, COUNT(*)
FROM task_logs
WHERE task_name = 'run_search_task'
  AND created_at > NOW() - INTERVAL '1 hour'
GROUP BY marketplace, status;"""

SECTION_3_FAILURES = """SELECT error, COUNT(*)
FROM task_logs
WHERE status = 'failed'
  AND created_at > NOW() - INTERVAL '1 hour'
GROUP BY error
LIMIT 10;"""

SECTION_3_SLOW_DOWN = """UPDATE searches
SET check_interval_minutes = check_interval_minutes * 2
WHERE status = 'active'
  AND check_interval_minutes < 120;"""

SECTION_5_ERROR_PATTERNS = """SELECT
  SUBSTRING(error FROM 1 FOR 100) as error_sample,
  COUNT(*)
FROM task_logs
WHERE status = 'failed'
  AND created_at > NOW() - INTERVAL '30 minutes'
  AND task_name LIKE '%scrape%'
GROUP BY error_sample
ORDER BY COUNT(*) DESC;"""

SECTION_5_PAUSE = """UPDATE searches
SET status = 'paused'
WHERE 'ebay' = ANY(marketplaces)
  AND status = 'active';"""

SECTION_5_RESUME = """UPDATE searches
SET status = 'active'
WHERE 'ebay' = ANY(marketplaces)
  AND status = 'paused';"""

ALL = [SECTION_3_BY_MARKETPLACE, SECTION_3_FAILURES, SECTION_3_SLOW_DOWN, SECTION_5_ERROR_PATTERNS, SECTION_5_PAUSE,
       SECTION_5_RESUME]


def test_the_statements_are_the_runbooks_own() -> None:
    if not RUNBOOK.is_file():
        pytest.skip(f"the runbook is not at {RUNBOOK}")
    text = RUNBOOK.read_text()
    for statement in ALL:
        indented = "\n".join("   " + line if line else line for line in statement.splitlines())
        assert statement in text or indented in text, statement.splitlines()[0]


@pytest.mark.postgres
async def test_runbook_sql_diagnoses_and_remedies(tmp_path: Path) -> None:
    if not os.environ.get("DEALSCOUT_TEST_POSTGRES_URL"):
        pytest.skip("DEALSCOUT_TEST_POSTGRES_URL is not set: the runbook's SQL is PostgreSQL's")
    async with fresh_database("postgres", tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            repo = Repository(session_factory(engine))
            now = datetime.now(UTC)
            ids = {}
            for name, markets, interval in (("a", ("ebay",), 10), ("b", ("ebay", "craigslist"), 90),
                                            ("c", ("craigslist",), 30), ("d", ("ebay",), 120)):
                spec = SearchSpec(query=name, marketplaces=markets, check_interval_minutes=interval)
                search = await repo.save_search(owner="o", destination=Destination("console", "main"), scope=None,
                                                spec=spec, now=now, first_run_at=now)
                ids[name] = search.id
            fetches = [
                FetchOutcome("ebay", "a", "blocked", 5, error="HTTP 429"),
                FetchOutcome("ebay", "b", "failed", 5, error="layout changed: no results list"),
                FetchOutcome("ebay", "d", "failed", 5, error="layout changed: no results list"),
                FetchOutcome("craigslist", "c", "success", 5),
            ]
            runs = [SearchRun(i, now + timedelta(minutes=10), frozenset()) for i in ids.values()]
            await repo.save_scan(now=now, fetches=fetches, runs=runs, searches={})
            async with engine.begin() as conn:
                by_market = {(m, s): n for m, s, n in (await conn.execute(sa.text(SECTION_3_BY_MARKETPLACE))).all()}
                assert by_market == {("ebay", "blocked"): 1, ("ebay", "failed"): 2, ("craigslist", "success"): 1}
                failures = dict((await conn.execute(sa.text(SECTION_3_FAILURES))).all())
                assert failures == {"layout changed: no results list": 2}
                # Section 5 narrows to task names with 'scrape' in them; the scan's rows are 'run_search_task'.
                assert (await conn.execute(sa.text(SECTION_5_ERROR_PATTERNS))).all() == []

                await conn.execute(sa.text(SECTION_3_SLOW_DOWN))
                await conn.execute(sa.text(SECTION_5_PAUSE))
            intervals = {s.query: (s.spec.check_interval_minutes, s.status) for s in await repo.load_searches()}
            assert intervals == {
                "a": (20, SearchStatus.PAUSED), "b": (180, SearchStatus.PAUSED),
                "c": (60, SearchStatus.ACTIVE), "d": (120, SearchStatus.PAUSED),
            }
            # Paused by the runbook's SQL, the service's own claim skips them.
            claimed = await repo.claim_due_searches(now=now + timedelta(hours=1), lease_until=now + timedelta(hours=2),
                                                    limit=10)
            assert [s.query for s in claimed] == ["c"]
            await repo.release_searches([s.id for s in claimed])
            async with engine.begin() as conn:
                await conn.execute(sa.text(SECTION_5_RESUME))
            statuses = {s.query: s.status for s in await repo.load_searches()}
            assert set(statuses.values()) == {SearchStatus.ACTIVE}
        finally:
            await engine.dispose()
