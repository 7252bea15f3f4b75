"""`history`, shared by every front end: a listing's price history, or the prices a search's comparables ask, as a
line of text and a chart. The chart is drawn by bot.charts in a worker thread, so the event loop never waits on it."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bot import charts
from bot.commands import Actor, Commands
from scout.deals import comparable_words
from scout.errors import InputError, NotFoundError
from scout.sparkline import format_price, price_spread, price_trend

# "ebay:1234567890" names a listing by its marketplace id (as in its address); "12" or "#12" a search.
_LISTING = re.compile(r"^([a-z_]{2,32}):([A-Za-z0-9_.\-]{1,128})$")
_SEARCH = re.compile(r"^#?(\d{1,10})$")
USAGE = "Name a search by its number (12) or a listing by marketplace and id (ebay:1234567890)."


@dataclass(frozen=True, slots=True)
class History:
    """What a history shows: a listing's prices over time, or the spread of a search's comparables."""

    title: str
    currency: str
    text: str  # a few lines for any chat, even without the picture
    points: list[tuple[datetime, Decimal]] = field(default_factory=list)  # a listing's prices, oldest first
    prices: list[Decimal] = field(default_factory=list)  # a search's comparables
    median: Decimal | None = None

    async def chart(self) -> bytes:
        """The PNG of this history, drawn in a worker thread."""
        if self.points:
            return await charts.render(charts.price_history_png, self.points, title=self.title,
                                       currency=self.currency)
        return await charts.render(charts.price_distribution_png, self.prices, title=self.title,
                                   currency=self.currency, median=self.median)


async def load_history(commands: Commands, actor: Actor, target: str, *, scope: str | None = None) -> History:
    """The history `target` names: a search of the actor's, or a listing one of the actor's searches matched."""
    text = " ".join(str(target).split())
    if not text:
        raise InputError(USAGE, field="target")
    if match := _SEARCH.match(text):
        return await _search_history(commands, actor, match.group(1), scope)
    if match := _LISTING.match(text):
        return await _listing_history(commands, actor, match.group(1), match.group(2))
    raise InputError(f"{text[:40]!r} names no search or listing. {USAGE}", field="target")


async def _listing_history(commands: Commands, actor: Actor, marketplace: str, external_id: str) -> History:
    missing = NotFoundError(f"None of your searches found {marketplace}:{external_id}.")
    listing_id = await commands.repo.find_listing_id(marketplace, external_id)
    if listing_id is None:
        raise missing
    stored = await commands.repo.load_listing(listing_id, matched_for=None if actor.is_operator else actor.id)
    if stored is None:
        raise missing
    currency = stored.listing.price.currency if stored.listing.price else None
    points = [(p.observed_at, p.price) for p in stored.history
              if p.price is not None and p.currency == currency]
    if currency is None or not points:
        raise NotFoundError(f"{marketplace}:{external_id} has shown no price yet.")
    title = " ".join(stored.listing.title.split())
    lines = [title[:200], price_trend([price for _, price in points], currency),
             f"first seen {stored.first_seen_at:%Y-%m-%d}, last seen {stored.last_seen_at:%Y-%m-%d}"]
    return History(title, currency, "\n".join(lines), points=points)


async def _search_history(commands: Commands, actor: Actor, number: str, scope: str | None) -> History:
    search = await commands.show_search(actor, number, scope=scope)
    totals = await commands.repo.load_comparable_totals(
        comparable_words(search.query), search.spec.marketplaces, exclude=search.spec.exclude, now=commands.now())
    if not totals:
        raise NotFoundError(f"Search #{search.id} has seen no priced listings in the last "
                            f"{commands.repo.deal_policy.window_days} days yet.")
    # The currency most of them ask in: the others cannot be compared without exchange rates.
    currency, _ = Counter({code: len(prices) for code, prices in totals.items()}).most_common(1)[0]
    prices = sorted(totals[currency])
    median = statistics.median(prices)
    days = commands.repo.deal_policy.window_days
    lines = [f"#{search.id} \u201c{search.query}\u201d: {len(prices)} comparable listings, last {days} days",
             f"{price_spread(prices, currency)}, median {format_price(median)}"]
    return History(f"#{search.id} {search.query}", currency, "\n".join(lines), prices=prices, median=median)

