"""`dealscout api` serves the ops endpoints alone, beside no scheduler of its own: the stateless role the
Kubernetes deal-scout-api Deployment and the compose stack run, probes included."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from storage import db
from tests.drills.process import REPO_ROOT, service_environment

pytestmark = pytest.mark.drill


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_the_api_role_answers_the_probes(database_url: str, tmp_path: Path, workers: str) -> None:
    engine = db.create_engine(db.normalise_url(database_url))
    await db.upgrade(engine)  # the api role does not migrate: a leader or `dealscout db upgrade` does
    await engine.dispose()
    port = free_port()
    env = service_environment({"DATABASE_URL": database_url, "DEALSCOUT_DATA_DIR": str(tmp_path),
                               "OPS_HTTP_PORT": str(port)})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "dealscout.cli", "api", "--workers", workers,
                                                cwd=REPO_ROOT, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:  # waiting on another process: poll with a deadline
                try:
                    async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                        assert resp.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert proc.returncode is None and time.monotonic() < deadline, "the api role did not start"
                    await asyncio.sleep(0.1)
            async with session.get(f"http://127.0.0.1:{port}/api/v1/monitoring/health/detailed") as resp:
                report = json.loads(await resp.text())
            assert report["database"]["ok"] is True
            assert "scheduler" in report and "marketplaces" in report
            async with session.get(f"http://127.0.0.1:{port}/api/v1/monitoring/metrics") as resp:
                assert resp.status == 200 and "dealscout_searches" in await resp.text()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
