"""Load on the HTTP API: a real `dealscout api` process (1 worker, then 4) on a PostgreSQL database of N searches and
M listings, three endpoints each under an open-loop load: latency percentiles, errors and the rate answered.

The database: created on the server of `--database-url` (`bench_api_<pid>`), migrated, seeded by bench/scan_db.py
`seed` (N searches, 100 per owner; M listings with their price history, matches and a sent alert for one in ten),
then every tenth search given to one owner (`bench-heavy`: 1,000 of 10,000, spread over the table) whose read key
the REST requests carry (made through storage's `save_api_key`, as `dealscout apikey create` does); dropped at the
end.

The load: for each endpoint in turn, requests sent at a fixed rate for `--seconds` whatever the answers (open loop,
aiohttp, no cap on connections in flight), so a server that falls behind shows it as queueing in the latency, which
is measured from each request's scheduled send time. Then, in this process, one request to each endpoint through
the same application (ASGI, no server) with its SQL statements recorded, timed and EXPLAINed.

Target, per endpoint and process count: p95 under 100 ms and no errors.

Run from the project root (PostgreSQL on 127.0.0.1):
  .venv/bin/python -m bench.api
  .venv/bin/python -m bench.api --searches 10000 --listings 1000000 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import psutil
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.rest.tokens import mint_key
from bench.common import free_port, fresh_database, percentile, print_table
from bench.scale_report import CpuMeter, tree
from bench.scan_db import StatementProfile, print_statement_plans, seed, short_sql, table_rows
from dealscout.app import open_store, stateless_ops
from scout.config import Settings, load_settings
from storage.db import normalise_url
from tests.drills.process import REPO_ROOT, service_environment

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_P95_MS = 100.0
# (worker processes, requests per second to each endpoint)
RUNS = ((1, 50.0), (4, 200.0))
# (name, path, whether it needs the key)
ENDPOINTS = (("searches", "/api/v1/searches?page=1&per_page=50", True), ("summary", "/api/v1/summary", True),
             ("status", "/status", False))
HEAVY_OWNER = "bench-heavy"
HEAVY_EVERY = 10  # every tenth search is the heavy owner's
REQUEST_TIMEOUT_S = 10.0  # a request unanswered this long counts as an error
WARM_UP_S = 2.0  # per endpoint, at the run's rate, before it is timed: every worker has its connections
READY_TIMEOUT_S = 90.0
IN_PROCESS_REPEATS = 50  # in-process requests timed for CPU per request
QUIET_CPU_S = 0.05  # the api's processes used less CPU than this in 0.5 s: what it was still answering is done
QUIET_TIMEOUT_S = 60.0
TOP_FUNCTIONS = 12




async def prepare(settings: Settings, args: argparse.Namespace) -> str:
    """Migrate, seed, give the heavy owner its searches, and return a read key of that owner."""
    async with open_store(settings, migrate=True) as store:
        started = time.perf_counter()
        await seed(store.engine, queries=[f"bench query {i}" for i in range(max(1, args.searches // 5))],
                   searches=args.searches, listings=args.listings, now=datetime.now(UTC))
        async with store.engine.begin() as conn:
            await conn.execute(sa.text(f"UPDATE searches SET owner = :owner WHERE id % {HEAVY_EVERY} = 0"),
                               {"owner": HEAVY_OWNER})
        async with store.engine.connect() as conn:
            await conn.execute(sa.text("COMMIT"))  # ANALYZE may run outside a transaction block
            await conn.exec_driver_sql("ANALYZE searches")
        print(f"seeded in {time.perf_counter() - started:.1f} s: {await table_rows(store.engine)}; "
              f"{args.searches // HEAVY_EVERY} searches belong to {HEAVY_OWNER}")
        minted = mint_key()
        await store.repo.save_api_key(key_id=minted.key_id, key_hash=minted.key_hash, owner=HEAVY_OWNER,
                                      scope="read", now=datetime.now(UTC))
        return minted.key


@dataclass
class Load:
    """One endpoint under one rate: what each request got."""

    workers: int
    endpoint: str
    rate: float
    seconds: float
    latencies: list[float] = field(default_factory=list)  # answered requests, from scheduled send to full body
    late: list[float] = field(default_factory=list)  # how late the client sent each request
    errors: int = 0
    sent: int = 0
    span: float = 0.0  # from the first scheduled send to the last answer
    cpu: dict[str, float] = field(default_factory=dict)
    cores: list[float] = field(default_factory=list)  # busy fraction of each core over the timed run
    per_worker: list[float] = field(default_factory=list)  # CPU seconds of each serving process, most first
    failures: Counter[str] = field(default_factory=Counter)  # errors by kind: HTTP status or exception

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.p(0.95) < TARGET_P95_MS

    def p(self, fraction: float) -> float:
        return 1000 * percentile(self.latencies, fraction) if self.latencies else float("inf")

    @property
    def other_cpu(self) -> float:
        """CPU seconds the machine spent outside the api, its database backends and the load generator."""
        return max(0.0, sum(self.cores) * self.span - sum(self.cpu.values()))

    def row(self) -> tuple[object, ...]:
        answered = len(self.latencies)
        per = (lambda s: f"{1000 * s / self.sent:.1f}") if self.sent else (lambda s: "-")
        return (self.endpoint, self.workers, f"{self.rate:g}", self.sent, f"{self.p(0.5):.1f}", f"{self.p(0.95):.1f}",
                f"{self.p(0.99):.1f}", f"{1000 * max(self.latencies, default=0):.0f}",
                f"{100 * self.errors / max(1, self.sent):.1f}%", f"{answered / self.span:.1f}" if self.span else "-",
                f"{1000 * percentile(self.late, 0.99):.1f}", per(self.cpu.get("api", 0)),
                per(self.cpu.get("postgres", 0)), per(self.cpu.get("client", 0)), f"{sum(self.cores):.2f}",
                f"{self.other_cpu:.1f}", "/".join(f"{cpu / self.span:.2f}" for cpu in self.per_worker) or "-",
                f"p95 < {TARGET_P95_MS:g} ms, errors 0", "ok" if self.ok else "MISSED")


HEADERS = ("endpoint", "workers", "rate/s", "sent", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "answered/s",
           "send late p99 ms", "api cpu ms/req", "pg cpu ms/req", "client cpu ms/req", "cores busy",
           "other cpu s", "worker cores", "target", "result")


async def open_loop(session: aiohttp.ClientSession, url: str, headers: dict[str, str], load: Load) -> None:
    """Send `load.rate` requests a second for `load.seconds`, each on its own schedule, never waiting for answers."""
    loop = asyncio.get_running_loop()

    async def one(due: float) -> None:
        load.late.append(max(0.0, loop.time() - due))
        try:
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    load.errors += 1
                    load.failures[f"HTTP {response.status}"] += 1
                    return
        except (aiohttp.ClientError, TimeoutError) as err:
            load.errors += 1
            load.failures[type(err).__name__] += 1
            return
        load.latencies.append(loop.time() - due)

    start = loop.time() + 0.05
    count = round(load.rate * load.seconds)
    tasks = []
    for i in range(count):
        due = start + i / load.rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    load.sent = count
    load.span = loop.time() - start


async def backends(admin: AsyncEngine, database: str) -> list[psutil.Process]:
    """The PostgreSQL server processes serving `database` (the server runs on this machine)."""
    async with admin.connect() as conn:
        pids = (await conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"),
                                   {"d": database})).scalars().all()
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


class ApiProcess:
    """`dealscout api --workers N` on a free port, with a log file of its own."""

    def __init__(self, url: str, workers: int, data_dir: str) -> None:
        self.port = free_port()
        self.workers = workers
        self.log = Path(data_dir) / f"api-{workers}.log"
        env = service_environment({"DATABASE_URL": url, "DEALSCOUT_DATA_DIR": data_dir, "OPS_HTTP_HOST": "127.0.0.1",
                                   "OPS_HTTP_PORT": str(self.port)})
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "dealscout"), "api", "--workers",
                                      str(workers)], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> None:
        """Until /status answers 200 and, with several workers, every worker process is up."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"dealscout api exited with {self.proc.returncode}:\n"
                                 + self.log.read_text(errors="replace")[-3000:])
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(self.base + "/status") as response:
                    if response.status == 200 and len(tree(self.proc.pid)) >= (
                            self.workers + 1 if self.workers > 1 else 1):
                        return
            await asyncio.sleep(0.2)
        raise SystemExit(f"dealscout api did not answer within {READY_TIMEOUT_S:.0f} s (log: {self.log})")

    def serving(self) -> list[psutil.Process]:
        """The processes that answer requests: the workers under the supervisor, or the one process."""
        procs = tree(self.proc.pid)
        return procs[1:] if self.workers > 1 else procs[:1]

    async def quiet(self) -> None:
        """Until the api's processes go quiet: requests the client gave up on may still be queued there."""
        deadline = time.monotonic() + QUIET_TIMEOUT_S
        while time.monotonic() < deadline:
            procs = tree(self.proc.pid)
            meter = CpuMeter({"api": procs})
            await asyncio.sleep(0.5)
            spent, _ = meter.stop({"api": procs})
            if spent["api"] < QUIET_CPU_S:
                return

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def measure(url: str, database: str, admin: AsyncEngine, key: str, args: argparse.Namespace,
                  data_dir: str) -> list[Load]:
    loads = []
    auth = {"Authorization": f"Bearer {key}"}
    for workers, rate in RUNS:
        api = ApiProcess(url, workers, data_dir)
        connector = aiohttp.TCPConnector(limit=0)  # open loop: as many connections in flight as it takes
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                await api.ready(session)
                for name, path, keyed in ENDPOINTS:
                    headers = auth if keyed else {}
                    await open_loop(session, api.base + path, headers, Load(workers, name, rate, WARM_UP_S))
                    load = Load(workers, name, rate, args.seconds)
                    groups = {"api": tree(api.proc.pid), "postgres": await backends(admin, database),
                              "client": [psutil.Process()]}
                    serving = api.serving()
                    meter, per_worker = CpuMeter(groups), CpuMeter({str(p.pid): [p] for p in serving})
                    await open_loop(session, api.base + path, headers, load)
                    groups["postgres"] = await backends(admin, database)
                    load.cpu, load.cores = meter.stop(groups)
                    spent, _ = per_worker.stop({str(p.pid): [p] for p in serving})
                    load.per_worker = sorted(spent.values(), reverse=True)[:workers]
                    loads.append(load)
                    kinds = ", ".join(f"{kind} x{n}" for kind, n in load.failures.most_common())
                    print(f"  {workers} worker(s), {name}: p95 {load.p(0.95):.1f} ms, {load.errors} errors"
                          + (f" ({kinds})" if kinds else ""), flush=True)
                    await api.quiet()
        finally:
            api.stop()
    return loads


