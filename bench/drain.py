"""Draining the outbox: alerts per second from the real Dispatcher to a console notifier, and what the ops queries
cost, on a database that holds a long history of sent alerts.

The database is built in a temp folder (SQLite) or, with `--database-url postgresql://...`, in a new database on that
server, created and dropped by the benchmark. It is migrated to the head, then seeded with plain bulk inserts:
`--destinations` console chats, one search each; `--history` sent alerts spread over the chats and the last two days
(the ops queries' haystack); listings enough for every alert to have its own listing within its chat. Then, for each
size in `--pending`, that many alerts are queued (round robin over the chats, created over the last minute) and the
real Dispatcher (the service's batch and per-chat share) drains them to a ConsoleNotifier whose output is counted
and thrown away. On PostgreSQL the history is analyzed, as autovacuum would after such growth, but each backlog is
not: a burst of alerts is drained before autovacuum's next look, with statistics that say nearly nothing is waiting.
Printed: alerts/s per size, the cost of each ops query at the final table size, and the query plans of the drain's
reads and the ops queries.

Run from the project root:
    .venv/bin/python -m bench.drain [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
Defaults: 50 chats, 1,000,000 sent alerts of history, 10,000 then 100,000 pending. About a minute on SQLite, a
minute and a half on PostgreSQL (most of it seeding).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import print_table
from bot.console import ConsoleNotifier
from scout.delivery import Dispatcher
from storage.db import create_engine, session_factory, upgrade
from storage.repo import Repository
from storage.tables import ListingRow, OutboxRow, SearchRow

TARGET_ALERTS_PER_S = 1000.0
# Rows per INSERT round trip while seeding.
SEED_CHUNK = 20_000
# Each ops query is timed this many times; the median is printed.
QUERY_RUNS = 21
# Where the sent history and the queued alerts sit in time, before the benchmark's "now".
HISTORY_SPAN = timedelta(days=2)
QUEUED_SPAN = timedelta(minutes=1)


class CountingStream(io.TextIOBase):
    """Where the console notifier prints: counts the alerts, keeps nothing."""

    def __init__(self) -> None:
        self.alerts = 0

    def write(self, text: str) -> int:
        self.alerts += text.startswith("DEAL ")
        return len(text)


@asynccontextmanager
async def bench_database(server_url: str | None) -> AsyncIterator[str]:
    """A new empty database: a SQLite file in a temp folder, or a database created (and then dropped) on the
    PostgreSQL server named by `server_url`."""
    if server_url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'drain.db'}"
        return
    name = f"dealscout_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url)
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


class Seeder:
    """Bulk inserts straight into the tables: chats with one search each, listings, sent and queued alerts."""

    def __init__(self, engine: AsyncEngine, destinations: int, now: datetime) -> None:
        self.engine = engine
        self.targets = [f"chat-{n:04d}" for n in range(destinations)]
        self.now = now
        self.listings = 0
        self.used = [0] * destinations  # listings each chat already has an alert for

    async def insert(self, table: Any, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), SEED_CHUNK):
            async with self.engine.begin() as conn:
                await conn.execute(sa.insert(table), rows[start:start + SEED_CHUNK])

    async def searches(self) -> None:
        await self.insert(SearchRow.__table__, [
            {"id": n + 1, "owner": "bench", "platform": "console", "target": target, "query": f"lego {n}",
             "exclude_words": [], "marketplaces": ["ebay"], "check_interval_minutes": 5, "status": "active",
             "created_at": self.now, "updated_at": self.now, "next_run_at": self.now + timedelta(days=1),
             "baselined": ["ebay"], "last_outcomes": {}, "unpriced": "include"}
            for n, target in enumerate(self.targets)
        ])

    async def ensure_listings(self, count: int) -> None:
        if count <= self.listings:
            return
        await self.insert(ListingRow.__table__, [
            {"id": n, "marketplace": "ebay", "external_id": str(100_000_000 + n), "title": f"LEGO set {n}",
             "url": f"https://www.ebay.com/itm/{100_000_000 + n}", "price": n % 500 + 1, "currency": "USD",
             "location": "Portland, OR", "first_seen_at": self.now, "last_seen_at": self.now}
            for n in range(self.listings + 1, count + 1)
        ])
        self.listings = count

    async def alerts(self, count: int, *, sent: bool, span: timedelta) -> None:
        """`count` alerts round robin over the chats, created evenly over `span` before now; sent a second after
        they were created, or pending and due now."""
        chats = len(self.targets)
        await self.ensure_listings(max(self.used) + -(-count // chats))
        rows = []
        for n in range(count):
            chat = n % chats
            self.used[chat] += 1
            created = self.now - span + span * (n / count)
            rows.append({
                "kind": "alert", "platform": "console", "target": self.targets[chat], "listing_id": self.used[chat],
                "search_id": chat + 1, "status": "sent" if sent else "pending", "attempts": 1 if sent else 0,
                "next_attempt_at": created, "created_at": created,
                "sent_at": created + timedelta(seconds=1) if sent else None,
            })
        await self.insert(OutboxRow.__table__, rows)
        if sent and self.engine.dialect.name == "postgresql":
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text("VACUUM ANALYZE alert_outbox"))


async def drain(repo: Repository, pending: int) -> tuple[float, int]:
    """Drain everything with the service's Dispatcher; returns (seconds, alerts printed)."""
    stream = CountingStream()
    dispatcher = Dispatcher(repo, {"console": ConsoleNotifier(stream)}, clock=lambda: datetime.now(UTC),
                            rng=random.Random(1))
    started = time.perf_counter()
    report = await dispatcher.drain()
    elapsed = time.perf_counter() - started
    if report.sent != pending or stream.alerts != pending:
        raise SystemExit(f"drained {report.sent} (printed {stream.alerts}) of {pending} pending alerts")
    return elapsed, stream.alerts


