"""Discord front end benchmarks against the local fake: command latency over a big database, alert throughput."""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.common import percentile, print_table
from bot.commands import Commands
from bot.discord.client import DiscordRest
from bot.discord.frontend import build_discord_front_end
from bot.discord.notifier import DiscordLimits, DiscordNotifier
from dealscout.app import open_store
from scout.config import load_settings
from scout.delivery import Dispatcher
from scout.models import Alert, Destination, FetchOutcome, Listing, Money, SearchRun, SearchSpec
from scrapers.registry import build_adapters
from storage.repo import Repository
from tests.bot.discord.harness import CHANNEL_ID, GUILD_ID, MEMBER, Interactions
from tests.fakes.discord_api import FakeDiscord

LATENCY_TARGET_MS = 50.0
THROUGHPUT_TARGET = 1.20  # within 20% of the fastest schedule the limits allow
OWNERS = 1000  # 10,000 searches: ten each
SCAN_BATCH = 5000


def listing(n: int) -> Listing:
    return Listing("ebay", str(n), f"Lego Technic set {n}", f"https://www.ebay.com/itm/{n}",
                   Money(Decimal(random.Random(n).randint(5, 500)), "USD"))


async def seed(repo: Repository, *, searches: int, listings: int, now: datetime) -> list[Any]:
    """`searches` searches over OWNERS members of one server, and `listings` listings, each matched by one search."""
    spec = SearchSpec(query="lego technic", marketplaces=("ebay",), check_interval_minutes=10)
    saved = []
    for n in range(searches):
        owner = 710000000000000000 + n % OWNERS
        saved.append(await repo.save_search(owner=str(owner), destination=Destination("discord", str(CHANNEL_ID)),
                                            scope=str(GUILD_ID), spec=spec, now=now, first_run_at=now))
    for start in range(0, listings, SCAN_BATCH):
        batch = tuple(listing(n) for n in range(start, min(listings, start + SCAN_BATCH)))
        matches: dict[int, list[Listing]] = {}
        for offset, item in enumerate(batch):
            matches.setdefault(saved[(start + offset) % len(saved)].id, []).append(item)
        fetch = FetchOutcome("ebay", "lego technic", "success", 1, batch,
                             matches={sid: tuple(items) for sid, items in matches.items()})
        runs = [SearchRun(sid, now + timedelta(minutes=10), frozenset({"ebay"})) for sid in matches]
        await repo.save_scan(now=now, fetches=[fetch], runs=runs, searches={s.id: s for s in saved if s.id in matches},
                             baseline_first_scan=False)
    return saved


