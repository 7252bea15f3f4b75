"""What bench.scale measures of a run and how it prints it: CPU per process group and per core, the workers' task
metrics, the leader's timed calls, and the tables."""

from __future__ import annotations

import argparse
import contextlib
import pstats
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.common import percentile, print_table

DEPTH_EVERY_SECONDS = 0.5  # the queue-depth timeline printed per run


class CpuMeter:
    """CPU seconds of groups of processes (whole trees where a worker is concerned) and of each core."""

    def __init__(self, groups: dict[str, list[psutil.Process]]) -> None:
        self.groups = groups
        self._start = {name: self._seconds(procs) for name, procs in groups.items()}
        self._cores = psutil.cpu_times(percpu=True)

    @staticmethod
    def _seconds(procs: Iterable[psutil.Process]) -> dict[int, float]:
        seen: dict[int, float] = {}
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                seen[proc.pid] = times.user + times.system
        return seen

    def stop(self, groups: dict[str, list[psutil.Process]]) -> tuple[dict[str, float], list[float]]:
        """(CPU seconds per group since the start, busy fraction of each core); a process new since the start
        counts from zero."""
        spent: dict[str, float] = {}
        for name, procs in groups.items():
            before = self._start.get(name, {})
            spent[name] = sum(now - before.get(pid, 0.0) for pid, now in self._seconds(procs).items())
        busy = []
        for start, end in zip(self._cores, psutil.cpu_times(percpu=True)):
            total = sum(end) - sum(start)
            idle = (end.idle + end.iowait) - (start.idle + start.iowait)
            busy.append((total - idle) / total if total else 0.0)
        return spent, busy


def tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def named(name: str) -> list[psutil.Process]:
    return [proc for proc in psutil.process_iter(["name"]) if proc.info["name"] == name]


class Timed:
    """An async callable that counts its calls and sums their time: the leader's queue-depth checks and sends."""

    def __init__(self, call: Callable[..., Awaitable[Any]]) -> None:
        self.call = call
        self.calls = 0
        self.seconds = 0.0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.call(*args, **kwargs)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - started

    def reset(self) -> None:
        self.calls, self.seconds = 0, 0.0


@dataclass
class TaskStats:
    """Tasks the workers ran: how many, their summed time, and how each ended (done, deferred, void, duplicate)."""

    count: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)

    def minus(self, earlier: TaskStats) -> TaskStats:
        return TaskStats(self.count - earlier.count, self.seconds - earlier.seconds,
                         {k: v - earlier.statuses.get(k, 0) for k, v in self.statuses.items()})


@dataclass
class Run:
    workers: int
    concurrency: int
    seconds: float = 0.0
    claim_seconds: float = 0.0
    claim_parts: dict[str, tuple[int, float]] = field(default_factory=dict)  # calls, seconds
    committed: int = 0
    depths: list[tuple[float, int]] = field(default_factory=list)
    requests: int = 0
    most_in_flight: int = 0
    fetch_ms: list[int] = field(default_factory=list)
    failed_logs: int = 0
    tasks: TaskStats = field(default_factory=lambda: TaskStats())
    cpu: dict[str, float] = field(default_factory=dict)
    cores: list[float] = field(default_factory=list)
    start_seconds: float = 0.0
    warm_seconds: float = 0.0
    warm_tasks: int = 0
    profile: Profile | None = None
    task_errors: int = 0
    warm_errors: int = 0
    warm_lost: int = 0
    ebay_successes: tuple[int, int] = (0, 0)
    finished: bool = True

    @property
    def slots(self) -> int:
        return self.workers * self.concurrency


def print_runs(runs: list[Run], args: argparse.Namespace) -> None:
    base = args.searches / runs[0].seconds if runs else 0.0
    rows = []
    for run in runs:
        rate = args.searches / run.seconds
        floor_s = args.queries * args.delay / run.slots
        floor_rate = args.searches / floor_s
        rows.append((run.workers, run.concurrency, run.slots, f"{run.seconds:.2f}", f"{rate:.0f}",
                     f"{rate / base:.2f}x", f"{floor_s:.2f}", f"{floor_rate:.0f}", f"{rate / floor_rate:.0%}",
                     max((d for _, d in run.depths), default=0), run.requests, run.most_in_flight,
                     run.committed, run.failed_logs, run.task_errors,
                     "{}/{}".format(*run.ebay_successes), "" if run.finished else "STUCK"))
    print_table(("workers", "concurrency", "slots", "seconds", "searches/s", "x 1 worker", "floor s",
                 "floor searches/s", "of floor", "queue max", "HTTP requests", "most in flight", "committed",
                 "failed", "raised", "health count", ""), rows)


