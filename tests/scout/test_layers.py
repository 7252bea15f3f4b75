"""The core (scout/) loads no front end, storage engine or HTTP library, on import or while it scans and delivers.

This module is also imported by the fresh interpreters the tests start (see `_run`): it imports nothing but the
standard library, pytest and the core at its top, so what those interpreters load is what the core loads.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import scout
from scout.circuit import Circuit, Transition
from scout.delivery import DeliveryResult, Dispatcher
from scout.errors import StorageError
from scout.models import (
    Alert,
    Delivery,
    Destination,
    FetchOutcome,
    Listing,
    MarketplaceState,
    Notice,
    SavedSearch,
    ScanSaved,
    SearchRun,
    SearchSpec,
    SearchStatus,
)
from scout.scan import Scanner
from scrapers.base import Adapter, Fetcher, Page, Request, ScrapeResult, SearchQuery

if TYPE_CHECKING:
    from storage.repo import Repository

ROOT = Path(__file__).resolve().parents[2]
# Front ends, storage engines, HTTP libraries and the layers above the core. APScheduler is the scheduler's own
# library (scout/scheduler.py is core by design), so it is allowed.
FORBIDDEN = ("sqlalchemy", "aiohttp", "yarl", "discord", "telegram", "redis", "celery", "fastapi", "starlette", "uvicorn",
             "storage", "bot", "ops", "api", "dealscout")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ALERTS_TO = Destination("console", "main")


def core_modules() -> list[str]:
    return sorted(module.name for module in pkgutil.walk_packages(scout.__path__, "scout."))


def forbidden_loaded() -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] in FORBIDDEN)


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_every_core_module_loads_no_outer_layer() -> None:
    modules = core_modules()
    assert {"scout.scan", "scout.delivery", "scout.ports", "scout.scheduler"} <= set(modules)
    code = "\n".join([*(f"import {name}" for name in modules), "import tests.scout.test_layers as layers",
                      "print(layers.forbidden_loaded())"])
    assert _run(code) == "[]"


def test_a_scan_and_a_drain_load_no_outer_layer() -> None:
    """Run time as well as import time: one scan pass and one drain on in-memory stores and adapters."""
    code = ("import asyncio\nimport tests.scout.test_layers as layers\n"
            "print(asyncio.run(layers.scan_and_drain()), layers.forbidden_loaded())")
    assert _run(code) == "1 1 []"


async def test_a_failing_database_reaches_the_core_as_a_storage_error(repo: Repository) -> None:
    """The core catches StorageError for a failing database; the repository gives it in the driver's words, without
    the statement, and keeps SQLAlchemy's error as its cause."""
    # Imported here: the interpreters above import this module, and must not load the storage layer with it.
    import sqlalchemy as sa

    async with repo._sessions.begin() as session:
        await session.execute(sa.text("DROP TABLE task_logs"))
    with pytest.raises(StorageError, match="task_logs") as caught:
        await repo.count_failed_tasks(since=T0)
    assert "SELECT" not in str(caught.value)
    assert isinstance(caught.value.__cause__, sa.exc.SQLAlchemyError)


# --- the in-memory world of the run-time test --------------------------------------------------------------------


class OneListing(Adapter):
    """A marketplace that always has one lego castle; it never goes to the network."""

    key = "memory"
    name = "Memory"
    min_interval_minutes = 1
    requests_per_minute = 60.0

    def build_request(self, query: SearchQuery) -> Request:
        return Request("https://memory.invalid/search", params=(("q", query.text),))

    def parse(self, page: Page) -> ScrapeResult:
        return ScrapeResult.of([])

    async def search(self, query: SearchQuery, fetcher: Fetcher) -> ScrapeResult:
        return ScrapeResult.of([Listing("memory", "1", "lego castle", "https://memory.invalid/1")])


class NoFetcher:
    async def fetch(self, request: Request) -> Page:
        raise AssertionError("the in-memory adapter fetches nothing")


class MemoryScans:
    """A ScanStore with one due search."""

    def __init__(self) -> None:
        spec = SearchSpec(query="lego", marketplaces=("memory",), check_interval_minutes=5)
        self.due = [SavedSearch(1, "owner", ALERTS_TO, spec, SearchStatus.ACTIVE, T0, T0)]
        self.saved: list[FetchOutcome] = []

    async def load_marketplace_states(self) -> dict[str, MarketplaceState]:
        return {}

    async def claim_due_searches(self, *, now: datetime, lease_until: datetime, limit: int) -> list[SavedSearch]:
        due, self.due = self.due, []
        return due

    async def save_scan(
        self, *, now: datetime, fetches: Sequence[FetchOutcome], runs: Sequence[SearchRun],
        searches: Mapping[int, SavedSearch], baseline_first_scan: bool = True,
        circuits: Mapping[str, Circuit] | None = None, transitions: Sequence[Transition] = (),
    ) -> ScanSaved:
        self.saved.extend(fetches)
        return ScanSaved(0, 0, 0, 0)

    async def release_searches(self, search_ids: Sequence[int]) -> None:
        return None


class MemoryOutbox:
    """An OutboxStore with one notice queued."""

    def __init__(self) -> None:
        self.queued: list[Delivery] = [Notice(1, ALERTS_TO, "hello")]
        self.sent: list[int] = []

    async def load_due_deliveries(self, *, now: datetime, limit: int, platforms: Iterable[str],
                                  per_destination: int | None = None,
                                  skip: Collection[Destination] = ()) -> list[Delivery]:
        return [item for item in self.queued if item.outbox_id not in self.sent]

    async def claim_deliveries(self, messages: Sequence[Sequence[int]], *, now: datetime,
                               until: datetime) -> set[int]:
        return {outbox_id for message in messages for outbox_id in message}

    async def record_sent(self, outbox_ids: Sequence[int], *, now: datetime) -> None:
        self.sent.extend(outbox_ids)

    async def record_retry(self, destination: Destination, *, failed: Sequence[int], released: Sequence[int],
                           error: str, counted: bool, until: datetime) -> None:
        raise AssertionError(error)

    async def record_dead(self, outbox_ids: Sequence[int], *, reason: str, released: Sequence[int] = ()) -> None:
        raise AssertionError(reason)

    async def release_claims(self, outbox_ids: Sequence[int], *, now: datetime) -> None:
        return None

    async def recover_claims(self, *, now: datetime) -> int:
        return 0

    async def hold_destination(self, destination: Destination, *, reason: str,
                               now: datetime) -> tuple[list[SavedSearch], int]:
        raise AssertionError(reason)

    async def move_destination(self, old: Destination, new: Destination) -> None:
        raise AssertionError(new)


class Console:
    platform = "console"

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult:
        return DeliveryResult.ok()

    async def send_notice(self, destination: Destination, notice: Notice) -> DeliveryResult:
        return DeliveryResult.ok()


async def scan_and_drain() -> str:
    """One scan pass and one drain; returns the fetches saved and the messages sent."""
    scans, outbox = MemoryScans(), MemoryOutbox()
    scanner = Scanner(scans, {"memory": OneListing()}, NoFetcher(), clock=lambda: T0)
    await scanner.run_once()
    drained = await Dispatcher(outbox, {"console": Console()}, clock=lambda: T0).drain()
    return f"{len(scans.saved)} {drained.sent}"
