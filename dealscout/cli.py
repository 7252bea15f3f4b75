"""The `dealscout` command: run the service, manage searches, try a marketplace, parse a saved page, migrate.

Each command imports what it uses when it runs: a quick command does not pay for the modules of the whole service
(aiohttp, the scheduler, the ops server, the chat platforms). bench/cli.py measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dealscout.cli_deals import add_deal_parsers
from scout.circuit import CircuitState
from scout.config import SETTINGS, Settings, deal_policy, default_data_dir, load_settings, whole_number
from scout.errors import ConfigError, DealScoutError, InputError, StorageError

if TYPE_CHECKING:
    from bot.commands import Actor
    from bot.describe import Marketplaces
    from scout.models import Listing, MarketplaceState, SavedSearch, StoredAlert
    from scrapers.base import Adapter, ScrapeResult
    from storage.direct import DirectReader
    from storage.repo import Repository

log = logging.getLogger(__name__)

EXIT_USAGE = 2  # the same code argparse uses for bad arguments
EXIT_FAILURE = 1
# Where versions before the per-user data folder kept the database: under the folder they were started from.
LEFT_BEHIND_DATABASE = Path("data") / "dealscout.db"
# As on Discord and Telegram: a week of task logs is as far back as the runbook's diagnosis looks.
FAILURE_HOURS_MAX = 168
DEALS_MAX = 100
PER_PAGE = 50
PER_PAGE_MAX = 1000
# An API key's owner is named in the audit log with the key's id ("<owner> (API key <id>)", in 128 characters).
APIKEY_OWNER_MAX = 64
# The search doctor asks each marketplace's robots.txt about: an ordinary one, as a user would save it.
ROBOTS_PROBE_QUERY = "nintendo switch"
# A maintenance notice is a sentence or two on the status page, not an essay.
NOTICE_MAX = 1000
NOTICE_ACTOR = "cli"  # as cli_actor() names whoever runs the CLI in the audit log


class SearchReads(Protocol):
    """What `search list` and `search show` read: storage.repo.Repository, or storage.direct's reader."""

    async def count_searches(self) -> int: ...

    async def load_searches(self, *, limit: int, offset: int) -> list[SavedSearch]: ...

    async def load_search(self, search_id: int) -> SavedSearch | None: ...

    async def load_recent_alerts(self, search_id: int, *, limit: int) -> list[StoredAlert]: ...


