"""The scale drill's processes: each in its own session, so a signal reaches a Celery worker's whole pool; its own
redis-server, restartable on one port; and which process is which (the lock holder, the sender of a request)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import psutil
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.leadership import ADVISORY_KEY
from tests.drills.process import REPO_ROOT

POLL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 30.0


class Child:
    """A process started in a new session (its process group is its pid), logging to one file per life."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self._argv = list(argv)
        self._env = env
        self._log_dir = log_dir
        self.proc: asyncio.subprocess.Process | None = None
        self.lives = 0

    @property
    def log_path(self) -> Path:
        return self._log_dir / f"{self.name}-{self.lives}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        assert not self.running, f"{self.name} runs already"
        self.lives += 1
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self._argv, cwd=REPO_ROOT, env=self._env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def pids(self) -> set[int]:
        """The process and all its descendants (a Celery worker's pool processes)."""
        try:
            main = psutil.Process(self.pid)
            return {main.pid, *(child.pid for child in main.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    async def kill(self) -> None:
        """SIGKILL to the whole process group: no handler runs, nothing is acknowledged or closed."""
        if self.proc is not None:
            self.signal_group(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> int | None:
        """SIGTERM to the main process, as an operator stops it (a worker then finishes its running tasks)."""
        if not self.running:
            return self.proc.returncode if self.proc else None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            await self.kill()
            return None

    def log_text(self, life: int | None = None) -> str:
        path = self._log_dir / f"{self.name}-{life or self.lives}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def all_logs(self) -> str:
        return "".join(self.log_text(life) for life in range(1, self.lives + 1))

    def tail(self, lines: int = 30) -> str:
        return f"--- {self.log_path.name}\n" + "\n".join(self.log_text().splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_server(port: int, log_dir: Path) -> Child:
    """A Redis that keeps nothing: a restart loses every queued message and every request budget's window."""
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return Child("redis", argv, dict(os.environ), log_dir)


async def redis_answers(url: str) -> bool:
    client = aioredis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float,
                context: Callable[[], str] = lambda: "") -> float:
    """Poll `check` until it holds (other processes are what changes it); the seconds it took. AssertionError
    naming `what`, with `context` (log tails), after `timeout` seconds."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{context()}")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - started


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def sender_of(peer_port: int, server_port: int, children: Sequence[Child]) -> tuple[Child, int] | None:
    """The child, and the pid within its process tree, whose TCP connection from `peer_port` to `server_port`
    sent a request."""
    for child in children:
        for pid in child.pids():
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            for conn in connections:
                if conn.laddr and conn.laddr.port == peer_port and conn.raddr and conn.raddr.port == server_port:
                    return child, pid
    return None


_HOLDER_PID = re.compile(r"\bpid (\d+)")


async def lock_holder(engine: AsyncEngine, leaders: Sequence[Child]) -> Child | None:
    """The leader holding the scheduler's advisory lock: the pid its connection names in pg_stat_activity's
    application_name (storage.leadership), else the leader process that owns that connection's client port."""
    async with engine.connect() as connection:
        row = (await connection.execute(sa.text(
            "SELECT a.application_name, a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = :key"), {"key": ADVISORY_KEY})).first()
    if row is None:
        return None
    name, client_port = row
    found = _HOLDER_PID.search(name or "")
    for leader in leaders:
        if leader.running and found and int(found.group(1)) == leader.pid:
            return leader
    for leader in leaders:
        if leader.running and client_port:
            for conn in psutil.Process(leader.pid).net_connections(kind="tcp"):
                if conn.laddr and conn.laddr.port == client_port:
                    return leader
    return None
