"""Scale-out: N searches over Q queries run as run_search_task on 1, 2 and 4 `dealscout worker` processes, against a
fake eBay that answers every search in 300 ms, on a fresh PostgreSQL database and a Redis broker.

Each run: the database's tables emptied, the broker's and the budget's Redis databases flushed, the workers started
(bench/scale_worker.py: a real `dealscout worker` with eBay pointed at the fake and its budget raised) and waited
for until their pools are up and quiet; a warm-up pass on queries of its own (`--warm-up` fetches per slot), so each
task process has connected and compiled its statements, as a long-running worker has; then the N searches seeded
(bench/scan_db.py `seed`: all due, five per query, 100 per chat) and the leader, in process
(`build_service(role="leader")`, the TaskScanner `dealscout leader` runs), claims them and sends the tasks; timed
from that first claim until every one of them has committed (searches.last_run_at set), scan_tasks is empty and
the queue is drained. The floor is a perfect pool: Q fetches of `--delay` seconds over workers x
WORKER_CONCURRENCY slots.

Run from the project root (PostgreSQL and Redis on 127.0.0.1; the database is created on the server of
--database-url and dropped at the end):
  .venv/bin/python -m bench.scale
  .venv/bin/python -m bench.scale --workers 1,2,4 --concurrency 4 --warm-up 0   # cold workers
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import redis.asyncio as aioredis
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import free_port, fresh_database
from bench.scale_report import (
    CpuMeter,
    Run,
    TaskStats,
    Timed,
    named,
    print_claims,
    print_costs,
    print_depths,
    print_profiles,
    print_runs,
    read_profiles,
    tree,
)
from bench.scale_site import ServedSite, serving
from bench.scale_worker import PROFILE_ENV, RATE_ENV, RESOLVE_ENV
from bench.scan import CountingNotifier
from bench.scan_db import StatementProfile, seed
from bench.scan_pages import EBAY_HOST, SyntheticPages
from dealscout.app import Service, build_service
from dealscout.broker import QUEUE, Broker, build_celery
from scout.config import Settings, load_settings
from scrapers.shared_budget import KEY_PREFIX as BUDGET_KEY_PREFIX
from storage.db import safe_url
from storage.tables import Base
from tests.drills.process import REPO_ROOT, service_environment

DEFAULT_DATABASE = os.environ.get("DEALSCOUT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Four task processes per worker, the product's default: a task waits on the site for 300 ms and spends a few tens
# of milliseconds of CPU (worker, PostgreSQL, Redis together), so one core keeps several busy; more processes per
# worker only multiply the ~100 MB each holds and the context switches on two cores.
DEFAULT_CONCURRENCY = 4
# eBay's budget for the fake host: 1,000 requests a second, far above what 16 slots of 300 ms can ask (53/s), yet
# finite, so every request still takes a slot in the shared Redis window as it does in production (an infinite
# rate skips the shared budget altogether).
FAKE_EBAY_PER_MINUTE = 60_000.0
SEARCHES_PER_QUERY = 5  # bench.scan_db.VARIANTS: each query's searches differ in price range and excluded words
POLL_SECONDS = 0.05  # how often the bench reads the queue depth and the committed searches while a run goes
READY_TIMEOUT_SECONDS = 180.0
QUIET_CPU_SECONDS = 0.05  # a worker's process tree that uses less than this in 0.5 s has finished starting
METRICS_TIMEOUT_SECONDS = 10.0
STALL_SECONDS = 10.0  # a run whose queue is empty and whose counts have not moved this long is stuck



def redis_db(url: str, number: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{number}"



async def reset_tables(engine: AsyncEngine) -> None:
    """Every table the service made, emptied, as a fresh database would be (the schema stays migrated)."""
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    metrics_port: int
    log: Path


class Bench:
    def __init__(self, args: argparse.Namespace, site: ServedSite, service: Service, settings: Settings,
                 worker_env: dict[str, str], log_dir: Path) -> None:
        self.args = args
        self.site = site
        self.service = service
        self.settings = settings
        self.worker_env = worker_env
        self.log_dir = log_dir
        self.pages = SyntheticPages()
        self.queries = [self.pages.query(i) for i in range(args.queries)]
        self.broker = Broker(build_celery(settings))
        # The leader's calls to the broker, timed where the TaskScanner makes them (it keeps them as attributes).
        scanner: Any = service.scanner
        self.depth_checks = scanner._backlog = Timed(scanner._backlog)
        self.sends = scanner._send = Timed(scanner._send)
        self.queue = aioredis.from_url(settings.celery_broker_url or "")
        self.budget = aioredis.from_url(settings.redis_url or "")

    async def close(self) -> None:
        await self.queue.aclose()
        await self.budget.aclose()

    def start_worker(self, run: int, index: int, concurrency: int) -> Worker:
        name = f"celery@scale-{run}-{index}"
        port = free_port()
        log = self.log_dir / f"worker-{run}-{index}.log"
        env = service_environment({**self.worker_env, "WORKER_CONCURRENCY": str(concurrency),
                                   "WORKER_METRICS_PORT": str(port)})
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each worker makes its own
        if self.args.profile:
            folder = self.log_dir / f"profile-{run}"
            folder.mkdir(exist_ok=True)
            env[PROFILE_ENV] = str(folder)
        proc = subprocess.Popen([sys.executable, "-m", "bench.scale_worker", name], cwd=REPO_ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        return Worker(name, proc, port, log)

    async def wait_ready(self, workers: list[Worker], concurrency: int) -> None:
        """Until every worker answers a ping, has its pool's processes, and its tree has gone quiet (each task
        process imports the worker side and opens its database engine and HTTP session after the fork)."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for worker in workers:
                if worker.proc.poll() is not None:
                    raise SystemExit(f"{worker.name} exited with {worker.proc.returncode}:\n"
                                     + worker.log.read_text(errors="replace")[-3000:])
            alive = await self.broker.workers_alive() or 0
            pools = all(len(tree(w.proc.pid)) >= concurrency + 1 for w in workers)
            if alive >= len(workers) and pools:
                procs = [p for w in workers for p in tree(w.proc.pid)]
                meter = CpuMeter({"workers": procs})
                await asyncio.sleep(0.5)
                spent, _ = meter.stop({"workers": procs})
                if spent["workers"] < QUIET_CPU_SECONDS:
                    return
            else:
                await asyncio.sleep(0.5)
        raise SystemExit(f"the workers were not ready within {READY_TIMEOUT_SECONDS:.0f} s (logs in {self.log_dir})")

    async def progress(self, after_id: int) -> tuple[int, int]:
        """(searches past `after_id` committed, scan tasks left)."""
        async with self.service.store.engine.connect() as conn:
            row = (await conn.execute(sa.text(
                "SELECT (SELECT count(*) FROM searches WHERE id > :after AND last_run_at IS NOT NULL), "
                "(SELECT count(*) FROM scan_tasks)"), {"after": after_id})).one()
        return int(row[0]), int(row[1])

    async def last_search_id(self) -> int:
        async with self.service.store.engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM searches"))).scalar_one())

    async def own_backends(self) -> list[psutil.Process]:
        async with self.service.store.engine.connect() as conn:
            pids = (await conn.scalars(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))).all()
        procs = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                procs.append(psutil.Process(pid))
        return procs

    async def groups(self, workers: list[Worker]) -> dict[str, list[psutil.Process]]:
        own = await self.own_backends()
        own_pids = {proc.pid for proc in own}
        return {
            "leader": [psutil.Process()],
            "workers": [p for w in workers for p in tree(w.proc.pid)],
            "worker mains": [p for w in workers for p in tree(w.proc.pid)[:1]],
            "postgres": own,
            "redis": named("redis-server"),
            "site": [psutil.Process(self.site.pid)],
            "other postgres": [p for p in named("postgres") if p.pid not in own_pids],
        }

    async def run(self, index: int, workers_count: int, concurrency: int) -> Run:
        run = Run(workers_count, concurrency)
        engine = self.service.store.engine
        warm = self.warm_queries(run.slots)
        await reset_tables(engine)
        if warm:
            await seed(engine, queries=warm, searches=SEARCHES_PER_QUERY * len(warm), listings=0,
                       now=datetime.now(UTC))
        await self.queue.flushdb()
        await self.budget.flushdb()
        # A budget Redis seen for the first time grants nothing for a window (see SharedBudget): the bench measures
        # a deployment that has been running, so its budgets are marked as kept for long.
        await self.budget.set(f"{BUDGET_KEY_PREFIX}#epoch", "0")
        started = time.perf_counter()
        workers = [self.start_worker(index, i, concurrency) for i in range(workers_count)]
        try:
            await self.wait_ready(workers, concurrency)
            run.start_seconds = time.perf_counter() - started
            if warm:
                t0 = time.perf_counter()
                await self.service.scanner.run_until_idle(max_batches=10_000)
                await self.drain(SEARCHES_PER_QUERY * len(warm), t0, [])
                run.warm_seconds = time.perf_counter() - t0
                run.warm_lost = await self.drop_leftovers()
                run.warm_errors = self.task_errors(workers)
            before = await self.last_search_id()
            await seed(engine, queries=self.queries, searches=self.args.searches, listings=0, now=datetime.now(UTC))
            warmed = await self.read_metrics(workers)
            run.warm_tasks = warmed.count
            logged = await self.task_log_count()
            self.site.site.reset()
            meter = CpuMeter(await self.groups(workers))
            self.depth_checks.reset()
            self.sends.reset()
            t0 = time.perf_counter()
            with StatementProfile().recording(engine) as statements:
                report = await self.service.scanner.run_until_idle(max_batches=10_000)
            run.claim_seconds = time.perf_counter() - t0
            run.claim_parts = {
                "depth": (self.depth_checks.calls, self.depth_checks.seconds),
                "sql": (sum(x.calls for x in statements.stats.values()),
                        sum(x.seconds for x in statements.stats.values())),
                "send": (self.sends.calls, self.sends.seconds)}
            if report.searches != self.args.searches:
                print(f"  the leader claimed {report.searches} searches, not {self.args.searches}")
            run.committed, run.finished = await self.drain(self.args.searches, t0, run.depths, after_id=before)
            run.seconds = time.perf_counter() - t0
            run.cpu, run.cores = meter.stop(await self.groups(workers))
            run.requests, run.most_in_flight = self.site.site.requests, self.site.site.most_in_flight
            await self.read_task_logs(run, after=logged)
            run.tasks = (await self.read_metrics(workers)).minus(warmed)
        finally:
            await self.stop_workers(workers)
        if self.args.profile:
            run.profile = read_profiles(self.log_dir / f"profile-{index}")
        run.task_errors = self.task_errors(workers) - run.warm_errors
        run.ebay_successes = await self.ebay_successes()
        return run

    @staticmethod
    def task_errors(workers: list[Worker]) -> int:
        """Tasks that raised, as the workers' logs tell (Celery logs each as 'raised unexpected')."""
        return sum(w.log.read_text(errors="replace").count("raised unexpected") for w in workers)

    async def ebay_successes(self) -> tuple[int, int]:
        """(eBay's success count in marketplace_state, its successful fetches in task_logs), over the whole run,
        warm-up included: each successful fetch should add one to the first."""
        async with self.service.store.engine.connect() as conn:
            counted = (await conn.execute(sa.text(
                "SELECT coalesce(sum(total_successes), 0) FROM marketplace_state WHERE marketplace = 'ebay'"
            ))).scalar_one()
            logged = (await conn.execute(sa.text(
                "SELECT count(*) FROM task_logs WHERE marketplace = 'ebay' AND status = 'success' "
                "AND task_name = 'run_search_task'"))).scalar_one()
        return int(counted), int(logged)

    def warm_queries(self, slots: int) -> list[str]:
        """Queries of the warm-up pass: `--warm-up` per slot, none of them a timed query."""
        return [self.pages.query(self.args.queries + n) for n in range(self.args.warm_up * slots)]

    async def drain(self, target: int, t0: float, depths: list[tuple[float, int]], *,
                    after_id: int = 0) -> tuple[int, bool]:
        """Wait until `target` searches of ids past `after_id` have committed, no scan task is left and the queue is
        empty: (committed, whether that came before the timeout or a stall); the queue's depth is appended to
        `depths` as it goes."""
        deadline = t0 + self.args.timeout
        last, moved = None, time.perf_counter()
        while True:
            depth = int(await self.queue.llen(QUEUE))
            now = time.perf_counter()
            depths.append((now - t0, depth))
            committed, left = await self.progress(after_id)
            if committed >= target and left == 0 and depth == 0:
                return committed, True
            if (committed, left, depth) != last:
                last, moved = (committed, left, depth), now
            # A task that raised leaves its scan_tasks row and its searches' leases behind until the lease ends.
            if now > deadline or (depth == 0 and now - moved > STALL_SECONDS):
                return committed, False
            await asyncio.sleep(POLL_SECONDS)

    async def drop_leftovers(self) -> int:
        """Delete the scan tasks a warm-up left behind (their task raised), so the timed pass starts clean."""
        async with self.service.store.engine.begin() as conn:
            return int((await conn.execute(sa.text("DELETE FROM scan_tasks"))).rowcount or 0)

    async def task_log_count(self) -> int:
        async with self.service.store.engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM task_logs"))).scalar_one())

    async def read_task_logs(self, run: Run, *, after: int) -> None:
        async with self.service.store.engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT status, duration_ms FROM task_logs WHERE id > :after"),
                                       {"after": after})).all()
        run.fetch_ms = [int(ms or 0) for _, ms in rows]
        run.failed_logs = sum(1 for status, _ in rows if status != "success")

    async def read_metrics(self, workers: list[Worker]) -> TaskStats:
        """The workers' task metrics so far (each worker's main process serves its pool's sum)."""
        stats = TaskStats()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=METRICS_TIMEOUT_SECONDS)) as http:
            for worker in workers:
                try:
                    async with http.get(f"http://127.0.0.1:{worker.metrics_port}/metrics") as answer:
                        text = await answer.text()
                except (aiohttp.ClientError, TimeoutError) as err:
                    print(f"  {worker.name}: no metrics ({err})")
                    continue
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        if sample.name == "dealscout_task_duration_seconds_sum":
                            stats.seconds += sample.value
                        elif sample.name == "dealscout_task_duration_seconds_count":
                            stats.count += int(sample.value)
                        elif sample.name == "dealscout_task_runs_total":
                            status = sample.labels["status"]
                            stats.statuses[status] = stats.statuses.get(status, 0) + int(sample.value)
        return stats

    @staticmethod
    async def stop_workers(workers: list[Worker]) -> None:
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)  # warm shutdown: nothing runs by now
        for worker in workers:
            try:
                await asyncio.to_thread(worker.proc.wait, 60)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()