def interactions_for(bot: Interactions, saved: Sequence[Any], rounds: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(1)
    made = []
    for _ in range(rounds):
        search = rng.choice(saved)
        user = int(search.owner)
        kinds = [
            ("search add", bot.slash("search add", {"query": "duplo train", "max_price": "80", "marketplaces": "ebay"},
                                     user=user)),
            ("search list", bot.slash("search list", user=user)),
            ("search show", bot.slash("search show", {"search": str(search.id)}, user=user)),
            ("search edit", bot.slash("search edit", {"search": str(search.id), "max_price": "300"}, user=user)),
            ("search pause", bot.slash("search pause", {"search": str(search.id)}, user=user)),
            ("search resume", bot.slash("search resume", {"search": str(search.id)}, user=user)),
            ("deals", bot.slash("deals", {"search": str(search.id)}, user=user)),
            ("autocomplete", bot.slash("search show", {"search": "lego"}, focused="search", user=user)),
        ]
        made.extend(kinds)
    return made


async def bench_commands(*, searches: int, listings: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings({"DEALSCOUT_DATA_DIR": folder, "DISCORD_TOKEN": "bench"}, env_file=None)
        async with open_store(settings) as store, FakeDiscord() as fake:
            now = datetime.now(UTC)
            began = time.perf_counter()
            saved = await seed(store.repo, searches=searches, listings=listings, now=now)
            print(f"seeded {searches:,} searches and {listings:,} listings in {time.perf_counter() - began:.1f} s")
            commands = Commands(store.repo, build_adapters(settings), clock=lambda: datetime.now(UTC))
            front = build_discord_front_end(settings, commands, clock=lambda: datetime.now(UTC))
            await front.login()
            assert front.client is not None
            bot = Interactions(front.client, fake)
            timings: dict[str, list[float]] = {}
            try:
                for kind, payload in interactions_for(bot, saved, rounds):
                    assert payload["member"]["permissions"] == str(MEMBER.value)
                    sent = time.perf_counter()
                    await bot.send(payload)
                    answered = fake.callback_at[payload["id"]]
                    timings.setdefault(kind, []).append(1000 * (answered - sent))
            finally:
                await front.stop()
    every = [ms for values in timings.values() for ms in values]
    rows = [(kind, len(values), f"{percentile(values, 0.5):.1f}", f"{percentile(values, 0.95):.1f}",
             f"{max(values):.1f}") for kind, values in timings.items()]
    rows.append(("all", len(every), f"{percentile(every, 0.5):.1f}", f"{percentile(every, 0.95):.1f}",
                 f"{max(every):.1f}"))
    print(f"\nCommand latency, interaction in to response out (ms), {searches:,} searches, {listings:,} listings:")
    print_table(["command", "n", "p50", "p95", "max"], rows)
    p95 = percentile(every, 0.95)
    print(f"p95 {p95:.1f} ms: {'meets' if p95 < LATENCY_TARGET_MS else 'MISSES'} the {LATENCY_TARGET_MS:.0f} ms target")


def fastest_schedule(per_channel: Sequence[int], *, channel_limit: int, channel_window: float, global_limit: int,
                     global_window: float) -> float:
    """When the last message could go at the earliest under the fake's limits (greedy, zero latency).

    Every channel's next message is due at the earliest time its window allows; the global limit delays all
    channels alike, so sending the earliest-due message first is optimal.
    """
    left = list(per_channel)
    start: list[float | None] = [None] * len(left)
    used = [0] * len(left)
    sent: list[float] = []
    due = [(0.0, channel) for channel, count in enumerate(left) if count]
    heapq.heapify(due)
    while due:
        at, channel = heapq.heappop(due)
        if len(sent) >= global_limit:
            at = max(at, sent[-global_limit] + global_window)
        first = start[channel]
        if first is None or at >= first + channel_window:
            start[channel], used[channel] = at, 0
        used[channel] += 1
        sent.append(at)
        left[channel] -= 1
        if left[channel]:
            window_start = start[channel]
            assert window_start is not None
            heapq.heappush(due, (at if used[channel] < channel_limit else window_start + channel_window, channel))
    return max(sent, default=0.0)


@dataclass
class Throughput:
    elapsed: float
    messages: int
    per_channel: list[int]
    rate_limited: int
    sent: int


async def run_throughput(*, alerts: int, channels: int, limits: DiscordLimits, batch: int) -> Throughput:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings({"DEALSCOUT_DATA_DIR": folder}, env_file=None)
        async with open_store(settings) as store, FakeDiscord() as fake:
            repo, now = store.repo, datetime.now(UTC)
            spec = SearchSpec(query="lego", marketplaces=("ebay",), check_interval_minutes=10)
            per = alerts // channels
            for index in range(channels):
                search = await repo.save_search(owner="1", destination=Destination("discord", str(800 + index)),
                                                scope="1", spec=spec, now=now, first_run_at=now)
                items = tuple(listing(index * per + n) for n in range(per))
                await repo.save_scan(now=now, fetches=[FetchOutcome("ebay", "lego", "success", 1, items,
                                                                    matches={search.id: items})],
                                     runs=[SearchRun(search.id, now, frozenset({"ebay"}))],
                                     searches={search.id: search}, baseline_first_scan=False)
            notifier = DiscordNotifier(DiscordRest("bench"), marketplace_names={"ebay": "eBay"}, limits=limits)
            dispatcher = Dispatcher(repo, {"discord": notifier}, clock=lambda: datetime.now(UTC), batch_size=batch)
            began = time.perf_counter()
            sent = 0
            while sent < alerts:
                report = await dispatcher.drain()
                sent += report.sent
                if report.sent == 0 and report.retried == 0:
                    break
            elapsed = time.perf_counter() - began
            await notifier.close()
            counts = [len(fake.messages_in(800 + index)) for index in range(channels)]
            return Throughput(elapsed, len(fake.messages), counts, len(fake.rate_limited), sent)


async def run_notifier_alone(*, alerts: int, channels: int, limits: DiscordLimits) -> Throughput:
    """The notifier's own pacing: each channel's alerts in order, channels side by side, no database."""
    per = alerts // channels
    async with FakeDiscord() as fake:
        notifier = DiscordNotifier(DiscordRest("bench"), marketplace_names={"ebay": "eBay"}, limits=limits)

        async def channel(index: int) -> int:
            where = Destination("discord", str(800 + index))
            queue = [Alert(index * per + n + 1, where, listing(index * per + n), 1, "lego") for n in range(per)]
            size = notifier.digest_size if notifier.wants_digest(where, len(queue)) else 1
            done = 0
            for start in range(0, len(queue), size):
                batch = queue[start : start + size]
                result = await (notifier.send_alert(where, batch[0]) if size == 1
                                else notifier.send_digest(where, batch))
                done += len(batch) if result.delivered else 0
            return done

        began = time.perf_counter()
        sent = sum(await asyncio.gather(*(channel(index) for index in range(channels))))
        elapsed = time.perf_counter() - began
        await notifier.close()
        counts = [len(fake.messages_in(800 + index)) for index in range(channels)]
        return Throughput(elapsed, len(fake.messages), counts, len(fake.rate_limited), sent)


async def bench_throughput(*, alerts: int, channels: int, batch: int) -> None:
    fake = FakeDiscord()
    print(f"\nAlert throughput: {alerts:,} alerts over {channels} channels against the fake's limits "
          f"({fake.channel_limit} messages per {fake.channel_window:.0f} s per channel, {fake.global_limit} requests "
          f"in any {fake.global_window:.0f} s):")
    digests, single = DiscordLimits(), DiscordLimits(digest_after_seconds=float("inf"))
    runs = [
        (f"service: dispatcher (batch {batch}) + notifier, digests on", run_throughput(
            alerts=alerts, channels=channels, limits=digests, batch=batch)),
        (f"service: dispatcher (batch {batch}) + notifier, no digests", run_throughput(
            alerts=alerts, channels=channels, limits=single, batch=batch)),
        ("notifier alone, digests on", run_notifier_alone(alerts=alerts, channels=channels, limits=digests)),
        ("notifier alone, no digests", run_notifier_alone(alerts=alerts, channels=channels, limits=single)),
    ]
    rows = []
    for name, job in runs:
        result = await job
        best = fastest_schedule(result.per_channel, channel_limit=fake.channel_limit,
                                channel_window=fake.channel_window, global_limit=fake.global_limit,
                                global_window=fake.global_window)
        even = max((result.messages - 1) / fake.global_limit * fake.global_window,
                   max((n - 1) // fake.channel_limit * fake.channel_window for n in result.per_channel))
        rows.append((name, result.sent, result.messages, result.rate_limited, f"{result.elapsed:.2f}",
                     f"{result.sent / result.elapsed:.0f}", f"{best:.2f}", f"{result.elapsed / max(best, 0.01):.2f}",
                     f"{even:.2f}", f"{result.elapsed / max(even, 0.01):.2f}"))
    print_table(["run", "alerts", "messages", "429s", "elapsed s", "alerts/s", "fastest s", "x fastest",
                 "even s", "x even"], rows)
    print(f"'fastest': the greedy schedule of the same messages under the fake's limits (the global limit may burst "
          f"{fake.global_limit} at once); 'even': the same with the global limit spread evenly at "
          f"{fake.global_limit}/s. The notifier sends at most {DiscordLimits().global_requests} in any "
          f"{DiscordLimits().global_window_seconds} s. "
          f"Target: x within {THROUGHPUT_TARGET:.2f}.")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--searches", type=int, default=10_000)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=60, help="rounds of the 8 command kinds")
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000, help="the dispatcher's batch size (the service's: 1000)")
    parser.add_argument("--skip-commands", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_commands:
        asyncio.run(bench_commands(searches=args.searches, listings=args.listings, rounds=args.rounds))
    if not args.skip_throughput:
        asyncio.run(bench_throughput(alerts=args.alerts, channels=args.channels, batch=args.batch))


if __name__ == "__main__":
    main()
