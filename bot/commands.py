"""Platform-neutral commands on saved searches: the one place input is validated, shared by the CLI and the bots."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.apprise.urls import check_apprise_url
from bot.buttons import existed_by
from bot.deal_options import (
    read_drop_share,
    read_duration,
    read_layout,
    read_min_deal,
    read_quiet_hours,
    read_seller_rating,
    read_sellers,
)
from bot.describe import (
    SEARCH_ID_LIMIT,
    describe_search,
    pause_reasons,
    read_search_number,
    recent_deals_limit,
    search_not_found,
)
from scout.errors import InputError
from scout.models import (
    Destination,
    Listing,
    SavedSearch,
    SearchSpec,
    SearchStatus,
    SponsoredRule,
    StoredAlert,
    UnpricedRule,
)
from scrapers.base import Adapter, SearchQuery
from scrapers.search_urls import read_search_url
from storage.repo import DestinationSettings, Repository

# searches.query is VARCHAR(200); a longer query is a paste accident, not a search.
MAX_QUERY_LENGTH = 200
MAX_EXCLUDED_WORDS = 20
MAX_WORD_LENGTH = 50
# A location is a place name, a site name or, for feeds, a URL; searches.location is VARCHAR(500).
MAX_LOCATION_LENGTH = 500
# A week: a search checked less often than that is forgotten, not watched.
MAX_INTERVAL_MINUTES = 7 * 24 * 60
# Numeric(18, 4) holds 14 integer digits; a price this large is a typo.
MAX_PRICE = Decimal("1000000000")
MAX_RADIUS_KM = 500
MAX_SEARCHES_PER_OWNER = 100
# searches.owner, .target and .scope, alert_outbox.target and audit_log.actor are VARCHAR(128). PostgreSQL refuses a
# longer value where SQLite keeps it, so validation refuses it first, on both.
MAX_KEY_LENGTH = 128
# paused_reason and marketplace_state.reason are VARCHAR(300): a reason, with room for who gave it.
MAX_REASON_LENGTH = 200
PLATFORMS = ("console", "discord", "telegram", "apprise")
# Alerts held while a chat refused us that are older than this when it is resumed are summarised, not sent.
HELD_MAX_AGE = timedelta(hours=6)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A letter or a digit: `\w` alone would let "**_~~" through as a query, and it matches no listing.
_SEARCHABLE = re.compile(r"[^\W_]")
# An HTML tag (<b>, </b>, <script>, <a href=...>, <br/>): pasted markup, not the words of a listing.
_MARKUP_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")


def _check_unicode(value: str, *, field: str) -> None:
    """Bytes a terminal could not decode reach Python as lone surrogates, which neither database can store."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"The {field} holds bytes that are not UTF-8 text.", field=field) from None


def check_key(value: str, *, field: str) -> str:
    """An id stored as it is (an owner, a destination, a scope): plain text that fits its column."""
    _check_unicode(value, field=field)
    # PostgreSQL refuses NUL in text where SQLite stores it; the other control characters only make trouble later.
    if _CONTROL.search(value):
        raise InputError(f"The {field} contains control characters.", field=field)
    if len(value) > MAX_KEY_LENGTH:
        raise InputError(f"The {field} is {len(value)} characters long; the limit is {MAX_KEY_LENGTH}.", field=field)
    return value


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking, as the front end established it.

    `is_admin`: may manage everyone's searches in this scope (a Discord server manager, a Telegram group admin).
    `is_operator`: may run the service's admin commands (pause a marketplace...); configured per platform.
    """

    id: str
    is_admin: bool = False
    is_operator: bool = False

    def __post_init__(self) -> None:
        # The id is stored as a search's owner and in the audit log.
        check_key(self.id, field="user id")


def clean_text(value: str, *, field: str, limit: int) -> str:
    """Text a person typed, its whitespace collapsed; refused when it holds control characters or is too long."""
    _check_unicode(value, field=field)
    text = " ".join(value.split())
    if _CONTROL.search(value.replace("\n", " ").replace("\t", " ")):
        raise InputError(f"The {field} contains control characters.", field=field)
    if len(text) > limit:
        raise InputError(f"The {field} is {len(text)} characters long; the limit is {limit}.", field=field)
    return text


def looks_like_markup(text: str) -> bool:
    """Whether the text holds an HTML tag such as <b> or </script>."""
    return _MARKUP_TAG.search(text) is not None


def pick_default_marketplaces(adapters: Mapping[str, Adapter], configured: Iterable[str]) -> tuple[str, ...]:
    """Where a search that names no marketplace looks: the configured ones this service has, else every one."""
    return tuple(m for m in configured if m in adapters) or tuple(adapters)


def parse_price(value: str | Decimal | int | float | None, *, field: str) -> Decimal | None:
    """A price bound from user input: a non-negative decimal with at most two places, or None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip().replace(",", "").lstrip("$€£"))
    except InvalidOperation:
        raise InputError(f"The {field} {str(value)[:30]!r} is not a number.", field=field) from None
    if not amount.is_finite():
        raise InputError(f"The {field} must be a number.", field=field)
    if amount < 0:
        raise InputError(f"The {field} cannot be negative.", field=field)
    if amount > MAX_PRICE:
        raise InputError(f"The {field} is too large (at most {MAX_PRICE:,}).", field=field)
    if amount != amount.quantize(Decimal("0.01")):
        raise InputError(f"The {field} has more than two decimal places.", field=field)
    return amount


