"""The composition root: builds storage, fetcher, adapters, engine, notifiers and the scheduler, and runs them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from api.status.router import build_status_router
from bot.admin import AdminCommands
from bot.apprise.notifier import AppriseNotifier
from bot.commands import Commands
from bot.connection import Connection
from bot.console import ConsoleNotifier
from dealscout.leader import TaskScanner
from dealscout.parts import build_admin, build_commands, utc_now
from ops.assembly import Ops, build_ops
from ops.reporter import OpsOutbox, audit_threshold_changes, ops_destinations
from scout import __version__
from scout.circuit import CircuitPolicy
from scout.config import Settings, deal_policy
from scout.delivery import Dispatcher, Notifier
from scout.errors import ConfigError, InputError
from scout.models import Destination, SavedSearch
from scout.scan import Scanner
from scout.scheduler import DELIVERY_JOB, ScoutScheduler
from scrapers.base import Adapter, SearchQuery
from scrapers.http import HttpFetcher
from scrapers.registry import build_adapters
from scrapers.shared_budget import BudgetMode, SharedBudget
from storage import db
from storage.claims import ScanTasks
from storage.leadership import LockHeld, SchedulerLock, describe_self
from storage.repo import Repository

log = logging.getLogger(__name__)

OPS_JOB = "ops"
# At shutdown, delivery goes on this long for what is due, the stopping message among it.
STOP_DRAIN_SECONDS = 5.0
# A leader claims no more searches while this many tasks wait on the queue: they stay due in the database, and a
# backlog never outgrows the leases of the tasks in it. Under the runbook's queue-depth warning (1,000).
MAX_QUEUE_BACKLOG = 500
SUMMARY_JOB = "daily-summary"
# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms); see keep_the_loop_responsive.
LOOP_SWITCH_INTERVAL_S = 0.001


def shared_redis_url(settings: Settings) -> str | None:
    """The Redis that holds the budgets every process shares: REDIS_URL, else the broker's when it is Redis."""
    if settings.redis_url:
        return settings.redis_url
    broker = settings.celery_broker_url or ""
    return broker if broker.startswith(("redis://", "rediss://")) else None


def build_fetcher(settings: Settings, adapters: Mapping[str, Adapter],
                  resolve: Mapping[str, str] | None = None, *, shared: bool = False,
                  budget_mode: BudgetMode = "wait") -> HttpFetcher:
    """The polite fetcher; with `shared`, each host's budget is kept in Redis for every process together."""
    url = shared_redis_url(settings) if shared else None
    if shared and url is None:
        raise ConfigError("REDIS_URL (or a redis:// CELERY_BROKER_URL): required to share request budgets")
    fetcher = HttpFetcher(
        user_agent=settings.http_user_agent, timeout_seconds=settings.http_timeout_seconds,
        max_retries=settings.http_max_retries, proxy=settings.http_proxy, respect_robots=settings.respect_robots,
        max_in_flight=settings.scan_concurrency, resolve=resolve,
        shared_budget=SharedBudget(url) if url else None, budget_mode=budget_mode,
    )
    for adapter in adapters.values():
        # Each adapter's request budget becomes its domain's rate limit in the shared fetcher. An adapter with no
        # fixed host (a feed lives wherever its user says) refuses the probe; its hosts keep the default rate.
        domain = adapter.rate_limit_domain
        if domain is None:
            try:
                domain = URL(adapter.build_request(SearchQuery("probe")).url).host
            except InputError:
                continue
        if domain:
            fetcher.set_host_rate(domain, adapter.requests_per_minute)
    return fetcher


@dataclass
class Store:
    engine: AsyncEngine
    repo: Repository


@contextlib.asynccontextmanager
async def open_store(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Store]:
    engine = db.create_engine(settings.resolved_database_url)
    try:
        if migrate:
            await db.upgrade(engine)
        yield Store(engine, Repository(db.session_factory(engine), deal_policy=deal_policy(settings)))
    finally:
        await engine.dispose()


@dataclass
class Service:
    """Everything a running Deal Scout is made of, for the CLI, the tests and the ops endpoints."""

    settings: Settings
    store: Store
    adapters: dict[str, Adapter]
    fetcher: HttpFetcher
    scanner: Scanner
    dispatcher: Dispatcher
    scheduler: ScoutScheduler
    commands: Commands
    admin: AdminCommands
    notifiers: dict[str, Notifier]
    front_ends: list[FrontEnd]
    ops: Ops
    lock: SchedulerLock


