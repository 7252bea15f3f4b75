"""The suite's own reporting: a drill's summary line reaches the end of the run from whichever process ran it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

DRILLS = '''
import pytest

from tests.drills import DRILL_SUMMARY


def test_a_drill_that_holds(record_property):
    record_property(DRILL_SUMMARY, "drill one: 0 lost")


def test_a_drill_that_fails(record_property):
    record_property(DRILL_SUMMARY, "drill two: 3 lost")
    assert False, "3 alerts lost"


def test_no_drill():
    pass
'''


@pytest.mark.parametrize("processes", ["0", "2"])
def test_every_drill_summary_is_printed_at_the_end_passed_or_failed(tmp_path: Path, processes: str) -> None:
    (tmp_path / "test_drills.py").write_text(DRILLS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-n", processes, "-q", "-p", "no:cacheprovider",
         str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # one test failed, as written
    summaries = run.stdout.split("drill summaries", 1)
    assert len(summaries) == 2, run.stdout
    lines = [line for line in summaries[1].splitlines() if line.startswith("drill ")]
    assert sorted(lines) == ["drill one: 0 lost", "drill two: 3 lost"]