def build_spec(
    adapters: Mapping[str, Adapter],
    *,
    query: str,
    marketplaces: Iterable[str] | str | None = None,
    interval_minutes: int | str | None = None,
    exclude: Iterable[str] | str | None = None,
    min_price: Any = None,
    max_price: Any = None,
    currency: str | None = None,
    location: str | None = None,
    radius_km: int | str | None = None,
    unpriced: str | UnpricedRule | None = None,
    sponsored: str | SponsoredRule | None = None,
    min_deal: str | None = None,
    price_drop: str | Decimal | None = None,
    exclude_sellers: Iterable[str] | str | None = None,
    min_seller_rating: str | Decimal | None = None,
    default_unpriced: UnpricedRule = UnpricedRule.INCLUDE,
    default_marketplaces: Iterable[str] = (),
) -> SearchSpec:
    """Validate a search as a user typed it; raises InputError naming the first thing wrong."""
    text = clean_text(query or "", field="query", limit=MAX_QUERY_LENGTH)
    if looks_like_markup(text):
        raise InputError("The query looks like HTML: send just the words to search for, without tags such as <b>.",
                         field="query")
    if not _SEARCHABLE.search(text):
        raise InputError("The query needs at least one word to search for.", field="query")

    if isinstance(marketplaces, str):
        marketplaces = marketplaces.replace(",", " ").split()
    chosen = tuple(dict.fromkeys(m.strip().lower() for m in (marketplaces or ()) if m.strip()))
    if not chosen:
        chosen = pick_default_marketplaces(adapters, default_marketplaces)
    unknown = [m for m in chosen if m not in adapters]
    if unknown:
        raise InputError(
            f"Unknown marketplace {unknown[0][:40]!r}. Choose from: {', '.join(sorted(adapters))}.",
            field="marketplaces",
        )

    floor = max(adapters[m].min_interval_minutes for m in chosen)
    if interval_minutes is None or (isinstance(interval_minutes, str) and not interval_minutes.strip()):
        interval = floor
    else:
        try:
            interval = int(str(interval_minutes).strip().removesuffix("m"))
        except ValueError:
            raise InputError("The check interval must be a whole number of minutes.", field="interval") from None
    if interval < floor:
        slowest = max(chosen, key=lambda m: adapters[m].min_interval_minutes)
        raise InputError(
            f"The check interval must be at least {floor} minutes for {adapters[slowest].name}.", field="interval"
        )
    if interval > MAX_INTERVAL_MINUTES:
        raise InputError(f"The check interval can be at most {MAX_INTERVAL_MINUTES} minutes (a week).",
                         field="interval")

    if isinstance(exclude, str):
        exclude = exclude.replace(",", " ").split()
    words = tuple(dict.fromkeys(w.strip().lstrip("-").lower() for w in (exclude or ()) if w.strip().lstrip("-")))
    if len(words) > MAX_EXCLUDED_WORDS:
        raise InputError(f"At most {MAX_EXCLUDED_WORDS} excluded words.", field="exclude")
    for word in words:
        clean_text(word, field="excluded word", limit=MAX_WORD_LENGTH)

    low = parse_price(min_price, field="minimum price")
    high = parse_price(max_price, field="maximum price")
    if low is not None and high is not None and low > high:
        raise InputError(f"The minimum price ({low}) is above the maximum price ({high}).", field="min_price")

    code = currency.strip().upper() if currency and currency.strip() else None
    if code is not None and not _CURRENCY.match(code):
        raise InputError(f"{currency[:10]!r} is not a currency code such as USD, EUR or GBP.", field="currency")

    place = clean_text(location, field="location", limit=MAX_LOCATION_LENGTH) if location else None
    if place and not any(adapters[m].capabilities.location for m in chosen):
        raise InputError("None of the chosen marketplaces can search by location.", field="location")
    radius = None
    if radius_km not in (None, ""):
        try:
            radius = int(str(radius_km))
        except ValueError:
            raise InputError("The radius must be a whole number of kilometres.", field="radius") from None
        if not 1 <= radius <= MAX_RADIUS_KM:
            raise InputError(f"The radius must be from 1 to {MAX_RADIUS_KM} km.", field="radius")
        if not place:
            raise InputError("A radius needs a location.", field="radius")

    for key in chosen:
        # Each adapter refuses what it cannot search with an InputError: a location that is no Craigslist site,
        # a feed address that points inside our network, a feed search without a feed address.
        where = place if adapters[key].capabilities.location else None
        adapters[key].build_request(SearchQuery.build(text, where, radius if where else None))

    try:
        rule = UnpricedRule(unpriced.lower()) if isinstance(unpriced, str) else (unpriced or default_unpriced)
    except ValueError:
        raise InputError("Listings without a price can be 'include'd or 'exclude'd.", field="unpriced") from None
    try:
        paid = SponsoredRule(sponsored.lower()) if isinstance(sponsored, str) else (sponsored or SponsoredRule.INCLUDE)
    except ValueError:
        raise InputError("Sponsored listings can be 'include'd or 'exclude'd.", field="sponsored") from None

    return SearchSpec(query=text, marketplaces=chosen, check_interval_minutes=interval, exclude=words,
                      min_price=low, max_price=high, currency=code, location=place, radius_km=radius, unpriced=rule,
                      sponsored=paid, min_deal=read_min_deal(min_deal), price_drop_share=read_drop_share(price_drop),
                      exclude_sellers=read_sellers(exclude_sellers),
                      min_seller_rating=read_seller_rating(min_seller_rating))


