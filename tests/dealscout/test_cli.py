"""The `dealscout` command: search management, parse, scrape, db upgrade, marketplaces; bad input exits non-zero."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from yarl import URL

from dealscout import cli
from scout.errors import InputError
from scrapers.http import HttpFetcher
from storage import db
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.marketplace import FakeMarketplace

PAGES = Path(__file__).resolve().parent.parent / "scrapers" / "pages"
HEAD = ScriptDirectory.from_config(db.alembic_config()).get_current_head()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DATABASE_URL", "DISCORD_TOKEN", "TELEGRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env file
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_lifecycle(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "add", "rtx 3080", "--max-price", "500", "--exclude", "broken,parts",
                       "-m", "ebay", "--every", "15")
    assert code == 0
    assert out.startswith("saved #1 \u201crtx 3080\u201d on eBay, every 15 min; excluding broken, parts; price 0\u2013500")
    code, out, _ = run(capsys, "search", "list")
    assert code == 0 and "#1 \u201crtx 3080\u201d" in out and "console:main" in out
    assert run(capsys, "search", "pause", "1", "--reason", "holiday")[1].startswith("paused #1")
    code, out, _ = run(capsys, "search", "show", "1")
    assert code == 0 and "paused (holiday)" in out and "last success: never" in out
    assert "last check per marketplace:\n    eBay: not checked yet\n" in out
    assert run(capsys, "search", "resume", "1")[1].startswith("resumed #1")
    assert run(capsys, "search", "remove", "1")[1].startswith("removed #1")
    assert "no saved searches" in run(capsys, "search", "list")[1]
    code, out, _ = run(capsys, "search", "add", "bike", "-m", "ebay", "--sponsored", "exclude")
    assert code == 0 and "; no sponsored listings; active" in out


def test_search_list_goes_a_page_at_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(5):
        assert run(capsys, "search", "add", f"lego {n}", "-m", "ebay")[0] == 0
    code, out, _ = run(capsys, "search", "list", "--per-page", "2")
    lines = out.splitlines()
    assert code == 0 and [line[:2] for line in lines[:2]] == ["#1", "#2"]
    assert lines[2] == "page 1 of 3 (5 searches, 2 a page); next: dealscout search list --page 2"
    lines = run(capsys, "search", "list", "--per-page", "2", "--page", "3")[1].splitlines()
    assert lines[0].startswith("#5 ") and lines[1] == "page 3 of 3 (5 searches, 2 a page)"
    assert run(capsys, "search", "list", "--page", "9")[1].splitlines()[0].startswith("#1 ")  # one page in all


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "add", "rtx", "--max-price", "-1"], "cannot be negative"),
        (["search", "add", "rtx", "--min-price", "9", "--max-price", "1"], "above the maximum"),
        (["search", "add", "x" * 10_000], "limit is 200"),
        (["search", "add", "rtx", "-m", "nosuch"], "Unknown marketplace 'nosuch'"),
        (["search", "add", "rtx", "-m", "ebay", "--every", "1"], "at least 5 minutes"),
        (["search", "add", "rtx", "--to", "slack:1"], "Unknown destination"),
        (["search", "show", "42"], "no search #42"),
        (["search", "pause", "abc"], "not a search number"),
        (["parse", "nosuch", "file.html"], "Unknown marketplace"),
        (["parse", "ebay", "missing.html"], "No such file"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(capsys: pytest.CaptureFixture[str], argv: list[str],
                                               message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "no saved searches" in run(capsys, "search", "list")[1]


def test_parse_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(ebay_results_page([(5, "Lego castle", "12.50"), (6, "Lego ship", "1,234.00")]))
    code, out, err = run(capsys, "parse", "ebay", str(page), "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert rows[0] == {"id": "5", "title": "Lego castle", "price": "12.50", "currency": "USD",
                       "url": "https://www.ebay.com/itm/5", "image": "https://i.ebayimg.com/images/g/5/s-l500.webp",
                       "location": "Located in United States", "posted_at": None}
    assert rows[1]["price"] == "1234.00"
    assert "success: 2 listings" in err


def test_parse_table_and_a_blocked_page(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parse", "craigslist", str(PAGES / "craigslist_static.html"))
    assert code == 0 and out.splitlines()[0].split() == ["ID", "PRICE", "TITLE", "LOCATION", "URL"]
    code, out, err = run(capsys, "parse", "ebay", str(PAGES / "ebay_challenge.html"), "--format", "json")
    assert code == 1 and json.loads(out) == [] and err.startswith("blocked")


def test_parse_garbage_is_broken_not_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.html"
    junk.write_bytes(bytes(range(256)) * 20)
    code, _, err = run(capsys, "parse", "ebay", str(junk))
    assert code == 1 and err.startswith("broken")


def test_scrape_prints_a_table(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from dealscout import app

    async def scenario() -> int:
        async with FakeMarketplace() as market:
            market.route("/sch/i.html", body=ebay_results_page([(9, "Nintendo Switch", "150.00")]))
            real = app.build_fetcher

            def local(settings, adapters):  # type: ignore[no-untyped-def]
                fetcher: HttpFetcher = real(settings, adapters, market.resolving("www.ebay.com"))
                fetcher.set_host_rate("www.ebay.com", float("inf"))
                return fetcher

            monkeypatch.setattr(app, "build_fetcher", local)
            from scout.config import load_settings

            parser = cli.build_parser()
            return await cli.cmd_scrape(load_settings(), parser.parse_args(["scrape", "ebay", "nintendo switch"]))

    assert asyncio.run(scenario()) == 0
    out, err = capsys.readouterr()
    assert "Nintendo Switch" in out and "150.00 USD" in out and "success: 1 listings" in err


def test_db_upgrade_and_marketplaces(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and f"revision {HEAD}" in out
    code, out, _ = run(capsys, "marketplaces")
    assert code == 0
    assert out.splitlines()[0].startswith("craigslist") and "ebay" in out and "requests/min" in out


def test_a_bad_setting_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAN_TICK_SECONDS", "soon")
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token-value")
    code, _, err = run(capsys, "search", "list")
    assert code == 2 and "SCAN_TICK_SECONDS='soon'" in err
    assert "secret-token-value" not in err


def test_marketplace_operator_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "marketplace", "pause", "ebay", "--reason", "blocked since 10:00")
    assert code == 0 and out.startswith("eBay paused by cli: blocked since 10:00.")
    code, out, _ = run(capsys, "marketplaces")
    assert "paused: blocked since 10:00" in out
    run(capsys, "search", "add", "lego", "-m", "ebay")
    assert "eBay is paused by the operators: blocked since 10:00" in run(capsys, "search", "list")[1]
    run(capsys, "search", "remove", "1")
    code, out, _ = run(capsys, "marketplace", "status")
    assert code == 0 and "- eBay: paused (blocked since 10:00)" in out
    assert run(capsys, "marketplace", "resume", "ebay")[1].startswith("eBay resumed by cli.")
    run(capsys, "search", "add", "lego", "-m", "ebay", "--every", "30")
    assert "1 active searches" in run(capsys, "marketplace", "backoff", "ebay")[1]
    assert "every 60 min" in run(capsys, "search", "list")[1]
    assert run(capsys, "marketplace", "failures")[1].startswith("No marketplace fetches")
    code, _, err = run(capsys, "marketplace", "pause", "nosuch")
    assert code == 2 and "Unknown marketplace 'nosuch'" in err


def test_doctor_without_a_running_service_checks_the_database(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_HTTP_PORT", "1")  # nothing listens there
    run(capsys, "db", "upgrade")
    code, out, err = run(capsys, "doctor", "--offline")
    assert code == 1  # no scheduler running: not healthy
    assert "no running service answered" in err
    assert "database   ok" in out and "scheduler  NOT RUNNING" in out and "ebay" in out


async def test_doctor_reads_the_running_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dealscout.app import build_service, start_service
    from scout.config import load_settings

    settings = load_settings({"DEALSCOUT_DATA_DIR": str(tmp_path / "svc"), "OPS_HTTP_PORT": "0"}, env_file=None)
    async with build_service(settings) as service:
        await start_service(service)
        port = service.ops.server.port  # type: ignore[union-attr]
        doctor_settings = load_settings({"DEALSCOUT_DATA_DIR": str(tmp_path / "svc"), "OPS_HTTP_PORT": str(port)},
                                        env_file=None)
        parser = cli.build_parser()
        code = await cli.cmd_doctor(doctor_settings, parser.parse_args(["doctor", "--offline"]))
    assert code == 0


def test_a_taken_ops_port_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("OPS_HTTP_PORT", str(taken.getsockname()[1]))
        code, _, err = run(capsys, "run")
    assert code == 1
    assert "the ops API cannot listen on 127.0.0.1:" in err and "OPS_HTTP_PORT" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["marketplace", "failures", "--hours", "99999999999"], "from 1 to 168"),
        (["marketplace", "failures", "--hours", "0"], "from 1 to 168"),
        (["marketplace", "failures", "--hours", "1e3"], "from 1 to 168"),
        (["search", "show", "1", "--deals", "10000000000000"], "from 0 to 100"),
        (["search", "list", "--per-page", "0"], "from 1 to 1000"),
    ],
)
def test_numeric_options_are_bounded(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    """Pins `marketplace failures --hours 99999999999` ending in an OverflowError traceback."""
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_damaged_database_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Pins a corrupt SQLite file being reported as "database error (DatabaseError); check DATABASE_URL and that the
    server is up", with no word of which file or what is wrong with it."""
    database = tmp_path / "data" / "dealscout.db"
    database.parent.mkdir()
    database.write_bytes(b"not a database " * 100)
    code, _, err = run(capsys, "search", "list")
    assert code == 1
    assert err == (f"dealscout: the database {database} is not a SQLite database, or is damaged (restore a backup, "
                   "or move the file aside to start an empty one): file is not a database\n")


