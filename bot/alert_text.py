"""The words every front end puts on a deal alert beyond the listing itself: why it is told (a price drop, a relist),
the deal verdict, the price trend, and the one-line compact layout. Pure and unescaped: each renderer escapes and
cuts them for its platform."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from scout.models import Alert, AlertKind, Listing, Money

# The verdicts as alerts name them, with a mark that reads at a glance in a busy channel.
VERDICT_MARKS = {"great": "\U0001f525", "good": "\u2705", "fair": "\u2696\ufe0f", "above typical": "\U0001f4c8"}
VERDICT_WORDS = {"great": "great deal", "good": "good deal", "fair": "fair price", "above typical": "above typical"}


def price_of(listing: Listing) -> str:
    if listing.price is not None:
        return str(listing.price)
    return " ".join((listing.price_text or "").split()) or "no price shown"


def _change(old: Money, new: Money | None) -> str:
    if new is None or new.currency != old.currency or not old.amount:
        return ""
    share = (new.amount - old.amount) * 100 / old.amount
    return f" ({share:+.0f}%)"


def headline(alert: Alert) -> str | None:
    """A first line for what is not plain news: "Price drop: 120.00 EUR → 89.00 EUR (-26%)", "Back on sale"."""
    facts = alert.facts
    if alert.kind is AlertKind.DROP and facts.old_price is not None:
        change = _change(facts.old_price, alert.listing.price)
        return f"Price drop: {facts.old_price} \u2192 {price_of(alert.listing)}{change}"
    if alert.kind is AlertKind.DROP:
        return f"Price drop: now {price_of(alert.listing)}"
    if alert.kind is AlertKind.RELIST:
        parts = ["Back on sale"]
        if facts.first_seen_at is not None:
            parts.append(f"first seen {_day(facts.first_seen_at)}")
        if facts.old_price is not None:
            parts.append(f"was {facts.old_price}")
        return ", ".join(parts)
    return None


def deal_line(alert: Alert) -> str | None:
    """"🔥 great deal: 31% below the median of 41 similar listings", where the scan could judge the price."""
    facts = alert.facts
    if not facts.deal:
        return None
    verdict = facts.verdict or ""
    words = VERDICT_WORDS.get(verdict)
    mark = VERDICT_MARKS.get(verdict, "")
    return f"{mark} {words}: {facts.deal}".strip() if words else facts.deal


def trend_line(alert: Alert) -> str | None:
    return alert.facts.trend or None


def also_lines(alert: Alert, names: Mapping[str, str] | None = None) -> list[str]:
    """"Also on Kleinanzeigen: <link>", for the same item by the same seller elsewhere."""
    return [f"Also on {(names or {}).get(marketplace, marketplace)}: {url}" for marketplace, url in alert.facts.also]


def extra_lines(alert: Alert, names: Mapping[str, str] | None = None) -> list[str]:
    """The lines a full alert shows under its title, in order: headline, deal verdict, trend, other links."""
    lines = [line for line in (headline(alert), deal_line(alert), trend_line(alert)) if line]
    return lines + also_lines(alert, names)


def compact_line(alert: Alert, names: Mapping[str, str] | None = None) -> str:
    """The whole alert in one line of text: "[eBay] Title · 89.00 EUR · great deal · 31% below ... · <url>"."""
    listing = alert.listing
    market = (names or {}).get(listing.marketplace, listing.marketplace)
    parts = [f"[{market}] {' '.join(listing.title.split()) or '(untitled)'}", price_of(listing)]
    if alert.kind is AlertKind.DROP and alert.facts.old_price is not None:
        parts[1] = f"{alert.facts.old_price} \u2192 {parts[1]}"
    elif alert.kind is AlertKind.RELIST:
        parts.append("back on sale")
    if alert.facts.verdict in VERDICT_WORDS:
        parts.append(VERDICT_WORDS[alert.facts.verdict])
    return " \u00b7 ".join(parts)


def _day(moment: datetime) -> str:
    return f"{moment:%d %b %Y}"