def render_held_summary(count: int, newest: Sequence[Listing]) -> str:
    """The one message that stands for alerts that waited too long while their chat refused us."""
    lines = [f"{count} alerts while paused (too old to send one by one). The newest:"]
    for listing in newest:
        price = f" | {listing.price}" if listing.price else ""
        lines.append(f"- {listing.title[:120]}{price}\n  {listing.url}")
    return "\n".join(lines)


class Commands:
    """The actions users take on searches. Every front end calls these, so they all behave alike."""

    def __init__(
        self,
        repo: Repository,
        adapters: Mapping[str, Adapter],
        *,
        clock: Callable[[], datetime],
        default_unpriced: UnpricedRule = UnpricedRule.INCLUDE,
        default_marketplaces: Iterable[str] = (),
        held_max_age: timedelta = HELD_MAX_AGE,
    ) -> None:
        self.repo = repo
        self._default_marketplaces = tuple(default_marketplaces)
        self.adapters = adapters
        self._clock = clock
        self._default_unpriced = default_unpriced
        self._held_max_age = held_max_age

    def now(self) -> datetime:
        """The time by this service's clock, for front ends that time a conversation (tests set the clock)."""
        return self._clock()

    def describe(self, search: SavedSearch, paused_marketplaces: Mapping[str, str] | None = None) -> str:
        """describe_search with this service's marketplaces, as the search stands by this service's clock."""
        return describe_search(search, self.adapters, paused_marketplaces, now=self._clock())

    @property
    def default_marketplaces(self) -> tuple[str, ...]:
        """Where a search that names no marketplace looks."""
        return pick_default_marketplaces(self.adapters, self._default_marketplaces)

    def build_search_spec(self, **fields: Any) -> SearchSpec:
        """Validate a search (or a draft of one) as add_search would, with this service's defaults."""
        return build_spec(self.adapters, default_unpriced=self._default_unpriced,
                          default_marketplaces=self._default_marketplaces, **fields)

    def usable_marketplaces(self, **fields: Any) -> list[str]:
        """The marketplaces that can run this search on their own: a feed, say, cannot without its address."""
        usable = []
        for key in self.adapters:
            try:
                self.build_search_spec(**{**fields, "marketplaces": [key]})
            except InputError:
                continue
            usable.append(key)
        return usable

    async def add_search(
        self, actor: Actor, destination: Destination, *, scope: str | None = None, **fields: Any
    ) -> SavedSearch:
        spec = self.build_search_spec(**fields)
        check_destination(destination)
        if scope is not None:
            check_key(scope, field="scope")
        mine = await self.repo.load_searches(platform=destination.platform, scope=scope, owner=actor.id)
        if len(mine) >= MAX_SEARCHES_PER_OWNER:
            raise InputError(f"You already have {len(mine)} searches here; remove one first.")
        now = self._clock()
        # Due at once: the next scan tick takes it, sharing fetches with any other search that asks the same.
        return await self.repo.save_search(owner=actor.id, destination=destination, scope=scope, spec=spec, now=now,
                                           first_run_at=now)

    async def list_searches(self, actor: Actor, *, platform: str, scope: str | None,
                            everyone: bool = False) -> list[SavedSearch]:
        owner = None if everyone and actor.is_admin else actor.id
        return await self.repo.load_searches(platform=platform, scope=scope, owner=owner)

    async def paused_marketplaces(self) -> dict[str, str]:
        """Marketplaces an operator paused, with the reason, for search listings to explain themselves."""
        states = await self.repo.load_marketplace_states()
        return pause_reasons({key: state.reason for key, state in states.items() if state.paused})

    async def show_search(self, actor: Actor, search_id: int | str, *, scope: str | None = None,
                          existed_at: datetime | None = None) -> SavedSearch:
        return await self._mine(actor, search_id, scope, existed_at)

    async def pause_search(self, actor: Actor, search_id: int | str, *, scope: str | None = None,
                           reason: str | None = None, existed_at: datetime | None = None) -> SavedSearch:
        search = await self._mine(actor, search_id, scope, existed_at)
        why = clean_text(reason, field="reason", limit=MAX_REASON_LENGTH) if reason else f"paused by {actor.id}"
        if search.status is SearchStatus.PAUSED:
            return search  # pausing again keeps the first reason
        return await self.repo.update_search(search.id, now=self._clock(), status=SearchStatus.PAUSED,
                                             paused_reason=why)

    async def resume_search(self, actor: Actor, search_id: int | str, *, scope: str | None = None,
                            existed_at: datetime | None = None) -> SavedSearch:
        """Resume a search; alerts it held while its chat refused us go out (the old ones as one summary).

        An active search is left as it is: resuming it must not make it due now, inside its minimum interval.
        """
        search = await self._mine(actor, search_id, scope, existed_at)
        if search.status is SearchStatus.ACTIVE:
            return search
        now = self._clock()
        resumed = await self.repo.resume_search(search.id, now=now, keep_after=now - self._held_max_age,
                                                summarise=render_held_summary)
        if resumed is None:
            raise search_not_found(search.id)
        return resumed

    async def edit_search(self, actor: Actor, search_id: int | str, *, scope: str | None = None,
                          **changes: Any) -> SavedSearch:
        search = await self._mine(actor, search_id, scope)
        spec = search.spec
        current: dict[str, Any] = {
            "query": spec.query, "marketplaces": spec.marketplaces, "interval_minutes": spec.check_interval_minutes,
            "exclude": spec.exclude, "min_price": spec.min_price, "max_price": spec.max_price,
            "currency": spec.currency, "location": spec.location, "radius_km": spec.radius_km,
            "unpriced": spec.unpriced, "sponsored": spec.sponsored, "min_deal": spec.min_deal,
            "price_drop": spec.price_drop_share if spec.price_drop_share is not None else "off",
            "exclude_sellers": spec.exclude_sellers,
            "min_seller_rating": spec.min_seller_rating if spec.min_seller_rating is not None else "off",
        }
        unknown = set(changes) - set(current)
        if unknown:
            raise InputError(f"Cannot change {sorted(unknown)[0]!r}.")
        current.update({key: value for key, value in changes.items() if value is not None})
        new_spec = self.build_search_spec(**current)
        if new_spec == spec:
            return search
        return await self.repo.update_search(search.id, now=self._clock(), spec=new_spec)

    async def snooze_search(self, actor: Actor, search_id: int | str, duration: str, *,
                            scope: str | None = None) -> SavedSearch:
        """Announce none of the search's matches for `duration` ('2h', '1d'), or wake it ('off'). The search keeps
        scanning, so what it finds meanwhile is not announced later as new."""
        search = await self._mine(actor, search_id, scope)
        now = self._clock()
        text = str(duration).strip().lower()
        until = None if text in ("off", "wake", "now", "0") else now + read_duration(text)
        return await self.repo.snooze_search(search.id, until=until, now=now)

    async def destination_settings(self, destination: Destination) -> DestinationSettings:
        return await self.repo.load_destination_settings(check_destination(destination))

    async def set_quiet_hours(self, destination: Destination, window: str,
                              timezone: str | None = None) -> DestinationSettings:
        """Quiet hours for a chat ('22:00-07:00' in its time zone; 'off'): its alerts wait until the window ends."""
        current = await self.destination_settings(destination)
        return await self.repo.save_destination_settings(
            replace(current, quiet_hours=read_quiet_hours(window, timezone)))

    async def set_layout(self, destination: Destination, layout: str) -> DestinationSettings:
        """'full' (a card with picture and buttons) or 'compact' (one line of text) for a chat's alerts."""
        current = await self.destination_settings(destination)
        return await self.repo.save_destination_settings(replace(current, layout=read_layout(layout)))

    def search_from_url(self, url: str, **overrides: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The fields of a search pasted as a marketplace search address, with what the user typed besides taking
        precedence, and the address's filters a saved search cannot keep. Raises InputError when the address
        cannot be read or the search it asks for is refused (checked as add_search would)."""
        pasted = read_search_url(url)
        if pasted.marketplace not in self.adapters:
            raise InputError(f"{pasted.marketplace} is not enabled on this service.", field="url")
        fields: dict[str, Any] = {
            "query": pasted.query, "marketplaces": [pasted.marketplace], "min_price": pasted.min_price,
            "max_price": pasted.max_price, "currency": pasted.currency, "location": pasted.location,
            "radius_km": pasted.radius_km, "exclude": list(pasted.exclude) or None,
        }
        fields.update({key: value for key, value in overrides.items() if value is not None})
        self.build_search_spec(**fields)
        return fields, pasted.ignored

    async def remove_search(self, actor: Actor, search_id: int | str, *, scope: str | None = None,
                            existed_at: datetime | None = None) -> SavedSearch:
        search = await self._mine(actor, search_id, scope, existed_at)
        await self.repo.delete_search(search.id)
        return search

    async def recent_deals(self, actor: Actor, search_id: int | str, *, scope: str | None = None,
                           limit: int = 10) -> list[StoredAlert]:
        search = await self._mine(actor, search_id, scope)
        return await self.repo.load_recent_alerts(search.id, limit=recent_deals_limit(limit))

    async def _mine(self, actor: Actor, search_id: int | str, scope: str | None,
                    existed_at: datetime | None = None) -> SavedSearch:
        """The search the actor may act on. `existed_at` comes from a button: the search it was made for existed by
        then (see bot.buttons), so a newer search that was given the same id is not found."""
        number = read_search_number(search_id)
        search = await self.repo.load_search(number) if 0 < number < SEARCH_ID_LIMIT else None
        # "Not found" and "not yours" read the same, so ids of other people's searches are not revealed.
        if search is None or (scope is not None and search.scope != scope) or not existed_by(search, existed_at):
            raise search_not_found(number)
        if search.owner != actor.id and not actor.is_admin:
            raise search_not_found(number)
        return search


def parse_destination(text: str) -> Destination:
    """'console', 'console:<name>', 'discord:<channel id>', 'telegram:<chat id>' or 'apprise:<Apprise URL>'."""
    platform, _, target = text.strip().partition(":")
    platform = platform.lower()
    if platform == "console":
        target = target or "main"
    return check_destination(Destination(platform, target))


def check_destination(destination: Destination) -> Destination:
    """A destination this service can send to and store: a known platform and, on a chat platform, a numeric id;
    on Apprise, a URL of a service Apprise knows (see bot.apprise.urls)."""
    platform, target = destination.platform, destination.target
    if platform not in PLATFORMS:
        # Only the platform is repeated: a mistyped 'aprise:' would otherwise echo a URL's credentials.
        raise InputError(f"Unknown destination platform {platform[:20]!r}: use console, discord:<channel id>, "
                         f"telegram:<chat id> or apprise:<Apprise URL>.", field="destination")
    if platform == "apprise":
        check_apprise_url(target)
    elif platform != "console" and not re.fullmatch(r"-?\d{1,20}", target):
        raise InputError(f"A {platform} destination needs a numeric id, as in {platform}:123456789.",
                         field="destination")
    check_key(target, field="destination")
    return destination
