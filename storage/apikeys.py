"""The REST API's keys: saved by their public id and hash, looked up by id, listed, revoked, their last use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from storage.queries import Queries
from storage.tables import ApiKeyRow

# A key's last use is written at most this often: a busy client would otherwise make every read request a write,
# which SQLite serialises with every scan's commit.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: who it speaks for, what it may do, and the hash a presented key must match."""

    key_id: str
    key_hash: str
    owner: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.key_id, row.key_hash, row.owner, row.scope, row.created_at, row.last_used_at, row.revoked_at)


class ApiKeyQueries(Queries):
    """The API keys part of storage.repo.Repository."""

    async def save_api_key(self, *, key_id: str, key_hash: str, owner: str, scope: str, now: datetime) -> ApiKey:
        row = ApiKeyRow(key_id=key_id, key_hash=key_hash, owner=owner, scope=scope, created_at=now)
        async with self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            return _key(row)

    async def load_api_key(self, key_id: str) -> ApiKey | None:
        async with self._sessions() as session:
            row = await session.get(ApiKeyRow, key_id)
            return _key(row) if row else None

    async def load_api_keys(self) -> list[ApiKey]:
        async with self._sessions() as session:
            rows = await session.scalars(sa.select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.key_id))
            return [_key(row) for row in rows.all()]

    async def revoke_api_key(self, key_id: str, *, now: datetime) -> ApiKey | None:
        """Revoke a key (a revoked key keeps its first revocation time); None when there is no such key."""
        async with self._sessions.begin() as session:
            row = await session.get(ApiKeyRow, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = now
            return _key(row)

    async def touch_api_key(self, key_id: str, *, now: datetime) -> None:
        """Record that the key was used now, unless that was recorded within LAST_USED_RESOLUTION."""
        async with self._sessions.begin() as session:
            await session.execute(
                sa.update(ApiKeyRow)
                .where(ApiKeyRow.key_id == key_id,
                       sa.or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at < now - LAST_USED_RESOLUTION))
                .values(last_used_at=now)
            )