class Statements:
    """Records the SELECTs an engine runs, to show their plans."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.recording = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                _executemany: bool) -> None:
        if self.recording and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.seen.append((statement, parameters))

    async def during(self, call: Callable[[], Awaitable[object]]) -> list[tuple[str, Any]]:
        self.seen, self.recording = [], True
        try:
            await call()
        finally:
            self.recording = False
        return self.seen


async def explain(engine: AsyncEngine, statement: str, parameters: Any) -> str:
    if engine.dialect.name == "sqlite":
        prefix, column = "EXPLAIN QUERY PLAN ", -1
    else:
        prefix, column = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) ", 0
    async with engine.connect() as conn:
        rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
    return "\n".join("    " + str(row[column]) for row in rows)


async def raw_ms(engine: AsyncEngine, statement: str, parameters: Any) -> float:
    """The statement alone, through the driver with no ORM: its cost in the database (median, milliseconds)."""
    async with engine.connect() as conn:
        return await timed(lambda: conn.exec_driver_sql(statement, parameters), runs=5)


async def timed(call: Callable[[], Awaitable[object]], runs: int = QUERY_RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


async def run(server_url: str | None, destinations: int, history: int, sizes: list[int], plans: bool) -> int:
    now = datetime.now(UTC)
    async with bench_database(server_url) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            repo = Repository(session_factory(engine))
            statements = Statements(engine)
            seeder = Seeder(engine, destinations, now)
            started = time.perf_counter()
            await seeder.searches()
            await seeder.alerts(history, sent=True, span=HISTORY_SPAN)
            print(f"{engine.dialect.name}: seeded {destinations} chats, {history:,} sent alerts in "
                  f"{time.perf_counter() - started:.1f} s")
            results = []
            for size in sizes:
                await seeder.alerts(size, sent=False, span=QUEUED_SPAN)
                if plans:
                    print(f"\nThe drain's reads with {size:,} pending (load_due_deliveries):")
                    for statement, parameters in await statements.during(lambda: repo.load_due_deliveries(
                            now=datetime.now(UTC), limit=1000, platforms=["console"], per_destination=30)):
                        print("  " + " ".join(statement.split())[:160] + " ...")
                        print(await explain(engine, statement, parameters))
                elapsed, printed = await drain(repo, size)
                results.append((f"{size:,} pending", f"{printed:,}", f"{elapsed:.2f}", f"{printed / elapsed:,.0f}"))
            print()
            print_table(["drain", "alerts", "seconds", "alerts/s"], results)
            rows = history + sum(sizes)
            queries: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                ("load_ops_snapshot", lambda: repo.load_ops_snapshot(now=datetime.now(UTC))),
                ("outbox_summary", repo.outbox_summary),
                ("load_recent_alerts (search show)", lambda: repo.load_recent_alerts(destinations // 2 + 1)),
                ("load_activity (last hour)", lambda: repo.load_activity(since=datetime.now(UTC) - timedelta(hours=1))),
            ]
            print(f"\nOps queries with {rows:,} outbox rows (median of {QUERY_RUNS}):")
            print_table(["query", "ms"], [(name, f"{await timed(call):.2f}") for name, call in queries])
            if plans:
                for name, call in queries:
                    print(f"\n{name}:")
                    for statement, parameters in await statements.during(call):
                        cost = await raw_ms(engine, statement, parameters)
                        print(f"  [{cost:.2f} ms alone] " + " ".join(statement.split())[:160] + " ...")
                        print(await explain(engine, statement, parameters))
            slowest = min(float(row[3].replace(",", "")) for row in results)
            print(f"\nslowest drain {slowest:,.0f} alerts/s (target >= {TARGET_ALERTS_PER_S:,.0f})")
            return 0 if slowest >= TARGET_ALERTS_PER_S else 1
        finally:
            await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server to create a scratch database on "
                                               "(default: a SQLite file in a temp folder)")
    parser.add_argument("--destinations", type=int, default=50, help="console chats the alerts go to")
    parser.add_argument("--history", type=int, default=1_000_000, help="sent alerts already in the outbox")
    parser.add_argument("--pending", type=int, nargs="+", default=[10_000, 100_000],
                        help="drain this many pending alerts, one drain per size")
    parser.add_argument("--no-plans", action="store_true", help="leave out the query plans")
    args = parser.parse_args()
    return asyncio.run(run(args.database_url, args.destinations, args.history, args.pending, not args.no_plans))


if __name__ == "__main__":
    sys.exit(main())
