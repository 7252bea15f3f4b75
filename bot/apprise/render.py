"""Pure Apprise rendering: alerts, digests and notices as a plain-text title and body within the strictest common
service limits, scraped text cleaned and its mentions neutralised."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.alert_text import compact_line, extra_lines
from scout.models import Alert, Layout, Listing, Notice, NoticeKind

# Pushover's limits (title 250, message 1024 characters: pushover.net/api#limits) are the tightest of the common
# services; ntfy takes 4096 bytes, Slack, Matrix and webhooks far more. Apprise would split or cut past a service's
# own limit, so staying within these keeps one alert one message everywhere.
TITLE_LIMIT = 250
BODY_LIMIT = 1024
# A link longer than this is left out rather than cut: half a URL leads nowhere.
MAX_LINK = 600
ELLIPSIS = "\u2026"
ZERO_WIDTH_SPACE = "\u200b"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# @everyone, @here, @channel, @room and any @name: a zero-width space after the @ keeps it from pinging anyone.
_AT_MENTION = re.compile(r"@(?=\w)")
# Slack's <!channel>, <@U123>, <#C123> and Discord's <@123>, <@&role>, <#channel>.
_BRACKET_MENTION = re.compile(r"<(?=[@!#])")
_SAFE_URL = re.compile(r"^https?://[^\s<>\"]+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """What Apprise sends: plain text, which Apprise escapes itself for services that speak HTML or Markdown."""

    title: str
    body: str


def clean(text: str, *, keep_lines: bool = False) -> str:
    """Text from a marketplace made safe as plain text: no control or direction-override characters, whitespace
    collapsed (lines kept when asked), mentions neutralised."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n"))
    if keep_lines:
        text = "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()
    else:
        text = " ".join(text.split())
    text = _AT_MENTION.sub("@" + ZERO_WIDTH_SPACE, text)
    return _BRACKET_MENTION.sub("<" + ZERO_WIDTH_SPACE, text)


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + ELLIPSIS if limit > 0 else ""


def safe_link(url: str | None) -> str | None:
    return url if url and len(url) <= MAX_LINK and _SAFE_URL.match(url) else None


def _price(listing: Listing) -> str:
    if listing.price is not None:
        return str(listing.price)
    return clean(listing.price_text or "") or "no price shown"


def _market(listing: Listing, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(listing.marketplace, listing.marketplace)


def _fit(lines: list[str], tail: str, limit: int) -> str:
    """The lines, cut from the longest down until they and the tail (a link, never cut) fit in `limit`."""
    room = limit - len(tail)
    while sum(len(line) for line in lines) + len(lines) - 1 > room and lines:
        longest = max(range(len(lines)), key=lambda i: len(lines[i]))
        excess = sum(len(line) for line in lines) + len(lines) - 1 - room
        lines[longest] = cut(lines[longest], max(20, len(lines[longest]) - excess))
        if len(lines[longest]) <= 20 and sum(len(line) for line in lines) + len(lines) - 1 > room:
            lines.pop()  # nothing long is left to cut: drop the last line
    return "\n".join(lines) + tail


def render_alert(alert: Alert, *, marketplace_names: Mapping[str, str] | None = None) -> RenderedMessage:
    listing = alert.listing
    if alert.layout is Layout.COMPACT:
        link = safe_link(listing.url)
        return RenderedMessage("Deal Scout", _fit([clean(compact_line(alert, marketplace_names))],
                                                  f"\n{link}" if link else "", BODY_LIMIT))
    title = cut(clean(listing.title) or "(untitled)", TITLE_LIMIT)
    lines = [clean(line) for line in extra_lines(alert)]
    lines.append(f"{_price(listing)} \u00b7 {_market(listing, marketplace_names)}")
    if listing.location:
        lines.append(f"near {clean(listing.location)}")
    if listing.posted_at:
        lines.append(f"posted {listing.posted_at:%Y-%m-%d %H:%M} {listing.posted_at.tzname() or 'UTC'}")
    if alert.search_id is not None:
        lines.append(f"search #{alert.search_id} \u201c{clean(alert.search_query)}\u201d")
    link = safe_link(listing.url)
    return RenderedMessage(title, _fit(lines, f"\n{link}" if link else "", BODY_LIMIT))


def render_digest(alerts: Sequence[Alert], *, marketplace_names: Mapping[str, str] | None = None) -> RenderedMessage:
    """Several alerts in one message: one line and its link each, as many as fit, then how many more there were."""
    searches = {(alert.search_id, alert.search_query) for alert in alerts}
    title = f"{len(alerts)} new deals"
    if len(searches) == 1 and alerts[0].search_id is not None:
        title += f" for #{alerts[0].search_id} \u201c{clean(alerts[0].search_query)}\u201d"
    entries = []
    for number, alert in enumerate(alerts, 1):
        listing = alert.listing
        line = (f"{number}. {cut(clean(listing.title) or '(untitled)', 80)} \u2014 {_price(listing)} \u00b7 "
                f"{_market(listing, marketplace_names)}")
        link = safe_link(listing.url)
        entries.append(line + (f"\n{link}" if link else ""))
    body = ""
    for index, entry in enumerate(entries):
        more = f"\n{ELLIPSIS} and {len(entries) - index - 1} more" if index < len(entries) - 1 else ""
        candidate = f"{body}\n{entry}" if body else entry
        if len(candidate) + len(more) > BODY_LIMIT:
            body += f"\n{ELLIPSIS} and {len(entries) - index} more" if body else cut(entry, BODY_LIMIT)
            break
        body = candidate
    return RenderedMessage(cut(title, TITLE_LIMIT), body)


def render_notice(notice: Notice) -> RenderedMessage:
    """A notice ("12 alerts while paused") or an ops message; its text may quote listing titles, so it is cleaned."""
    title = "Deal Scout ops" if notice.kind is NoticeKind.OPS else "Deal Scout"
    return RenderedMessage(title, cut(clean(notice.text, keep_lines=True), BODY_LIMIT))
