"""Saved searches: their rows, the leases a scan claims them with, and the runbook's interval back-off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from scout.errors import NotFoundError, StorageError
from scout.models import Destination, SavedSearch, SearchSpec, SearchStatus
from storage.bulk import one_of
from storage.convert import search_from_row, spec_values
from storage.decode import text_list
from storage.queries import Queries, describe_database_error
from storage.tables import OutboxRow, SearchRow


class SearchQueries(Queries):
    """The searches part of storage.repo.Repository."""

    async def save_search(
        self, *, owner: str, destination: Destination, scope: str | None, spec: SearchSpec, now: datetime,
        first_run_at: datetime,
    ) -> SavedSearch:
        row = SearchRow(
            owner=owner, platform=destination.platform, target=destination.target, scope=scope,
            status=SearchStatus.ACTIVE.value, created_at=now, updated_at=now, next_run_at=first_run_at, baselined=[],
            **spec_values(spec),
        )
        async with self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            return search_from_row(row)

    async def load_search(self, search_id: int) -> SavedSearch | None:
        async with self._sessions() as session:
            row = await session.get(SearchRow, search_id)
            return search_from_row(row) if row else None

    async def load_searches(
        self, *, platform: str | None = None, scope: str | None = None, owner: str | None = None,
        target: str | None = None, status: SearchStatus | None = None, limit: int | None = None, offset: int = 0,
    ) -> list[SavedSearch]:
        stmt = sa.select(SearchRow).order_by(SearchRow.id)
        for column, value in (
            (SearchRow.platform, platform), (SearchRow.scope, scope), (SearchRow.owner, owner),
            (SearchRow.target, target), (SearchRow.status, status.value if status else None),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        stmt = stmt.offset(offset).limit(limit)
        async with self._sessions() as session:
            return [search_from_row(row) for row in (await session.scalars(stmt)).all()]

    async def count_searches(self, *, status: SearchStatus | None = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(SearchRow)
        if status is not None:
            stmt = stmt.where(SearchRow.status == status.value)
        async with self._sessions() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def update_search(
        self, search_id: int, *, now: datetime, spec: SearchSpec | None = None, status: SearchStatus | None = None,
        paused_reason: str | None = None, next_run_at: datetime | None = None,
    ) -> SavedSearch:
        async with self._sessions.begin() as session:
            row = await session.get(SearchRow, search_id, with_for_update=self.dialect == "postgresql")
            if row is None:
                raise NotFoundError(f"There is no search #{search_id}.")
            if spec is not None:
                changed_query = (spec.query, tuple(spec.marketplaces)) != (row.query, tuple(row.marketplaces))
                for key, value in spec_values(spec).items():
                    setattr(row, key, value)
                if changed_query:
                    # A different question deserves a fresh baseline, not a flood of everything it now finds.
                    row.baselined = []
            if status is not None and status.value != row.status:
                # Only a change of state records a reason: pausing a paused search keeps why it was paused first.
                row.status = status.value
                row.paused_reason = paused_reason if status is SearchStatus.PAUSED else None
            if next_run_at is not None:
                row.next_run_at = next_run_at
            row.updated_at = now
            await session.flush()
            return search_from_row(row)

    async def delete_search(self, search_id: int) -> bool:
        async with self._sessions.begin() as session:
            # Alerts held for a chat that refused us wait for the search to resume, which it now never will.
            await session.execute(
                sa.update(OutboxRow).where(OutboxRow.search_id == search_id, OutboxRow.status == "held")
                .values(status="dead", last_error="the search was removed while its chat refused us")
            )
            result = await session.execute(sa.delete(SearchRow).where(SearchRow.id == search_id))
            return bool(result.rowcount)

    async def claim_due_searches(self, *, now: datetime, lease_until: datetime, limit: int) -> list[SavedSearch]:
        """Take the searches that are due and not being run, holding a lease so no other scan takes them too."""
        free = sa.or_(SearchRow.lease_until.is_(None), SearchRow.lease_until < now)
        due = (
            sa.select(SearchRow.id)
            .where(SearchRow.status == SearchStatus.ACTIVE.value, SearchRow.next_run_at <= now, free)
            # Same-query searches are due together (see Scanner.spread); the query tie-break keeps them in one
            # batch so they share one fetch.
            .order_by(SearchRow.next_run_at, SearchRow.query)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        async with self._sessions.begin() as session:
            ids = list((await session.scalars(due)).all())
            if not ids:
                return []
            claimed = await session.scalars(
                sa.update(SearchRow)
                .where(one_of(self.dialect, SearchRow.id, ids), free)
                .values(lease_until=lease_until)
                .returning(SearchRow.id)
                .execution_options(synchronize_session=False)
            )
            claimed_ids = list(claimed.all())
            rows = await session.scalars(sa.select(SearchRow).where(one_of(self.dialect, SearchRow.id, claimed_ids)))
            return sorted((search_from_row(row) for row in rows), key=lambda s: s.next_run_at)

    async def release_searches(self, search_ids: Sequence[int]) -> None:
        """Free searches a scan claimed but will not finish; StorageError when the database refuses."""
        try:
            async with self._sessions.begin() as session:
                if search_ids:
                    await session.execute(sa.update(SearchRow).where(one_of(self.dialect, SearchRow.id, search_ids))
                                          .values(lease_until=None).execution_options(synchronize_session=False))
        except SQLAlchemyError as err:
            raise StorageError(f"could not free the searches: {describe_database_error(err)}") from err

    async def release_all_leases(self) -> None:
        """Free the leases of an in-process scan (its process is gone: only the scheduler lock's holder calls
        this); a worker task's lease (it has a token) holds until its task commits or it expires."""
        async with self._sessions.begin() as session:
            await session.execute(
                sa.update(SearchRow).where(SearchRow.lease_until.is_not(None), SearchRow.lease_token.is_(None))
                .values(lease_until=None)
            )

    async def scale_intervals(self, marketplace: str, *, factor: int, cap_minutes: int, now: datetime) -> int:
        """Multiply the check interval of the active searches on a marketplace (the runbook's rate-limit remedy)."""
        async with self._sessions.begin() as session:
            rows = (await session.scalars(sa.select(SearchRow).where(SearchRow.status == "active"))).all()
            changed = 0
            for row in rows:
                if marketplace in text_list(row.marketplaces) and row.check_interval_minutes < cap_minutes:
                    row.check_interval_minutes = min(row.check_interval_minutes * factor, cap_minutes)
                    row.updated_at = now
                    changed += 1
            return changed
