"""What the core asks of storage: the repository methods the scan and delivery call, in scout.models types."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from scout.circuit import Circuit, Transition
from scout.errors import StorageError
from scout.models import (
    Delivery,
    Destination,
    FetchOutcome,
    MarketplaceState,
    SavedSearch,
    ScanSaved,
    SearchRun,
)

# What a store raises when its database fails (refuses a statement, or cannot be reached): the storage layer turns
# its engine's errors into StorageError, and a connection that cannot be opened raises OSError. Anything else is a
# bug, not an outage.
STORAGE_ERRORS = (StorageError, OSError)


class ScanStore(Protocol):
    """Where the scan claims due searches and saves what each fetch found; a failing database raises one of
    STORAGE_ERRORS."""

    async def load_marketplace_states(self) -> dict[str, MarketplaceState]: ...

    async def claim_due_searches(self, *, now: datetime, lease_until: datetime, limit: int) -> list[SavedSearch]:
        """Take the searches that are due and not being run, holding a lease so no other scan takes them too."""
        ...

    async def save_scan(
        self, *, now: datetime, fetches: Sequence[FetchOutcome], runs: Sequence[SearchRun],
        searches: Mapping[int, SavedSearch], baseline_first_scan: bool = True,
        circuits: Mapping[str, Circuit] | None = None, transitions: Sequence[Transition] = (),
    ) -> ScanSaved:
        """Record fetches in one transaction; StorageError when the database refused it (nothing of it is kept)."""
        ...

    async def release_searches(self, search_ids: Sequence[int]) -> None:
        """Free searches a scan claimed but will not finish."""
        ...


class OutboxStore(Protocol):
    """Where delivery finds the rows due, claims them before sending, and records what each send did; a failing
    database raises one of STORAGE_ERRORS."""

    async def load_due_deliveries(self, *, now: datetime, limit: int, platforms: Iterable[str],
                                  per_destination: int | None = None,
                                  skip: Collection[Destination] = ()) -> list[Delivery]: ...

    async def claim_deliveries(self, messages: Sequence[Sequence[int]], *, now: datetime,
                               until: datetime) -> set[int]:
        """Claim the rows of these messages until `until`; returns the ids claimed (rows still due)."""
        ...

    async def record_sent(self, outbox_ids: Sequence[int], *, now: datetime) -> None: ...

    async def record_retry(self, destination: Destination, *, failed: Sequence[int], released: Sequence[int],
                           error: str, counted: bool, until: datetime) -> None: ...

    async def record_dead(self, outbox_ids: Sequence[int], *, reason: str, released: Sequence[int] = ()) -> None: ...

    async def release_claims(self, outbox_ids: Sequence[int], *, now: datetime) -> None: ...

    async def recover_claims(self, *, now: datetime) -> int: ...

    async def hold_destination(self, destination: Destination, *, reason: str,
                               now: datetime) -> tuple[list[SavedSearch], int]:
        """Pause the searches of a chat that refuses us and hold its alerts; returns them and the alerts held."""
        ...

    async def move_destination(self, old: Destination, new: Destination) -> None: ...
