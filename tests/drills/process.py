"""The service under drill as a child process: started on a database, killed with SIGKILL, restarted; a log per life."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TypeVar

from scout.config import SETTINGS
from tests.drills.service_process import DISCORD_API_ENV, RESOLVE_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = "tests.drills.service_process"
# A stop lets running jobs finish (scout.scheduler: up to 10 s) before the front ends close.
STOP_TIMEOUT_SECONDS = 30.0

T = TypeVar("T")


class ServiceDied(AssertionError):
    """The service exited by itself: the drill cannot go on, and the log says why."""


def service_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any Deal Scout setting of its own (a developer's DATABASE_URL or token
    must not reach the drill), plus `settings`."""
    own = {setting.env for setting in SETTINGS.values()} | {RESOLVE_ENV, DISCORD_API_ENV}
    return {**{key: value for key, value in os.environ.items() if key not in own}, **settings}


class ServiceProcess:
    """`python -m tests.drills.service_process` with the given environment, run from the repository root."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self._env = dict(env)
        self._log_dir = log_dir
        self._proc: asyncio.subprocess.Process | None = None
        self.lives = 0

    @property
    def log_path(self) -> Path:
        return self._log_dir / f"service-{self.lives:02d}.log"

    async def start(self) -> None:
        assert self._proc is None, "the previous life is still running"
        self.lives += 1
        with self.log_path.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", LAUNCHER, cwd=REPO_ROOT, env=self._env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
            )

    async def run_until(self, condition: Awaitable[T], *, timeout: float) -> T:
        """`condition`'s result; ServiceDied if the process exits first, TimeoutError after `timeout` seconds."""
        assert self._proc is not None, "start() first"
        waiting = asyncio.ensure_future(condition)
        exited = asyncio.ensure_future(self._proc.wait())
        try:
            done, _ = await asyncio.wait({waiting, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiting, exited):
                task.cancel()
        if waiting in done:
            return waiting.result()
        if exited in done:
            raise ServiceDied(f"the service exited with {exited.result()} in life {self.lives}:\n{self.log_tail()}")
        raise TimeoutError

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        proc, self._proc = self._proc, None
        assert proc is not None, "start() first"
        if proc.returncode is None:
            proc.kill()
        await proc.wait()

    async def stop(self) -> int:
        """SIGTERM, as an operator stops it; returns the exit code."""
        proc, self._proc = self._proc, None
        assert proc is not None, "start() first"
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_SECONDS)

    async def close(self) -> None:
        """Kill whatever still runs (a drill that failed half-way)."""
        if self._proc is not None:
            await self.kill()

    def log_text(self) -> str:
        """What the current (or last) life has logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
