"""Validation of the deal options a search or a chat can set, shared by every front end: deals only, price-drop
alerts, seller filters, snoozing, quiet hours, the alert layout. Each reader returns a clean value or raises one
InputError that says what is wrong and what would be right."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from scout.deals import Verdict, parse_min_deal
from scout.errors import InputError
from scout.matching import fold
from scout.models import DEFAULT_PRICE_DROP_SHARE, Layout
from scout.quiet import QuietHours

MAX_EXCLUDED_SELLERS = 20
MAX_SELLER_LENGTH = 100  # marketplace user names are far shorter; listings.seller keeps 200
# Telling a drop of less than 1% is noise; a drop must be smaller than the whole price to be a drop.
MIN_DROP_SHARE = Decimal("0.01")
MAX_DROP_SHARE = Decimal("0.90")
# Snoozing for longer than a month is pausing: the search has a pause for that.
MAX_SNOOZE = timedelta(days=30)
_OFF = frozenset({"off", "no", "none", "false", "0"})
_DURATION = re.compile(r"^(\d{1,5})\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}
_CLOCK = re.compile(r"^([01]?\d|2[0-3])(?::?([0-5]\d))?$")


def read_min_deal(value: str | None) -> str | None:
    """'good' / 'great' / 'fair' (any case) -> the verdict kept on the search; '', 'any' or 'off': every match."""
    if value is None or not str(value).strip() or str(value).strip().lower() in (_OFF | {"any", "all"}):
        return None
    verdict = parse_min_deal(str(value))
    if verdict is Verdict.ABOVE:
        raise InputError("Deals only means 'good', 'great' or 'fair'.", field="min_deal")
    return verdict.value


def read_drop_share(value: str | Decimal | int | float | None) -> Decimal | None:
    """'10%', '15', '0.15' -> the share of a price a drop must reach; 'off' turns drop alerts off. None: 10%."""
    if value is None:
        return DEFAULT_PRICE_DROP_SHARE
    if isinstance(value, bool):
        return DEFAULT_PRICE_DROP_SHARE if value else None
    text = str(value).strip().lower()
    if text in _OFF:
        return None
    if text in ("on", "yes", "true", ""):
        return DEFAULT_PRICE_DROP_SHARE
    number = _percentage(text, what="price-drop share", example="10%, or 'off'", field="price_drop")
    share = number / 100 if text.endswith("%") or number >= 1 else number
    if not MIN_DROP_SHARE <= share <= MAX_DROP_SHARE:
        raise InputError(f"A price drop worth telling is from {MIN_DROP_SHARE * 100:.0f}% to "
                         f"{MAX_DROP_SHARE * 100:.0f}% of the price.", field="price_drop")
    return share.quantize(Decimal("0.0001"))


def _percentage(text: str, *, what: str, example: str, field: str) -> Decimal:
    """'15%' or '15' as a finite number (a percentage sign is allowed, not required)."""
    try:
        number = Decimal(text.removesuffix("%").strip())
    except InvalidOperation:
        raise InputError(f"The {what} {text[:20]!r} is not a percentage such as {example}.", field=field) from None
    if not number.is_finite():
        raise InputError(f"The {what} must be a percentage such as {example}.", field=field)
    return number


def read_sellers(value: Iterable[str] | str | None) -> tuple[str, ...]:
    """Seller names to leave out, comma-separated or a list; compared case- and accent-blind."""
    if value is None:
        return ()
    names = value.split(",") if isinstance(value, str) else list(value)
    cleaned = tuple(dict.fromkeys(" ".join(str(name).split()) for name in names if str(name).strip()))
    if len(cleaned) > MAX_EXCLUDED_SELLERS:
        raise InputError(f"At most {MAX_EXCLUDED_SELLERS} sellers can be left out.", field="exclude_sellers")
    for name in cleaned:
        if len(name) > MAX_SELLER_LENGTH:
            raise InputError(f"A seller name is at most {MAX_SELLER_LENGTH} characters.", field="exclude_sellers")
        if any(ord(char) < 32 or ord(char) == 127 for char in name):
            raise InputError("A seller name contains control characters.", field="exclude_sellers")
    return tuple(dict.fromkeys(fold(name) for name in cleaned))


def read_seller_rating(value: str | Decimal | int | float | None) -> Decimal | None:
    """'98', '98%', '99.5' -> the least share of positive feedback, in percent; '' or 'off': none."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().lower()
    if not text or text in _OFF:
        return None
    rating = _percentage(text, what="seller rating", example="98%", field="min_seller_rating")
    if not 0 < rating <= 100:
        raise InputError("The seller rating is a share of positive feedback from 1% to 100%.",
                         field="min_seller_rating")
    if rating != rating.quantize(Decimal("0.1")):
        raise InputError("The seller rating has at most one decimal place, as marketplaces show it (99.5%).",
                         field="min_seller_rating")
    return rating


def read_duration(value: str) -> timedelta:
    """'30m', '2h', '1d', '1w' (also '2 hours') -> a duration from 1 minute up to MAX_SNOOZE."""
    text = " ".join(str(value).lower().split())
    match = _DURATION.match(text)
    if not match:
        raise InputError(f"{text[:20]!r} is not a duration: write it as 30m, 2h, 1d or 1w.", field="duration")
    minutes = int(match.group(1)) * _UNIT_MINUTES[match.group(2)[0]]
    if not 1 <= minutes <= MAX_SNOOZE.total_seconds() // 60:
        raise InputError(f"Snooze for 1 minute up to {MAX_SNOOZE.days} days; to stop a search for longer, pause it.",
                         field="duration")
    return timedelta(minutes=minutes)


def _clock(text: str) -> int:
    match = _CLOCK.match(text.strip())
    if not match:
        raise InputError(f"{text.strip()[:10]!r} is not a time of day such as 22:00 or 7.", field="quiet_hours")
    return int(match.group(1)) * 60 + int(match.group(2) or 0)


def read_timezone(value: str | None) -> str:
    """An IANA time zone name ('Europe/Berlin', 'America/New_York'); 'UTC' when none is given."""
    name = (value or "UTC").strip()
    if name.upper() == "UTC":
        return "UTC"
    if len(name) > 64 or ".." in name or name.startswith("/"):
        raise InputError("That is not a time zone name such as Europe/Berlin.", field="timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = sorted(zone for zone in available_timezones() if zone.lower() == name.lower())
        if close:
            return close[0]
        raise InputError(f"Unknown time zone {name[:40]!r}: use a name such as Europe/Berlin or "
                         "America/New_York.", field="timezone") from None
    return name


def read_quiet_hours(window: str, timezone: str | None = None) -> QuietHours | None:
    """'22:00-07:00' (also '22-7') in `timezone` -> the window; 'off': no quiet hours."""
    text = window.strip().lower()
    if text in _OFF:
        return None
    start, dash, end = text.replace("\u2013", "-").partition("-")
    if not dash:
        raise InputError("Write quiet hours as a window such as 22:00-07:00, or 'off'.", field="quiet_hours")
    first, last = _clock(start), _clock(end)
    if first == last:
        raise InputError("Quiet hours need a start and an end that differ.", field="quiet_hours")
    return QuietHours(first, last, read_timezone(timezone))


def read_layout(value: str) -> Layout:
    text = str(value).strip().lower()
    try:
        return Layout(text)
    except ValueError:
        raise InputError("The alert layout is 'full' (a card with picture and buttons) or 'compact' (one line).",
                         field="layout") from None