def owner_of(filename: str) -> str:
    """The library or project package a profiled function's file belongs to."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith(str(REPO_ROOT)):
        return "project: " + filename[len(str(REPO_ROOT)) + 1:].split("/", 1)[0]
    return "python" if filename.startswith(("/", "<frozen")) else "built-ins"


def print_profile(profiler: cProfile.Profile, requests: int) -> None:
    """The profiled requests' CPU by library (own time of its functions), and the functions with the most."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    by_owner: Counter[str] = Counter()
    for (filename, _, _), (_, _, own, _, _) in stats.items():
        by_owner[owner_of(filename)] += own
    total = sum(by_owner.values()) or 1.0
    print(f"CPU per request by library (cProfile, {requests} requests; profiling slows every call, read the shares):")
    print_table(("library", "ms/req", "share"), [(name, f"{own / requests * 1000:.2f}", f"{own / total:.0%}")
                                                 for name, own in by_owner.most_common(10)])
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:TOP_FUNCTIONS]
    rows = [(f"{own / requests * 1000:.2f}", f"{ct / requests * 1000:.2f}", f"{owner_of(filename)}: {name}")
            for (filename, _, name), (_, _, own, ct, _) in top]
    print_table(("own ms/req", "cum ms/req", "function (by own time)"), rows)


