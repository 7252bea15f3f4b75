"""A second `dealscout run` on the same database is refused, saying which process holds it; a killed holder frees
it at once. Real processes: the second one must see the first, not a simulation of it."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from tests.drills.process import REPO_ROOT, service_environment

pytestmark = pytest.mark.drill
STARTED = b"Deal Scout running"


async def _start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dealscout.cli", "run", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def _until_running(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    seen = b""
    while STARTED not in seen:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, f"the service exited before it ran:\n{seen.decode(errors='replace')}"
        seen += line


async def test_a_second_run_is_refused_until_the_first_is_killed(database_url: str, tmp_path: Path) -> None:
    env = service_environment({"DATABASE_URL": database_url, "DEALSCOUT_DATA_DIR": str(tmp_path),
                               "OPS_HTTP_PORT": "0", "SCAN_TICK_SECONDS": "3600"})
    first = await _start(env)
    third = None
    try:
        await _until_running(first)
        second = await _start(env)
        out, _ = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 1, out.decode(errors="replace")
        message = out.decode()
        assert "another Deal Scout process holds this database" in message
        assert f"dealscout run on " in message and f"pid {first.pid}" in message
        first.send_signal(signal.SIGKILL)
        await first.wait()
        third = await _start(env)
        await _until_running(third)
    finally:
        for proc in (first, third):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
