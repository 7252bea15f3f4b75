"""What scoring a fetch's new alerts costs against 1,000,000 stored listings, beside the same at 10,000.

A deal score reads the comparables of the fetch group's (search words, marketplace) from one range of
ix_listing_words_recent, the deal window newest first (storage.deals `load_judge`), then ranks each alert's price among them (`Judge.facts`,
scout.deals). The read must cost what the range holds, not what the table holds: this bench times it on two
databases whose keys hold the same comparables, one of `--listings` (default 1,000,000) and one of `--compare`
(default 10,000) listings, taking turns in the same run, and prints the ratio.

The databases: migrated by storage.db, then filled in bulk in one transaction, in chunks of 50,000 generated
listings with their listing_words rows. SQLite (the default, temp files): the stdlib driver's executemany, with
synchronous=OFF and a 512 MB page cache while seeding (the service's own PRAGMAs are back for the timing).
PostgreSQL (`--postgres URL`, or DEALSCOUT_BENCH_POSTGRES_URL): the bench creates `bench_deals_big_<pid>` and
`bench_deals_small_<pid>` on that server and drops them at the end; asyncpg's binary COPY with
session_replication_role = replica (no foreign-key trigger per row), then VACUUM ANALYZE as autovacuum would.

The rows: listings on three marketplaces (eBay in USD with a tenth in GBP, Kleinanzeigen and Vinted in EUR), each
under one search-words key and half of them under a second one too, seen over the last 120 days (a quarter of them
outside the 90-day window). `--per-key` listings per key on average (default 500: 2,000 keys at 1,000,000), in
blocks of 20 keys: 15 niche keys (weight 0.4), 4 typical (1.5) and 1 broad (8.0), so a key class holds as many
comparables at every table size. One key's listing ids are spread over the whole table. Prices: a base price per
key, log-uniform from 15 to 1,500, times a log-normal spread (sigma 0.28), with 3% "1.00, make an offer"
placeholders, 2% collector's prices (x2.5-6), 1% lots for parts (x0.3-0.5) and 2% without a price; shipping where
the marketplace shows it; titles with the key's words, some with "broken" or "defekt", some with accents.

Timed, the two databases taking turns over 10 rounds: `--fetches` fetch groups each (default 300), a third of them
on each key class, each with a marketplace and 5 new alerts from a 60-listing page: `load_judge` for its key, then
`Judge.facts` for each alert (every other alert's search excludes "broken defekt parts"); the median and p95 per
fetch. Then `record_words` for `--writes` 60-listing pages each (default 100: 45 listings already under the words,
15 new to them). Then, on the big database, two more eBay keys loading as many comparables (~3,600): one with
30,000 rows seen over two years, one with its rows all within the window (what rows outside it cost). Then the plans
of both statements (EXPLAIN QUERY PLAN on SQLite; the generic plan on PostgreSQL, as bench/scan_db.py `explain`
makes it).

Targets: a fetch at `--listings` costs at most 1.5x what it costs at `--compare` (median and p95 over all fetches),
and the comparables query reads an index range of listing_words, never a scan.

Run from the project root:
  .venv/bin/python -m bench.deals                                     # SQLite, ~90 s
  .venv/bin/python -m bench.deals --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import math
import os
import random
import re
import sqlite3
import tempfile
import time
from bisect import bisect_right
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.common import fresh_database, percentile, print_table
from bench.scan_db import StatementProfile, print_statement_plans
from scout.deals import DealPolicy, comparable_words
from scout.models import FetchOutcome, Listing, Money
from storage.db import create_engine, safe_url, session_factory, upgrade
from storage.deals import WordsKey, load_judge, record_words
from storage.tables import ListingWordsRow

POSTGRES_ENV = "DEALSCOUT_BENCH_POSTGRES_URL"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a fixed clock: the same rows and windows on every run
SPAN = timedelta(days=120)  # listings were seen over this long: a quarter of it lies outside the 90-day window
PAGE_LISTINGS = 60  # a real eBay result page's size
KNOWN_ON_PAGE = 45  # of a written page, listings already under its words: a repeat scan sees mostly known ones
ALERTS_PER_FETCH = 5
EXCLUDE = ("broken", "defekt", "parts")  # what every other alert's search excludes
CHUNK = 50_000  # listings generated and sent per executemany / COPY: bounded memory at any table size
ROUNDS = 10  # the two databases take turns this many times, so a busy spell of the machine falls on both alike
WARM_UP = 10  # untimed fetches per database first: pools, prepared statements, caches, as in a running service
TARGET_RATIO = 1.5  # what the bigger table may add per fetch (pages that are not in cache), no more
SEED_CACHE_KB = 512_000  # SQLite's page cache while seeding: the indexes being built stay in memory
HISTORY = timedelta(days=730)  # the long-running key's rows were seen over two years
HISTORY_ROWS = 30_000  # its rows: about 3,700 of them within the window, under the 5,000 comparables loaded at most
HISTORY_FETCHES = 100  # timed fetches of each of the two history keys
WINDOW = timedelta(days=DealPolicy().window_days)
POOL = 4096  # precomputed price spreads and timestamps, picked by random bits: about a microsecond a row

# (class, keys in a block of 20, weight): a niche key holds 0.4x the average key's listings, a broad one 8x.
KEY_CLASSES = (("niche", 15, 0.4), ("typical", 4, 1.5), ("broad", 1, 8.0))
BLOCK = sum(count for _, count, _ in KEY_CLASSES)
WEIGHTS = [weight for _, count, weight in KEY_CLASSES for _ in range(count)]
CUMULATIVE = [sum(WEIGHTS[: i + 1]) / sum(WEIGHTS) for i in range(BLOCK)]
POSITIONS = {name: [i for i in range(BLOCK) if WEIGHTS[i] == weight] for name, _, weight in KEY_CLASSES}
# Multiples of two irrational numbers, modulo 1, spread a key's listings (and its second key's) over all ids.
PRIMARY_STEP, SECONDARY_STEP = 0.6180339887498949, 0.7548776662466927

BRANDS = ("sony", "nikon", "canon", "apple", "samsung", "lego", "nintendo", "dyson", "bose", "garmin", "fujifilm",
          "dji", "lenovo", "asus", "makita", "bosch", "logitech", "gopro", "pioneer", "technics")
PRODUCTS = ("camera", "lens", "headphones", "watch", "console", "drone", "laptop", "speaker", "drill", "tablet",
            "phone", "monitor", "keyboard", "turntable", "router", "vacuum", "controller", "charger", "tripod",
            "mixer", "amplifier", "projector", "printer", "scanner", "bike")
VARIANTS = ("mk2", "pro", "mini", "2019", "2021", "max", "plus", "lite", "ultra", "s")
SUFFIXES = ("like new", "boxed", "with receipt", "good condition", "used", "for parts not working", "bundle",
            "broken screen", "wie neu", "OVP Zustand sehr gut", "defekt", "très bon état", "neuf avec étiquette",
            "barely used", "excellent", "open box", "Rechnung vorhanden", "état correct", "mint", "")


@dataclass(frozen=True)
class Marketplace:
    key: str
    host: str
    currencies: tuple[str, ...]  # drawn evenly: the first is the one alerts carry
    shipping: tuple[float | None, ...]  # drawn evenly; None where the page says nothing


MARKETPLACES = (
    Marketplace("ebay", "www.ebay.com", ("USD",) * 9 + ("GBP",), (None, None, 0.0, 0.0, 4.99, 7.5, 9.99, 14.0)),
    Marketplace("kleinanzeigen", "www.kleinanzeigen.de", ("EUR",), (None, None, None, None, 4.99, 6.99)),
    Marketplace("vinted", "www.vinted.de", ("EUR",), (2.88, 3.59, 4.19, 5.49)),
)


def build_spreads(rng: random.Random) -> list[float | None]:
    """POOL price multipliers of a key's base price: None for no price, -1 for the 1.00 placeholder."""
    spreads: list[float | None] = []
    for _ in range(POOL):
        draw = rng.random()
        if draw < 0.02:
            spreads.append(None)
        elif draw < 0.05:
            spreads.append(-1.0)
        elif draw < 0.07:
            spreads.append(rng.uniform(2.5, 6.0))
        elif draw < 0.08:
            spreads.append(rng.uniform(0.3, 0.5))
        else:
            spreads.append(math.exp(rng.gauss(0.0, 0.28)))
    return spreads


