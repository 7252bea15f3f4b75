"""The repository: the one object every caller reads and writes through, composed of one class per aggregate."""

from __future__ import annotations

from storage.ops_queries import FailureSummary, OpsQueries, OpsSnapshot, TaskLog
from storage.outbox import OutboxQueries
from storage.queries import DATABASE_ERROR_LENGTH, describe_database_error, raise_storage_errors
from storage.scans import CIRCUIT_TASK_NAME, FAILING_STATUSES, PAUSED_REASON_LENGTH, SCAN_TASK_NAME, ScanQueries
from storage.searches import SearchQueries

__all__ = [
    "CIRCUIT_TASK_NAME",
    "DATABASE_ERROR_LENGTH",
    "FAILING_STATUSES",
    "PAUSED_REASON_LENGTH",
    "SCAN_TASK_NAME",
    "FailureSummary",
    "OpsSnapshot",
    "Repository",
    "TaskLog",
    "describe_database_error",
]


@raise_storage_errors
class Repository(SearchQueries, ScanQueries, OpsQueries, OutboxQueries):
    """All reads and writes: saved searches (storage.searches), a scan's results (storage.scans), marketplaces,
    task logs and the audit log (storage.ops_queries), the outbox (storage.outbox). Each public method is one
    transaction, and raises StorageError (or OSError, for a connection it cannot open) when the database fails."""