async def main_async(args: argparse.Namespace, site: ServedSite) -> list[Run]:
    broker = redis_db(args.redis, args.broker_db)
    budget = redis_db(args.redis, args.budget_db)
    runs: list[Run] = []
    async with fresh_database(args.database_url, "bench_scale") as url:
        with tempfile.TemporaryDirectory(prefix="dealscout-scale-") as data_dir:
            env = {"DATABASE_URL": url, "DEALSCOUT_DATA_DIR": data_dir, "CELERY_BROKER_URL": broker,
                   "REDIS_URL": budget, "BASELINE_FIRST_SCAN": "false", "DEFAULT_MARKETPLACES": "ebay"}
            settings = load_settings(env, env_file=None)
            worker_env = {**env, "LOG_LEVEL": "INFO", RATE_ENV: str(FAKE_EBAY_PER_MINUTE),
                          RESOLVE_ENV: f'{{"{EBAY_HOST}": "{site.url}"}}'}
            print(f"database: {safe_url(url)} (created for this run, dropped at the end); broker {broker}, "
                  f"budgets {budget}")
            print(f"{args.searches} searches over {args.queries} queries, 5 per query, 100 per chat; fake eBay at "
                  f"{site.url} answers each search in {args.delay * 1000:.0f} ms with "
                  f"{SyntheticPages().describe()}")
            print(f"WORKER_CONCURRENCY={args.concurrency} (task processes per worker, one task at a time each); "
                  f"eBay's budget for the fake host {FAKE_EBAY_PER_MINUTE:.0f}/min, shared in Redis; "
                  f"scan batch {settings.scan_batch_size}; worker logs in {data_dir}\n")
            async with build_service(settings, role="leader", notifiers={"console": CountingNotifier()}) as service:
                bench = Bench(args, site, service, settings, worker_env, Path(data_dir))
                try:
                    for index, count in enumerate(args.workers):
                        run = await bench.run(index, count, args.concurrency)
                        print(f"  {count} worker(s) x {args.concurrency}: {run.seconds:.2f} s, "
                              f"{args.searches / run.seconds:.0f} searches/s, started in {run.start_seconds:.1f} s"
                              + ("" if run.finished else f" (STUCK with {run.committed} committed)"))
                        if run.warm_errors or run.task_errors:
                            print(f"    tasks that raised: {run.warm_errors} in the warm-up ({run.warm_lost} scan "
                                  f"tasks left behind, deleted), {run.task_errors} in the timed pass")
                        runs.append(run)
                finally:
                    await bench.close()
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE,
                        help="a PostgreSQL URL whose server gets a fresh database for the bench (default: "
                             "DEALSCOUT_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis server (its db is ignored)")
    parser.add_argument("--broker-db", type=int, default=13, help="Redis database of the broker (flushed)")
    parser.add_argument("--budget-db", type=int, default=14, help="Redis database of the shared budgets (flushed)")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, one run each (default 1,2,4)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help=f"WORKER_CONCURRENCY of every worker (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.3, help="seconds the fake site takes per search")
    parser.add_argument("--warm-up", type=int, default=2,
                        help="fetches per slot of a warm-up pass on other queries before each timed pass, so every "
                             "task process has connected and compiled its statements (0: time cold workers)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile every task process and print where their CPU goes (slows them down)")
    parser.add_argument("--timeout", type=float, default=600.0, help="most seconds a run may take")
    args = parser.parse_args()
    args.workers = [int(n) for n in args.workers.split(",")]
    if make_url(args.database_url).get_backend_name() not in ("postgres", "postgresql"):
        parser.error("--database-url must be a PostgreSQL URL")
    if args.searches < args.queries:
        parser.error("--searches must be at least --queries")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Stopped like Ctrl-C, so the workers are stopped and the database dropped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    pages = SyntheticPages()
    served = args.queries + args.warm_up * max(args.workers) * args.concurrency
    built = {pages.query(i): pages.page(i) for i in range(served)}
    with serving(built, args.delay) as site:  # forked before any event loop or thread starts
        runs = asyncio.run(main_async(args, site))
    print("\nruns (seconds: from the leader's first claim until every search has committed, scan_tasks is empty "
          "and the queue is drained; floor: the queries' fetches spread perfectly over the slots)")
    print_runs(runs, args)
    print("\nwhere the time goes (task ms: a task's whole run in the worker, from its metrics; fetch ms: the "
          "fetch, from task_logs; rest: loading, lease checks and the commit; slots busy: task time / (seconds x "
          "slots); cpu s over the run; other: the rest of the machine's busy time, other users' work included)")
    print_costs(runs, args)
    print("\nthe leader's claim (run_until_idle): time in its queue-depth checks, its SQL (send to result) and its "
          "sends to the broker; the rest is its own Python and waiting for a core")
    print_claims(runs)
    print("\nqueue depth (LLEN celery) over each run")
    print_depths(runs)
    if args.profile:
        print("\nthe task processes' CPU by library (cProfile own CPU time, warm-up and timed pass; waiting in epoll "
              "and for the next task left out)")
        print_profiles(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