class FrontEnd(Protocol):
    """A chat platform: its commands, its notifier, and how to tell owners that their chat is unreachable."""

    platform: str
    notifier: Notifier

    @property
    def connection(self) -> Connection:
        """Where the connection to the platform stands (health reports it)."""

    async def start(self) -> None:
        """Begin connecting and serving commands; returns promptly, and keeps connecting in the background
        while the platform cannot be reached (alerts wait in the outbox meanwhile)."""

    async def stop(self) -> None: ...

    async def destination_gone(self, destination: Destination, reason: str, searches: list[SavedSearch]) -> None:
        """Tell the owners of `searches` (where the platform can reach them) why their searches were paused."""


def rest_routers(repo: Repository, commands: Commands, admin: AdminCommands) -> list[APIRouter]:
    """The REST API under /api/v1, on the same commands every front end uses."""
    from api.rest.routers import RestParts, build_rest_routers

    return build_rest_routers(RestParts(commands, admin, repo, utc_now))


def build_front_ends(settings: Settings, commands: Commands, admin: AdminCommands) -> list[FrontEnd]:
    """The chat platforms whose tokens are configured."""
    ends: list[FrontEnd] = []
    if settings.discord_token:
        from bot.discord.frontend import build_discord_front_end

        ends.append(build_discord_front_end(settings, commands, clock=utc_now, admin=admin))
    if settings.telegram_token:
        from bot.telegram.frontend import build_telegram_front_end

        ends.append(build_telegram_front_end(settings, commands, clock=utc_now, admin=admin))
    return ends


def connections(notifiers: Mapping[str, Notifier],
                front_ends: Iterable[FrontEnd]) -> dict[str, Callable[[], Connection] | None]:
    """For health: how to read each platform's connection (the console is always there)."""
    readers: dict[str, Callable[[], Connection] | None] = dict.fromkeys(notifiers)
    for end in front_ends:
        readers[end.platform] = lambda end=end: end.connection  # type: ignore[misc]
    return readers


