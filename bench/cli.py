"""Start-up time of the `dealscout` command: each command run as a user runs it, in a fresh interpreter.

For every command the table shows the wall time of the whole run (median and best of RUNS runs, after one warm-up
run that writes the bytecode caches an installed package has), and how much of the median run was spent importing
modules (the sum of the top-level entries of `python -X importtime`, measured in separate runs of the same command).
Reference rows give the floors: the bare interpreter; the libraries that any command reading the database through the
repository needs (SQLAlchemy's ORM and asyncio extension, and aiosqlite), then the project's storage modules on top
of them; and what `search list` and `search show` load instead, reading a database at the schema's head straight
through sqlite3 (storage.direct, the describing functions and the CLI module with its settings).

The commands run against an empty SQLite database in a temporary DEALSCOUT_DATA_DIR, from a temporary working
directory (no .env). Target: `search list` and `search show` under 300 ms. The `/ floor` column gives each row
against the SQLAlchemy floor measured in the same run, which every command but those two still pays. With
--baseline, every row is measured a second time with another checkout of the project first on PYTHONPATH (say, a
`git worktree` of an older commit), interleaved with this one's runs, and the `baseline ms` column gives its median.

At scale: --searches N --listings M seeds the database first (plain sqlite3 executemany after the migrations: N
active searches, M listings, and one sent alert per listing spread over the searches, so `search show` reads a
search with M/N alerts among M outbox rows), and adds rows for `search show` and for the last page of `search list`
(the largest OFFSET). The issue's scale is --searches 10000 --listings 1000000 (seeding takes about a minute).

Run from the project root:  .venv/bin/python -m bench.cli [--runs 9] [--baseline ../old-checkout]
                            [--searches 10000 --listings 1000000]
Whole run: about 30 s (twice that with a baseline).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import print_table
from dealscout.cli import PER_PAGE

RUNS = 7
TARGET_MS = 300.0
PAGE = Path(__file__).resolve().parent.parent / "tests" / "scrapers" / "pages" / "craigslist_static.html"

FLOOR = "import sqlalchemy async floor"
DIRECT = "import direct read path"
REFERENCES: list[tuple[str, list[str]]] = [
    ("python (bare interpreter)", ["-c", "pass"]),
    (FLOOR, ["-c", "import sqlalchemy.ext.asyncio, sqlalchemy.orm, aiosqlite"]),
    ("import storage modules", ["-c", "import storage.repo, storage.db"]),
    (DIRECT, ["-c", "import asyncio, sqlite3, dealscout.cli, scout.config, storage.direct, "
                                 "bot.describe, scout.marketplace_names"]),
    ("import dealscout.cli", ["-c", "import dealscout.cli"]),
]
COMMANDS: list[tuple[str, list[str]]] = [
    ("dealscout --help", ["--help"]),
    ("dealscout search list", ["search", "list"]),
    ("dealscout marketplaces", ["marketplaces"]),
    ("dealscout marketplace status", ["marketplace", "status"]),
    ("dealscout parse craigslist PAGE", ["parse", "craigslist", str(PAGE)]),
    ("dealscout db upgrade", ["db", "upgrade"]),
]


def environment(data_dir: Path, source: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE", "LOG_LEVEL", "PYTHONPATH")}
    env["DEALSCOUT_DATA_DIR"] = str(data_dir)
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve())
    return env


def seed(database: Path, searches: int, listings: int) -> None:
    """N searches, M listings and one sent alert per listing, written straight into the migrated SQLite file."""
    at = "2026-11-30 12:00:00"
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT INTO searches (owner, platform, target, query, exclude_words, marketplaces, check_interval_minutes,"
            " unpriced, status, created_at, updated_at, next_run_at, baselined) VALUES (?, 'console', 'main', ?, '[]',"
            " '[\"ebay\"]', 15, 'include', 'active', ?, ?, ?, '[]')",
            ((f"user{n % 100}", f"lego set {n}", at, at, at) for n in range(searches)))
        conn.executemany(
            "INSERT INTO listings (marketplace, external_id, title, url, price, currency, first_seen_at, last_seen_at)"
            " VALUES ('ebay', ?, ?, ?, 10, 'USD', ?, ?)",
            ((str(n), f"Lego set {n}", f"https://www.ebay.com/itm/{n}", at, at) for n in range(listings)))
        if searches:
            conn.executemany(
                "INSERT INTO alert_outbox (kind, platform, target, listing_id, search_id, status, attempts,"
                " next_attempt_at, created_at, sent_at) VALUES ('alert', 'console', 'main', ?, ?, 'sent', 1, ?, ?, ?)",
                ((n + 1, n % searches + 1, at, at, at) for n in range(listings)))


def run_once(argv: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    """Wall time of one run in ms."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - started) * 1000


