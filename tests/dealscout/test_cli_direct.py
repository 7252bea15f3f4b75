"""`dealscout search list` and `search show` read a database at the schema's head straight through its driver
(storage.direct), and print byte for byte what they print through the repository, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dealscout import cli
from scout.config import load_settings
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.registry import build_adapters
from storage import db, direct
from storage.repo import Repository
from tests.storage.test_direct import build_world

Outcome = tuple[int, str, str]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    for name in ("DISCORD_TOKEN", "TELEGRAM_TOKEN", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray .env file


@pytest.fixture
def both_ways(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Run the CLI twice, straight through the driver and through the repository; check they print the same, and
    that the first took the direct path (or not, with direct=False)."""
    real = direct.open_reader

    async def cli_run(argv: list[str]) -> Outcome:
        code = await asyncio.to_thread(cli.main, argv)  # the CLI runs its own event loop
        out, err = capsys.readouterr()
        return code, out, err

    async def check(*argv: str, direct_path: bool = True) -> Outcome:
        taken: list[bool] = []

        @contextlib.asynccontextmanager
        async def spying(url: str) -> AsyncIterator[direct.DirectReader | None]:
            async with real(url) as reader:
                taken.append(reader is not None)
                yield reader

        @contextlib.asynccontextmanager
        async def refusing(url: str) -> AsyncIterator[None]:
            yield None

        monkeypatch.setattr(direct, "open_reader", spying)
        fast = await cli_run(list(argv))
        monkeypatch.setattr(direct, "open_reader", refusing)
        slow = await cli_run(list(argv))
        assert taken == [direct_path]
        assert fast == slow
        return fast

    return check


async def test_no_searches(repo: Repository, both_ways: Callable[..., object], database_url: str) -> None:
    code, out, _ = await both_ways("search", "list")  # type: ignore[misc]
    assert code == 0 and out == (f"no saved searches in {db.describe_location(database_url)}; "
                                 "add one with: dealscout search add \"QUERY\"\n")


async def test_list_pages_alike(repo: Repository, both_ways: Callable[..., object]) -> None:
    await build_world(repo)
    code, out, _ = await both_ways("search", "list")  # type: ignore[misc]
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].startswith("#1 \u201clego castle\u201d on eBay, Vinted, every 15 min; excluding broken, parts; "
                               "price 10\u2013499.99 USD; near sfbay (25 km); no sponsored listings; "
                               "price drops of 15% or more; not from scalper, bob; sellers rated 98.5% or better; "
                               "active; eBay is paused by the operators: blocked us; "
                               "Vinted is paused by the operators: no reason given -> console:main")
    assert "good deals only; no price-drop alerts; paused (holiday)" in lines[1]
    assert "active, snoozed until " in lines[2] and lines[2].endswith(" -> apprise:ntfys://ntfy.sh/***")
    code, out, _ = await both_ways("search", "list", "--per-page", "2")  # type: ignore[misc]
    assert out.splitlines()[-1] == "page 1 of 2 (3 searches, 2 a page); next: dealscout search list --page 2"
    code, out, _ = await both_ways("search", "list", "--per-page", "2", "--page", "2")  # type: ignore[misc]
    assert out.splitlines()[0].startswith("#3 ") and out.splitlines()[-1] == "page 2 of 2 (3 searches, 2 a page)"
    code, out, _ = await both_ways("search", "list", "--per-page", "1", "--page", "9")  # type: ignore[misc]
    assert out.splitlines()[0].startswith("#3 ") and out.splitlines()[-1] == "page 3 of 3 (3 searches, 1 a page)"


async def test_show_reads_alike(repo: Repository, both_ways: Callable[..., object]) -> None:
    searches = await build_world(repo)
    for search in searches:
        code, out, _ = await both_ways("search", "show", str(search.id))  # type: ignore[misc]
        assert code == 0 and "  last check per marketplace:\n" in out
    code, out, _ = await both_ways("search", "show", "#1", "--deals", "2")  # type: ignore[misc]
    lines = out.splitlines()
    assert lines[1] == "  destination: console:main  owner: alice"
    assert lines[2] == "  next run: 2026-11-28 12:15:00 UTC  last success: never"  # Vinted failed
    assert lines[4:6] == ["    eBay: 3 listings, " + lines[4].split(", ", 1)[1],
                          "    Vinted: blocked, " + lines[5].split(", ", 1)[1]]
    assert lines[5].endswith(" (HTTP 403: a captcha page)")
    assert len(lines) == 8 and all(line.startswith("  [") for line in lines[6:])
    assert "  [sending] 1,234.50 EUR  a very long long" in out and "  [sending] -  Lego castle 2  " in out
    code, out, _ = await both_ways("search", "show", "1", "--deals", "0")  # type: ignore[misc]
    assert len(out.splitlines()) == 7  # as the bots: at least one


@pytest.mark.parametrize(("search_id", "message"), [
    ("42", "dealscout: You have no search #42.\n"),
    ("2147483648", "dealscout: You have no search #2147483648.\n"),
    ("0", "dealscout: You have no search #0.\n"),
    ("x1", "dealscout: 'x1' is not a search number.\n"),
])
async def test_an_unknown_search_reads_alike(repo: Repository, both_ways: Callable[..., object], search_id: str,
                                             message: str) -> None:
    await build_world(repo)
    assert await both_ways("search", "show", search_id) == (2, "", message)  # type: ignore[misc]


async def test_a_database_not_at_head_is_migrated_first(both_ways: Callable[..., object], database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine, "0009")
        code, out, _ = await both_ways("search", "list", direct_path=False)  # type: ignore[misc]
        assert code == 0 and out.startswith("no saved searches in ")
        assert await db.current_revision(engine) == db.HEAD_REVISION
    finally:
        await engine.dispose()


def test_every_marketplace_built_has_a_name_and_every_name_a_marketplace() -> None:
    for environ in ({}, {"EBAY_CLIENT_ID": "id", "EBAY_CLIENT_SECRET": "secret"}):
        adapters = build_adapters(load_settings(environ, env_file=None))
        assert {key: adapter.name for key, adapter in adapters.items()} == MARKETPLACE_NAMES


# Whole libraries and project modules the two commands must not load: the ORM, the HTTP client, the migrations,
# the chat platforms, the commands module (and through it every adapter).
HEAVY_PACKAGES = {"sqlalchemy", "aiosqlite", "asyncpg", "alembic", "aiohttp", "apprise", "discord", "telegram"}
HEAVY_MODULES = {"bot.commands", "storage.repo", "storage.db", "storage.tables", "dealscout.parts", "scrapers.http"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("argv", [["search", "list"], ["search", "show", "1"]])
def test_list_and_show_load_no_orm_http_client_or_commands(tmp_path: Path, argv: list[str]) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "LOG_LEVEL")}
    env["DEALSCOUT_DATA_DIR"] = str(tmp_path / "data")
    add = subprocess.run([sys.executable, "-m", "dealscout.cli", "search", "add", "lego", "-m", "ebay"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert add.returncode == 0, add.stderr
    script = f"import sys; from dealscout.cli import main; main({argv!r}); print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.splitlines()[-1].split())
    assert "storage.direct" in loaded
    assert {name for name in loaded if name.split(".")[0] in HEAVY_PACKAGES} == set()
    assert loaded & HEAVY_MODULES == set()
