"""The runbook's endpoints, through a real HTTP client against a running service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.commands import Actor
from dealscout.app import Service, build_service, start_service
from scout.config import load_settings
from scout.models import Destination
from storage.db import create_engine, session_factory
from storage.repo import Repository
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.marketplace import FakeMarketplace
from tests.fakes.notifier import RecordingNotifier


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Service, str, FakeMarketplace]]:
    async with FakeMarketplace() as market:
        market.route("/sch/i.html", body=ebay_results_page([(1, "Lego castle", "10.00")]))
        settings = load_settings({"DEALSCOUT_DATA_DIR": str(tmp_path), "OPS_HTTP_PORT": "0",
                                  "SCAN_TICK_SECONDS": "3600", "BASELINE_FIRST_SCAN": "false"}, env_file=None)
        async with build_service(settings, resolve=market.resolving("www.ebay.com"),
                                 notifiers={"console": RecordingNotifier()}) as service:
            service.fetcher.set_host_rate("www.ebay.com", float("inf"))
            await start_service(service)
            assert service.ops.server is not None
            yield service, f"http://127.0.0.1:{service.ops.server.port}", market


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def test_health_is_fast_liveness(running: tuple[Service, str, FakeMarketplace]) -> None:
    _, base, _ = running
    status, content_type, body = await get(base + "/health")
    assert status == 200 and content_type.startswith("application/json") and '"status": "ok"' in body


async def test_health_names_the_database_when_it_is_unreachable(
    running: tuple[Service, str, FakeMarketplace]
) -> None:
    service, base, _ = running
    dead = create_engine("postgresql://nobody@127.0.0.1:1/nothing")
    service.ops.health.repo = Repository(session_factory(dead))
    try:
        status, _, body = await get(base + "/health")
        assert status == 503 and '"failing": "database"' in body
        status, _, body = await get(base + "/api/v1/monitoring/health/detailed")
        assert status == 503 and '"status": "down"' in body
    finally:
        await dead.dispose()


async def test_detailed_health_reports_every_part(running: tuple[Service, str, FakeMarketplace]) -> None:
    service, base, _ = running
    await service.commands.add_search(Actor("a"), Destination("console", "main"), query="lego", marketplaces="ebay")
    await service.scanner.run_until_idle()
    async with aiohttp.ClientSession() as session, session.get(base + "/api/v1/monitoring/health/detailed") as r:
        assert r.status == 200
        report = await r.json()
    assert report["version"] and report["database"]["ok"] and report["database"]["latency_ms"] >= 0
    assert set(report["scheduler"]) == {"running", "last_tick", "last_tick_age_seconds", "lag_seconds"}
    ebay = report["marketplaces"]["ebay"]
    assert (ebay["state"], ebay["circuit"], ebay["last_status"]) == ("active", "closed", "success")
    assert ebay["last_success"] and ebay["failures_last_hour"] == 0 and ebay["blocks_last_hour"] == 0
    assert report["platforms"]["console"]["connected"] is True
    outbox = report["outbox"]
    assert set(outbox) == {"pending", "oldest_pending_age_seconds", "dead", "sent", "held"}
    # The alert and the start-up ops message; the delivery job may have sent them already.
    assert (outbox["pending"] + outbox["sent"], outbox["dead"], outbox["held"]) == (2, 0, 0)
    assert report["searches"]["active"] == 1


async def test_metrics_are_prometheus_text_with_the_runbooks_names(
    running: tuple[Service, str, FakeMarketplace]
) -> None:
    service, base, market = running
    await service.commands.add_search(Actor("a"), Destination("console", "main"), query="lego", marketplaces="ebay")
    await service.scanner.run_until_idle()
    await service.dispatcher.drain()
    market.fail("/sch/i.html", 429, times=5)
    await service.commands.add_search(Actor("b"), Destination("console", "main"), query="duplo", marketplaces="ebay")
    await service.scanner.run_until_idle()
    await get(base + "/health")
    status, content_type, text = await get(base + "/api/v1/monitoring/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    names = {name for name, _ in samples}
    assert "http_request_duration_seconds_count" in names  # the runbook greps for http_request_duration
    assert samples[("dealscout_scrape_requests_total", (("marketplace", "ebay"), ("outcome", "success")))] == 1
    assert samples[("dealscout_scrape_requests_total", (("marketplace", "ebay"), ("outcome", "blocked")))] == 1
    assert samples[("dealscout_listings_found_total", (("marketplace", "ebay"),))] == 1
    assert samples[("dealscout_alerts_delivered_total", (("platform", "console"),))] == 1
    assert samples[("dealscout_alert_lag_seconds_count", (("platform", "console"),))] == 1
    assert samples[("dealscout_outbox_pending", ())] == 0
    assert samples[("dealscout_failed_tasks_last_hour", ())] == 1
    assert ("dealscout_scheduler_lag_seconds", ()) in samples
    assert ("process_resident_memory_bytes", ()) in samples
    # Low cardinality: no label carries a chat, user or search id.
    assert all(key not in dict(labels) for _, labels in samples for key in ("chat", "user", "target", "search"))


async def test_an_api_budget_shows_in_the_detailed_health(tmp_path: Path) -> None:
    settings = load_settings({"DEALSCOUT_DATA_DIR": str(tmp_path), "OPS_HTTP_PORT": "0", "EBAY_CLIENT_ID": "id",
                              "EBAY_CLIENT_SECRET": "secret", "EBAY_API_DAILY_CALLS": "5000"}, env_file=None)
    async with build_service(settings) as service:
        report = await service.ops.health.detailed()
        status = await service.admin.status(Actor("op", is_operator=True))
    assert report["marketplaces"]["ebay"]["usage"].startswith("API budget: 0 of 5000 calls used today")
    assert "API budget: 0 of 5000" in status
    assert report["marketplaces"]["craigslist"]["usage"] is None


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE / HTTP/1.1\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\n\r\n",
    b"GET /health HTTP/9.9\r\n\r\n",
    b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
])
async def test_a_malformed_request_is_a_400_without_an_error_in_the_log(
    running: tuple[Service, str, FakeMarketplace], caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    """Pins aiohttp logging "Error handling request" at ERROR, with a traceback, for every malformed request."""
    service, base, _ = running
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", service.ops.server.port)  # type: ignore[union-attr]
    writer.write(request_bytes)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"400"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert any(r.getMessage().startswith("malformed request from 127.0.0.1 answered 400: ") for r in caplog.records)
    assert (await get(base + "/health"))[0] == 200
