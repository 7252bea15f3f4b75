"""Fixtures shared by the storage tests."""

from tests.storage.test_deal_alerts import world  # noqa: F401 - a scan world on both databases
