"""Each chat's alert preferences (quiet hours, layout) and a search's snooze: small rows read by delivery and the
commands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scout.errors import NotFoundError
from scout.models import Destination, Layout, SavedSearch
from scout.quiet import QuietHours
from storage.convert import search_from_row
from storage.tables import DestinationSettingsRow, SearchRow


@dataclass(frozen=True, slots=True)
class DestinationSettings:
    destination: Destination
    quiet_hours: QuietHours | None = None
    layout: Layout = Layout.FULL


def _settings(row: DestinationSettingsRow | None, destination: Destination) -> DestinationSettings:
    if row is None:
        return DestinationSettings(destination)
    quiet = (QuietHours(row.quiet_start, row.quiet_end, row.timezone)
             if row.quiet_start is not None and row.quiet_end is not None else None)
    return DestinationSettings(destination, quiet, Layout(row.layout))


class PreferenceQueries:
    """The preference part of storage.repo.Repository."""

    _sessions: async_sessionmaker[AsyncSession]

    async def load_destination_settings(self, destination: Destination) -> DestinationSettings:
        async with self._sessions() as session:
            row = await session.get(DestinationSettingsRow, (destination.platform, destination.target))
            return _settings(row, destination)

    async def save_destination_settings(self, settings: DestinationSettings) -> DestinationSettings:
        """Store a chat's preferences; a chat back to every default keeps no row."""
        destination = settings.destination
        async with self._sessions.begin() as session:
            row = await session.get(DestinationSettingsRow, (destination.platform, destination.target),
                                    with_for_update=True)
            if settings.quiet_hours is None and settings.layout is Layout.FULL:
                if row is not None:
                    await session.delete(row)
                return settings
            if row is None:
                row = DestinationSettingsRow(platform=destination.platform, target=destination.target)
                session.add(row)
            quiet = settings.quiet_hours
            row.quiet_start = quiet.start if quiet else None
            row.quiet_end = quiet.end if quiet else None
            row.timezone = quiet.timezone if quiet else "UTC"
            row.layout = settings.layout.value
        return settings

    async def snooze_search(self, search_id: int, *, until: datetime | None, now: datetime) -> SavedSearch:
        """Announce nothing of the search's matches until `until` (None: wake it now)."""
        async with self._sessions.begin() as session:
            row = await session.get(SearchRow, search_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"There is no search #{search_id}.")
            row.snoozed_until = until
            row.updated_at = now
            await session.flush()
            return search_from_row(row)


async def quiet_destinations(session: AsyncSession, now: datetime) -> set[Destination]:
    """The chats whose quiet hours cover `now`: delivery leaves them for later. The table holds a row only per chat
    that changed a preference, so this reads a handful of rows."""
    rows = await session.execute(
        sa.select(DestinationSettingsRow).where(DestinationSettingsRow.quiet_start.is_not(None))
    )
    quiet = set()
    for (row,) in rows:
        settings = _settings(row, Destination(row.platform, row.target))
        if settings.quiet_hours is not None and settings.quiet_hours.covers(now):
            quiet.add(settings.destination)
    return quiet
