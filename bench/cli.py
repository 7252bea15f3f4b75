"""Start-up time of the `dealscout` command: each command run as a user runs it, in a fresh interpreter.

For every command the table shows the wall time of the whole run (median and best of RUNS runs, after one warm-up
run that writes the bytecode caches an installed package has), and how much of the median run was spent importing
modules (the sum of the top-level entries of `python -X importtime`, measured in separate runs of the same command).
Two reference rows give the floor: the bare interpreter, and the storage modules that any command reading the
database needs (SQLAlchemy's ORM and asyncio extension, aiosqlite, Alembic, the repository).

The commands run against an empty SQLite database in a temporary DEALSCOUT_DATA_DIR, from a temporary working
directory (no .env). Target: `search list` under 300 ms.

Run from the project root:  .venv/bin/python -m bench.cli [--runs 9]
Whole run: about 30 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import print_table

RUNS = 7
TARGET_MS = 300.0
PAGE = Path(__file__).resolve().parent.parent / "tests" / "scrapers" / "pages" / "craigslist_static.html"

REFERENCES: list[tuple[str, list[str]]] = [
    ("python (bare interpreter)", ["-c", "pass"]),
    ("import storage floor", ["-c", "import storage.repo, storage.db, aiosqlite"]),
    ("import scout.cli", ["-c", "import scout.cli"]),
]
COMMANDS: list[tuple[str, list[str]]] = [
    ("dealscout --help", ["--help"]),
    ("dealscout search list", ["search", "list"]),
    ("dealscout marketplaces", ["marketplaces"]),
    ("dealscout marketplace status", ["marketplace", "status"]),
    ("dealscout parse craigslist PAGE", ["parse", "craigslist", str(PAGE)]),
    ("dealscout db upgrade", ["db", "upgrade"]),
]


def environment(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE", "LOG_LEVEL")}
    env["DEALSCOUT_DATA_DIR"] = str(data_dir)
    return env


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = environment(cwd / "data")
        run_once(["-m", "scout.cli", "db", "upgrade"], env, cwd)  # the empty database every command reads
        rows = []
        for label, argv in REFERENCES + [(label, ["-m", "scout.cli", *argv]) for label, argv in COMMANDS]:
            median, best, imports = measure(argv, env, cwd, args.runs)
            rows.append((label, f"{median:.0f}", f"{best:.0f}", f"{imports:.0f}", f"{imports / median:.0%}",
                         f"{median / TARGET_MS:.2f}"))
    print(f"{args.runs} runs per row, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print_table(["command", "median ms", "best ms", "imports ms", "imports share", f"/ {TARGET_MS:.0f} ms"], rows)
    search_list = next(row for row in rows if row[0] == "dealscout search list")
    print(f"target: dealscout search list < {TARGET_MS:.0f} ms; measured median {search_list[1]} ms")


if __name__ == "__main__":
    main()
