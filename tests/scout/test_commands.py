"""The shared command layer: validation of every field, ownership, and the life of a search."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bot.commands import Actor, Commands, build_spec, parse_destination, render_held_summary
from bot.describe import describe_outcomes, describe_search
from scout.errors import InputError, NotFoundError
from scout.models import Destination, MarketplaceOutcome, SavedSearch, SearchStatus, SponsoredRule, UnpricedRule
from scrapers.base import Request, SearchQuery
from storage.db import create_engine
from storage.repo import Repository
from tests.fakes.adapters import TableAdapter
from tests.scout.clock import ManualClock

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ADAPTERS = {"fakebay": TableAdapter(), "slowlist": TableAdapter(key="slowlist", name="SlowList",
                                                                min_interval_minutes=30)}
DEST = Destination("console", "main")


def test_a_full_spec() -> None:
    spec = build_spec(ADAPTERS, query="  RTX   3080 ", marketplaces="fakebay, slowlist", interval_minutes="45",
                      exclude="-broken, parts", min_price="100", max_price="499.99", currency="usd",
                      location="sfbay", radius_km="25", unpriced="exclude", sponsored="Exclude")
    assert spec.query == "RTX 3080"
    assert spec.marketplaces == ("fakebay", "slowlist")
    assert spec.check_interval_minutes == 45
    assert spec.exclude == ("broken", "parts")
    assert (spec.min_price, spec.max_price, spec.currency) == (Decimal("100"), Decimal("499.99"), "USD")
    assert (spec.location, spec.radius_km, spec.unpriced) == ("sfbay", 25, UnpricedRule.EXCLUDE)
    assert spec.sponsored is SponsoredRule.EXCLUDE


def test_defaults_are_all_marketplaces_at_their_slowest_minimum() -> None:
    spec = build_spec(ADAPTERS, query="lego")
    assert spec.marketplaces == ("fakebay", "slowlist")
    assert spec.check_interval_minutes == 30


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"query": ""}, "at least one word"),
        ({"query": "   "}, "at least one word"),
        ({"query": "!!!"}, "at least one word"),
        ({"query": "x" * 10_000}, "limit is 200"),
        ({"query": "a\x00b"}, "control characters"),
        ({"marketplaces": "nosuchmarket"}, "Unknown marketplace 'nosuchmarket'"),
        ({"min_price": "-5"}, "cannot be negative"),
        ({"max_price": "-0.01"}, "cannot be negative"),
        ({"min_price": "500", "max_price": "100"}, "above the maximum"),
        ({"max_price": "abc"}, "not a number"),
        ({"max_price": "NaN"}, "must be a number"),
        ({"max_price": "Infinity"}, "must be a number"),
        ({"max_price": "1e30"}, "too large"),
        ({"max_price": "1.005"}, "two decimal places"),
        ({"interval_minutes": "2", "marketplaces": "fakebay"}, "at least 5 minutes for FakeBay"),
        ({"interval_minutes": "10", "marketplaces": "slowlist"}, "at least 30 minutes for SlowList"),
        ({"interval_minutes": "often"}, "whole number of minutes"),
        ({"interval_minutes": "100000"}, "at most"),
        ({"currency": "dollars"}, "not a currency code"),
        ({"radius_km": "10"}, "needs a location"),
        ({"location": "sfbay", "radius_km": "-3"}, "from 1 to"),
        ({"exclude": " ".join(f"w{i}" for i in range(30))}, "At most 20"),
        ({"unpriced": "maybe"}, "include"),
        ({"sponsored": "sometimes"}, "Sponsored listings can be 'include'd or 'exclude'd."),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(fields: dict[str, str], message: str) -> None:
    values = {"query": "rtx 3080", **fields}
    with pytest.raises(InputError) as caught:
        build_spec(ADAPTERS, **values)
    assert message in str(caught.value)


@pytest.mark.parametrize("query", ["**_~~", "_", "__", "-_-", "\u2014_\u2014"])
def test_a_query_needs_a_letter_or_a_digit(query: str) -> None:
    """Pins: `**_~~` was saved as a search, because the check for a word matched the underscore."""
    with pytest.raises(InputError, match="at least one word"):
        build_spec(ADAPTERS, query=query)
    assert build_spec(ADAPTERS, query="rtx_3080").query == "rtx_3080"


@pytest.mark.parametrize("query", ["<b>rtx</b>", "<script>", "rtx 3080 </b>", "<a href='https://x.example'>rtx</a>",
                                   "lego<br/>"])
def test_an_html_looking_query_is_refused_as_a_query(query: str) -> None:
    """Pins: HTML was saved as the words to search for (and on Telegram, `<b` read as a maximum price)."""
    with pytest.raises(InputError) as caught:
        build_spec(ADAPTERS, query=query)
    assert str(caught.value) == (
        "The query looks like HTML: send just the words to search for, without tags such as <b>.")
    assert caught.value.field == "query"


@pytest.mark.parametrize("query", ["a < b", "usb-c > hdmi", "<3 lego", "lego <50>"])
def test_angle_brackets_that_are_no_tags_are_words(query: str) -> None:
    assert build_spec(ADAPTERS, query=query).query == query


def test_location_needs_a_marketplace_that_supports_it() -> None:
    adapters = {"nolocation": TableAdapter(key="nolocation", capabilities=TableAdapter.capabilities.__class__())}
    with pytest.raises(InputError, match="by location"):
        build_spec(adapters, query="rtx", location="sfbay")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("console", Destination("console", "main")), ("discord:123", Destination("discord", "123")),
     ("telegram:-100123", Destination("telegram", "-100123"))],
)
def test_destinations(text: str, expected: Destination) -> None:
    assert parse_destination(text) == expected


@pytest.mark.parametrize("text", ["slack:1", "discord:", "discord:general", "telegram:12ab"])
def test_bad_destinations(text: str) -> None:
    with pytest.raises(InputError):
        parse_destination(text)


@pytest.fixture
def commands(repo: Repository) -> Commands:
    return Commands(repo, ADAPTERS, clock=lambda: NOW)


async def test_life_of_a_search(commands: Commands) -> None:
    alice = Actor("alice")
    search = await commands.add_search(alice, DEST, query="rtx 3080", max_price="500")
    assert search.owner == "alice" and search.status is SearchStatus.ACTIVE
    assert [s.id for s in await commands.list_searches(alice, platform="console", scope=None)] == [search.id]
    paused = await commands.pause_search(alice, search.id, reason="on holiday")
    assert (paused.status, paused.paused_reason) == (SearchStatus.PAUSED, "on holiday")
    resumed = await commands.resume_search(alice, f"#{search.id}")
    assert resumed.status is SearchStatus.ACTIVE
    edited = await commands.edit_search(alice, search.id, max_price="450", exclude="broken")
    assert (edited.spec.max_price, edited.spec.exclude) == (Decimal("450"), ("broken",))
    await commands.remove_search(alice, search.id)
    with pytest.raises(NotFoundError):
        await commands.show_search(alice, search.id)


async def test_bad_edit_changes_nothing(commands: Commands) -> None:
    alice = Actor("alice")
    search = await commands.add_search(alice, DEST, query="rtx 3080", max_price="500")
    with pytest.raises(InputError):
        await commands.edit_search(alice, search.id, min_price="900")
    assert (await commands.show_search(alice, search.id)).spec == search.spec


async def test_other_peoples_searches_are_invisible_unless_admin(commands: Commands) -> None:
    search = await commands.add_search(Actor("alice"), DEST, query="rtx 3080")
    for action in (commands.show_search, commands.pause_search, commands.resume_search, commands.remove_search):
        with pytest.raises(NotFoundError, match=f"no search #{search.id}"):
            await action(Actor("mallory"), search.id)
    assert (await commands.show_search(Actor("mod", is_admin=True), search.id)).id == search.id
    assert await commands.list_searches(Actor("mallory"), platform="console", scope=None) == []


async def test_searches_in_another_scope_are_not_found(commands: Commands) -> None:
    search = await commands.add_search(Actor("alice"), DEST, scope="guild-1", query="rtx 3080")
    with pytest.raises(NotFoundError):
        await commands.show_search(Actor("alice"), search.id, scope="guild-2")


@pytest.mark.parametrize("search_id", ["abc", "-1", "0", "99999999999999"])
async def test_bad_search_ids(commands: Commands, search_id: str) -> None:
    with pytest.raises(InputError):
        await commands.show_search(Actor("alice"), search_id)


async def test_prices_read_back_as_written(commands: Commands) -> None:

    search = await commands.add_search(Actor("alice"), DEST, query="lego", min_price="100", max_price="499.99")
    loaded = await commands.show_search(Actor("alice"), search.id)
    assert "price 100\u2013499.99" in describe_search(loaded)


class NeedsPlaceAdapter(TableAdapter):
    """Like the feed adapter: it cannot search without a location."""

    def build_request(self, query: SearchQuery) -> Request:
        if not query.location:
            raise InputError(f"{self.name} needs a location.", field="location")
        return super().build_request(query)


async def test_one_validation_with_the_services_defaults_for_every_caller(repo: Repository) -> None:
    """The guided Telegram /add checks its drafts here; it used to call build_spec without the defaults, so the
    feed (which needs a location) refused every draft."""
    adapters = {**ADAPTERS, "needsplace": NeedsPlaceAdapter(key="needsplace", name="NeedsPlace")}
    commands = Commands(repo, adapters, clock=lambda: NOW, default_marketplaces=("fakebay", "nosuchmarket"))
    assert commands.default_marketplaces == ("fakebay",)
    assert commands.build_search_spec(query="lego").marketplaces == ("fakebay",)
    with pytest.raises(InputError, match="NeedsPlace needs a location"):
        build_spec(adapters, query="lego")  # no defaults: every marketplace, the one that needs a place too
    assert commands.usable_marketplaces(query="lego") == ["fakebay", "slowlist"]
    assert commands.usable_marketplaces(query="lego", interval_minutes="10") == ["fakebay"]
    assert commands.usable_marketplaces(query="lego", location="here") == ["fakebay", "slowlist", "needsplace"]
    assert commands.now() == NOW
    search = await commands.add_search(Actor("alice"), DEST, query="lego")
    assert search.spec.marketplaces == ("fakebay",)


async def test_resuming_an_active_search_keeps_its_next_run(repo: Repository) -> None:
    """Regression: resuming a search that was already active made it due at once, so /resume repeated was a way
    past its marketplaces' minimum interval."""
    clock = ManualClock(NOW)
    commands = Commands(repo, ADAPTERS, clock=clock)
    search = await commands.add_search(Actor("alice"), DEST, query="lego", marketplaces="slowlist")
    scanned = await repo.update_search(search.id, now=NOW, next_run_at=NOW + timedelta(minutes=30))
    clock.advance(minutes=1)
    resumed = await commands.resume_search(Actor("alice"), search.id)
    assert resumed == scanned
    # Storage keeps to it as well, for a resume that raced a scan's or another resume's change.
    assert await repo.resume_search(search.id, now=clock(), keep_after=NOW, summarise=render_held_summary) == scanned
    assert (await repo.load_search(search.id)) == scanned


