"""Databases for tests: a fresh SQLite file, or a fresh PostgreSQL database when DEALSCOUT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from storage.db import create_engine

POSTGRES_ENV = "DEALSCOUT_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# RabbitMQ (DEALSCOUT_TEST_AMQP_URL) holds one queue of that name for the whole suite: the tests that empty and count
# it run in one process, one at a time, while the rest of the suite runs beside them.
SHARED_BROKER_QUEUE = pytest.mark.xdist_group("shared-broker-queue")


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to run this test on")
    return url


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """Yield the URL of an empty database of the given backend, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'dealscout.db'}"
        return
    admin_url = make_url(postgres_url())
    name = f"dealscout_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url.render_as_string(hide_password=False))
    async with admin.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
