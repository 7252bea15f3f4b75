"""The REST API served for real (api.server on 127.0.0.1) over a migrated database, with keys and a movable clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import sqlalchemy as sa

from api.rest.routers import RestParts, build_rest_routers
from api.rest.tokens import mint_key
from bot.admin import AdminCommands
from bot.commands import Commands
from scout.config import load_settings
from scout.models import Destination, FetchOutcome, Listing, Money, SavedSearch, SearchRun, SearchSpec
from scrapers.registry import build_adapters
from storage.repo import Repository
from tests.api.helpers import Running, running_api

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CONSOLE = Destination("console", "main")


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rest:
    running: Running
    repo: Repository
    clock: Clock
    announced: list[str]
    keys: dict[str, str] = field(default_factory=dict)  # name -> key

    @property
    def client(self) -> aiohttp.ClientSession:
        return self.running.client

    async def key(self, owner: str, scope: str) -> str:
        minted = mint_key()
        await self.repo.save_api_key(key_id=minted.key_id, key_hash=minted.key_hash, owner=owner, scope=scope,
                                     now=self.clock())
        return minted.key

    async def call(self, method: str, path: str, key: str | None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with self.client.request(method, path, headers=headers, **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, body

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        async with self.repo._sessions() as session:  # tests read the tables as an operator would
            return [tuple(row) for row in (await session.execute(sa.text(sql))).all()]


@contextlib.asynccontextmanager
async def running_rest(repo: Repository) -> AsyncIterator[Rest]:
    settings = load_settings({}, env_file=None)
    adapters = build_adapters(settings)
    clock = Clock()
    announced: list[str] = []

    async def announce(message: str) -> None:
        announced.append(message)

    commands = Commands(repo, adapters, clock=clock, default_marketplaces=settings.default_marketplaces)
    admin = AdminCommands(repo, adapters, clock=clock, announce=announce)
    async with running_api(build_rest_routers(RestParts(commands, admin, repo, clock))) as running:
        yield Rest(running, repo, clock, announced)


async def save_search(repo: Repository, owner: str, query: str = "rtx 3080", *,
                      marketplaces: tuple[str, ...] = ("ebay",), destination: Destination = CONSOLE) -> SavedSearch:
    return await repo.save_search(owner=owner, destination=destination, scope=None,
                                  spec=SearchSpec(query=query, marketplaces=marketplaces, check_interval_minutes=10),
                                  now=START, first_run_at=START)


def listing(n: int, price: str) -> Listing:
    return Listing(marketplace="ebay", external_id=str(1000 + n), title=f"RTX 3080 card {n}",
                   url=f"https://example.test/itm/{1000 + n}", price=Money(Decimal(price), "USD"))


async def scan(repo: Repository, search: SavedSearch, listings: list[Listing], *, now: datetime) -> None:
    """One scan of `search` on eBay that found `listings` (the search's first scan is its baseline)."""
    fetch = FetchOutcome(marketplace="ebay", query=search.spec.query, status="success", duration_ms=5,
                         listings=tuple(listings), matches={search.id: tuple(listings)})
    run = SearchRun(search.id, now + timedelta(minutes=10), frozenset({"ebay"}))
    await repo.save_scan(now=now, fetches=[fetch], runs=[run], searches={search.id: search})
