"""/api/v1/searches and /api/v1/listings on the real server: the whole life of a search, paging and filters, run
now, alerts and price history, and bad input refused with 422 naming the field, nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from scout.models import Destination
from scrapers.ebay.adapter import EbayAdapter
from storage.repo import Repository
from tests.api.rest import Rest, listing, running_rest, save_search, scan


@pytest.fixture
async def rest(repo: Repository) -> AsyncIterator[Rest]:
    async with running_rest(repo) as running:
        yield running


async def test_a_search_from_create_to_delete(rest: Rest) -> None:
    key = await rest.key("alice", "write")
    status, made = await rest.call("POST", "/api/v1/searches", key, json={
        "query": "rtx 3080", "marketplaces": ["ebay"], "max_price": 500, "exclude": "broken,parts",
        "interval_minutes": 15})
    assert status == 201, made
    assert made["owner"] == "alice" and made["destination"] == "console:main" and made["status"] == "active"
    assert (made["max_price"], made["min_price"], made["exclude"]) == ("500", None, ["broken", "parts"])
    assert made["description"].startswith(f"#{made['id']} \u201crtx 3080\u201d on eBay, every 15 min")
    path = f"/api/v1/searches/{made['id']}"
    assert await rest.call("GET", path, key) == (200, made)
    status, edited = await rest.call("PATCH", path, key, json={"min_price": "100", "interval_minutes": 30})
    assert status == 200
    assert (edited["min_price"], edited["interval_minutes"], edited["query"]) == ("100", 30, "rtx 3080")
    status, paused = await rest.call("POST", f"{path}/pause", key, json={"reason": "holiday"})
    assert status == 200 and (paused["status"], paused["paused_reason"]) == ("paused", "holiday")
    assert (await rest.call("POST", f"{path}/run", key))[0] == 409
    status, resumed = await rest.call("POST", f"{path}/resume", key)
    assert status == 200 and resumed["status"] == "active"
    assert (await rest.call("DELETE", path, key))[0] == 204
    assert (await rest.call("GET", path, key))[0] == 404
    assert await rest.repo.load_searches() == []


async def test_deal_options_are_set_read_and_changed(rest: Rest) -> None:
    key = await rest.key("alice", "write")
    status, made = await rest.call("POST", "/api/v1/searches", key, json={
        "query": "lego 42100", "marketplaces": ["ebay"], "min_deal": "good", "price_drop": "15%",
        "exclude_sellers": ["Junk Shop"], "min_seller_rating": 98})
    assert status == 201, made
    assert (made["min_deal"], made["price_drop"], made["exclude_sellers"], made["min_seller_rating"]) == (
        "good", "0.15", ["junk shop"], "98")
    assert made["snoozed_until"] is None
    status, edited = await rest.call("PATCH", f"/api/v1/searches/{made['id']}", key, json={
        "min_deal": "any", "price_drop": "off"})
    assert status == 200 and (edited["min_deal"], edited["price_drop"]) == (None, None)
    assert edited["min_seller_rating"] == "98" and edited["exclude_sellers"] == ["junk shop"]


async def test_null_clears_a_field_as_a_search_read_back_means_it(rest: Rest) -> None:
    key = await rest.key("alice", "write")
    status, made = await rest.call("POST", "/api/v1/searches", key, json={
        "query": "lego 42100", "marketplaces": ["ebay"], "min_price": 50, "max_price": 400, "exclude": ["broken"],
        "min_deal": "great", "price_drop": "15%", "min_seller_rating": 98, "interval_minutes": 60})
    assert status == 201, made
    path = f"/api/v1/searches/{made['id']}"
    status, edited = await rest.call("PATCH", path, key, json={
        "min_price": None, "exclude": None, "min_deal": None, "price_drop": None, "min_seller_rating": None,
        "interval_minutes": None})
    assert status == 200, edited
    assert {field: edited[field] for field in ("min_price", "exclude", "min_deal", "price_drop", "min_seller_rating")} \
        == {"min_price": None, "exclude": [], "min_deal": None, "price_drop": None, "min_seller_rating": None}
    assert (edited["max_price"], edited["interval_minutes"]) == ("400", EbayAdapter.min_interval_minutes)
    assert await rest.call("GET", path, key) == (200, edited)
    for field in ("query", "unpriced", "sponsored"):
        status, refused = await rest.call("PATCH", path, key, json={field: None})
        assert status == 422 and refused["detail"][0]["loc"][:2] == ["body", field], refused
    assert await rest.call("GET", path, key) == (200, edited)


async def test_destinations_are_named_as_the_clis_to(rest: Rest) -> None:
    writer, admin = await rest.key("alice", "write"), await rest.key("ops", "admin")
    body = {"query": "steam deck", "marketplaces": ["ebay"], "to": "apprise:ntfys://ntfy.sh/secret-topic"}
    status, made = await rest.call("POST", "/api/v1/searches", writer, json=body)
    assert status == 201 and made["destination"] == "apprise:ntfys://ntfy.sh/***"  # shown without its secret
    # A chat the bot reaches is not the caller's to fill: only where its owner already has a search, or for admins.
    status, refused = await rest.call("POST", "/api/v1/searches", writer, json={**body, "to": "discord:123456"})
    assert status == 422 and refused["detail"][0]["loc"] == ["body", "to"]
    await save_search(rest.repo, "alice", "lego", destination=Destination("discord", "123456"))
    assert (await rest.call("POST", "/api/v1/searches", writer, json={**body, "to": "discord:123456"}))[0] == 201
    status, made = await rest.call("POST", "/api/v1/searches", admin, json={**body, "to": "telegram:-100200"})
    assert status == 201 and made["destination"] == "telegram:-100200" and made["owner"] == "ops"
    status, refused = await rest.call("POST", "/api/v1/searches", admin, json={**body, "to": "discord:general"})
    assert status == 422 and refused["detail"][0]["loc"] == ["body", "to"]
    assert "numeric id" in refused["detail"][0]["msg"]


BAD_CREATES: list[tuple[dict[str, Any], list[str], str]] = [
    ({"query": "lego", "max_price": -5}, ["body", "max_price"], "cannot be negative"),
    ({"query": "lego", "min_price": "-1"}, ["body", "min_price"], "cannot be negative"),
    ({"query": "x" * 10_000}, ["body", "query"], "the limit is 200"),
    ({"query": "lego", "marketplaces": ["ebay", "amazon"]}, ["body", "marketplaces"], "Unknown marketplace 'amazon'"),
    ({"query": "lego", "marketplaces": ["ebay"], "interval_minutes": 1}, ["body", "interval_minutes"], "at least 5"),
    ({"query": "<b>lego</b>"}, ["body", "query"], "looks like HTML"),
    ({"query": "lego", "min_price": 300, "max_price": 100}, ["body", "min_price"], "above the maximum"),
    ({"query": "lego", "currency": "dollars"}, ["body", "currency"], "not a currency code"),
    ({"query": "lego", "to": "fax:123"}, ["body", "to"], "Unknown destination platform"),
    ({"query": "lego", "min_deal": "superb"}, ["body", "min_deal"], "not one of: great, good, fair"),
    ({"query": "lego", "price_drop": "-5%"}, ["body", "price_drop"], "price drop worth telling"),
    ({"query": "lego", "min_seller_rating": 150}, ["body", "min_seller_rating"], "from 1% to 100%"),
    ({"query": "lego", "exclude_sellers": ["x" * 101]}, ["body", "exclude_sellers"], "at most 100 characters"),
    # Wrong types: FastAPI's own refusals, in the same shape.
    ({"query": 42}, ["body", "query"], "string"),
    ({"query": "lego", "max_price": [1]}, ["body", "max_price"], ""),
    ({"query": "lego", "interval_minutes": 10.5}, ["body", "interval_minutes"], ""),
    ({"query": "lego", "marketplaces": {"ebay": True}}, ["body", "marketplaces"], ""),
    ({"max_price": 10}, ["body", "query"], "Field required"),
    ({"query": "lego", "colour": "red"}, ["body", "colour"], "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("body", "loc", "reason"), BAD_CREATES)
async def test_bad_input_is_422_naming_the_field_and_saves_nothing(rest: Rest, body: dict[str, Any], loc: list[str],
                                                                   reason: str) -> None:
    key = await rest.key("alice", "write")
    status, refused = await rest.call("POST", "/api/v1/searches", key, json=body)
    assert status == 422, refused
    assert any(error["loc"][:len(loc)] == loc and reason in error["msg"] for error in refused["detail"]), refused
    assert await rest.repo.load_searches() == []


async def test_a_bad_change_is_422_and_leaves_the_search_as_it_was(rest: Rest) -> None:
    key = await rest.key("alice", "write")
    search = await save_search(rest.repo, "alice")
    for body, field in (({"max_price": -1}, "max_price"), ({"query": "y" * 10_000}, "query"),
                        ({"marketplaces": "ebay,nowhere"}, "marketplaces"), ({"radius_km": "far"}, "radius_km"),
                        ({"query": None, "min_price": {"a": 1}}, "min_price")):
        status, refused = await rest.call("PATCH", f"/api/v1/searches/{search.id}", key, json=body)
        assert status == 422 and refused["detail"][0]["loc"][:2] == ["body", field], refused
    assert await rest.repo.load_search(search.id) == search
    status, refused = await rest.call("GET", "/api/v1/searches/abc", key)
    assert status == 422 and refused["detail"][0]["loc"] == ["path", "search_id"]


async def test_the_api_accepts_what_the_cli_accepts(rest: Rest) -> None:
    """Prices typed as people type them, words as a comma list, an interval as '10m': the engine reads them."""
    key = await rest.key("alice", "write")
    status, made = await rest.call("POST", "/api/v1/searches", key, json={
        "query": "  nintendo   switch ", "max_price": "$1,200", "marketplaces": "ebay, craigslist",
        "interval_minutes": "10m", "location": "sfbay", "sponsored": "EXCLUDE"})
    assert status == 201, made
    assert (made["query"], made["max_price"], made["marketplaces"], made["interval_minutes"], made["sponsored"]) == (
        "nintendo switch", "1200", ["ebay", "craigslist"], 10, "exclude")


async def test_listing_pages_with_a_cap_and_filters(rest: Rest) -> None:
    admin = await rest.key("ops", "admin")
    for n in range(7):
        await save_search(rest.repo, "alice" if n % 2 else "bob", f"lego {n}",
                          marketplaces=("ebay", "craigslist") if n < 3 else ("ebay",))
    paused = (await rest.repo.load_searches())[0]
    await rest.call("POST", f"/api/v1/searches/{paused.id}/pause", admin)
    status, page = await rest.call("GET", "/api/v1/searches?page=2&per_page=3", admin)
    assert status == 200 and (page["total"], page["pages"], page["page"], page["per_page"]) == (7, 3, 2, 3)
    assert [s["query"] for s in page["items"]] == ["lego 3", "lego 4", "lego 5"]
    status, page = await rest.call("GET", "/api/v1/searches?page=9", admin)
    assert status == 200 and page["items"] == [] and page["total"] == 7
    status, page = await rest.call("GET", "/api/v1/searches?owner=alice&marketplace=craigslist", admin)
    assert [s["query"] for s in page["items"]] == ["lego 1"] and page["total"] == 1
    status, page = await rest.call("GET", "/api/v1/searches?status=paused", admin)
    assert [s["id"] for s in page["items"]] == [paused.id]
    for query, loc in (("per_page=201", ["query", "per_page"]), ("page=0", ["query", "page"]),
                       ("status=gone", ["query", "status"]), ("marketplace=amazon", ["query", "marketplace"])):
        status, refused = await rest.call("GET", f"/api/v1/searches?{query}", admin)
        assert status == 422 and refused["detail"][0]["loc"] == loc, query


async def test_run_now_makes_a_search_due_within_its_marketplaces_limits(rest: Rest) -> None:
    key = await rest.key("alice", "write")
    search = await save_search(rest.repo, "alice")
    await scan(rest.repo, search, [listing(1, "100")], now=rest.clock())
    rest.clock.now += timedelta(minutes=2)  # eBay's minimum interval is 5 minutes
    async with rest.client.post(f"/api/v1/searches/{search.id}/run",
                                headers={"Authorization": f"Bearer {key}"}) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "181"
    assert (await rest.repo.load_search(search.id)).next_run_at > rest.clock()  # type: ignore[union-attr]
    rest.clock.now += timedelta(minutes=4)
    status, ran = await rest.call("POST", f"/api/v1/searches/{search.id}/run", key)
    assert status == 200 and ran["next_run_at"] == rest.clock().isoformat().replace("+00:00", "Z")
    assert (await rest.repo.load_search(search.id)).next_run_at == rest.clock()  # type: ignore[union-attr]


async def test_a_searchs_alerts_and_a_listings_price_history(rest: Rest) -> None:
    alice, bob, admin = await rest.key("alice", "read"), await rest.key("bob", "read"), await rest.key("ops", "admin")
    search = await save_search(rest.repo, "alice")
    start = rest.clock()
    await scan(rest.repo, search, [], now=start)  # the baseline
    await scan(rest.repo, search, [listing(1, "100.00")], now=start + timedelta(minutes=10))
    await scan(rest.repo, search, [listing(1, "89.50")], now=start + timedelta(minutes=20))
    status, alerts = await rest.call("GET", f"/api/v1/searches/{search.id}/alerts", alice)
    assert status == 200 and len(alerts) == 1
    alert = alerts[0]
    # The alert shows the listing as it stands now: its price dropped since.
    assert (alert["title"], alert["price"], alert["currency"], alert["status"]) == ("RTX 3080 card 1", "89.5", "USD",
                                                                                    "pending")
    status, found = await rest.call("GET", f"/api/v1/listings/{alert['listing_id']}", alice)
    assert status == 200 and found["external_id"] == "1001" and found["price"] == "89.5"
    assert [(p["price"], p["currency"]) for p in found["price_history"]] == [("100", "USD"), ("89.5", "USD")]
    # Which listings are stored tells what others look for: bob's searches never matched it.
    assert (await rest.call("GET", f"/api/v1/listings/{alert['listing_id']}", bob))[0] == 404
    assert (await rest.call("GET", f"/api/v1/listings/{alert['listing_id']}", admin))[0] == 200
    assert (await rest.call("GET", "/api/v1/listings/999999", admin))[0] == 404
    assert (await rest.call("GET", f"/api/v1/searches/{search.id}/alerts?limit=101", alice))[0] == 422
