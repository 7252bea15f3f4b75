"""The API application through a real uvicorn server: routes, docs, request metrics and malformed requests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.app import MAX_BODY_BYTES
from scout.config import load_settings
from tests.api.helpers import Running, running_api


class NewSearch(BaseModel):
    query: str
    max_price: int


def searches() -> APIRouter:
    """Routes of the shapes an API grows: a path parameter, a typed body, a raw body, a bug."""
    router = APIRouter()

    @router.get("/api/v1/searches/{search_id}")
    async def show(search_id: int) -> dict[str, int]:
        return {"id": search_id}

    @router.post("/api/v1/searches")
    async def add(search: NewSearch) -> dict[str, str]:
        return {"query": search.query}

    @router.post("/api/v1/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @router.get("/api/v1/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    return router


@pytest.fixture
async def api() -> AsyncIterator[Running]:
    async with running_api([searches()]) as running:
        yield running


async def test_health_and_the_detailed_report_answer_as_before(api: Running) -> None:
    async with api.client.get("/health") as response:
        assert (response.status, response.headers["Content-Type"]) == (200, "application/json")
        assert await response.text() == '{"status": "ok"}'  # json.dumps' spacing, which the runbook greps
    api.health.ok = False
    async with api.client.get("/health") as response:
        assert response.status == 503 and '"status": "down"' in await response.text()
    api.report = {"status": "down", "database": {"ok": False}}
    async with api.client.get("/api/v1/monitoring/health/detailed") as response:
        assert response.status == 503 and await response.json() == api.report
    async with api.client.get("/api/v1/monitoring/metrics") as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=")
    async with api.client.head("/health") as response:
        assert response.status == 503  # a load balancer's HEAD probe gets the same answer


async def test_the_docs_are_served_by_default() -> None:
    assert load_settings({}, env_file=None).api_docs is True
    async with running_api() as api:
        async with api.client.get("/docs") as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/html")
        async with api.client.get("/openapi.json") as response:
            paths = (await response.json())["paths"]
    assert {"/health", "/api/v1/monitoring/health/detailed", "/api/v1/monitoring/metrics"} <= set(paths)


async def test_api_docs_false_turns_the_docs_off() -> None:
    settings = load_settings({"API_DOCS": "false"}, env_file=None)
    assert settings.api_docs is False
    async with running_api(docs=settings.api_docs) as api:
        for path in ("/docs", "/openapi.json", "/redoc"):
            async with api.client.get(path) as response:
                assert (path, response.status) == (path, 404)


async def test_requests_are_labelled_by_route_template_never_the_raw_path(api: Running) -> None:
    for search_id in (1, 2, 3):
        async with api.client.get(f"/api/v1/searches/{search_id}") as response:
            assert response.status == 200
    counts = api.durations()
    assert counts[("GET", "/api/v1/searches/{search_id}", "200")] == 3
    assert not [labels for labels in counts if labels[1].endswith(("/1", "/2", "/3"))]


async def test_unknown_paths_and_methods_add_no_label_values(api: Running) -> None:
    async with api.client.get("/nope/0") as response:
        assert response.status == 404
    async with api.client.request("BREW", "/health") as response:
        assert response.status == 405
    before = set(api.durations())
    for n in range(1, 40):
        async with api.client.get(f"/nope/{n}?q={n}") as response:
            assert response.status == 404
        async with api.client.request(f"BREW{n}", "/health") as response:
            assert response.status == 405
    counts = api.durations()
    assert set(counts) == before
    assert counts[("GET", "unmatched", "404")] == 40 and counts[("other", "/health", "405")] == 40


async def test_server_errors_count_for_the_error_rate_threshold(api: Running) -> None:
    async with api.client.get("/health") as response:
        assert response.status == 200
    async with api.client.get("/api/v1/broken") as response:
        assert response.status == 500
    assert api.durations()[("GET", "/api/v1/broken", "500")] == 1
    assert api.stats.error_rate() == 0.5
    p95 = api.stats.p95_seconds()
    assert p95 is not None and p95 >= 0


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(64 * 1024, total - sent)
        sent += piece
        yield b"x" * piece


@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    ("POST", "/api/v1/searches", b"{not json", 422),
    ("POST", "/api/v1/searches", b'{"query": "lego", "max_price": "cheap"}', 422),
    ("POST", "/api/v1/searches", b'["lego", 10]', 422),
    ("POST", "/api/v1/searches", b"", 422),
    ("GET", "/api/v1/searches/abc", None, 422),
    ("POST", "/api/v1/echo", b"x" * (MAX_BODY_BYTES + 1), 413),
    ("POST", "/api/v1/echo", "chunked", 413),
    ("POST", "/health", None, 405),
    ("DELETE", "/api/v1/monitoring/metrics", None, 405),
    ("POST", "/api/v1/searches/1", b"{}", 405),
], ids=["bad-json", "wrong-type", "not-an-object", "no-body", "bad-path-parameter", "oversized", "oversized-chunked",
        "post-health", "delete-metrics", "post-to-a-get-route"])
async def test_a_malformed_request_is_a_4xx_without_a_traceback(
    api: Running, caplog: pytest.LogCaptureFixture, method: str, path: str, body: Any, expected: int
) -> None:
    caplog.set_level(logging.DEBUG)
    data = _chunks(MAX_BODY_BYTES + 64 * 1024) if body == "chunked" else body
    headers = {"Content-Type": "application/json"} if isinstance(body, bytes) else {}
    async with api.client.request(method, path, data=data, headers=headers) as response:
        assert response.status == expected
        await response.read()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    async with api.client.post("/api/v1/searches", json={"query": "lego", "max_price": 10}) as response:
        assert response.status == 200 and await response.json() == {"query": "lego"}