def test_an_unreachable_server_is_named_without_its_password(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://scout:s3cret-pw@127.0.0.1:1/deals")
    code, _, err = run(capsys, "search", "list")
    assert code == 1
    assert err.startswith("dealscout: the database postgresql://scout:***@127.0.0.1:1/deals cannot be reached")
    assert "s3cret-pw" not in err


def run_unprivileged(argv: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process run by a user who may read but not write `data_dir` (root writes anywhere, so a
    root test run drops to nobody)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: no way to run the CLI as a user without permissions")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["DEALSCOUT_DATA_DIR"] = str(data_dir)
    return subprocess.run([*prefix, sys.executable, "-m", "dealscout.cli", *argv], env=env, cwd=data_dir.parent,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's tmp_path is its owner's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="dealscout-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in (folder, *folder.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(folder)


def test_a_database_this_user_cannot_write_is_named(capsys: pytest.CaptureFixture[str], shared_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins a read-only data folder being reported as "check DATABASE_URL and that the server is up"."""
    data = shared_dir / "data"
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(data))
    assert run(capsys, "db", "upgrade")[0] == 0
    (data / "dealscout.db").chmod(0o444)
    data.chmod(0o555)
    done = run_unprivileged(["search", "list"], data)
    assert done.returncode == 1
    assert done.stderr.startswith(f"dealscout: the database {data / 'dealscout.db'} cannot ")
    assert "may this user" in done.stderr and len(done.stderr.splitlines()) == 1

    done = run_unprivileged(["search", "list"], data / "inner")
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"dealscout: the database {data / 'inner' / 'dealscout.db'} cannot be opened: this user may not use its "
        "folder: [Errno 13] Permission denied")


def test_the_cli_finds_the_same_database_from_any_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins the default database being ./data/dealscout.db under the current folder: `dealscout search list` run
    anywhere but the service's folder read (and created) an empty database of its own."""
    monkeypatch.delenv("DEALSCOUT_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "deal-scout" / "dealscout.db"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    assert run(capsys, "search", "list")[1] == (
        f"no saved searches in {expected}; add one with: dealscout search add \"QUERY\"\n")
    assert run(capsys, "search", "add", "lego", "-m", "ebay")[0] == 0
    monkeypatch.chdir(tmp_path / "two")
    assert "#1 \u201clego\u201d" in run(capsys, "search", "list")[1]
    assert expected.is_file() and not (tmp_path / "one" / "data").exists()


def test_a_database_left_in_the_old_place_is_pointed_out(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEALSCOUT_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dealscout.db").write_bytes(b"")
    _, _, err = run(capsys, "search", "list")
    assert err == (f"dealscout: note: {tmp_path / 'data' / 'dealscout.db'} is not read; the database is "
                   f"{tmp_path / 'xdg' / 'deal-scout' / 'dealscout.db'}. Move the file there, or set "
                   f"DEALSCOUT_DATA_DIR={tmp_path / 'data'} to keep using it there.\n")
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "elsewhere"))
    assert run(capsys, "search", "list")[2] == ""


def run_cli(argv: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, as a user runs it (its logging set up from scratch)."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "LOG_LEVEL")}
    env["DEALSCOUT_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "dealscout.cli", *argv], env=env, cwd=data_dir.parent,
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_command_logs_nothing_but_its_answer(tmp_path: Path) -> None:
    """Pins Alembic's INFO lines ("Context impl SQLiteImpl.", "Will assume non-transactional DDL.", the schema line)
    printed on every CLI call."""
    for _ in range(2):  # the first call creates the database, the second finds it current
        done = run_cli(["search", "list"], tmp_path / "data")
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.startswith("no saved searches in ")
    verbose = run_cli(["-v", "search", "list"], tmp_path / "data")
    assert "storage.direct: database schema at head" in verbose.stderr  # read without the repository


async def test_migrating_logs_the_steps_and_not_alembics_set_up(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    engine = db.create_engine(f"sqlite:///{tmp_path / 'dealscout.db'}")
    try:
        await db.upgrade(engine)
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    assert said and all(message.startswith("Running upgrade ") for message in said)
    assert len(said) == len(set(said))  # the second upgrade found nothing to do, and said nothing


async def test_marketplaces_and_doctor_tell_a_failing_marketplace(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Pins `dealscout marketplaces` showing only paused/active, and `doctor` saying OK while a marketplace's
    fetches were failing, until its circuit opened five failures later."""
    from bot.commands import Actor
    from dealscout.app import build_service, start_service
    from scout.config import load_settings
    from scout.models import Destination

    async with FakeMarketplace() as market:
        market.route("/sch/i.html", body=ebay_results_page([(9, "Nintendo Switch", "150.00")]))
        env = {"DEALSCOUT_DATA_DIR": str(tmp_path / "svc"), "OPS_HTTP_PORT": "0", "SCAN_TICK_SECONDS": "3600"}
        async with build_service(load_settings(env, env_file=None), resolve=market.resolving("www.ebay.com")) as svc:
            svc.fetcher.set_host_rate("www.ebay.com", float("inf"))
            await start_service(svc)
            await svc.commands.add_search(Actor("a"), Destination("console", "main"), query="switch",
                                          marketplaces="ebay")
            await svc.scanner.run_until_idle()
            market.fail("/sch/i.html", 403, times=None)
            await svc.commands.add_search(Actor("b"), Destination("console", "main"), query="lego",
                                          marketplaces="ebay")
            await svc.scanner.run_until_idle()

            settings = load_settings({**env, "OPS_HTTP_PORT": str(svc.ops.server.port)},  # type: ignore[union-attr]
                                     env_file=None)
            parser = cli.build_parser()
            assert await cli.cmd_marketplaces(settings, parser.parse_args(["marketplaces"])) == 0
            listed = capsys.readouterr().out.splitlines()
            assert await cli.cmd_doctor(settings, parser.parse_args(["doctor", "--offline"])) == 1
            doctor = capsys.readouterr().out
            assert await cli.cmd_search(settings, parser.parse_args(["search", "show", "1"])) == 0
            found = capsys.readouterr().out
            assert await cli.cmd_search(settings, parser.parse_args(["search", "show", "2"])) == 0
            refused = capsys.readouterr().out

    ebay = listed[listed.index(next(line for line in listed if line.startswith("ebay"))) + 1].strip()
    assert ebay.startswith("circuit closed; last success 20") and " UTC; last failure 20" in ebay
    assert ebay.endswith(" UTC (blocked, 1 in a row): HTTP 403")
    assert "craigslist" in listed[0] and listed[1].strip() == "not fetched yet"
    assert doctor.startswith("Deal Scout ") and ": DEGRADED\n" in doctor
    assert "ebay       active, circuit closed, last blocked (1 in a row: HTTP 403)" in doctor
    assert "  last check per marketplace:\n    eBay: 1 listing, just now\n" in found
    assert "  last check per marketplace:\n    eBay: blocked, just now (HTTP 403)\n" in refused


def every_marketplace_host(settings: object) -> list[str]:
    from scrapers.base import SearchQuery
    from scrapers.registry import build_adapters

    hosts = []
    for adapter in build_adapters(settings).values():  # type: ignore[arg-type]
        with contextlib.suppress(InputError):
            hosts.append(URL(adapter.build_request(SearchQuery("probe")).url).host)
    return hosts


async def test_doctor_tells_which_marketplaces_robots_txt_refuse_our_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Pins `doctor` saying nothing of robots.txt: a marketplace whose robots.txt refuses our search was found out
    only when its searches reported blocked."""
    from scout.config import load_settings

    settings = load_settings({"DEALSCOUT_DATA_DIR": str(tmp_path / "svc"), "OPS_HTTP_PORT": "1"}, env_file=None)
    await cli.cmd_db_upgrade(settings, cli.build_parser().parse_args(["db", "upgrade"]))
    async with FakeMarketplace() as market:
        # One robots.txt for every marketplace: only eBay's search path is refused, and only to us.
        market.route("/robots.txt", "User-agent: *\nAllow: /\n\nUser-agent: DealScout\nDisallow: /sch/\n"
                                    "Allow: /sch/i.html*_sop=12\n", content_type="text/plain")
        code = await cli.cmd_doctor(settings, cli.build_parser().parse_args(["doctor"]),
                                    resolve=market.resolving(*every_marketplace_host(settings)))
        out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    robots = lines[lines.index("robots.txt, asked about an ordinary search for our user agent:") + 1:]
    assert robots[1] == ("ebay       REFUSED: https://www.ebay.com/robots.txt disallows "
                         "/sch/i.html?_nkw=nintendo+switch&_sop=10 for DealScout")
    assert robots[0].startswith("craigslist allowed: https://sfbay.craigslist.org/robots.txt allows /search/sss?")
    assert robots[-2] == ("rss        not checked: its addresses are its searches' own: each one's robots.txt is "
                          "read when it is fetched")
    assert len(robots) == 8 and sum(" allowed: " in line for line in robots) == 6


def test_an_apprise_destination_is_shown_without_its_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "search", "add", "lego", "-m", "ebay", "--to",
                         "apprise:jsons://me:hunter2@hooks.example.com/s3cret?token=tok3n")
    assert code == 0, err
    shown = "apprise:jsons://***@hooks.example.com/***?token=***"
    assert shown in run(capsys, "search", "list")[1]
    assert f"destination: {shown}" in run(capsys, "search", "show", "1")[1]
    code, out, err = run(capsys, "search", "add", "lego", "-m", "ebay", "--to", "apprise:json://127.0.0.1/s3cret")
    assert code == 2 and "json://127.0.0.1/*** points at a loopback address" in err
    everything = "".join(capsys.readouterr()) + out + err
    assert not any(secret in everything for secret in ("hunter2", "s3cret", "tok3n"))


def test_apikey_create_shows_the_key_once_and_stores_only_its_hash(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    import hashlib

    code, out, err = run(capsys, "apikey", "create", "--owner", "alice", "--scope", "write")
    key = out.strip()
    assert code == 0 and key.startswith("dsk_") and len(out.splitlines()) == 1  # the key alone: KEY=$(...) works
    key_id = key.split("_")[1]
    assert f"API key {key_id} for 'alice', scope write" in err and "shown only now" in err and key not in err
    code, out, _ = run(capsys, "apikey", "list")
    assert code == 0 and key_id in out and "write" in out and "alice" in out and "last used never" in out
    assert key not in out and key.split("_", 2)[2] not in out
    # Hashed at rest: the database file holds the key's SHA-256, never the key or its secret part.
    database = (tmp_path / "data" / "dealscout.db").read_bytes()
    assert key.encode() not in database and key.split("_", 2)[2].encode() not in database
    assert hashlib.sha256(key.encode()).hexdigest().encode() in database
    code, out, _ = run(capsys, "apikey", "revoke", key_id)
    assert code == 0 and f"API key {key_id} (alice, write) revoked" in out
    assert "revoked" in run(capsys, "apikey", "list")[1]


@pytest.mark.parametrize(("argv", "message"), [
    (["apikey", "create", "--owner", "alice", "--scope", "root"], "invalid choice: 'root'"),
    (["apikey", "create", "--owner", "   "], "--owner needs a name"),
    (["apikey", "create", "--owner", "a" * 65], "at most 64 characters"),
    (["apikey", "create", "--owner", "al\x07ice"], "control characters"),
    (["apikey", "revoke", "0123456789ab"], "no API key '0123456789ab'"),
])
def test_apikey_refuses_bad_input_and_makes_no_key(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                   message: str) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exited:  # argparse's own refusals
        code = exited.code  # type: ignore[assignment]
    assert code == 2 and message in capsys.readouterr().err
    assert "no API keys" in run(capsys, "apikey", "list")[1]


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """Regression: `dealscout search list | head` printed "the database ... cannot be reached: Broken pipe"."""
    data_dir = tmp_path / "data"
    assert run_cli(["search", "add", "lego castle"], data_dir).returncode == 0
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "LOG_LEVEL")}
    env["DEALSCOUT_DATA_DIR"] = str(data_dir)
    child = subprocess.Popen([sys.executable, "-m", "dealscout.cli", "search", "list"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the first line
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 1
    assert stderr == ""