def keep_the_loop_responsive() -> None:
    """Settle the process, once start-up has built everything, so the event loop answers within milliseconds while
    worker threads parse pages and run database calls (`python -m bench.scan`, loop lag p99 / max of 16-20 / 20-23
    ms instead of 22-64 / 24-113, for the same scan time):

    - what start-up built (modules, ORM mappings, adapters, routers) is taken out of the garbage collector's walks:
      it lives as long as the process, yet every full collection walked it again with the loop stopped, ~100 ms
      each. Start-up's garbage is collected first so that none of it is kept for good;
    - a thread holding the GIL hands it over after 1 ms instead of 5 when another wants it, so the loop's thread
      waits one short turn behind a parsing thread, not several long ones.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(LOOP_SWITCH_INTERVAL_S)


@contextlib.asynccontextmanager
async def build_service(settings: Settings, *, resolve: Mapping[str, str] | None = None,
                        notifiers: Mapping[str, Notifier] | None = None,
                        front_ends: list[FrontEnd] | None = None, role: str = "run") -> AsyncIterator[Service]:
    """Assemble the service. `front_ends` replaces the configured chat platforms (tests pass fakes-backed ones).

    `role` "run" scans in process; "leader" hands each fetch to the workers through the broker instead.
    """
    rng = random.Random()
    async with open_store(settings) as store:
        adapters = build_adapters(settings)
        fetcher = build_fetcher(settings, adapters, resolve)
        scheduler = ScoutScheduler(scan_tick_seconds=settings.scan_tick_seconds,
                                   delivery_tick_seconds=settings.delivery_tick_seconds)
        commands = build_commands(settings, store.repo, adapters)
        # Operator actions are announced to the ops destinations, known once the platforms are: see below.
        admin = AdminCommands(store.repo, adapters, clock=utc_now)
        ends = front_ends if front_ends is not None else build_front_ends(settings, commands, admin)
        # Apprise needs no token: its destinations carry their own URLs.
        chosen: dict[str, Notifier] = {"console": ConsoleNotifier(), "apprise": AppriseNotifier(
            marketplace_names={key: adapter.name for key, adapter in adapters.items()})}
        chosen.update({end.platform: end.notifier for end in ends})
        chosen.update(notifiers or {})
        by_platform = {end.platform: end for end in ends}

        async def tell_owners(destination: Destination, reason: str, searches: list[SavedSearch]) -> None:
            end = by_platform.get(destination.platform)
            if end is not None:
                await end.destination_gone(destination, reason, searches)

        dispatcher = Dispatcher(
            store.repo, chosen, clock=utc_now, rng=rng, max_attempts=settings.delivery_max_attempts,
            backoff_seconds=settings.delivery_backoff_seconds,
            backoff_max_seconds=settings.delivery_backoff_max_seconds, poll_seconds=settings.delivery_tick_seconds,
            on_destination_gone=tell_owners,
        )
        say = OpsOutbox(store.repo, ops_destinations(settings, chosen), clock=utc_now,
                        queued=lambda: scheduler.wake(DELIVERY_JOB))
        ops = build_ops(
            settings, engine=store.engine, repo=store.repo, adapters=adapters, clock=utc_now,
            scheduler_ticks=scheduler.last_tick_at, platforms=connections(chosen, ends), sends=dispatcher.sends,
            say=say,
        )
        dispatcher.observe(ops.metrics)
        # The public status page shows the threshold changes among its incidents.
        ops.reporter.set_recorder(audit_threshold_changes(store.repo, clock=utc_now))
        ops.extra_routers.append(build_status_router(store.repo, adapters, clock=utc_now))
        for end in ends:
            ops.extra_routers.extend(getattr(end, "routers", ()))
        admin.set_announcer(ops.reporter.say)
        ops.extra_routers.extend(rest_routers(store.repo, commands, admin))
        scan_options = dict(
            clock=utc_now, batch_size=settings.scan_batch_size, lease_seconds=settings.scan_lease_seconds,
            jitter=settings.schedule_jitter, baseline_first_scan=settings.baseline_first_scan,
            on_alerts_queued=lambda: scheduler.wake(DELIVERY_JOB),
            circuit_policy=CircuitPolicy(
                failure_threshold=settings.circuit_failure_threshold,
                base_wait=timedelta(seconds=settings.circuit_base_wait_seconds),
                max_wait=timedelta(seconds=settings.circuit_max_wait_seconds),
            ),
            on_circuit_change=ops.reporter.circuit_changed, observer=ops.metrics,
        )
        scanner: Scanner
        if role == "leader":
            from dealscout.broker import Broker, build_celery  # Celery is the leader's and the workers' alone

            broker = Broker(build_celery(settings))
            scanner = TaskScanner(store.repo, adapters, fetcher, tasks=ScanTasks(db.session_factory(store.engine)),
                                  send=broker.send, backlog=broker.depth, max_backlog=MAX_QUEUE_BACKLOG,
                                  on_broker=lambda news: ops.reporter.say(
                                      news or "The task queue takes tasks again: scans go on."),
                                  **scan_options)
            ops.health.queue_depth = broker.depth
            ops.health.workers_alive = broker.workers_alive
        else:
            scanner = Scanner(store.repo, adapters, fetcher, **scan_options)  # type: ignore[arg-type]
        lock = SchedulerLock(store.engine, settings.resolved_database_url, role=f"dealscout {role}")
        service = Service(settings, store, adapters, fetcher, scanner, dispatcher, scheduler, commands, admin,
                          chosen, ends, ops, lock)
        keep_the_loop_responsive()
        try:
            yield service
        finally:
            await scheduler.stop()
            for end in ends:
                try:
                    await end.stop()
                except Exception:  # noqa: BLE001 - shutdown guard: one platform failing to stop must not block the rest
                    log.exception("stopping %s failed", end.platform)
            await ops.stop_server()
            await fetcher.close()
            await lock.release()


async def start_service(service: Service, *, serve: bool = True) -> None:
    """Start the scheduled scan and delivery jobs, and the ops server unless `serve` is False (it runs already);
    LockHeld when another scheduler holds the database."""
    if not await service.lock.acquire():
        raise LockHeld(await service.lock.holder())
    # The lock says no other scheduler lives: the leases and delivery claims a scheduler left when it died are
    # void. Leases of worker tasks are not a scheduler's: they hold until their tasks commit or they expire.
    await service.store.repo.release_all_leases()
    await service.dispatcher.recover()
    service.scheduler.add_scan(service.scanner.run_until_idle)
    service.scheduler.add_delivery(service.dispatcher.drain)
    service.scheduler.add_job(OPS_JOB, service.ops.evaluate, service.settings.ops_evaluate_seconds)
    service.scheduler.add_daily(SUMMARY_JOB, service.ops.daily_summary, hour=service.settings.ops_daily_summary_hour)
    if serve:
        await service.ops.start_server(service.settings)
    service.scheduler.start()
    for end in service.front_ends:
        await end.start()  # connects in the background while the platform cannot be reached
    await service.ops.reporter.say(
        f"Deal Scout {__version__} started: {await service.store.repo.count_searches()} searches, "
        f"marketplaces {', '.join(sorted(service.adapters))}, platforms {', '.join(sorted(service.notifiers))}."
    )


async def run_service(settings: Settings, *, stop: asyncio.Event | None = None,
                      resolve: Mapping[str, str] | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set): scan on schedule and deliver alerts.

    `resolve` sends marketplace hosts elsewhere (see HttpFetcher): a process under test talks to local fakes.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with build_service(settings, resolve=resolve) as service:
        await start_service(service)
        searches = await service.store.repo.count_searches()
        log.info("Deal Scout running: %d saved searches, marketplaces: %s, database: %s", searches,
                 ", ".join(sorted(service.adapters)), db.safe_url(db.normalise_url(settings.resolved_database_url)))
        log.info("Alerts for console destinations print here. Alerts for destinations on %s wait in the outbox "
                 "until that platform is connected (see README, 'Connect a chat').",
                 ", ".join(p for p in ("discord", "telegram") if p not in service.notifiers))
        if not searches:
            log.info("No searches yet. Add one in another terminal: dealscout search add \"nintendo switch\" "
                     "--max-price 200")
        await stop.wait()
        log.info("Deal Scout stopping")
        await service.scheduler.stop()
        await service.ops.reporter.say("Deal Scout stopping.")
        await stop_delivering(service)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """True when `stop` was set within `seconds`."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def run_leader(settings: Settings, *, stop: asyncio.Event | None = None,
                     resolve: Mapping[str, str] | None = None) -> None:
    """Lead while this process holds the database's scheduler lock; until then wait on standby, serving the ops
    API, and take over within LEADER_POLL_SECONDS of the active leader's death. A leader that can no longer vouch
    for its lock stops (StorageError), so an orchestrator restarts it as a standby."""
    if not settings.celery_broker_url:  # said before the database is touched
        raise ConfigError("CELERY_BROKER_URL: required by the leader and the workers (e.g. redis://127.0.0.1:6379/0)")
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    async with build_service(settings, resolve=resolve, role="leader") as service:
        await service.ops.start_server(settings)
        told = False
        while not await service.lock.acquire():
            if not told:
                log.info("standby: the active leader is %s; taking over when it is gone", await service.lock.holder())
                told = True
            if await _wait(stop, settings.leader_poll_seconds):
                return
        await start_service(service, serve=False)
        log.info("leading: claiming due searches for the workers and delivering alerts (database: %s)",
                 db.safe_url(db.normalise_url(settings.resolved_database_url)))
        try:
            while not await _wait(stop, settings.leader_poll_seconds):
                await service.lock.check()
        finally:
            log.info("Deal Scout leader stopping")
            await service.scheduler.stop()
            await service.ops.reporter.say(f"Deal Scout leader {describe_self('leader')} stopping.")
            await stop_delivering(service)


