"""The repository: the one object every caller reads and writes through, composed of one class per aggregate."""

from __future__ import annotations

from storage.apikeys import ApiKey, ApiKeyQueries
from storage.deals import DealQueries
from storage.ops_queries import FailureSummary, OpsQueries, OpsSnapshot, TaskLog
from storage.outbox import OutboxQueries
from storage.preferences import DestinationSettings, PreferenceQueries
from storage.queries import DATABASE_ERROR_LENGTH, describe_database_error, raise_storage_errors
from storage.scans import CIRCUIT_TASK_NAME, FAILING_STATUSES, PAUSED_REASON_LENGTH, SCAN_TASK_NAME, ScanQueries
from storage.searches import SearchQueries
from storage.views import PricePoint, SearchAlert, StoredListing, ViewQueries

__all__ = [
    "CIRCUIT_TASK_NAME",
    "DATABASE_ERROR_LENGTH",
    "FAILING_STATUSES",
    "PAUSED_REASON_LENGTH",
    "SCAN_TASK_NAME",
    "ApiKey",
    "DestinationSettings",
    "FailureSummary",
    "OpsSnapshot",
    "PricePoint",
    "Repository",
    "SearchAlert",
    "StoredListing",
    "TaskLog",
    "describe_database_error",
]


@raise_storage_errors
class Repository(SearchQueries, ScanQueries, OpsQueries, ApiKeyQueries, ViewQueries, PreferenceQueries,
                 DealQueries, OutboxQueries):
    """All reads and writes: saved searches (storage.searches), a scan's results (storage.scans), marketplaces,
    task logs and the audit log (storage.ops_queries), the outbox (storage.outbox), the REST API's keys
    (storage.apikeys), its reads across aggregates (storage.views), chats' preferences and snoozes
    (storage.preferences), and the comparables that deals are judged against (storage.deals). Each public method is one
    transaction, and raises StorageError (or OSError, for a connection it cannot open) when the database fails.

    OutboxQueries comes last: it declares the shared floor's methods without a body, for its own type checks, and
    any aggregate after it would have those stand in for storage.queries.Queries' own."""
