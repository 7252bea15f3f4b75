"""The scheduler lock: one holder per database, who a refused process is told about, and freed by a kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from storage import db
from storage.leadership import SchedulerLock

HOLDER = """
import asyncio, sys
from storage import db
from storage.leadership import SchedulerLock

async def main():
    engine = db.create_engine(db.normalise_url(sys.argv[1]))
    lock = SchedulerLock(engine, sys.argv[1], role="leader")
    assert await lock.acquire()
    print("held", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_second_process_is_refused_and_told_who_holds_the_lock(database_url: str) -> None:
    engine = db.create_engine(db.normalise_url(database_url))
    first = SchedulerLock(engine, database_url, role="run")
    second = SchedulerLock(engine, database_url, role="leader")
    try:
        assert await first.acquire()
        assert not await second.acquire()
        holder = await second.holder()
        assert holder.startswith(f"run on ") and f"pid {os.getpid()}" in holder
        await first.check()
        await first.release()
        assert await second.acquire()
        assert not await first.acquire()
    finally:
        await first.release()
        await second.release()
        await engine.dispose()


async def test_a_killed_holder_frees_the_lock_at_once(database_url: str, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, database_url, stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2])
    engine = db.create_engine(db.normalise_url(database_url))
    lock = SchedulerLock(engine, database_url, role="leader")
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"held\n"
        assert not await lock.acquire()
        assert "leader on " in await lock.holder()
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        deadline = time.monotonic() + 10
        while not await lock.acquire():  # the server notices the closed connection within moments
            assert time.monotonic() < deadline, "the lock of a killed process was not freed"
            await asyncio.sleep(0.05)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await lock.release()
        await engine.dispose()


async def test_an_in_memory_database_needs_no_lock() -> None:
    engine = db.create_engine("sqlite+aiosqlite:///:memory:")
    assert await SchedulerLock(engine, "sqlite:///:memory:", role="run").acquire()
    await engine.dispose()