def import_ms(argv: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    """Time spent importing modules in one run, in ms: the top-level entries of -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env, cwd=cwd, capture_output=True,
                          text=True, check=True)
    total_us = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # one space after the bar: a top-level import
            total_us += int(cumulative)
    return total_us / 1000


def measure(argv: Sequence[str], env: dict[str, str], cwd: Path, runs: int) -> tuple[float, float, float]:
    """(median ms, best ms, median import ms) over `runs` runs, after a warm-up run."""
    run_once(argv, env, cwd)
    walls = [run_once(argv, env, cwd) for _ in range(runs)]
    imports = [import_ms(argv, env, cwd) for _ in range(runs)]
    return statistics.median(walls), min(walls), statistics.median(imports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs per row (default {RUNS})")
    parser.add_argument("--baseline", type=Path, help="another checkout of the project to measure beside this one")
    parser.add_argument("--searches", type=int, default=0, help="searches to seed the database with (default none)")
    parser.add_argument("--listings", type=int, default=0, help="listings (and sent alerts) to seed (default none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = environment(cwd / "data")
        base_env = environment(cwd / "base-data", args.baseline) if args.baseline else None
        run_once(["-m", "dealscout.cli", "db", "upgrade"], env, cwd)  # the database every command reads
        seed(cwd / "data" / "dealscout.db", args.searches, args.listings)
        if base_env is not None:
            run_once(["-m", "dealscout.cli", "db", "upgrade"], base_env, cwd)
            seed(cwd / "base-data" / "dealscout.db", args.searches, args.listings)
        last_page = str(-(-args.searches // PER_PAGE))
        commands = COMMANDS + ([("dealscout search show 1", ["search", "show", "1"]),
                                (f"dealscout search list --page {last_page}", ["search", "list", "--page", last_page])]
                               if args.searches else [])
        measured = []
        for label, argv in REFERENCES + [(label, ["-m", "dealscout.cli", *argv]) for label, argv in commands]:
            # A baseline older than storage.direct has no such path: its import would load this checkout's.
            compared = base_env is not None and (label != DIRECT or (args.baseline / "storage" / "direct.py").is_file())
            base = measure(argv, base_env, cwd, args.runs)[0] if compared else None
            measured.append((label, *measure(argv, env, cwd, args.runs), base))
    floor = next(row[1] for row in measured if row[0] == FLOOR)
    rows = [(label, f"{median:.0f}", f"{best:.0f}", f"{imports:.0f}", f"{imports / median:.0%}",
             f"{median / floor:.2f}", f"{median / TARGET_MS:.2f}", "-" if base is None else f"{base:.0f}")
            for label, median, best, imports, base in measured]
    print(f"{args.runs} runs per row, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
          f"{args.searches} searches, {args.listings} listings"
          + (f"; baseline: {args.baseline}" if args.baseline else ""))
    print_table(["command", "median ms", "best ms", "imports ms", "imports share", "/ floor", f"/ {TARGET_MS:.0f} ms",
                 "baseline ms"], rows)
    for target in ("dealscout search list", "dealscout search show 1"):
        row = next((row for row in rows if row[0] == target), None)
        if row is not None:
            print(f"target: {target} < {TARGET_MS:.0f} ms; measured median {row[1]} ms, best {row[2]} ms, "
                  f"{row[5]} x the SQLAlchemy floor")


if __name__ == "__main__":
    main()
