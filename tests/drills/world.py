"""The kill drill's world: the saved searches, the growing eBay page, and who got which listing, counted at the fakes.

Arrivals are counted where a user would see them: messages FakeDiscord created (a repeat it absorbed through the nonce
is not a message) and sends FakeBotApi accepted, each listing named by its `/itm/<id>` link, once per message (a digest
names several).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from scout.models import Destination
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.ebay_pages import ebay_results_page
from tests.fakes.telegram_api import FakeBotApi

QUERY = "drill"
GUILD_ID = 710000000000000001
LISTING_LINK = re.compile(r"/itm/(\d+)")
TELEGRAM_ALERT_METHODS = frozenset({"sendmessage", "sendphoto"})
FIRST_LISTING_ID = 300_000_000_001

Pair = tuple[Destination, str]  # a destination and a listing's external id: one alert


@dataclass(frozen=True)
class Item:
    id: int
    title: str
    price: Decimal


@dataclass(frozen=True)
class Watch:
    """One saved search and where it alerts; `wants` is its filter written out, so the ledger knows what to expect."""

    destination: Destination
    scope: str
    max_price: Decimal | None = None
    exclude: str | None = None

    def wants(self, item: Item) -> bool:
        words = item.title.lower().split()
        return (QUERY in words and (self.exclude is None or self.exclude not in words)
                and (self.max_price is None or item.price <= self.max_price))

    def search_fields(self) -> dict[str, str]:
        """The fields of bot.commands.Commands.add_search that make this search."""
        fields = {"query": QUERY, "marketplaces": "ebay"}
        if self.max_price is not None:
            fields["max_price"] = str(self.max_price)
        if self.exclude is not None:
            fields["exclude"] = self.exclude
        return fields


# Two destinations per platform, one of them filtering; private Telegram chats (positive ids), whose only limit is one
# message a second.
WATCHES = (
    Watch(Destination("discord", "710000000000000011"), scope=str(GUILD_ID)),
    Watch(Destination("discord", "710000000000000012"), scope=str(GUILD_ID), max_price=Decimal(80)),
    Watch(Destination("telegram", "4242001"), scope="4242001"),
    Watch(Destination("telegram", "4242002"), scope="4242002", exclude="broken"),
)

# Listings of a kind every search wants (at 80 or less), one that some searches filter out, and one no search wants.
_KINDS = ("Cordless drill kit", "Broken drill for parts", "Angle grinder")


class Catalogue:
    """The listings eBay shows for the query, newest first; each round lists some more."""

    def __init__(self, rng: random.Random) -> None:
        self.items: list[Item] = []
        self._rng = rng

    def grow(self, count: int, *, wanted_by_all: int = 1) -> None:
        """List `count` more: the first `wanted_by_all` match every search, the rest are of random kinds."""
        for n in range(count):
            number = FIRST_LISTING_ID + len(self.items)
            if n < wanted_by_all:
                kind, price = _KINDS[0], Decimal(self._rng.randint(5, 80))
            else:
                kind, price = self._rng.choice(_KINDS), Decimal(self._rng.randint(5, 120))
            self.items.append(Item(number, f"{kind} no {len(self.items)}", price))

    def page(self) -> str:
        return ebay_results_page((item.id, item.title, f"{item.price:.2f}") for item in reversed(self.items))

    def expected(self) -> set[Pair]:
        return {(watch.destination, str(item.id)) for item in self.items for watch in WATCHES if watch.wants(item)}


def listing_ids(text: str) -> set[str]:
    return set(LISTING_LINK.findall(text))


class Arrivals:
    """The alerts that reached each destination, read from the fakes' records as they grow (each message once)."""

    def __init__(self, discord: FakeDiscord, telegram: FakeBotApi) -> None:
        self._discord = discord
        self._telegram = telegram
        self._read = {"discord": 0, "telegram": 0}
        self.counts: Counter[Pair] = Counter()
        self.digests: Counter[str] = Counter()  # platform -> messages that held several alerts

    def update(self) -> Counter[Pair]:
        for posted in self._discord.messages[self._read["discord"]:]:
            self._add("discord", posted.channel_id, listing_ids(json.dumps(posted.payload.get("embeds") or [])))
        self._read["discord"] = len(self._discord.messages)
        for call in self._telegram.sent[self._read["telegram"]:]:
            if call.method.lower() in TELEGRAM_ALERT_METHODS:
                text = call.text + json.dumps(call.params.get("reply_markup") or {})
                self._add("telegram", str(call.chat_id), listing_ids(text))
        self._read["telegram"] = len(self._telegram.sent)
        return self.counts

    def all_arrived(self, expected: set[Pair], platform: str) -> bool:
        self.update()
        return all(self.counts[pair] for pair in expected if pair[0].platform == platform)

    def _add(self, platform: str, target: str, ids: set[str]) -> None:
        self.digests[platform] += len(ids) > 1
        self.counts.update((Destination(platform, target), listing) for listing in ids)


@dataclass
class Ledger:
    """Which alerts each kill left delivered but not recorded as sent: the repeats the kills may cause."""

    # Per alert: kills that found its latest delivery not yet recorded as sent (each allows one resend).
    at_risk: Counter[Pair] = field(default_factory=Counter)
    kills_with_risk: Counter[str] = field(default_factory=Counter)  # platform -> kills that left such alerts
    _seen_at_last_kill: Counter[Pair] = field(default_factory=Counter)

    def note_kill(self, delivered: Counter[Pair], unrecorded: Iterable[Pair]) -> None:
        """After a kill: `unrecorded` alerts the outbox does not have as sent. One counts as at risk when the life
        just killed delivered it (a delivery from an earlier life was counted at that life's kill)."""
        risky = {pair for pair in unrecorded if delivered[pair] > self._seen_at_last_kill[pair]}
        self.at_risk.update(risky)
        for platform in {destination.platform for destination, _ in risky}:
            self.kills_with_risk[platform] += 1
        self._seen_at_last_kill = Counter(delivered)

    def at_risk_alerts(self, platform: str) -> int:
        """How many resends of `platform` alerts the kills allowed, counted per alert and kill."""
        return sum(times for (destination, _), times in self.at_risk.items() if destination.platform == platform)


@dataclass(frozen=True)
class Tally:
    """The verdict: every figure the drill prints and asserts."""

    expected: int
    lost: list[Pair]
    unexpected: list[Pair]
    duplicated: dict[str, int]  # platform -> deliveries beyond the first
    beyond_risk: list[Pair]  # duplicated more often than kills left them at risk

    @classmethod
    def count(cls, expected: set[Pair], delivered: Counter[Pair], ledger: Ledger) -> Tally:
        duplicated: Counter[str] = Counter({"discord": 0, "telegram": 0})
        for (destination, _), times in delivered.items():
            duplicated[destination.platform] += max(0, times - 1)
        return cls(
            expected=len(expected),
            lost=sorted(expected - set(delivered), key=_pair_key),
            unexpected=sorted(set(delivered) - expected, key=_pair_key),
            duplicated=dict(duplicated),
            beyond_risk=sorted((pair for pair, times in delivered.items() if times - 1 > ledger.at_risk[pair]),
                               key=_pair_key),
        )


def _pair_key(pair: Pair) -> tuple[str, str, str]:
    return pair[0].platform, pair[0].target, pair[1]
