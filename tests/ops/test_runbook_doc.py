"""ops/RUNBOOK.md is held to the deployment it describes: every SQL statement runs on a migrated PostgreSQL
database, every compose service it names exists, every `dealscout` command parses, and the Celery commands name
the real application."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from dealscout.cli import build_parser
from storage.db import create_engine, upgrade
from tests.db import fresh_database

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = (ROOT / "ops" / "RUNBOOK.md").read_text()
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
SQL = re.compile(r'psql-ds -c "(.*?)"', re.S)


def commands() -> list[str]:
    """The shell lines of the runbook's code blocks, continuation lines of a quoted SQL string excluded."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", RUNBOOK, re.S):
        for statement in SQL.sub("SQL", block).splitlines():
            statement = statement.split("  #", 1)[0].strip()
            if statement and not statement.startswith("#"):
                lines.append(statement)
    return lines


def test_every_compose_service_the_runbook_names_exists() -> None:
    services = set(COMPOSE["services"])
    named = set()
    for line in commands():
        words = shlex.split(line.replace("<task-id>", "ID"))
        if words[0] == "dc" and words[1] in ("exec", "logs", "restart"):
            named.update(w for w in words[2:] if not w.startswith("-") and w in services | {"leader", "worker"})
            if words[1] == "exec":
                target = next(w for w in words[2:] if not w.startswith("-"))
                assert target in services, line
        if "--scale" in words:
            scaled = words[words.index("--scale") + 1].split("=")[0]
            assert scaled in services, line
    assert {"leader", "worker", "redis"} <= named


def test_every_dealscout_and_celery_command_is_real() -> None:
    parser = build_parser()
    celery_lines = [line for line in commands() if "celery -A" in line]
    assert celery_lines and all("celery -A dealscout.tasks " in line for line in celery_lines)
    assert any("inspect active" in line for line in celery_lines)
    assert any("inspect ping" in line for line in celery_lines)
    assert any("control revoke" in line for line in celery_lines)
    assert any("redis-cli LLEN celery" in line for line in commands())
    for line in commands():
        words = shlex.split(line)
        if "dealscout" in words and words[words.index("dealscout") - 1] in ("leader", "exec"):
            parser.parse_args(words[words.index("dealscout") + 1:])
    for endpoint in ("/health", "/api/v1/monitoring/health/detailed", "/api/v1/monitoring/metrics"):
        assert f"http://127.0.0.1:8080{endpoint}" in RUNBOOK


@pytest.mark.postgres
async def test_every_statement_runs_on_postgresql(tmp_path: Path) -> None:
    statements = [text.strip() for text in SQL.findall(RUNBOOK)]
    assert len(statements) >= 12
    async with fresh_database("postgres", tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            for statement in statements:
                if "pg_terminate_backend" in statement:
                    statement = statement.replace("state = 'idle'", "state = 'idle' AND false")  # kill no one here
                async with engine.begin() as connection:
                    await connection.exec_driver_sql(statement)
        finally:
            await engine.dispose()
