"""Scale drill: 2 leaders and 3 workers on a real PostgreSQL and a real Redis scan 60 searches on 3 marketplaces
while a worker is killed mid-task, Redis restarts with messages on its queue, and the active leader is killed;
every search is still scanned in time, no fetch group commits twice, no host gets more than its budget, every
alert reaches its chat once, and the queue drains to 0.

    DEALSCOUT_TEST_POSTGRES_URL=postgresql://... .venv/bin/pytest -rA tests/drills/test_scale_drill.py

The drill runs on the real clock with minutes made seconds: searches run every minute, leases last 20 s, and the
marketplaces' request budgets are raised to match (DEALSCOUT_DRILL_BUDGETS, see tests.drills.leader_process); each
is still a moving window a burst of due fetches overruns, so the shared budget denies requests and the workers
put those tasks off. The summary line is printed whatever the verdict; the processes' logs stay in tmp_path.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from bot.commands import Actor, Commands
from dealscout.app import Store, open_store
from dealscout.broker import QUEUE
from scout.config import load_settings
from scout.models import Destination
from scrapers.registry import build_adapters
from scrapers.shared_budget import budget_window
from storage.tables import SearchRow, TaskLogRow
from tests.db import fresh_database, postgres_url
from tests.drills import DRILL_SUMMARY
from tests.drills.leader_process import BUDGETS_ENV
from tests.drills.process import service_environment
from tests.drills.scale_processes import (
    Child,
    free_port,
    lock_holder,
    python_module,
    redis_answers,
    redis_server,
    sender_of,
    until,
)
from tests.drills.scale_world import MARKETS, QUERIES, Arrivals, Catalogue, Pair, Watch, build_watches
from tests.drills.service_process import RESOLVE_ENV
from tests.fakes.marketplace import FakeMarketplace
from tests.fakes.telegram_api import TOKEN, FakeBotApi

pytestmark = pytest.mark.drill

LEASE_SECONDS = 20
TICK_SECONDS = 1
WORKERS, LEADERS, CONCURRENCY = 3, 2, 2
# Requests a minute: as moving windows (scrapers.shared_budget.budget_window) 2 requests in any 5 s for eBay and
# 1 in any 2 s for the others, so the five fetches of a page set due together always overrun them.
BUDGETS = {"ebay": 24.5, "craigslist": 30.5, "kleinanzeigen": 30.5}
# The fake host times a request when it arrives, the budget when a worker takes the slot just before sending it:
# two requests a window apart may arrive this much closer together.
ARRIVAL_TOLERANCE_SECONDS = 0.25
HELD = ("kleinanzeigen", "road bike")  # the page whose answer is held while its worker is killed
QUEUED_BEFORE_RESTART = 3  # messages Redis must hold when it restarts, so their loss is certain
WATCH_SECONDS = 0.5
STARTUP_TIMEOUT = 60.0

Logs = Callable[[], str]  # the tails of every process's log, for a failure's message


def burst_wait_seconds() -> float:
    """How long the last of a page set's fetches, all due at once, waits for its marketplace's budget."""
    waits = []
    for rate in BUDGETS.values():
        hits, window = budget_window(rate)
        waits.append((math.ceil(len(QUERIES) / hits) - 1) * window)
    return float(max(waits))


@dataclass
class Scan:
    search_id: int
    due: datetime
    ran: datetime

    @property
    def late(self) -> float:
        return (self.ran - self.due).total_seconds()


class Watcher:
    """Reads the searches table every half second: each new last_run_at is a scan, due when the next_run_at seen
    before it said."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.due: dict[int, datetime] = {}
        self.last: dict[int, datetime | None] = {}
        self.leased: dict[int, bool] = {}
        self.scans: list[Scan] = []

    async def poll(self) -> None:
        query = sa.select(SearchRow.id, SearchRow.next_run_at, SearchRow.last_run_at, SearchRow.lease_token)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        for search_id, next_run, last_run, lease in rows:
            if search_id in self.last and last_run is not None and last_run != self.last[search_id]:
                self.scans.append(Scan(search_id, self.due[search_id], last_run))
            self.last[search_id], self.due[search_id], self.leased[search_id] = last_run, next_run, lease is not None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_SECONDS)  # polling other processes' writes

    def scanned_since(self, moment: datetime) -> bool:
        return all(ran is not None and ran > moment for ran in self.last.values())