async def explain_endpoints(settings: Settings, key: str) -> None:
    """One request to each endpoint through the application in this process (no server): its SQL statements,
    timed from send to result, and their plans; then the application's CPU per request over repeats."""
    async with stateless_ops(settings) as ops:
        app = ops.build_api(settings)
        engine = ops.health.engine
        transport = httpx.ASGITransport(app=app)
        explained: set[str] = set()  # explain() leaves its PREPAREd copy on the connection: each statement once
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, path, keyed in ENDPOINTS:
                headers = {"Authorization": f"Bearer {key}"} if keyed else {}
                profile = StatementProfile()
                with profile.recording(engine):
                    started = time.perf_counter()
                    response = await client.get(path, headers=headers)
                    wall = time.perf_counter() - started
                cpu_started = time.process_time()
                for _ in range(IN_PROCESS_REPEATS):
                    await client.get(path, headers=headers)
                cpu = (time.process_time() - cpu_started) / IN_PROCESS_REPEATS
                profiler = cProfile.Profile(time.process_time)
                profiler.enable()  # a run of its own: profiling slows every call
                for _ in range(IN_PROCESS_REPEATS):
                    await client.get(path, headers=headers)
                profiler.disable()
                print(f"\nGET {path}: {response.status_code}, {len(response.content)} bytes, first request "
                      f"{wall * 1000:.1f} ms; then {cpu * 1000:.2f} ms of this process's CPU per request "
                      f"(mean of {IN_PROCESS_REPEATS}, client included; /summary and /status answer from their "
                      "snapshot)")
                rows = [(f"{s.seconds * 1000:.1f}", s.calls, short_sql(s.sql, 120))
                        for s in profile.top(len(profile.stats))]
                print_table(("ms", "calls", "statement"), rows)
                print_profile(profiler, IN_PROCESS_REPEATS)
                await print_statement_plans(engine, profile, explained)


