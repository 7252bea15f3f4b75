"""Suite-wide guards and helpers: no test reaches past 127.0.0.1, and real pages come from ../shared/fixtures."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from tests.drills import DRILL_SUMMARY

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"


def _is_local(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:
        return True  # unix sockets and the like
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection that is not to the loopback interface."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise AssertionError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise AssertionError(f"test tried to reach the network: {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


def fixture_path(relative: str) -> Path:
    """A real third-party page; skips the calling test when ../shared/fixtures is absent."""
    path = FIXTURES / relative
    if not path.is_file():
        pytest.skip(f"real page {relative} not found under {FIXTURES} (the shared fixtures folder is absent)")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An empty database URL: every storage test runs on SQLite, and on PostgreSQL when the suite is given one."""
    from tests.db import fresh_database

    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def repo(database_url: str):  # type: ignore[no-untyped-def]
    """A migrated database and its repository."""
    from storage.db import create_engine, session_factory, upgrade
    from storage.repo import Repository

    engine = create_engine(database_url)
    await upgrade(engine)
    try:
        yield Repository(session_factory(engine))
    finally:
        await engine.dispose()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the drills' summary lines: with the suite spread over processes, a drill's own output stays in its
    process, while its report (and the properties it recorded) comes back to this one."""
    if report.when == "call":
        _drill_summaries.extend(str(value) for name, value in report.user_properties if name == DRILL_SUMMARY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _drill_summaries:
        terminalreporter.section("drill summaries")
        for line in _drill_summaries:
            terminalreporter.write_line(line)


_drill_summaries: list[str] = []