async def test_pausing_a_paused_search_keeps_its_first_reason(commands: Commands, repo: Repository) -> None:
    """Regression: a second pause overwrote why the search was paused first (say, that its chat refused us)."""
    search = await commands.add_search(Actor("alice"), DEST, query="lego")
    await commands.pause_search(Actor("alice"), search.id, reason="on holiday")
    again = await commands.pause_search(Actor("mod", is_admin=True), search.id, reason="too many alerts")
    assert (again.status, again.paused_reason) == (SearchStatus.PAUSED, "on holiday")
    assert (await repo.load_search(search.id)).paused_reason == "on holiday"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="control characters"):
        await commands.pause_search(Actor("alice"), search.id, reason="bad\x00reason")


async def test_a_search_paused_by_the_runbooks_sql_is_shown_as_paused_by_an_operator(
        commands: Commands, repo: Repository, database_url: str) -> None:
    """Regression: a search paused in the database (the runbook's UPDATE leaves paused_reason NULL) was shown as
    "paused (by its owner)", who had done nothing."""
    search = await commands.add_search(Actor("alice"), DEST, query="lego")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE searches SET status = 'paused' WHERE status = 'active'"))
    finally:
        await engine.dispose()
    paused = await commands.show_search(Actor("alice"), search.id)
    text = describe_search(paused)
    assert "paused (by an operator, no reason given)" in text and "owner" not in text
    # The owner pausing it too keeps the operator's pause as it was.
    assert (await commands.pause_search(Actor("alice"), search.id)).paused_reason is None