async def run(args: argparse.Namespace) -> None:
    async with fresh_database(args.database_url, "bench_api") as url:
        database = make_url(url).database or ""
        with tempfile.TemporaryDirectory(prefix="dealscout-bench-api-") as data_dir:
            settings = load_settings({"DATABASE_URL": url, "DEALSCOUT_DATA_DIR": data_dir}, env_file=None)
            key = await prepare(settings, args)
            admin = create_async_engine(normalise_url(args.database_url))
            try:
                print(f"open loop, {args.seconds:g} s per endpoint after {WARM_UP_S:g} s of warm-up; latency from "
                      "each request's scheduled send time")
                loads = await measure(url, database, admin, key, args, data_dir)
            finally:
                await admin.dispose()
            print()
            print_table(HEADERS, [load.row() for load in loads])
            print("(cpu ms/req: CPU seconds of the api process tree, of this database's PostgreSQL backends and of "
                  "the load generator over the timed run, per request sent)")
            missed = [f"{load.endpoint} at {load.workers}" for load in loads if not load.ok]
            print(f"targets: {'all met' if not missed else 'MISSED by ' + ', '.join(missed)}")
            if not args.no_plans:
                await explain_endpoints(settings, key)


def stop_on_sigterm() -> None:
    """SIGTERM as Ctrl-C, so an interrupted run still stops its api process and drops its database."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE,
                        help=f"an admin URL of the PostgreSQL server (default {DEFAULT_DATABASE}); the bench "
                        "creates its own database there and drops it at the end")
    parser.add_argument("--searches", type=int, default=10_000, help="saved searches (default 10000)")
    parser.add_argument("--listings", type=int, default=1_000_000, help="listings (default 1000000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="timed seconds per endpoint and run (default 60)")
    parser.add_argument("--no-plans", action="store_true", help="skip the in-process statements and their plans")
    args = parser.parse_args()
    if args.searches < HEAVY_EVERY:
        parser.error(f"--searches must be at least {HEAVY_EVERY}")
    stop_on_sigterm()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
