"""A search's last outcome per marketplace, written as scans record it in searches.last_outcomes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.db import create_engine


def outcome(status: str, at: datetime, *, error: str | None = None, listings: int = 0) -> dict[str, Any]:
    return {"status": status, "at": at.isoformat(), "error": error, "listings": listings}


async def record_outcomes(database_url: str, search_id: int, outcomes: dict[str, dict[str, Any]]) -> None:
    """Store `outcomes` ({marketplace: outcome(...)}) as the search's last outcomes."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE searches SET last_outcomes = :outcomes WHERE id = :id"),
                               {"outcomes": json.dumps(outcomes), "id": search_id})
    finally:
        await engine.dispose()