LONG_FEED = "https://feeds.example.com/" + "a" * (500 - len("https://feeds.example.com/"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"to": "console:" + "x" * 200}, "The destination is 200 characters long; the limit is 128."),
        ({"to": "console:main\x00"}, "The destination contains control characters."),
        ({"scope": "s" * 129}, "The scope is 129 characters long; the limit is 128."),
        ({"location": LONG_FEED + "b"}, "The location is 501 characters long; the limit is 500."),
        ({"query": "lego \udcff"}, "The query holds bytes that are not UTF-8 text."),
        ({"exclude": "broken \udcff"}, "The excluded word holds bytes that are not UTF-8 text."),
    ],
)
async def test_what_postgresql_would_refuse_is_refused_first_on_both(commands: Commands, repo: Repository,
                                                                     fields: dict[str, str], message: str) -> None:
    """Regression: a 200-character console target (`--to console:...`, searches.target is VARCHAR(128)), a long
    scope or text a database cannot encode was saved on SQLite and failed on PostgreSQL with a database error."""
    given = {"to": "console", "scope": None, "query": "lego", **fields}
    with pytest.raises(InputError) as refused:
        await commands.add_search(Actor("alice"), parse_destination(given.pop("to")), scope=given.pop("scope"),
                                  **given)
    assert str(refused.value) == message
    assert await repo.load_searches() == []