@contextlib.asynccontextmanager
async def stateless_ops(settings: Settings) -> AsyncIterator[Ops]:
    """The ops an API process serves: the database opened (not migrated), no scheduler, scans or chat gateways."""
    async with open_store(settings, migrate=False) as store:
        adapters = build_adapters(settings)

        async def nowhere(_: str) -> None:
            return None

        ops = build_ops(settings, engine=store.engine, repo=store.repo, adapters=adapters, clock=utc_now,
                        scheduler_ticks={}, platforms={}, sends={}, say=nowhere)
        ops.health.scheduler_elsewhere = True
        # Operator actions taken here are announced through the outbox, which the leader delivers.
        ops.extra_routers.extend(rest_routers(store.repo, build_commands(settings, store.repo, adapters),
                                              build_admin(settings, store.repo, adapters)))
        ops.extra_routers.append(build_status_router(store.repo, adapters, clock=utc_now))
        yield ops


async def run_api(settings: Settings, *, stop: asyncio.Event | None = None, reuse_port: bool = False) -> None:
    """Serve the ops API alone (health, detailed health, metrics): no scheduler, scans or chat gateways, so any
    number of these may run beside the leader."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    async with stateless_ops(settings) as ops:
        await ops.start_server(settings, reuse_port=reuse_port)
        log.info("Deal Scout API serving the ops endpoints")
        try:
            await stop.wait()
        finally:
            await ops.stop_server()


async def stop_delivering(service: Service) -> None:
    """With the jobs stopped, send what is due (the stopping message among it) for a few seconds at most.

    Whatever does not go out in time stays in the outbox, claimed rows included, for the next start.
    """
    try:
        await asyncio.wait_for(service.dispatcher.drain(), STOP_DRAIN_SECONDS)
    except TimeoutError:
        log.info("stopped with alerts still to send; they go out after the next start")
