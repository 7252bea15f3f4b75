"""One item on several marketplaces by the same seller within a day is one alert with every link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from scout.deals import comparable_words
from scout.models import Alert, Destination, FetchOutcome, Listing, Money, SearchSpec
from storage.repo import Repository

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CHAT = Destination("telegram", "42")


def item(marketplace: str, external_id: str, *, seller: str | None = "retro_joe", price: str = "120",
         title: str = "Nintendo GameCube console boxed") -> Listing:
    return Listing(marketplace, external_id, title, f"https://{marketplace}.example/{external_id}",
                   price=Money(Decimal(price), "EUR"), seller=seller)


async def search(repo: Repository, marketplaces: tuple[str, ...]) -> int:
    spec = SearchSpec(query="gamecube", marketplaces=marketplaces, check_interval_minutes=10)
    saved = await repo.save_search(owner="u1", destination=CHAT, scope=None, spec=spec, now=NOW, first_run_at=NOW)
    return saved.id


async def save(repo: Repository, search_id: int, when: datetime, *listings: Listing) -> None:
    by_market: dict[str, list[Listing]] = {}
    for listing in listings:
        by_market.setdefault(listing.marketplace, []).append(listing)
    spec = (await repo.load_search(search_id))
    fetches = [FetchOutcome(marketplace, "gamecube", "success", 5, tuple(found), matches={search_id: tuple(found)},
                            carrying={comparable_words("gamecube"): tuple(found)})
               for marketplace, found in by_market.items()]
    await repo.save_scan(now=when, fetches=fetches, runs=[], searches={search_id: spec}, baseline_first_scan=False)


async def alerts(repo: Repository, when: datetime) -> list[Alert]:
    due = await repo.load_due_deliveries(now=when, limit=50, platforms=["telegram"])
    return [delivery for delivery in due if isinstance(delivery, Alert)]


async def test_twins_in_one_save_are_one_alert_with_both_links(repo: Repository) -> None:
    search_id = await search(repo, ("ebay", "kleinanzeigen"))
    await save(repo, search_id, NOW, item("ebay", "1"), item("kleinanzeigen", "k1"), item("ebay", "2", seller="bob"))
    due = await alerts(repo, NOW)
    assert sorted(alert.listing.external_id for alert in due) == ["1", "2"]
    [twin] = [alert for alert in due if alert.listing.external_id == "1"]
    assert twin.facts.also == (("kleinanzeigen", "https://kleinanzeigen.example/k1"),)


async def test_a_twin_found_later_joins_the_waiting_alert_and_is_not_told_again(repo: Repository) -> None:
    search_id = await search(repo, ("ebay", "kleinanzeigen"))
    await save(repo, search_id, NOW, item("ebay", "1"))
    await save(repo, search_id, NOW + timedelta(minutes=10), item("kleinanzeigen", "k1"))
    [alert] = await alerts(repo, NOW + timedelta(minutes=10))
    assert alert.listing.external_id == "1"
    assert alert.facts.also == (("kleinanzeigen", "https://kleinanzeigen.example/k1"),)
    await repo.record_sent([alert.outbox_id], now=NOW + timedelta(minutes=11))
    # Sent already: a third copy on another site is not news to the chat.
    await save(repo, search_id, NOW + timedelta(minutes=20), item("vinted", "v1"))
    assert await alerts(repo, NOW + timedelta(minutes=20)) == []


async def test_another_price_another_seller_or_a_day_later_are_other_items(repo: Repository) -> None:
    search_id = await search(repo, ("ebay", "kleinanzeigen"))
    await save(repo, search_id, NOW, item("ebay", "1"))
    await save(repo, search_id, NOW + timedelta(minutes=5), item("kleinanzeigen", "k1", price="110"),
               item("kleinanzeigen", "k2", seller="someone_else"), item("kleinanzeigen", "k3", seller=None))
    await save(repo, search_id, NOW + timedelta(days=1, minutes=1), item("kleinanzeigen", "k4"))
    due = await alerts(repo, NOW + timedelta(days=2))
    assert sorted(alert.listing.external_id for alert in due) == ["1", "k1", "k2", "k3", "k4"]
    assert all(alert.facts.also == () for alert in due)