async def test_values_at_the_columns_limits_are_kept_on_both(commands: Commands) -> None:
    """The limits are the columns' own: a value that just fits is saved and read back whole."""
    owner, target, scope = "o" * 128, "t" * 128, "s" * 128
    search = await commands.add_search(Actor(owner), parse_destination(f"console:{target}"), scope=scope,
                                       query="q" * 200, location=LONG_FEED, exclude=["w" * 50])
    loaded = await commands.show_search(Actor(owner), search.id, scope=scope)
    assert (loaded.owner, loaded.destination.target, loaded.scope) == (owner, target, scope)
    assert (loaded.spec.query, loaded.spec.location, loaded.spec.exclude) == ("q" * 200, LONG_FEED, ("w" * 50,))


def test_an_actor_whose_id_would_not_fit_is_refused() -> None:
    """Regression: an owner id longer than searches.owner (VARCHAR(128)) was saved on SQLite only."""
    with pytest.raises(InputError, match="The user id is 129 characters long; the limit is 128."):
        Actor("o" * 129)
    with pytest.raises(InputError, match="control characters"):
        Actor("cli\x00")


@pytest.mark.parametrize("text", ["discord:123\x00", "telegram:" + "1" * 21, "slack:1", "console:a\tb"])
def test_destinations_that_cannot_be_stored(text: str) -> None:
    with pytest.raises(InputError):
        parse_destination(text)


def test_the_last_outcome_per_marketplace_says_what_when_and_why() -> None:
    """The bots' show (and the CLI's) tell listings from no listings from blocked from failed, with when and why;
    before, a search that had been blocked for days looked like one that found nothing."""
    adapters = {**ADAPTERS, "thirdbay": TableAdapter(key="thirdbay", name="ThirdBay"),
                "fourthbay": TableAdapter(key="fourthbay", name="FourthBay")}
    spec = build_spec(adapters, query="lego", marketplaces="fakebay, slowlist, thirdbay, fourthbay")
    outcomes = {
        "fakebay": MarketplaceOutcome("success", NOW - timedelta(minutes=4), listings=12),
        "slowlist": MarketplaceOutcome("blocked", NOW - timedelta(hours=3), error="HTTP 403:\n  a captcha page"),
        "thirdbay": MarketplaceOutcome("failed", NOW - timedelta(days=2), error="timed out " * 40),
    }
    search = SavedSearch(id=1, owner="alice", destination=DEST, spec=spec, status=SearchStatus.ACTIVE,
                         created_at=NOW, next_run_at=NOW, last_outcomes=outcomes)
    lines = describe_outcomes(search, adapters, now=NOW)
    assert lines[:2] == ["FakeBay: 12 listings, 4 min ago", "SlowList: blocked, 3 h ago (HTTP 403: a captcha page)"]
    assert lines[2].startswith("ThirdBay: failed, 2 days ago (timed out timed out") and lines[2].endswith("\u2026)")
    assert len(lines[2]) < 250
    assert lines[3] == "FourthBay: not checked yet"
    found_one = replace(search, last_outcomes={"fakebay": MarketplaceOutcome("success", NOW, listings=1),
                                               "slowlist": MarketplaceOutcome("empty", NOW)})
    assert describe_outcomes(found_one, adapters, now=NOW)[:2] == ["FakeBay: 1 listing, just now",
                                                                   "SlowList: no listings, just now"]