def bounded(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `least` to `most`, with the range in the error."""
    parse = whole_number(least, most)

    def checked(text: str) -> int:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return checked


def cli_actor(*, operator: bool = False) -> Actor:
    """Whoever can run the CLI on the service's machine can already change its database: an admin, and for
    marketplace actions an operator."""
    from bot.commands import Actor

    return Actor("cli", is_admin=True, is_operator=operator)


@contextlib.asynccontextmanager
async def open_repository(settings: Settings) -> AsyncIterator[Repository]:
    """The migrated database's repository, built from the storage modules alone (dealscout.app's open_store would
    import the whole service first)."""
    from storage import db
    from storage.repo import Repository

    engine = db.create_engine(settings.resolved_database_url)
    try:
        await db.upgrade(engine)
        yield Repository(db.session_factory(engine), deal_policy=deal_policy(settings))
    finally:
        await engine.dispose()


def _listing_json(listing: Listing) -> dict[str, Any]:
    return {
        "id": listing.external_id,
        "title": listing.title,
        "price": str(listing.price.amount) if listing.price else None,
        "currency": listing.price.currency if listing.price else None,
        "url": listing.url,
        "image": listing.image_url,
        "location": listing.location,
        "posted_at": listing.posted_at.isoformat() if listing.posted_at else None,
    }


def _cut(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def render_listing_table(listings: Sequence[Listing]) -> str:
    rows = [("ID", "PRICE", "TITLE", "LOCATION", "URL")]
    for item in listings:
        price = f"{item.price.amount:,.2f} {item.price.currency}" if item.price else (item.price_text or "-")
        rows.append((item.external_id, price, _cut(item.title, 60), _cut(item.location, 24), item.url))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] for row in rows
    )


def _print_result(result: ScrapeResult, fmt: str) -> int:
    if fmt == "json":
        print(json.dumps([_listing_json(item) for item in result.listings], ensure_ascii=False, indent=2))
    elif result.listings:
        print(render_listing_table(result.listings))
    summary = f"{result.status.value}: {len(result.listings)} listings"
    print(summary + (f" ({result.detail})" if result.detail else ""), file=sys.stderr)
    return 0 if result.ok else EXIT_FAILURE


def _adapter(settings: Settings, key: str) -> Adapter:
    from scrapers.registry import build_adapters

    adapters = build_adapters(settings)
    if key not in adapters:
        raise InputError(f"Unknown marketplace {key[:40]!r}. Choose from: {', '.join(sorted(adapters))}.")
    return adapters[key]


async def cmd_parse(settings: Settings, args: argparse.Namespace) -> int:
    from scrapers.base import Page

    adapter = _adapter(settings, args.marketplace)
    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"No such file: {path}")
    suffix = path.suffix.lower()
    content_type = {".json": "application/json", ".rss": "application/rss+xml", ".xml": "application/xml"}.get(
        suffix, "text/html; charset=utf-8")
    try:
        body = path.read_bytes()
    except OSError as err:
        raise InputError(f"Cannot read {path}: {err.strerror}") from None
    page = Page(url=path.resolve().as_uri(), status=200, body=body, content_type=content_type)
    return _print_result(adapter.parse_safely(page), args.format)


async def cmd_scrape(settings: Settings, args: argparse.Namespace) -> int:
    from dealscout.app import build_fetcher
    from scrapers.base import SearchQuery

    adapter = _adapter(settings, args.marketplace)
    query = SearchQuery.build(args.query, args.location)
    if not query.text:
        raise InputError("The query needs at least one word to search for.")
    async with build_fetcher(settings, {adapter.key: adapter}) as fetcher:
        result = await adapter.search(query, fetcher)
    return _print_result(result, args.format)


async def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from storage import db

    engine = db.create_engine(settings.resolved_database_url)
    try:
        await db.upgrade(engine)
        print(f"database at revision {await db.current_revision(engine)}")
    finally:
        await engine.dispose()
    return 0


async def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    if args.search_action in ("list", "show"):
        return await cmd_search_read(settings, args)
    from bot.commands import parse_destination
    from bot.describe import describe_search
    from dealscout.parts import build_commands
    from scrapers.registry import build_adapters

    actor = cli_actor()
    async with open_repository(settings) as repo:
        adapters = build_adapters(settings)
        commands = build_commands(settings, repo, adapters)
        action = args.search_action
        if action == "add":
            fields: dict[str, Any] = {
                "marketplaces": args.marketplaces, "interval_minutes": args.every, "exclude": args.exclude,
                "min_price": args.min_price, "max_price": args.max_price, "currency": args.currency,
                "location": args.location, "radius_km": args.radius, "unpriced": args.unpriced,
                "sponsored": args.sponsored, "min_deal": args.min_deal, "price_drop": args.price_drop,
                "exclude_sellers": args.exclude_sellers, "min_seller_rating": args.min_seller_rating,
            }
            ignored: tuple[str, ...] = ()
            if args.query.strip().lower().startswith(("http://", "https://")):
                fields, ignored = commands.search_from_url(args.query.strip(), **fields)
            else:
                fields["query"] = args.query
            search = await commands.add_search(actor, parse_destination(args.to), **fields)
            print(f"saved {describe_search(search, adapters)}")
            if ignored:
                print(f"not kept from the address (a saved search cannot filter by them): {', '.join(ignored)}")
            print("the first scan runs within seconds of `dealscout run`; it records what is listed now, "
                  "and new listings after it are alerted")
        elif action == "pause":
            print(f"paused {describe_search(await commands.pause_search(actor, args.id, reason=args.reason))}")
        elif action == "resume":
            print(f"resumed {describe_search(await commands.resume_search(actor, args.id))}")
        elif action == "remove":
            print(f"removed {describe_search(await commands.remove_search(actor, args.id))}")
        elif action == "snooze":
            print(f"{describe_search(await commands.snooze_search(actor, args.id, args.duration))}")
    return 0


async def cmd_search_read(settings: Settings, args: argparse.Namespace) -> int:
    """`search list` and `search show`: straight through the database driver when the database is at the schema's
    head (storage.direct), without importing SQLAlchemy, the commands or any adapter; else through the repository,
    which migrates the database first."""
    from scout.marketplace_names import MARKETPLACE_NAMES
    from storage.direct import DirectReadError, open_reader

    url = settings.resolved_database_url
    lines = None
    try:
        async with open_reader(url) as reader:
            if reader is not None:
                lines = await read_searches(args, reader, _paused_reasons(reader), MARKETPLACE_NAMES, reader.location)
    except DirectReadError as err:
        log.info("reading the database directly failed (%s); reading it through the repository", err)
    if lines is None:
        from dealscout.parts import build_commands
        from scrapers.registry import build_adapters
        from storage.db import describe_location

        async with open_repository(settings) as repo:
            adapters = build_adapters(settings)
            commands = build_commands(settings, repo, adapters)
            lines = await read_searches(args, repo, commands.paused_marketplaces, adapters, describe_location(url))
    print("\n".join(lines))
    return 0


def _paused_reasons(reader: DirectReader) -> Callable[[], Awaitable[dict[str, str]]]:
    """The paused marketplaces and why, as Commands.paused_marketplaces gives them."""
    from bot.describe import pause_reasons

    async def paused() -> dict[str, str]:
        return pause_reasons(await reader.load_paused_marketplaces())

    return paused


async def read_searches(args: argparse.Namespace, reads: SearchReads,
                        paused_marketplaces: Callable[[], Awaitable[Mapping[str, str]]],
                        marketplaces: Marketplaces, location: str) -> list[str]:
    """The lines `search list` (a page of searches) or `search show` (one search and its newest alerts) print, read
    from the repository or from storage.direct's reader alike. The CLI is an admin: any search is its to see."""
    from bot.describe import (
        SEARCH_ID_LIMIT,
        describe_destination,
        describe_outcomes,
        describe_search,
        read_search_number,
        recent_deals_limit,
        search_not_found,
    )

    if args.search_action == "list":
        total = await reads.count_searches()
        if not total:
            return [f"no saved searches in {location}; add one with: dealscout search add \"QUERY\""]
        pages = -(-total // args.per_page)
        page = min(args.page, pages)
        searches = await reads.load_searches(limit=args.per_page, offset=(page - 1) * args.per_page)
        paused = await paused_marketplaces()
        lines = [f"{describe_search(search, marketplaces, paused)} -> {describe_destination(search.destination)}"
                 for search in searches]
        if pages > 1:
            more = f"; next: dealscout search list --page {page + 1}" if page < pages else ""
            lines.append(f"page {page} of {pages} ({total} searches, {args.per_page} a page){more}")
        return lines
    number = read_search_number(args.id)
    search = await reads.load_search(number) if 0 < number < SEARCH_ID_LIMIT else None
    if search is None:
        raise search_not_found(number)
    lines = [
        describe_search(search, marketplaces),
        f"  destination: {describe_destination(search.destination)}  owner: {search.owner}",
        f"  next run: {search.next_run_at:%Y-%m-%d %H:%M:%S} UTC  last success: "
        f"{search.last_success_at.strftime('%Y-%m-%d %H:%M:%S UTC') if search.last_success_at else 'never'}",
        "  last check per marketplace:",
    ]
    lines.extend(f"    {line}" for line in describe_outcomes(search, marketplaces, now=datetime.now(UTC)))
    for alert in await reads.load_recent_alerts(search.id, limit=recent_deals_limit(args.deals)):
        price = str(alert.listing.price) if alert.listing.price else "-"
        lines.append(f"  [{alert.status}] {price}  {_cut(alert.listing.title, 70)}  {alert.listing.url}")
    return lines


async def cmd_marketplaces(settings: Settings, args: argparse.Namespace) -> int:
    from scrapers.registry import build_adapters

    async with open_repository(settings) as repo:
        states = await repo.load_marketplace_states()
    for key, adapter in sorted(build_adapters(settings).items()):
        state = states.get(key)
        status = f"paused: {state.reason}" if state and state.paused else "active"
        caps = adapter.capabilities
        features = [name for name, on in (("price filter", caps.price_filter), ("location", caps.location),
                                          ("posted time", caps.posted_time), ("images", caps.images)) if on]
        print(f"{key:<13} {adapter.name:<20} {status:<10} every >= {adapter.min_interval_minutes} min, "
              f"{adapter.requests_per_minute:.3g} requests/min; {', '.join(features) or 'no extras'}")
        print(f"{'':<13} {describe_health(state)}")
        usage = adapter.usage()
        if usage:
            print(f"{'':<13} {usage}")
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def describe_health(state: MarketplaceState | None) -> str:
    """How a marketplace's fetches went: its circuit, its last success, its last failure and why."""
    if state is None or not (state.last_success_at or state.last_failure_at):
        return "not fetched yet"
    circuit = state.circuit
    if circuit.open_until and circuit.state is CircuitState.OPEN:
        shown = f"circuit open until {_when(circuit.open_until)}"
    elif circuit.open_until and circuit.state is CircuitState.HALF_OPEN:  # a worker's probe is out
        shown = f"circuit half_open, probing until {_when(circuit.open_until)}"
    else:
        shown = f"circuit {circuit.state.value}"
    parts = [shown, f"last success {_when(state.last_success_at)}"]
    if state.last_failure_at:
        failing = (f" ({state.last_status}, {state.consecutive_failures} in a row)"
                   if state.consecutive_failures else "")
        parts.append(f"last failure {_when(state.last_failure_at)}{failing}: {state.last_error or 'no detail'}")
    return "; ".join(parts)


async def cmd_marketplace(settings: Settings, args: argparse.Namespace) -> int:
    # The operator's actions are announced to the ops chats through the outbox, as the service's own are.
    from dealscout.parts import build_admin
    from scrapers.registry import build_adapters

    operator = cli_actor(operator=True)
    async with open_repository(settings) as repo:
        admin = build_admin(settings, repo, build_adapters(settings))
        action = args.marketplace_action
        if action == "pause":
            print(await admin.pause_marketplace(operator, args.key, args.reason))
        elif action == "resume":
            print(await admin.resume_marketplace(operator, args.key))
        elif action == "backoff":
            print(await admin.back_off_marketplace(operator, args.key))
        elif action == "failures":
            print(await admin.recent_failures(operator, hours=args.hours))
        else:
            print(await admin.status(operator))
    return 0


def parse_until(text: str) -> datetime:
    """An argparse type: an ISO 8601 time; one without a zone is UTC."""
    from datetime import UTC

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r} (e.g. 2025-06-01T18:00 or "
                                         "2025-06-01T18:00+02:00; without a zone it is UTC)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def cmd_notice(settings: Settings, args: argparse.Namespace) -> int:
    """Maintenance notices on the public status page, kept in the audit log."""
    from dealscout.parts import utc_now

    now = utc_now()
    async with open_repository(settings) as repo:
        if args.notice_action == "add":
            text = " ".join(args.text.split())
            if not text:
                raise InputError("a notice needs some text")
            if len(text) > NOTICE_MAX:
                raise InputError(f"a notice is at most {NOTICE_MAX} characters; this one is {len(text)}")
            if args.until is not None and args.until <= now:
                raise InputError(f"--until {args.until.isoformat()} has passed already")
            notice_id = await repo.add_notice(text=text, until=args.until, actor=NOTICE_ACTOR, now=now)
            until = _when(args.until) if args.until else f"`dealscout notice end {notice_id}`"
            print(f"notice {notice_id} shown on the status page until {until}")
        elif args.notice_action == "end":
            if not await repo.end_notice(args.id, actor=NOTICE_ACTOR, now=now):
                raise InputError(f"no active notice {args.id}; `dealscout notice list` shows them")
            print(f"notice {args.id} ended")
        else:
            notices = await repo.load_notices()
            if not notices:
                print("no notices")
            for notice in notices:
                if notice.active(now):
                    state = f"active until {_when(notice.until)}" if notice.until else "active"
                elif notice.ended_at:
                    state = f"ended {_when(notice.ended_at)}"
                else:
                    state = f"expired {_when(notice.until)}"
                print(f"{notice.id:>5}  {_when(notice.created_at)}  {state}: {notice.text}")
    return 0


async def cmd_apikey(settings: Settings, args: argparse.Namespace) -> int:
    """Keys of the REST API: a new key is printed once, alone on stdout, and only its hash is stored."""
    from api.rest.tokens import mint_key
    from bot.commands import check_key
    from dealscout.parts import utc_now

    async with open_repository(settings) as repo:
        if args.apikey_action == "create":
            owner = " ".join(args.owner.split())
            if not owner:
                raise InputError("--owner needs a name: the owner whose searches the key manages")
            if len(owner) > APIKEY_OWNER_MAX:
                raise InputError(f"--owner is at most {APIKEY_OWNER_MAX} characters; this one is {len(owner)}")
            check_key(owner, field="owner")
            minted = mint_key()
            while await repo.load_api_key(minted.key_id) is not None:  # 48 random bits: a clash is all but unheard of
                minted = mint_key()
            await repo.save_api_key(key_id=minted.key_id, key_hash=minted.key_hash, owner=owner, scope=args.scope,
                                    now=utc_now())
            print(minted.key)
            print(f"API key {minted.key_id} for {owner!r}, scope {args.scope}. It is shown only now (the database "
                  f"keeps its hash): store it. Revoke it with: dealscout apikey revoke {minted.key_id}",
                  file=sys.stderr)
        elif args.apikey_action == "revoke":
            key = await repo.revoke_api_key(args.id.strip().lower(), now=utc_now())
            if key is None:
                raise InputError(f"no API key {args.id[:20]!r}; `dealscout apikey list` shows them")
            print(f"API key {key.key_id} ({key.owner}, {key.scope}) revoked {_when(key.revoked_at)}")
        else:
            keys = await repo.load_api_keys()
            if not keys:
                print("no API keys; make one with: dealscout apikey create --owner NAME --scope read")
            for key in keys:
                state = f"revoked {_when(key.revoked_at)}" if key.revoked_at else f"last used {_when(key.last_used_at)}"
                print(f"{key.key_id}  {key.scope:<5}  created {_when(key.created_at)}  {state}  {key.owner}")
    return 0


async def cmd_doctor(settings: Settings, args: argparse.Namespace, *,
                     resolve: Mapping[str, str] | None = None) -> int:
    """Ask the running service for its detailed health (without one, check what can be checked from here), then
    ask each marketplace's robots.txt whether it lets our request through. `resolve` as for HttpFetcher."""
    import aiohttp

    url = f"http://{settings.ops_http_host}:{settings.ops_http_port}/api/v1/monitoring/health/detailed"
    report: dict[str, Any] | None = None
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            report = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        report = None
    if report is None:
        print(f"no running service answered at {url}; checking the database directly", file=sys.stderr)
        report = await _check_database(settings)
    if not args.offline:
        report["robots"] = await check_robots(settings, resolve)
        if report.get("status") == "ok" and any(verdict["allowed"] is False for verdict in report["robots"].values()):
            report["status"] = "degraded"  # that marketplace's searches would all be reported blocked
    print(json.dumps(report, indent=2) if args.json else render_health(report))
    return 0 if report.get("status") == "ok" else EXIT_FAILURE


async def check_robots(settings: Settings, resolve: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Per marketplace: whether its robots.txt lets the adapter's request for an ordinary search through for our
    user agent, read as the scans read it; allowed is None where there is nothing fixed to ask."""
    from dealscout.app import build_fetcher
    from scrapers.base import SearchQuery
    from scrapers.registry import build_adapters

    adapters = build_adapters(settings)
    query = SearchQuery.build(ROBOTS_PROBE_QUERY)
    # Reading robots.txt may take a connection attempt and a redirect or two; past that it counts as not answering.
    patience = 3 * settings.http_timeout_seconds

    async with build_fetcher(settings, adapters, resolve) as fetcher:
        async def ask(adapter: Adapter) -> dict[str, Any]:
            try:
                request = adapter.build_request(query)
            except InputError:
                return {"allowed": None, "reason": "its addresses are its searches' own: each one's robots.txt is "
                                                   "read when it is fetched"}
            try:
                verdict = await asyncio.wait_for(fetcher.robots_verdict(request), patience)
            except TimeoutError:
                return {"allowed": None, "reason": f"its robots.txt did not answer within {patience:g} s"}
            return {"allowed": verdict.allowed, "reason": verdict.reason}

        verdicts = await asyncio.gather(*(ask(adapter) for adapter in adapters.values()))
    return dict(zip(adapters, verdicts, strict=True))


async def _check_database(settings: Settings) -> dict[str, Any]:
    """The detailed health as far as the database tells it, without the service (its scheduler reads as stopped)."""
    from dealscout.app import open_store
    from dealscout.parts import utc_now
    from ops.health import HealthChecker
    from scrapers.registry import build_adapters

    async with open_store(settings, migrate=False) as store:
        checker = HealthChecker(
            engine=store.engine, repo=store.repo, adapters=build_adapters(settings), clock=utc_now,
            scheduler_ticks={}, scan_tick_seconds=settings.scan_tick_seconds, platforms={}, sends={},
            data_dir=Path(settings.data_dir),
        )
        return await checker.detailed()


def render_health(report: dict[str, Any]) -> str:
    lines = [f"Deal Scout {report.get('version', '?')}: {report.get('status', '?').upper()}"]
    database = report.get("database", {})
    if database.get("ok"):
        pool = database.get("pool") or {}
        lines.append(f"database   ok, {database.get('latency_ms')} ms ({database.get('dialect')}, "
                     f"{pool.get('in_use')} of {pool.get('size')} pooled connections in use)")
    else:
        lines.append(f"database   DOWN: {database.get('error')}")
        return "\n".join(lines)
    scheduler = report.get("scheduler", {})
    if scheduler.get("running"):
        lines.append(f"scheduler  last tick {scheduler.get('last_tick_age_seconds')} s ago, "
                     f"lag {scheduler.get('lag_seconds')} s")
    else:
        lines.append(f"scheduler  NOT RUNNING (due searches wait {scheduler.get('lag_seconds')} s)")
    for key, market in sorted(report.get("marketplaces", {}).items()):
        state = market["state"] if market["state"] != "paused" else f"PAUSED ({market.get('paused_reason')})"
        failing = (f" ({market['consecutive_failures']} in a row: {market.get('last_error') or 'no detail'})"
                   if market.get("consecutive_failures") else "")
        lines.append(f"{key:<10} {state}, circuit {market['circuit']}, last {market.get('last_status') or '-'}"
                     f"{failing}, {market['failures_last_hour']} failed and {market['blocks_last_hour']} blocked in 1 h"
                     + (f"; {market['usage']}" if market.get("usage") else ""))
    for platform, info in sorted(report.get("platforms", {}).items()):
        state = "connected" if info["connected"] else f"{info['state'].upper()} ({info.get('error') or 'no reason'})"
        failing = f", {info['failing_sends']} sends failed in a row ({info.get('last_send_error')})" \
            if info.get("failing_sends") else ""
        lines.append(f"{platform:<10} {state}, last delivery {info.get('last_delivery') or 'never'}{failing}")
    outbox = report.get("outbox", {})
    lines.append(f"outbox     {outbox.get('pending')} pending (oldest {outbox.get('oldest_pending_age_seconds')} s), "
                 f"{outbox.get('dead')} dead")
    if "robots" in report:
        lines.append("robots.txt, asked about an ordinary search for our user agent:")
        for key, verdict in sorted(report["robots"].items()):
            said = {True: "allowed", False: "REFUSED", None: "not checked"}[verdict["allowed"]]
            lines.append(f"{key:<10} {said}: {verdict['reason']}")
    return "\n".join(lines)


async def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from dealscout.app import run_service

    await run_service(settings)
    return 0


async def cmd_leader(settings: Settings, args: argparse.Namespace) -> int:
    from dealscout.app import run_leader

    await run_leader(settings)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Blocking: Celery's worker forks its processes, which must not inherit a running event loop."""
    from dealscout.roles import run_worker

    return run_worker(settings, concurrency=args.concurrency, name=args.name)


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Blocking: with --workers above 1 it starts that many serving processes."""
    from dealscout.roles import run_api

    return run_api(settings, workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dealscout", description="Deal alerts for second-hand marketplaces.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug detail (otherwise commands other than run log only warnings and errors)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="run the scheduler, the scans and alert delivery").set_defaults(func=cmd_run)
    sub.add_parser("leader", help="claim due searches for the workers, deliver alerts, run the chat gateways "
                   "(one active per database; others wait on standby)").set_defaults(func=cmd_leader)
    worker = sub.add_parser("worker", help="a Celery worker that runs run_search_task (CELERY_BROKER_URL)")
    worker.add_argument("--concurrency", type=int, default=None,
                        help="tasks run at once (default: WORKER_CONCURRENCY)")
    worker.add_argument("--name", default=None,
                        help="the worker's node name (default: celery@<host>); give each worker on one host its own")
    worker.set_defaults(func=cmd_worker)
    api = sub.add_parser("api", help="the ops HTTP API alone (health, metrics), stateless")
    api.add_argument("--workers", type=int, default=1, help="processes serving the port (default 1)")
    api.set_defaults(func=cmd_api)

    search = sub.add_parser("search", help="manage saved searches")
    actions = search.add_subparsers(dest="search_action", required=True)
    add = actions.add_parser("add", help="save a search")
    add.add_argument("query", help="the words to look for, or a marketplace search address to copy")
    add.add_argument("-m", "--marketplaces", help="comma-separated marketplace keys (default: DEFAULT_MARKETPLACES)")
    add.add_argument("--exclude", help="words that rule a listing out, comma- or space-separated")
    add.add_argument("--min-price")
    add.add_argument("--max-price")
    add.add_argument("--currency", help="ISO code the price range is in, e.g. USD")
    add.add_argument("--every", help="check interval in minutes (default: the marketplaces' minimum)")
    add.add_argument("--location", help="where the marketplace supports it, e.g. a Craigslist site like sfbay")
    add.add_argument("--radius", help="kilometres around --location")
    add.add_argument("--unpriced", choices=["include", "exclude"], help="listings without a comparable price")
    add.add_argument("--sponsored", choices=["include", "exclude"],
                     help="listings a marketplace marks as paid placements (default include)")
    add.add_argument("--to", default="console", help="console (default), discord:<channel id>, telegram:<chat id> "
                     "or apprise:<Apprise URL> (ntfy, Slack, Matrix, Pushover, webhooks...)")
    add.add_argument("--min-deal", help="deals only: good, great or fair (judged against similar listings seen)")
    add.add_argument("--price-drop", help="announce drops of at least this share again, e.g. 15%% (default 10%%), "
                     "or off")
    add.add_argument("--exclude-sellers", help="seller names to leave out, comma-separated")
    add.add_argument("--min-seller-rating", help="least share of positive feedback, e.g. 98 (where shown)")
    listing = actions.add_parser("list", help="list saved searches, a page at a time, oldest first")
    listing.add_argument("--page", type=bounded(1, 10**9), default=1, help="which page (default 1)")
    listing.add_argument("--per-page", type=bounded(1, PER_PAGE_MAX), default=PER_PAGE,
                         help=f"searches a page (default {PER_PAGE}, at most {PER_PAGE_MAX})")
    show = actions.add_parser("show", help="one search and its newest alerts")
    show.add_argument("id")
    show.add_argument("--deals", type=bounded(0, DEALS_MAX), default=10, help="how many recent alerts to show")
    pause = actions.add_parser("pause", help="stop checking a search")
    pause.add_argument("id")
    pause.add_argument("--reason")
    for name, text in (("resume", "check a paused search again"), ("remove", "delete a search")):
        actions.add_parser(name, help=text).add_argument("id")
    snooze = actions.add_parser("snooze", help="announce nothing of a search for a while; it keeps checking")
    snooze.add_argument("id")
    snooze.add_argument("duration", help="30m, 2h, 1d or 1w; 'off' wakes it")
    search.set_defaults(func=cmd_search)
    add_deal_parsers(sub)

    scrape = sub.add_parser("scrape", help="fetch one search from a marketplace and print the listings")
    scrape.add_argument("marketplace")
    scrape.add_argument("query")
    scrape.add_argument("--location")
    scrape.add_argument("--format", choices=["table", "json"], default="table")
    scrape.set_defaults(func=cmd_scrape)

    parse = sub.add_parser("parse", help="parse a saved marketplace page (check a parser after a site change)")
    parse.add_argument("marketplace")
    parse.add_argument("file")
    parse.add_argument("--format", choices=["table", "json"], default="table")
    parse.set_defaults(func=cmd_parse)

    database = sub.add_parser("db", help="database maintenance")
    db_actions = database.add_subparsers(dest="db_action", required=True)
    db_actions.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    sub.add_parser("marketplaces", help="list marketplaces, their state and limits").set_defaults(
        func=cmd_marketplaces)

    market = sub.add_parser("marketplace", help="operator actions on one marketplace (audited)")
    market_actions = market.add_subparsers(dest="marketplace_action", required=True)
    market_pause = market_actions.add_parser("pause", help="stop fetching a marketplace; its searches wait")
    market_pause.add_argument("key")
    market_pause.add_argument("--reason")
    market_actions.add_parser("resume", help="fetch a paused marketplace again").add_argument("key")
    market_actions.add_parser("backoff", help="double its searches' intervals, up to 2 h").add_argument("key")
    market_actions.add_parser("status", help="every marketplace's state and the outbox")
    failures = market_actions.add_parser("failures", help="recent fetch outcomes and errors")
    failures.add_argument("--hours", type=bounded(1, FAILURE_HOURS_MAX), default=1,
                          help=f"how far back, 1 to {FAILURE_HOURS_MAX} (default 1)")
    market.set_defaults(func=cmd_marketplace)

    notice = sub.add_parser("notice", help="maintenance notices on the public status page (audited)")
    notice_actions = notice.add_subparsers(dest="notice_action", required=True)
    notice_add = notice_actions.add_parser("add", help="show a notice at the top of /status")
    notice_add.add_argument("text")
    notice_add.add_argument("--until", type=parse_until,
                            help="ISO time it ends by itself (without a zone: UTC); else until `notice end`")
    notice_actions.add_parser("end", help="take a notice down").add_argument("id", type=bounded(1, 2**31 - 1))
    notice_actions.add_parser("list", help="every notice, newest first, and whether it is shown")
    notice.set_defaults(func=cmd_notice)

    apikey = sub.add_parser("apikey", help="keys of the REST API (/api/v1): create, list, revoke")
    apikey_actions = apikey.add_subparsers(dest="apikey_action", required=True)
    apikey_create = apikey_actions.add_parser("create", help="make a key; it is printed once, only its hash is kept")
    apikey_create.add_argument("--owner", required=True,
                               help="whose searches the key manages (searches it makes are this owner's)")
    apikey_create.add_argument("--scope", choices=["read", "write", "admin"], default="read",
                               help="read: look; write: change the owner's searches; admin: everyone's "
                               "searches and the marketplaces (default read)")
    apikey_actions.add_parser("list", help="every key: owner, scope, created, last used, revoked")
    apikey_actions.add_parser("revoke", help="a key stops working at once").add_argument("id")
    apikey.set_defaults(func=cmd_apikey)

    doctor = sub.add_parser("doctor", help="the service's detailed health; exits 1 when not healthy")
    doctor.add_argument("--json", action="store_true", help="print the raw JSON report")
    doctor.add_argument("--offline", action="store_true",
                        help="report the service's health only, without asking the marketplaces' robots.txt")
    doctor.set_defaults(func=cmd_doctor)

    parser.epilog = "settings come from the environment or a .env file: " + ", ".join(
        s.env for s in SETTINGS.values())
    return parser


def configure_logging(level: int | str) -> None:
    """The service's log lines: time, level, logger, message; APScheduler only when something is wrong, and none of
    the plugins Alembic lists as it is imported."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as err:
        print(f"dealscout: {err}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(command_log_level(settings, args))
    note_a_left_behind_database(settings)
    try:
        if asyncio.iscoroutinefunction(args.func):
            code = asyncio.run(args.func(settings, args))
        else:
            code = args.func(settings, args)
        sys.stdout.flush()  # a reader that went away is told here, not in the interpreter's shutdown
        return code
    except BrokenPipeError:
        # The output's reader stopped early (`dealscout search list | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except InputError as err:
        print(f"dealscout: {err}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as err:
        print(f"dealscout: {database_failure(settings, err) or err}", file=sys.stderr)
        return EXIT_FAILURE
    except DealScoutError as err:
        print(f"dealscout: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        # The last guard: a failing database gets one line; anything else is a bug, and keeps its traceback.
        message = database_failure(settings, err)
        if message is None:
            raise
        print(f"dealscout: {message}", file=sys.stderr)
        return EXIT_FAILURE


def command_log_level(settings: Settings, args: argparse.Namespace) -> int | str:
    """`run` logs at LOG_LEVEL; any other command prints its answer and logs only warnings and errors (its
    database opening and migration check say nothing new each time), unless -v asks for everything."""
    if args.verbose:
        return logging.DEBUG
    if args.func in (cmd_run, cmd_leader, cmd_worker, cmd_api):
        return settings.log_level
    return max(logging.WARNING, logging.getLevelName(settings.log_level))


def note_a_left_behind_database(settings: Settings) -> None:
    """An older version kept the database in ./data, which is no longer read: say where the database is now."""
    if settings.database_url or Path(settings.data_dir) != default_data_dir(os.environ):
        return
    if LEFT_BEHIND_DATABASE.is_file():
        print(f"dealscout: note: {LEFT_BEHIND_DATABASE.resolve()} is not read; the database is "
              f"{Path(settings.data_dir) / LEFT_BEHIND_DATABASE.name}. Move the file there, or set "
              f"DEALSCOUT_DATA_DIR={LEFT_BEHIND_DATABASE.parent.resolve()} to keep using it there.", file=sys.stderr)


def database_failure(settings: Settings, err: Exception) -> str | None:
    """What to tell the user when `err` is the database failing (a file it cannot open or write, a damaged file, a
    server it cannot reach); None for any other error."""
    from sqlalchemy.exc import SQLAlchemyError  # already imported whenever the database was used

    if isinstance(err, StorageError) and isinstance(err.__cause__, SQLAlchemyError | OSError):
        err = err.__cause__  # the repository's words for it; the driver's error says what failed
    if not isinstance(err, SQLAlchemyError | OSError):
        return None
    from storage.db import describe_failure

    return describe_failure(settings.resolved_database_url, err)


if __name__ == "__main__":
    sys.exit(main())
