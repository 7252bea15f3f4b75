"""A removed search's id given to a newer search, as SQLite did before searches.id was AUTOINCREMENT."""

from __future__ import annotations

import sqlalchemy as sa

from storage.db import create_engine


async def give_removed_id(database_url: str, search_id: int, removed_id: int) -> None:
    """Search `search_id` takes `removed_id`: ids removed before the upgrade can still be handed out once."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE searches SET id = :removed WHERE id = :search"),
                               {"removed": removed_id, "search": search_id})
    finally:
        await engine.dispose()