def print_costs(runs: list[Run], args: argparse.Namespace) -> None:
    rows = []
    for run in runs:
        task_ms = 1000 * run.tasks.seconds / run.tasks.count if run.tasks.count else 0.0
        fetch_ms = sum(run.fetch_ms) / len(run.fetch_ms) if run.fetch_ms else 0.0
        busy = (run.tasks.seconds / (run.seconds * run.slots)) if run.seconds else 0.0
        cpu = run.cpu
        ours = sum(v for k, v in cpu.items() if k not in ("other postgres", "worker mains"))
        total_busy = sum(run.cores) * run.seconds
        per_task = (cpu.get("workers", 0.0) + cpu.get("postgres", 0.0) + cpu.get("redis", 0.0)) / max(1, args.queries)
        rows.append((run.workers, f"{run.claim_seconds:.2f}", f"{args.searches / run.claim_seconds:.0f}",
                     f"{task_ms:.0f}", f"{fetch_ms:.0f}", f"{percentile(run.fetch_ms, 0.99):.0f}",
                     f"{task_ms - fetch_ms:.0f}", f"{busy:.0%}",
                     " ".join(f"{core:.0%}" for core in run.cores),
                     f"{cpu.get('workers', 0):.1f}", f"{cpu.get('worker mains', 0):.1f}",
                     f"{cpu.get('postgres', 0):.1f}", f"{cpu.get('leader', 0):.1f}",
                     f"{cpu.get('redis', 0):.1f}", f"{cpu.get('site', 0):.1f}",
                     f"{max(0.0, total_busy - ours):.1f}", f"{per_task * 1000:.0f}", f"{run.start_seconds:.1f}",
                     f"{run.warm_seconds:.1f}",
                     ", ".join(f"{n} {status}" for status, n in sorted(run.tasks.statuses.items()) if n)))
    print_table(("workers", "claim s", "claimed/s", "task ms", "fetch ms", "fetch p99", "rest ms", "slots busy",
                 "cores busy", "worker cpu s", "of it mains", "pg cpu s", "leader cpu s", "redis cpu s", "site cpu s",
                 "other cpu s", "cpu ms/task", "start s", "warm-up s", "tasks"), rows)


def print_claims(runs: list[Run]) -> None:
    rows = []
    for run in runs:
        parts = run.claim_parts
        spent = sum(seconds for _, seconds in parts.values())
        rows.append((run.workers, f"{run.claim_seconds:.2f}",
                     *(f"{parts[k][0]} / {parts[k][1]:.2f}" for k in ("depth", "sql", "send")),
                     f"{run.claim_seconds - spent:.2f}", f"{run.cpu.get('leader', 0):.1f}"))
    print_table(("workers", "claim s", "queue depth checks (n / s)", "SQL statements (n / s)", "sends (n / s)",
                 "the rest s", "leader cpu s (whole run)"), rows)


def print_depths(runs: list[Run]) -> None:
    for run in runs:
        marks, next_at = [], 0.0
        for at, depth in run.depths:
            if at >= next_at:
                marks.append(str(depth))
                next_at += DEPTH_EVERY_SECONDS
        print(f"  {run.workers} worker(s): max {max((d for _, d in run.depths), default=0)}; every "
              f"{DEPTH_EVERY_SECONDS:g} s: {' '.join(marks)}")


# Where a function's own time goes, by the file it is in (first match wins); C functions show as "~".
LIBRARIES = [("sqlalchemy", "/sqlalchemy/"), ("asyncpg", "/asyncpg/"),
             ("aiohttp, yarl, multidict", ("/aiohttp/", "/yarl/", "/multidict/")),
             ("celery, kombu, billiard", ("/celery/", "/kombu/", "/billiard/", "/vine/")),
             ("redis, limits", ("/redis/", "/limits/")), ("prometheus_client", "/prometheus_client/"),
             ("scrapers/ (fetcher, eBay parse)", "/scrapers/"), ("scout/ (scan, matching)", "/scout/"),
             ("storage/", "/storage/"), ("dealscout/", "/dealscout/"), ("logging", "/logging/"),
             ("asyncio", "/asyncio/")]
# Waiting, not working: the event loop's epoll, and a pool process's blocking read of its next task from its pipe.
WAITING = ("select.epoll", "time.sleep", "posix.read")


@dataclass
class Profile:
    """The task processes' cProfile, summed: own time by library, and the functions with the most own time."""

    processes: int
    by_library: dict[str, float]
    top: list[tuple[float, int, str]]  # own seconds, calls, function


def read_profiles(folder: Path) -> Profile | None:
    files = sorted(folder.glob("*.prof"))
    if not files:
        return None
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    by_library: dict[str, float] = {}
    top = []
    for (filename, line, function), (_, calls, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if any(mark in function for mark in WAITING):
            continue
        library = "C calls (json, lxml, sockets, ...)" if filename == "~" else "other Python"
        for name, marks in LIBRARIES:
            if any(mark in filename for mark in ((marks,) if isinstance(marks, str) else marks)):
                library = name
                break
        by_library[library] = by_library.get(library, 0.0) + own
        where = function if filename == "~" else f"{filename.split('site-packages/')[-1]}:{line} {function}"
        top.append((own, calls, where))
    return Profile(len(files), by_library, sorted(top, reverse=True)[:TOP_FUNCTIONS])


TOP_FUNCTIONS = 12


def print_profiles(runs: list[Run]) -> None:
    for run in runs:
        if run.profile is None:
            continue
        tasks = run.tasks.count + run.warm_tasks
        total = sum(run.profile.by_library.values())
        print(f"\n  {run.workers} worker(s), {run.profile.processes} task processes, {tasks} tasks: "
              f"{total * 1000 / max(1, tasks):.1f} ms of CPU per task (profiled, so more than unprofiled)")
        rows = [(name, f"{seconds:.2f}", f"{seconds * 1000 / max(1, tasks):.2f}", f"{seconds / total:.0%}")
                for name, seconds in sorted(run.profile.by_library.items(), key=lambda x: -x[1])]
        print_table(("library", "own s", "ms/task", "share"), rows)
        print()
        print_table(("own s", "calls", "function"),
                    [(f"{own:.2f}", calls, where[-110:]) for own, calls, where in run.profile.top])
