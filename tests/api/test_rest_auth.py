"""REST API keys on the real server: 401 without a valid key, 403 for too small a scope, owners kept apart, admin
keys see everyone's, and the OpenAPI document names the endpoints and both ways to send a key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.rest.tokens import hash_key
from storage.repo import Repository
from tests.api.rest import Rest, running_rest, save_search

# Every REST route, with a path that exists when one search and one listing do.
ROUTES = [
    ("GET", "/api/v1/searches"), ("POST", "/api/v1/searches"), ("GET", "/api/v1/searches/1"),
    ("PATCH", "/api/v1/searches/1"), ("DELETE", "/api/v1/searches/1"), ("POST", "/api/v1/searches/1/pause"),
    ("POST", "/api/v1/searches/1/resume"), ("POST", "/api/v1/searches/1/run"), ("GET", "/api/v1/searches/1/alerts"),
    ("GET", "/api/v1/listings/1"), ("GET", "/api/v1/marketplaces"), ("POST", "/api/v1/marketplaces/ebay/pause"),
    ("POST", "/api/v1/marketplaces/ebay/resume"), ("POST", "/api/v1/marketplaces/ebay/backoff"),
    ("GET", "/api/v1/summary"),
]


@pytest.fixture
async def rest(repo: Repository) -> AsyncIterator[Rest]:
    async with running_rest(repo) as running:
        yield running


async def test_no_route_answers_without_a_valid_key_and_nothing_changes(rest: Rest) -> None:
    search = await save_search(rest.repo, "alice")
    revoked = await rest.key("alice", "admin")
    await rest.repo.revoke_api_key(revoked.split("_")[1], now=rest.clock())
    genuine = await rest.key("alice", "admin")
    forged = genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB")  # right id, wrong secret
    for key in (None, "", "not-a-key", revoked, forged, genuine.replace("dsk_", "xyz_")):
        for method, path in ROUTES:
            status, body = await rest.call(method, path, key, json={"query": "lego"} if method != "GET" else None)
            assert status == 401, (key, method, path, body)
            assert "API key" in body["detail"]
    assert [s.id for s in await rest.repo.load_searches()] == [search.id]
    assert (await rest.repo.load_search(search.id)).status.value == "active"  # type: ignore[union-attr]
    assert await rest.rows("SELECT count(*) FROM audit_log") == [(0,)]
    async with rest.client.get("/api/v1/searches") as response:
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_the_open_endpoints_need_no_key(rest: Rest) -> None:
    for path in ("/health", "/api/v1/monitoring/metrics", "/api/v1/monitoring/health/detailed"):
        assert (await rest.call("GET", path, None))[0] == 200


async def test_a_key_goes_in_the_bearer_header_or_x_api_key(rest: Rest) -> None:
    key = await rest.key("alice", "read")
    async with rest.client.get("/api/v1/searches", headers={"X-API-Key": key}) as response:
        assert response.status == 200
    async with rest.client.get("/api/v1/searches", headers={"Authorization": f"bearer {key}"}) as response:
        assert response.status == 200
    async with rest.client.get("/api/v1/searches", headers={"Authorization": f"Basic {key}"}) as response:
        assert response.status == 401


async def test_a_key_of_too_small_a_scope_gets_403_and_changes_nothing(rest: Rest) -> None:
    search = await save_search(rest.repo, "alice")
    reader, writer = await rest.key("alice", "read"), await rest.key("alice", "write")
    for method, path in ROUTES:
        if method == "GET":
            continue
        status, body = await rest.call(method, path, reader, json={"query": "lego"})
        assert status == 403 and "read" in body["detail"], (method, path)
    for action in ("pause", "resume", "backoff"):
        status, body = await rest.call("POST", f"/api/v1/marketplaces/ebay/{action}", writer)
        assert status == 403 and "admin" in body["detail"]
    assert (await rest.repo.load_search(search.id)) == search
    assert await rest.rows("SELECT count(*) FROM audit_log") == [(0,)]
    assert await rest.repo.load_marketplace_states() == {}


async def test_a_key_sees_and_changes_only_its_owners_searches(rest: Rest) -> None:
    mine = await save_search(rest.repo, "alice", "lego")
    theirs = await save_search(rest.repo, "bob", "bike")
    alice = await rest.key("alice", "write")
    status, page = await rest.call("GET", "/api/v1/searches", alice)
    assert status == 200 and [s["id"] for s in page["items"]] == [mine.id] and page["total"] == 1
    assert (await rest.call("GET", "/api/v1/searches?owner=bob", alice))[0] == 403
    for method, path in ROUTES:
        if "/searches/1" not in path:
            continue
        path = path.replace("/searches/1", f"/searches/{theirs.id}")
        status, body = await rest.call(method, path, alice, json={} if method != "GET" else None)
        # Not found and not yours read the same: ids of other people's searches are not revealed.
        assert status == 404 and body["detail"] == f"You have no search #{theirs.id}.", (method, path)
    assert await rest.repo.load_search(theirs.id) == theirs


async def test_an_admin_key_sees_and_manages_everyones_searches(rest: Rest) -> None:
    await save_search(rest.repo, "alice", "lego")
    theirs = await save_search(rest.repo, "bob", "bike")
    admin = await rest.key("ops", "admin")
    status, page = await rest.call("GET", "/api/v1/searches", admin)
    assert status == 200 and page["total"] == 2
    status, page = await rest.call("GET", "/api/v1/searches?owner=bob", admin)
    assert [s["owner"] for s in page["items"]] == ["bob"]
    status, body = await rest.call("POST", f"/api/v1/searches/{theirs.id}/pause", admin, json={"reason": "spam"})
    assert status == 200 and body["status"] == "paused" and body["paused_reason"] == "spam"


async def test_a_keys_last_use_is_recorded_and_it_is_stored_only_hashed(rest: Rest) -> None:
    key = await rest.key("alice", "read")
    key_id = key.split("_")[1]
    assert (await rest.repo.load_api_key(key_id)).last_used_at is None  # type: ignore[union-attr]
    assert (await rest.call("GET", "/api/v1/summary", key))[0] == 200
    stored = await rest.repo.load_api_key(key_id)
    assert stored is not None and stored.last_used_at == rest.clock()
    assert stored.key_hash == hash_key(key)
    rows = await rest.rows("SELECT * FROM api_keys")
    assert not any(key in str(value) or key.split("_", 2)[2] in str(value) for row in rows for value in row)


async def test_the_openapi_document_lists_the_endpoints_and_the_security_schemes(rest: Rest) -> None:
    status, document = await rest.call("GET", "/openapi.json", None)
    assert status == 200
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {"type": "http", "scheme": "bearer", "bearerFormat": "dsk_<id>_<secret>",
                                    "description": schemes["bearerKey"]["description"]}
    assert schemes["apiKeyHeader"]["in"] == "header" and schemes["apiKeyHeader"]["name"] == "X-API-Key"
    for method, path in ROUTES:
        template = path.replace("/searches/1", "/searches/{search_id}").replace("/listings/1", "/listings/{listing_id}")
        template = template.replace("/marketplaces/ebay", "/marketplaces/{key}")
        operation = document["paths"][template][method.lower()]
        assert {"bearerKey": []} in operation["security"] and {"apiKeyHeader": []} in operation["security"]
        assert {"401", "403"} <= set(operation["responses"]), template
    for open_path in ("/health", "/api/v1/monitoring/metrics"):
        assert "security" not in document["paths"][open_path]["get"]
