"""Describing a search for people (the platform-neutral text the CLI, the bots and the API show), and reading the
search a user names.

Light on purpose: `dealscout search list` and `search show` describe searches without loading the commands, the
storage layer or any marketplace adapter. A marketplace is named by its adapter, or by its key -> name entry
(scout.marketplace_names) where no adapter is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from scout.errors import InputError, NotFoundError
from scout.models import DEFAULT_PRICE_DROP_SHARE, Destination, SavedSearch, SearchSpec, SearchStatus, SponsoredRule

# searches.id is an INTEGER: a larger number names no search, and is not asked of the database.
SEARCH_ID_LIMIT = 2**31
# What a marketplace an operator paused without a reason is shown with.
NO_PAUSE_REASON = "no reason given"
# A search's recent deals are a screenful, not its history.
RECENT_DEALS_MAX = 50


class Named(Protocol):
    """An adapter, as far as describing needs one."""

    @property
    def name(self) -> str: ...


# The marketplaces a description names, by key: their adapters, or their display names.
Marketplaces = Mapping[str, Named] | Mapping[str, str]


def pause_reasons(paused: Mapping[str, str | None]) -> dict[str, str]:
    """Paused marketplaces (key -> the reason an operator gave, or None) as a description names them."""
    return {key: reason or NO_PAUSE_REASON for key, reason in paused.items()}


def read_search_number(search_id: int | str) -> int:
    """The number of a search as a user gave it ('12', '#12'); InputError when it is not one."""
    try:
        return int(str(search_id).strip().lstrip("#"))
    except ValueError:
        raise InputError(f"{str(search_id)[:20]!r} is not a search number.", field="search_id") from None


def recent_deals_limit(asked: int) -> int:
    """How many of a search's recent deals to show when `asked` for that many: at least one, at most a screenful."""
    return max(1, min(asked, RECENT_DEALS_MAX))


def search_not_found(number: int) -> NotFoundError:
    """The error for a search that does not exist or is not the caller's: the two read the same, so ids of other
    people's searches are not revealed."""
    return NotFoundError(f"You have no search #{number}.")


def _market_name(key: str, adapters: Marketplaces | None) -> str:
    found = adapters.get(key) if adapters else None
    if found is None:
        return key
    return found if isinstance(found, str) else found.name


def format_amount(amount: Decimal) -> str:
    """A price bound as a person wrote it: 100, 499.99 (the database keeps four places: 100.0000)."""
    return f"{amount.normalize():f}"


def describe_search(search: SavedSearch, adapters: Marketplaces | None = None,
                    paused_marketplaces: Mapping[str, str] | None = None, *, now: datetime | None = None) -> str:
    """A one-paragraph, platform-neutral description of a search, as it stands at `now` (a snooze may be over).

    `paused_marketplaces` (key -> reason, from Commands.paused_marketplaces) adds why a marketplace it uses waits.
    """
    spec = search.spec
    names = [_market_name(m, adapters) for m in spec.marketplaces]
    parts = [f"#{search.id} \u201c{spec.query}\u201d on {', '.join(names)}, every {spec.check_interval_minutes} min"]
    if spec.exclude:
        parts.append("excluding " + ", ".join(spec.exclude))
    if spec.min_price is not None or spec.max_price is not None:
        low = format_amount(spec.min_price) if spec.min_price is not None else "0"
        high = format_amount(spec.max_price) if spec.max_price is not None else "any"
        parts.append(f"price {low}\u2013{high}{' ' + spec.currency if spec.currency else ''}")
    if spec.location:
        parts.append(f"near {spec.location}" + (f" ({spec.radius_km} km)" if spec.radius_km else ""))
    if spec.sponsored is SponsoredRule.EXCLUDE:
        parts.append("no sponsored listings")
    parts.extend(describe_deal_options(spec))
    parts.append(describe_state(search, now))
    for key in spec.marketplaces:
        if paused_marketplaces and key in paused_marketplaces:
            parts.append(f"{_market_name(key, adapters)} is paused by the operators: {paused_marketplaces[key]}")
    return "; ".join(parts)


# What a user reads for the statuses of a marketplace's last fetch that found nothing to count.
OUTCOME_WORDS = {"empty": "no listings", "blocked": "blocked", "failed": "failed"}
# Errors come from marketplaces and the network; a line of one is enough to say why.
MAX_OUTCOME_ERROR = 200


def describe_ago(moment: datetime, now: datetime) -> str:
    """'just now', '5 min ago', '3 h ago', '2 days ago': readable in any time zone."""
    minutes = int((now - moment).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago" if minutes < 48 * 60 else f"{minutes // (24 * 60)} days ago"


def describe_outcomes(search: SavedSearch, adapters: Marketplaces | None = None, *,
                      now: datetime) -> list[str]:
    """One line per marketplace of the search, platform-neutral: how its last fetch went (listings, no listings,
    blocked, failed), when, and why it was blocked or failed."""
    lines = []
    for key in search.spec.marketplaces:
        name = _market_name(key, adapters)
        outcome = search.last_outcomes.get(key)
        if outcome is None:
            lines.append(f"{name}: not checked yet")
            continue
        if outcome.status in ("success", "partial"):  # partial: its error says how many rows were unreadable
            what = f"{outcome.listings} listing{'' if outcome.listings == 1 else 's'}"
        else:
            what = OUTCOME_WORDS.get(outcome.status, outcome.status)
        why = " ".join((outcome.error or "").split())
        if len(why) > MAX_OUTCOME_ERROR:
            why = why[: MAX_OUTCOME_ERROR - 1] + "\u2026"
        lines.append(f"{name}: {what}, {describe_ago(outcome.at, now)}" + (f" ({why})" if why else ""))
    return lines


def describe_deal_options(spec: SearchSpec) -> list[str]:
    """The deal options a search differs from the defaults in, as parts of its description."""
    parts = []
    if spec.min_deal:
        parts.append(f"{spec.min_deal} deals only")
    if spec.price_drop_share is None:
        parts.append("no price-drop alerts")
    elif spec.price_drop_share != DEFAULT_PRICE_DROP_SHARE:
        parts.append(f"price drops of {(spec.price_drop_share * 100).normalize():f}% or more")
    if spec.exclude_sellers:
        parts.append("not from " + ", ".join(spec.exclude_sellers))
    if spec.min_seller_rating is not None:
        parts.append(f"sellers rated {spec.min_seller_rating.normalize():f}% or better")
    return parts


def describe_state(search: SavedSearch, now: datetime | None = None) -> str:
    """'active', snoozed (until a moment still to come), or paused and why. Every pause through the service records
    a reason; a search paused without one was paused in the database itself (the runbook's SQL), by an operator."""
    if search.status is SearchStatus.ACTIVE:
        until = search.snoozed_until
        if until is not None and until > (now or datetime.now(UTC)):
            return f"active, snoozed until {until:%Y-%m-%d %H:%M} UTC"
        return "active"
    return f"paused ({search.paused_reason or 'by an operator, no reason given'})"


def describe_destination(destination: Destination) -> str:
    """A destination as it may be shown or logged: an Apprise URL with its credentials and tokens hidden."""
    if destination.platform == "apprise":
        # Imported here: checking Apprise URLs loads the network guard, which no other destination needs.
        from bot.apprise.urls import redact_apprise_url

        return f"apprise:{redact_apprise_url(destination.target)}"
    return str(destination)