SPREADS = build_spreads(random.Random(1))
# Sighting times, newest first, evenly over SPAN.
SEEN = [NOW - SPAN * (i + 0.5) / POOL for i in range(POOL)]


@dataclass(frozen=True)
class KeyPlan:
    """The keys of a table of `listings` listings, and which key(s) each listing is under."""

    listings: int
    per_key: int

    @property
    def blocks(self) -> int:
        return max(1, self.listings // (BLOCK * self.per_key))

    @property
    def keys(self) -> int:
        return self.blocks * BLOCK

    def key_of(self, n: int, step: float) -> int:
        blocks = self.blocks
        return (n % blocks) * BLOCK + min(BLOCK - 1, bisect_right(CUMULATIVE, (n // blocks * step) % 1.0))


@functools.cache
def key_title(key: int) -> str:
    words = [BRANDS[key % 20].capitalize(), PRODUCTS[key // 20 % 25].capitalize(), VARIANTS[key // 500 % 10]]
    return " ".join(words + ([f"v{key // 5000}"] if key >= 5000 else []))


@functools.cache
def key_words(key: int) -> str:
    return comparable_words(key_title(key))


@functools.cache
def base_price(key: int) -> float:
    return math.exp(random.Random(key).uniform(math.log(15), math.log(1500)))


def price_of(key: int, spread: float | None) -> float | None:
    if spread is None:
        return None
    return 1.0 if spread < 0 else round(base_price(key) * spread, 2)


def generate(plan: KeyPlan, start: int, stop: int, seen: Sequence[Any],
             marketplace_of: bytearray) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows of listings start .. stop-1 (ids start+1 ..): LISTING_COLUMNS and WORDS_COLUMNS in order. Timestamps
    are what `seen` holds (each driver takes its own kind); prices are floats, which both drivers store exactly at
    two places. Each listing's marketplace index is kept in `marketplace_of`."""
    rng = random.Random(start)
    listings, words = [], []
    for n in range(start, stop):
        bits, more = rng.getrandbits(64), rng.getrandbits(24)
        listing_id = n + 1
        market_index = (bits & 0xFF) % 3
        market = MARKETPLACES[market_index]
        marketplace_of[n] = market_index
        primary = plan.key_of(n, PRIMARY_STEP)
        secondary = plan.key_of(n, SECONDARY_STEP) if bits >> 8 & 1 else primary
        title = f"{key_title(primary)} {SUFFIXES[(bits >> 21 & 0xFF) % len(SUFFIXES)]}"
        if secondary != primary:
            title += f" + {key_title(secondary)}"
        last = bits >> 29 & (POOL - 1)
        listings.append((
            listing_id, market.key, str(listing_id), title, f"https://{market.host}/itm/{listing_id}",
            price_of(primary, SPREADS[bits >> 9 & (POOL - 1)]),
            market.currencies[(bits >> 49 & 0xF) % len(market.currencies)], f"seller-{more >> 8}",
            market.shipping[(bits >> 41 & 0xFF) % len(market.shipping)],
            seen[min(POOL - 1, last + (more & 0xFF))], seen[last],
        ))
        words.append((key_words(primary), market.key, listing_id, seen[last]))
        if secondary != primary:
            words.append((key_words(secondary), market.key, listing_id, seen[last]))
    return listings, words


LISTING_COLUMNS = ("id", "marketplace", "external_id", "title", "url", "price", "currency", "seller", "shipping",
                   "first_seen_at", "last_seen_at")
WORDS_COLUMNS = ("words", "marketplace", "listing_id", "seen_at")


@dataclass
class Seeded:
    """What seeding wrote, and the marketplace of each listing, which the timed writes pick pages by."""

    listings: int = 0
    words_rows: int = 0
    seconds: float = 0.0
    marketplace_of: bytearray = field(default_factory=bytearray)  # listing id - 1 -> index into MARKETPLACES


def seed_sqlite(path: str, plan: KeyPlan) -> Seeded:
    """One transaction of executemany's through the stdlib driver, on a database no one else has open."""
    started = time.perf_counter()
    dialect = sqlite_dialect.dialect()
    as_text = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)  # the text SQLAlchemy itself stores
    seen = [as_text(moment.replace(tzinfo=None)) for moment in SEEN]
    seeded = Seeded(listings=plan.listings, marketplace_of=bytearray(plan.listings))
    insert_listings = f"INSERT INTO listings ({', '.join(LISTING_COLUMNS)}) VALUES ({', '.join('?' * 11)})"
    insert_words = f"INSERT INTO listing_words ({', '.join(WORDS_COLUMNS)}) VALUES (?, ?, ?, ?)"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous=OFF")  # a throw-away file: nothing to keep through a crash
        connection.execute(f"PRAGMA cache_size=-{SEED_CACHE_KB}")
        connection.execute("BEGIN")
        for start in range(0, plan.listings, CHUNK):
            listings, words = generate(plan, start, min(plan.listings, start + CHUNK), seen, seeded.marketplace_of)
            connection.executemany(insert_listings, listings)
            connection.executemany(insert_words, words)
            seeded.words_rows += len(words)
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    seeded.seconds = time.perf_counter() - started
    return seeded


async def seed_postgres(engine: AsyncEngine, plan: KeyPlan) -> Seeded:
    """One transaction of binary COPYs, foreign-key triggers off for it; then VACUUM ANALYZE."""
    started = time.perf_counter()
    seeded = Seeded(listings=plan.listings, marketplace_of=bytearray(plan.listings))
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute("SET session_replication_role = replica")  # the seeded ids are there: skip the checks
        async with raw.transaction():
            for start in range(0, plan.listings, CHUNK):
                listings, words = generate(plan, start, min(plan.listings, start + CHUNK), SEEN,
                                           seeded.marketplace_of)
                await raw.copy_records_to_table("listings", records=listings, columns=LISTING_COLUMNS)
                await raw.copy_records_to_table("listing_words", records=words, columns=WORDS_COLUMNS)
                seeded.words_rows += len(words)
            await raw.execute("SELECT setval(pg_get_serial_sequence('listings', 'id'), (SELECT max(id) FROM listings))")
        await raw.execute("RESET session_replication_role")
        await raw.execute("VACUUM ANALYZE listings")
        await raw.execute("VACUUM ANALYZE listing_words")
    seeded.seconds = time.perf_counter() - started
    return seeded


@dataclass(frozen=True)
class FetchSpec:
    """A fetch group, the same at every table size: its key's place, its marketplace, its alerts."""

    position: int  # in the key's block: the key class
    block_share: float  # which block, as a share of the table's blocks
    market_index: int
    alerts: tuple[tuple[float, float | None], ...]  # (price spread, shipping) per alert

    def key(self, plan: KeyPlan) -> int:
        return min(plan.blocks - 1, int(self.block_share * plan.blocks)) * BLOCK + self.position

    def words_key(self, plan: KeyPlan) -> WordsKey:
        return key_words(self.key(plan)), MARKETPLACES[self.market_index].key

    @property
    def key_class(self) -> str:
        return next(name for name, positions in POSITIONS.items() if self.position in positions)


def build_specs(count: int, rng: random.Random) -> list[FetchSpec]:
    """`count` fetch groups, the key classes in turn."""
    specs = []
    names = list(POSITIONS)
    for n in range(count):
        market = MARKETPLACES[rng.randrange(len(MARKETPLACES))]
        priced = [s for s in (rng.choice(SPREADS) for _ in range(4 * ALERTS_PER_FETCH)) if s is not None]
        alerts = tuple((priced[i], rng.choice(market.shipping)) for i in range(ALERTS_PER_FETCH))
        specs.append(FetchSpec(rng.choice(POSITIONS[names[n % len(names)]]), rng.random(),
                               MARKETPLACES.index(market), alerts))
    return specs


def alert_listings(spec: FetchSpec, plan: KeyPlan) -> list[Listing]:
    """The fetch's new listings: prices of the key's spread in the marketplace's first currency."""
    key = spec.key(plan)
    market = MARKETPLACES[spec.market_index]
    currency = market.currencies[0]
    found = []
    for n, (spread, shipping) in enumerate(spec.alerts):
        price = price_of(key, spread)
        found.append(Listing(
            marketplace=market.key, external_id=f"new-{n}", title=f"{key_title(key)} {SUFFIXES[n]}",
            url=f"https://{market.host}/itm/new-{n}",
            price=Money(Decimal(f"{price:.2f}"), currency) if price is not None else None,
            shipping=Money(Decimal(f"{shipping:.2f}"), currency) if shipping is not None else None))
    return found


@dataclass
class Database:
    label: str
    plan: KeyPlan
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    seeded: Seeded
    size_mb: float = 0.0
    samples: list[tuple[str, int, float, float]] = field(default_factory=list)  # class, comparables, load s, facts s
    writes: list[float] = field(default_factory=list)


async def score(db: Database, key: WordsKey, alerts: Sequence[Listing]) -> tuple[int, float, float]:
    """load_judge for one key, then Judge.facts for each alert: (comparables, load s, facts s)."""
    first_new_id = db.plan.listings + 1  # not stored: nothing of theirs is among the comparables
    async with db.sessions() as session:
        await session.connection()  # a save scores inside its open transaction
        started = time.perf_counter()
        judge = await load_judge(session, [key], NOW)
        loaded = time.perf_counter()
        for n, listing in enumerate(alerts):
            judge.facts(first_new_id + n, listing, key[0], EXCLUDE if n % 2 else ())
        scored = time.perf_counter()
    return len(judge.comparables[key]), loaded - started, scored - loaded


async def score_fetch(db: Database, spec: FetchSpec) -> tuple[str, int, float, float]:
    """A fetch group's scoring: (key class, comparables, load s, facts s)."""
    return spec.key_class, *await score(db, spec.words_key(db.plan), alert_listings(spec, db.plan))


async def add_history(db: Database, rng: random.Random) -> list[tuple[str, WordsKey, int]]:
    """Two more eBay keys in listing_words: one seen over HISTORY (a search running for two years), and one with
    as many rows as that one has within the window, all of them within it. Returns (name, key, rows) of each."""
    ebay = [n + 1 for n, market in enumerate(db.seeded.marketplace_of) if market == 0]
    rows = min(HISTORY_ROWS, len(ebay))
    old = [NOW - HISTORY * rng.random() for _ in range(rows)]
    recent = [moment for moment in old if moment >= NOW - WINDOW]
    keys = []
    values = []
    for name, title, moments in ((f"{HISTORY.days} days", "Vintage Film Camera", old), (f"{WINDOW.days} days", "Mirrorless Camera Body",
                                                                          [NOW - WINDOW * rng.random()
                                                                           for _ in recent])):
        key = (comparable_words(title), "ebay")
        keys.append((name, key, len(moments)))
        values.extend({"words": key[0], "marketplace": key[1], "listing_id": listing_id, "seen_at": moment}
                      for listing_id, moment in zip(rng.sample(ebay, len(moments)), moments))
    async with db.engine.begin() as conn:
        await conn.execute(sa.insert(ListingWordsRow), values)
    return keys


async def write_page(db: Database, spec: FetchSpec, rng: random.Random, now: datetime) -> float:
    """record_words for a page of PAGE_LISTINGS stored listings, KNOWN_ON_PAGE of them already under its words."""
    words, market = spec.words_key(db.plan)
    async with db.sessions() as session:
        judge = await load_judge(session, [(words, market)], now)
    ids = [c.listing_id for c in judge.comparables[(words, market)][:KNOWN_ON_PAGE]]
    while len(ids) < PAGE_LISTINGS:
        candidate = rng.randrange(db.plan.listings) + 1
        if db.seeded.marketplace_of[candidate - 1] == spec.market_index and candidate not in ids:
            ids.append(candidate)
    page = tuple(Listing(market, str(i), f"listing {i}", f"https://example.invalid/{i}") for i in ids)
    fetch = FetchOutcome(market, words, "success", 0, listings=page, carrying={words: page})
    async with db.sessions.begin() as session:
        await session.connection()
        started = time.perf_counter()
        await record_words(session, db.engine.dialect.name, [fetch], {listing.key: int(listing.external_id)
                                                                       for listing in page}, now)
        return time.perf_counter() - started


@contextlib.asynccontextmanager
async def database_url(postgres: str | None, name: str, folder: str) -> AsyncIterator[str]:
    if postgres:
        async with fresh_database(postgres, f"bench_deals_{name}") as url:
            yield url
    else:
        yield f"sqlite:///{folder}/deals_{name}.db"


async def open_database(stack: contextlib.AsyncExitStack, postgres: str | None, name: str, folder: str,
                        plan: KeyPlan) -> Database:
    url = await stack.enter_async_context(database_url(postgres, name, folder))
    engine = create_engine(url)
    stack.push_async_callback(engine.dispose)
    await upgrade(engine)
    print(f"seeding {plan.listings:,} listings into {safe_url(url)} ...", flush=True)
    if engine.dialect.name == "sqlite":
        await engine.dispose()  # the seeding connection is the only one
        assert engine.url.database is not None
        seeded = await asyncio.to_thread(seed_sqlite, engine.url.database, plan)
        size = sum(p.stat().st_size for p in Path(folder).glob(f"deals_{name}.db*"))
    else:
        seeded = await seed_postgres(engine, plan)
        async with engine.connect() as conn:
            size = int((await conn.exec_driver_sql("SELECT pg_database_size(current_database())")).scalar_one())
    return Database(f"{plan.listings:,}", plan, engine, session_factory(engine), seeded, size / 1e6)


def milliseconds(values: Sequence[float], fraction: float) -> float:
    return 1000 * percentile(values, fraction)


def report_scoring(big: Database, small: Database) -> tuple[float, float]:
    """The scoring table; returns the ratios (big / small) of the median and p95 over all fetches."""
    rows = []
    for name in [*POSITIONS, "all"]:
        for db in (big, small):
            picked = [s for s in db.samples if name in ("all", s[0])]
            totals = [load + facts for _, _, load, facts in picked]
            counts = sorted(count for _, count, _, _ in picked)
            rows.append([name, db.label, len(picked), f"{counts[len(counts) // 2]:,} ({counts[0]:,}-{counts[-1]:,})",
                         f"{milliseconds([s[2] for s in picked], 0.5):.2f}",
                         f"{milliseconds([s[3] for s in picked], 0.5):.2f}",
                         f"{milliseconds(totals, 0.5):.2f}", f"{milliseconds(totals, 0.95):.2f}"])
    print(f"\nscoring one fetch: load_judge for its key + Judge.facts for {ALERTS_PER_FETCH} alerts "
          f"({ROUNDS} rounds, the databases in turn)")
    print_table(["key class", "listings", "fetches", "comparables p50 (min-max)", "load p50 ms", "facts p50 ms",
                 "fetch p50 ms", "fetch p95 ms"], rows)
    ratios = []
    for fraction in (0.5, 0.95):
        ratios.append(milliseconds([s[2] + s[3] for s in big.samples], fraction)
                      / milliseconds([s[2] + s[3] for s in small.samples], fraction))
    return ratios[0], ratios[1]


def uses_primary_key(lines: Sequence[str]) -> bool:
    """Whether a plan reads listing_words by a (words, marketplace) range of an index (ix_listing_words_recent, its
    window newest first, or the primary key) and scans no table."""
    text = "\n".join(lines)
    index = r"(?:ix_listing_words_recent|pk_listing_words)"
    on_key = re.search(r"SEARCH listing_words USING (?:INDEX (?:ix_listing_words_recent|sqlite_autoindex_listing_words_1)"
                       r"|PRIMARY KEY) \(words=\? AND marketplace=\?|Index (?:Only )?Scan(?: Backward)? using "
                       rf"{index}|Bitmap Index Scan on {index}", text)
    scans = re.search(r"\bSCAN (?:listing_words|listings)\b|Seq Scan on (?:listing_words|listings)", text)
    return on_key is not None and scans is None


async def print_plans(db: Database, spec: FetchSpec, rng: random.Random) -> bool:
    """The plans of load_judge's and record_words' statements; whether the comparables query uses the key."""
    profile = StatementProfile()
    with profile.recording(db.engine):
        await score_fetch(db, spec)
        await write_page(db, spec, rng, NOW + timedelta(days=1))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # each plan is asked for once: PostgreSQL keeps the PREPAREd name
        await print_statement_plans(db.engine, profile, set())
    print(f"\nplans on the {db.label}-listing database ({db.engine.dialect.name}):{printed.getvalue().rstrip()}")
    comparables = printed.getvalue().split("FROM listing_words JOIN listings", 1)[-1].split("\n\n  ", 1)[0]
    return uses_primary_key(comparables.splitlines())


async def time_history(big: Database, specs: Sequence[FetchSpec], rng: random.Random) -> list[list[str]]:
    """The two history keys' scoring in turn (see add_history): their table rows."""
    history = await add_history(big, rng)
    alerts = alert_listings(next(s for s in specs if s.market_index == 0), big.plan)
    spent: dict[str, list[tuple[int, float, float]]] = {name: [] for name, _, _ in history}
    for _, key, _ in history:
        await score(big, key, alerts)  # warm-up
    for _ in range(ROUNDS):
        for name, key, _ in history:
            for _ in range(HISTORY_FETCHES // ROUNDS):
                spent[name].append(await score(big, key, alerts))
    rows = []
    for name, _, count in history:
        loads, totals = [s[1] for s in spent[name]], [s[1] + s[2] for s in spent[name]]
        rows.append([name, f"{count:,}", f"{spent[name][0][0]:,}", f"{milliseconds(loads, 0.5):.2f}",
                     f"{milliseconds(loads, 0.95):.2f}", f"{milliseconds(totals, 0.5):.2f}",
                     f"{milliseconds(totals, 0.95):.2f}"])
    return rows


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    specs = build_specs(args.fetches, rng)
    writes = build_specs(args.writes, rng)
    async with contextlib.AsyncExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_deals_"))
        big = await open_database(stack, args.postgres, "big", folder, KeyPlan(args.listings, args.per_key))
        small = await open_database(stack, args.postgres, "small", folder, KeyPlan(args.compare, args.per_key))
        print()
        print_table(["listings", "listing_words rows", "keys", "seeded in s", "size MB"],
                    [[db.label, f"{db.seeded.words_rows:,}", f"{db.plan.keys:,}", f"{db.seeded.seconds:.1f}",
                      f"{db.size_mb:.0f}"] for db in (big, small)])
        print(f"\nmachine load (1-min average) before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        for db in (big, small):
            for spec in specs[:WARM_UP]:
                await score_fetch(db, spec)
        for round_ in range(ROUNDS):
            for db in (big, small):
                for spec in specs[round_::ROUNDS]:
                    db.samples.append(await score_fetch(db, spec))
        for round_ in range(ROUNDS):
            for db in (big, small):
                for n, spec in enumerate(writes[round_::ROUNDS]):
                    db.writes.append(await write_page(db, spec, rng, NOW + timedelta(minutes=round_ * 1000 + n)))
        history = await time_history(big, specs, rng)
        print(f"machine load (1-min average) after timing: {os.getloadavg()[0]:.2f}")
        median_ratio, p95_ratio = report_scoring(big, small)
        print(f"\nrecord_words for one {PAGE_LISTINGS}-listing page ({KNOWN_ON_PAGE} already under its words)")
        print_table(["listings", "pages", "p50 ms", "p95 ms"],
                    [[db.label, len(db.writes), f"{milliseconds(db.writes, 0.5):.2f}",
                      f"{milliseconds(db.writes, 0.95):.2f}"] for db in (big, small)])
        print(f"\nrows outside the window, on the {big.label}-listing database: two eBay keys loading as many "
              f"comparables, one seen over {HISTORY.days} days, one over the {WINDOW.days}-day window only")
        print_table(["seen over", "rows under the key", "comparables", "load p50 ms", "load p95 ms", "fetch p50 ms",
                     "fetch p95 ms"], history)
        on_key = await print_plans(big, next(s for s in specs if s.key_class == "broad"), rng)
        ratios_ok = max(median_ratio, p95_ratio) <= TARGET_RATIO
        print(f"\nfetch at {big.label} / at {small.label} listings: median x{median_ratio:.2f}, p95 x{p95_ratio:.2f}"
              f" (target <= {TARGET_RATIO}x): {'ok' if ratios_ok else 'MISSED'}")
        print(f"comparables query on a listing_words index range, no scan: {'ok' if on_key else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=1_000_000, help="listings of the big table (default 1000000)")
    parser.add_argument("--compare", type=int, default=10_000, help="listings of the small table (default 10000)")
    parser.add_argument("--per-key", type=int, default=500, help="listings per search-words key (default 500)")
    parser.add_argument("--fetches", type=int, default=300, help="timed fetch groups per database (default 300)")
    parser.add_argument("--writes", type=int, default=100, help="timed record_words pages per database (default 100)")
    parser.add_argument("--postgres", default=os.environ.get(POSTGRES_ENV) or None, metavar="URL",
                        help=f"an admin URL of a PostgreSQL server to create the databases on (default ${POSTGRES_ENV}"
                             "; SQLite temp files without it)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the fetch groups (default 7)")
    args = parser.parse_args()
    if min(args.listings, args.compare, args.per_key) < 1 or min(args.fetches, args.writes) < ROUNDS:
        parser.error(f"--listings, --compare and --per-key must be at least 1, --fetches and --writes at least {ROUNDS}")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