@dataclass
class Events:
    """What the disruptions did, for the summary."""

    killed_worker: str = ""
    killed_pool_pid: int = 0
    held_version: int = 0
    killed_leader: str = ""
    takeover_seconds: float = 0.0
    at_risk: set[Pair] = field(default_factory=set)  # delivered but not recorded as sent when the leader died
    lost_messages: int = 0
    freeze_seconds: float = 0.0
    killed_at: datetime | None = None  # the worker
    leader_killed_at: datetime | None = None
    restarted_at: datetime | None = None
    ended_at: datetime | None = None


@asynccontextmanager
async def running_fakes() -> AsyncIterator[tuple[dict[str, FakeMarketplace], FakeBotApi]]:
    async with AsyncExitStack() as stack:
        markets = {market.key: await stack.enter_async_context(FakeMarketplace()) for market in MARKETS}
        telegram = await stack.enter_async_context(FakeBotApi())
        yield markets, telegram


def drill_env(database_url: str, broker: str, markets: dict[str, FakeMarketplace], telegram: FakeBotApi,
              data_dir: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url, "DEALSCOUT_DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO",
        "CELERY_BROKER_URL": broker, "SCAN_TICK_SECONDS": str(TICK_SECONDS), "SCAN_LEASE_SECONDS": str(LEASE_SECONDS),
        "LEADER_POLL_SECONDS": "1", "WORKER_CONCURRENCY": str(CONCURRENCY), "WORKER_METRICS_PORT": "0",
        "DELIVERY_TICK_SECONDS": "0.2", "DELIVERY_BACKOFF_SECONDS": "0.5", "DELIVERY_BACKOFF_MAX_SECONDS": "5",
        "BASELINE_FIRST_SCAN": "false", "DEFAULT_MARKETPLACES": "ebay", "RESPECT_ROBOTS_TXT": "false",
        "HTTP_MAX_RETRIES": "1", "OPS_HTTP_PORT": "0", "OPS_EVALUATE_SECONDS": "3600",
        "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_API_URL": telegram.base_url, "TELEGRAM_MODE": "polling",
        RESOLVE_ENV: json.dumps({market.host: markets[market.key].url for market in MARKETS}),
        BUDGETS_ENV: json.dumps(BUDGETS),
    }


async def save_searches(store: Store, env: dict[str, str], watches: list[Watch],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each watch saved as its chat's user would, every minute: the drill's time scale. The adapters' floor on
    the interval (5 to 10 minutes) is lowered for this process's commands alone; no scan reads it."""
    adapters = build_adapters(load_settings(env, env_file=None))
    for market in MARKETS:
        monkeypatch.setattr(type(adapters[market.key]), "min_interval_minutes", 1)
    commands = Commands(store.repo, adapters, clock=lambda: datetime.now(UTC))
    for watch in watches:
        await commands.add_search(Actor(str(watch.chat)), watch.destination, scope=str(watch.chat),
                                  **watch.search_fields())


async def set_due(engine: AsyncEngine, when: datetime) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.update(SearchRow).values(next_run_at=when))


async def queue_depth(url: str) -> int:
    client = aioredis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return int(await client.llen(QUEUE))
    finally:
        await client.aclose()


async def unrecorded(engine: AsyncEngine) -> set[Pair]:
    """Alerts the outbox does not have as sent."""
    async with engine.connect() as connection:
        rows = await connection.execute(sa.text(
            "SELECT o.target, l.marketplace, l.external_id FROM alert_outbox o JOIN listings l ON l.id = o.listing_id "
            "WHERE o.platform = 'telegram' AND o.kind = 'alert' AND o.status <> 'sent'"))
        return {(Destination("telegram", target), marketplace, external_id) for target, marketplace, external_id in rows}


async def commits(engine: AsyncEngine) -> list[tuple[str, str, str, int]]:
    """(marketplace, query, status, listings found) of every run_search_task commit."""
    query = sa.select(TaskLogRow.marketplace, TaskLogRow.query, TaskLogRow.status, TaskLogRow.listings_found)
    async with engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(query)).all()]  # type: ignore[misc]


def tightest_windows(markets: dict[str, FakeMarketplace]) -> dict[str, float]:
    """Per marketplace: the shortest span holding one request more than its budget's window allows (a span at or
    past the window keeps the budget); inf when there were too few requests to tell."""
    spans = {}
    for key, rate in BUDGETS.items():
        hits, _ = budget_window(rate)
        times = sorted(request.at for request in markets[key].requests)
        spans[key] = min((times[i + hits] - times[i] for i in range(len(times) - hits)), default=math.inf)
    return spans


def denials(workers: list[Child]) -> Counter[str]:
    """Budget denials per marketplace, as the workers logged them when they put a task off."""
    counted: Counter[str] = Counter()
    for worker in workers:
        for lane in re.findall(r"the shared request budget of (\S+) is spent", worker.all_logs()):
            counted[next((m.key for m in MARKETS if m.host.endswith(lane)), lane)] += 1
    return counted


