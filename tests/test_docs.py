"""The README stays true: every setting is documented with its default, and CI runs the README's test command."""

from __future__ import annotations

from pathlib import Path

from scout.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_configuration_reference() -> None:
    readme = (ROOT / "README.md").read_text()
    for setting in SETTINGS.values():
        default = setting.default or "(empty)"
        assert f"| `{setting.env}` | `{default}` | {setting.help} |" in readme, setting.env


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = [block.split("```", 1)[0].strip() for block in readme.split("```sh\n")[1:3]]
    assert blocks[0].endswith("dealscout run")
    assert blocks[1] in ci.splitlines()
