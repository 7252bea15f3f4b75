"""The outbox's indexes: migration 0006 builds what the models declare and takes it away again, and the hot outbox
queries read through an index instead of the whole table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from storage.db import create_engine, downgrade, upgrade
from storage.tables import OutboxRow

BEFORE = {"ix_alert_outbox_due", "ix_alert_outbox_search_id", "ix_alert_outbox_destination"}


async def outbox_indexes(engine: Any) -> dict[str, list[str]]:
    async with engine.connect() as conn:
        found = await conn.run_sync(lambda sync: sa.inspect(sync).get_indexes("alert_outbox"))
    # PostgreSQL also lists the index behind each unique constraint; those are constraints, not these indexes.
    return {index["name"]: list(index["column_names"]) for index in found if not index.get("duplicates_constraint")}


async def test_the_migrated_outbox_has_the_models_indexes_and_downgrades_to_the_old_ones(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        declared = {index.name: [column.name for column in index.columns] for index in OutboxRow.__table__.indexes}
        assert await outbox_indexes(engine) == declared
        await downgrade(engine, "0005")
        assert set(await outbox_indexes(engine)) == BEFORE
        await upgrade(engine)
        assert await outbox_indexes(engine) == declared
    finally:
        await engine.dispose()


async def test_the_queue_index_holds_only_unsent_rows(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                sql = (await conn.execute(sa.text(
                    "SELECT sql FROM sqlite_master WHERE name = 'ix_alert_outbox_queue'"))).scalar_one()
            else:
                sql = (await conn.execute(sa.text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_alert_outbox_queue'"))).scalar_one()
        assert "pending" in sql and "sending" in sql and "sent'" not in sql
    finally:
        await engine.dispose()