@pytest.mark.timeout(400)
async def test_scale_drill(tmp_path: Path, record_property: Callable[[str, object], None],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH: the drill restarts a Redis of its own")
    postgres_url()
    began = time.monotonic()
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    watches = build_watches()
    redis = redis_server(port, tmp_path)
    leaders: list[Child] = []
    workers: list[Child] = []
    async with fresh_database("postgres", tmp_path) as url, running_fakes() as (markets, telegram):
        catalogue = Catalogue(markets)
        arrivals = Arrivals(telegram)
        env = drill_env(url, broker, markets, telegram, tmp_path)
        child_env = service_environment(env)
        leaders = [Child(f"leader-{n}", python_module("tests.drills.leader_process"), child_env, tmp_path)
                   for n in range(1, LEADERS + 1)]
        workers = [Child(f"worker-{n}", python_module("tests.drills.worker_process", f"celery@scale-worker-{n}"),
                         child_env, tmp_path) for n in range(1, WORKERS + 1)]

        def logs() -> str:
            return "\n".join(child.tail() for child in [*leaders, *workers] if child.lives)

        async with open_store(load_settings(env, env_file=None)) as store:
            engine = store.engine
            await save_searches(store, env, watches, monkeypatch)
            await set_due(engine, datetime.now(UTC) + timedelta(hours=1))  # none due until everyone is up
            watcher = Watcher(engine)
            events = Events()
            stop_watching = asyncio.Event()
            watching: asyncio.Task[None] | None = None
            try:
                await redis.start()
                await until("redis answers", lambda: redis_answers(broker), 10, redis.tail)
                for child in [*leaders, *workers]:
                    await child.start()
                await until("one leader leads, one stands by", lambda: _roles_settled(leaders), STARTUP_TIMEOUT, logs)
                await until("every worker is ready", lambda: _ready(workers), STARTUP_TIMEOUT, logs)

                # Go: every search is due now; the first fetch of the held page will hang until its worker dies.
                release = catalogue.hold(*HELD)
                started_at = datetime.now(UTC)
                await set_due(engine, started_at)
                await watcher.poll()
                watching = asyncio.create_task(watcher.run(stop_watching))

                await kill_worker_mid_task(catalogue, markets, workers, events, release, logs)
                await kill_active_leader(engine, leaders, arrivals, events, logs)
                await restart_redis_with_messages_queued(redis, broker, watcher, workers, events, logs)
                await until("every search scanned again after the Redis restart",
                            _async(lambda: watcher.scanned_since(events.restarted_at)), 2 * LEASE_SECONDS + 75, logs)

                # The end: an operator pauses the marketplaces, so no task is sent any more; what runs finishes.
                events.ended_at = datetime.now(UTC)
                for market in MARKETS:
                    await store.repo.set_marketplace_status(market.key, status="paused", reason="the drill ends",
                                                            actor="drill", now=events.ended_at)
                stop_watching.set()
                await watching
                await until("every task committed and the queue empty", lambda: _settled(engine, broker), 60, logs)
                committed = await commits(engine)
                newest = _newest_versions(committed, catalogue)
                expected = catalogue.expected(watches, newest)
                await until("every expected alert delivered",
                            _async(lambda: all(arrivals.update()[pair] for pair in expected)), 60, logs)
                final_depth = await queue_depth(broker)
            finally:
                stop_watching.set()
                if watching is not None:
                    with suppress(Exception):
                        await watching
                catalogue.release_all()
                for child in [*workers, *leaders]:
                    if child.running:
                        await child.stop()
                await redis.kill()
        delivered = arrivals.update()
    took = time.monotonic() - began

    # The verdict.
    bound = LEASE_SECONDS + burst_wait_seconds() + events.freeze_seconds + 5 * TICK_SECONDS
    latest = max(watcher.scans, key=lambda scan: scan.late)
    overdue = [search_id for search_id, due in watcher.due.items()
               if (events.ended_at - due).total_seconds() > bound]
    unscanned = [search_id for search_id in watcher.due if not any(s.search_id == search_id for s in watcher.scans)]
    by_version = Counter((m, q, n) for m, q, status, n in committed if status == "success")
    twice = sorted(key for key, times in by_version.items() if times > 1)
    failed = Counter(status for _, _, status, _ in committed if status != "success")
    held_committed = [(m, q, n) for m, q, _, n in committed
                      if (m, q) == HELD and catalogue.version_of(n) in catalogue.page_of(*HELD).held_versions]
    overdrawn = {key: span for key, span in tightest_windows(markets).items()
                 if span < budget_window(BUDGETS[key])[1] - ARRIVAL_TOLERANCE_SECONDS}
    denied = denials(workers)
    lost = sorted(expected - set(delivered))
    unexpected = sorted(set(delivered) - expected)
    repeated = {pair: times - 1 for pair, times in delivered.items() if times > 1}
    beyond_risk = sorted(pair for pair in repeated if pair not in events.at_risk)
    requests = {key: len(markets[key].requests) for key in BUDGETS}
    line = (
        f"scale drill postgres: {len(watches)} searches on {len(MARKETS)} marketplaces, {LEADERS} leaders, "
        f"{WORKERS} workers x {CONCURRENCY}, {took:.0f} s; scans {len(watcher.scans)} (every search "
        f"{min(Counter(s.search_id for s in watcher.scans).values(), default=0)}+ times), latest {latest.late:.1f} s "
        f"after due (bound {bound:.1f} s = lease {LEASE_SECONDS} + budget burst {burst_wait_seconds():.0f} + freeze "
        f"{events.freeze_seconds:.1f} + ticks), overdue at the end {len(overdue)}; commits {sum(by_version.values())} "
        f"({dict(failed) or 'none'} not successful), versions committed twice {len(twice)}, held version committed "
        f"{len(held_committed)}; requests {requests}, budget denials {dict(denied)}, tightest window "
        f"{ {k: round(v, 2) for k, v in tightest_windows(markets).items()} } s vs "
        f"{ {k: budget_window(r) for k, r in BUDGETS.items()} }; alerts expected {len(expected)}, delivered "
        f"{len(set(delivered) & expected)}, lost {len(lost)}, repeated {sum(repeated.values())} (at risk "
        f"{len(events.at_risk)} when the leader died), unexpected {len(unexpected)}; telegram messages "
        f"{arrivals.messages} ({arrivals.digests} digests); worker {events.killed_worker} killed mid-task (pool pid "
        f"{events.killed_pool_pid}, version {events.held_version}), leader {events.killed_leader} killed, taken over "
        f"in {events.takeover_seconds:.1f} s, redis restarted with {events.lost_messages} messages queued; queue at "
        f"the end {final_depth}"
    )
    record_property(DRILL_SUMMARY, line)  # printed at the end of the run, whatever the verdict
    where = f"logs in {tmp_path}"

    assert not unscanned, f"searches never scanned: {unscanned}\n{line}\n{where}"
    late = [scan for scan in watcher.scans if scan.late > bound]
    assert not late, f"{len(late)} scans late: {describe_late(late, watcher, events)}\n{line}\n{where}"
    assert not overdue, f"searches overdue when the drill ended: {overdue}\n{line}\n{where}"
    assert not twice, f"fetch groups committed twice: {twice[:5]}\n{line}\n{where}"
    assert not held_committed, f"the killed worker's task committed: {held_committed}\n{line}\n{where}"
    assert all(sum(1 for m, q, _, _ in committed if (m, q) == key) <= page.versions
               for key, page in catalogue.pages.items()), f"more commits than requests\n{line}"
    assert not overdrawn, f"hosts sent more than their budget in a window: {overdrawn}\n{line}\n{where}"
    assert all(denied[key] for key in BUDGETS), f"the shared budget never denied a marketplace\n{line}\n{where}"
    assert not unexpected, f"alerts no search asked for: {unexpected[:5]}\n{line}\n{where}"
    assert not lost, f"{len(lost)} alerts lost, e.g. {lost[:5]}\n{line}\n{where}"
    assert not beyond_risk, f"alerts repeated that no kill left unrecorded: {beyond_risk[:5]}\n{line}\n{where}"
    assert final_depth == 0, f"{final_depth} messages left on the queue\n{line}"


def describe_late(late: list[Scan], watcher: Watcher, events: Events) -> str:
    first = late[0]
    scans = [f"due {scan.due:%H:%M:%S} ran {scan.ran:%H:%M:%S}" for scan in watcher.scans
             if scan.search_id == first.search_id]
    return (f"search {first.search_id} {scans}; worker killed {events.killed_at:%H:%M:%S}, leader killed "
            f"{events.leader_killed_at:%H:%M:%S}, redis restarted {events.restarted_at:%H:%M:%S}")


def _async(check: Callable[[], object]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return bool(check())
    return run


async def _roles_settled(leaders: list[Child]) -> bool:
    texts = [leader.log_text() for leader in leaders]
    return sum("leading:" in text for text in texts) == 1 and sum("standby:" in text for text in texts) == 1


async def _ready(workers: list[Child]) -> bool:
    return all(" ready." in worker.log_text() for worker in workers)


async def _settled(engine: AsyncEngine, broker: str) -> bool:
    async with engine.connect() as connection:
        leased = await connection.scalar(sa.select(sa.func.count()).where(SearchRow.lease_token.is_not(None)))
    return not leased and await queue_depth(broker) == 0


def _newest_versions(committed: list[tuple[str, str, str, int]], catalogue: Catalogue) -> dict[tuple[str, str], int]:
    newest: dict[tuple[str, str], int] = {}
    for marketplace, query, status, found in committed:
        if status == "success":
            key = (marketplace, query)
            newest[key] = max(newest.get(key, 0), catalogue.version_of(found))
    return newest


async def kill_worker_mid_task(catalogue: Catalogue, markets: dict[str, FakeMarketplace], workers: list[Child],
                               events: Events, release: asyncio.Event, logs: Logs) -> None:
    """The held page's first request arrives; the pool process that sent it is found by its connection, and its
    worker's whole process group is killed with SIGKILL (main process and pool alike). A new life replaces it."""
    marketplace, query = HELD
    fake = markets[marketplace]
    path = next(market for market in MARKETS if market.key == marketplace).path(query)
    try:
        request = await asyncio.wait_for(fake.wait_for_requests(path, count=1), 40)
    except TimeoutError:
        raise AssertionError(f"the held page was never asked for\n{logs()}") from None
    assert request.peer is not None
    found = sender_of(request.peer[1], URL(fake.url).port or 0, workers)
    assert found is not None, f"no worker process holds the connection of the held request\n{logs()}"
    worker, pool_pid = found
    assert pool_pid != worker.pid, "the held request came from a worker's main process, not its pool"
    events.killed_worker, events.killed_pool_pid = worker.name, pool_pid
    events.held_version = catalogue.page_of(*HELD).held_versions[-1]
    await worker.kill()
    events.killed_at = datetime.now(UTC)
    release.set()
    await worker.start()
    await until(f"{worker.name} is ready again", lambda: _ready([worker]), STARTUP_TIMEOUT, logs)


async def kill_active_leader(engine: AsyncEngine, leaders: list[Child], arrivals: Arrivals, events: Events,
                             logs: Logs) -> None:
    """While alerts are flowing, SIGKILL the leader that holds the lock; the standby must lead within seconds. The
    alerts it had delivered but not yet recorded are the only ones that may arrive twice (Telegram has no nonce)."""
    await until("alerts flowing", _async(lambda: arrivals.update() and arrivals.messages > 0), 60, logs)
    holder = await lock_holder(engine, leaders)
    assert holder is not None, f"no leader holds the lock\n{logs()}"
    standby = next(leader for leader in leaders if leader is not holder)
    await holder.kill()
    killed = time.monotonic()
    events.leader_killed_at = datetime.now(UTC)
    delivered = arrivals.update()
    events.at_risk = {pair for pair in await unrecorded(engine) if delivered[pair]}
    events.killed_leader = holder.name
    await until("the standby leads", _async(lambda: "leading:" in standby.log_text()), 30, logs)
    events.takeover_seconds = time.monotonic() - killed
    await holder.start()  # back as the standby


async def restart_redis_with_messages_queued(redis: Child, broker: str, watcher: Watcher, workers: list[Child],
                                             events: Events, logs: Logs) -> None:
    """Once every search has been scanned and the next round comes due, the workers are frozen (SIGSTOP) so the
    leader's messages pile up, then Redis is stopped and started again on its port: the messages are gone, and
    their searches must be claimed again when their leases expire."""

    def next_round_due() -> bool:
        soon = datetime.now(UTC) + timedelta(seconds=1)
        scanned = {scan.search_id for scan in watcher.scans}
        return len(scanned) == len(watcher.due) and any(due <= soon for due in watcher.due.values())

    await until("every search scanned once and the next round due", _async(next_round_due), 120, logs)
    frozen = time.monotonic()
    for worker in workers:
        worker.signal_group(signal.SIGSTOP)
    try:
        await until(f"{QUEUED_BEFORE_RESTART} messages queued", lambda: _queued(broker), 30, logs)
        events.lost_messages = await queue_depth(broker)
        await redis.stop()
        await redis.start()
        await until("redis answers again", lambda: redis_answers(broker), 10, redis.tail)
        events.restarted_at = datetime.now(UTC)
    finally:
        for worker in workers:
            worker.signal_group(signal.SIGCONT)
        events.freeze_seconds = time.monotonic() - frozen


async def _queued(broker: str) -> bool:
    return await queue_depth(broker) >= QUEUED_BEFORE_RESTART
