"""`dealscout notice add/end/list`: maintenance notices for the status page, kept as audit log rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealscout import cli
from scout.config import SETTINGS


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for setting in SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env file


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_notice_is_added_listed_and_ended(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "notice", "list") == (0, "no notices\n", "")
    code, out, _ = run(capsys, "notice", "add", "Database upgrade tonight", "--until", "2999-01-01T18:00+02:00")
    assert code == 0 and out == "notice 1 shown on the status page until 2999-01-01 16:00 UTC\n"
    code, out, _ = run(capsys, "notice", "add", "  Alerts   may be late  ")
    assert out == "notice 2 shown on the status page until `dealscout notice end 2`\n"
    code, out, _ = run(capsys, "notice", "list")
    lines = out.splitlines()
    assert lines[0].endswith("active: Alerts may be late") and lines[0].lstrip().startswith("2 ")
    assert lines[1].endswith("active until 2999-01-01 16:00 UTC: Database upgrade tonight")
    assert run(capsys, "notice", "end", "2") == (0, "notice 2 ended\n", "")
    code, _, err = run(capsys, "notice", "end", "2")
    assert code == 2 and "no active notice 2" in err
    code, out, _ = run(capsys, "notice", "list")
    assert "ended " in out.splitlines()[0]


@pytest.mark.parametrize(("argv", "complaint"), [
    (("notice", "add", "x", "--until", "2001-01-01"), "has passed already"),
    (("notice", "add", "   "), "needs some text"),
    (("notice", "add", "x" * 1001), "at most 1000 characters"),
    (("notice", "end", "7"), "no active notice 7"),
])
def test_a_bad_notice_is_refused_with_the_reason(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                                 complaint: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and complaint in err


def test_an_until_that_is_no_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["notice", "add", "x", "--until", "tomorrow"])
    assert exited.value.code == 2 and "not an ISO time" in capsys.readouterr().err
