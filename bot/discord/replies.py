"""Pure rendering of the replies to the deal commands: pasted search addresses, snoozes, histories and a channel's
alert settings, as Discord message text within Discord's limits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.discord.render import CONTENT_LIMIT, channel_tag, cut, escape_markdown, timestamp_tag
from scout.models import Layout, SavedSearch

if TYPE_CHECKING:  # storage imports SQLAlchemy, which pure rendering does not
    from storage.repo import DestinationSettings

# What each layout looks like in a channel, in the words /settings uses.
LAYOUT_WORDS = {Layout.FULL: "a card with picture and buttons", Layout.COMPACT: "one line of text"}
# The name the history chart is attached under; Discord shows a .png attachment inline.
HISTORY_FILENAME = "history.png"


def _search_name(search: SavedSearch) -> str:
    return f"#{search.id} \u201c{escape_markdown(search.query)}\u201d"


def render_ignored(ignored: Sequence[str]) -> str:
    """The line added to /search add's reply for a pasted address: which of its filters the search does not keep."""
    if not ignored:
        return "Every filter of the pasted address was kept."
    return ("Not kept from the pasted address (a saved search cannot filter by these): "
            + ", ".join(escape_markdown(what) for what in ignored) + ".")


def render_snoozed(search: SavedSearch, now: datetime) -> str:
    """/search snooze: until when the search is quiet (in each reader's own time zone), or that it is awake."""
    until = search.snoozed_until
    if until is None or until <= now:
        return f"{_search_name(search)} is awake: its new matches are announced again."
    return (f"Snoozed {_search_name(search)} until {timestamp_tag(until, 'f')} ({timestamp_tag(until)}). It keeps "
            f"checking, and what it finds meanwhile is not announced later.\n"
            f"Wake it sooner with `/search snooze {search.id} off`.")


def render_history(text: str, *, charted: bool) -> str:
    """/search history's text: the history's lines (a listing title in them is scraped, so escaped)."""
    note = "" if charted else "\n(The chart could not be drawn this time.)"
    return cut(escape_markdown(text), CONTENT_LIMIT - len(note)) + note


def render_quiet_hours(settings: DestinationSettings) -> str:
    where = channel_tag(settings.destination.target)
    if settings.quiet_hours is None:
        return f"No quiet hours in {where}: alerts go out as they are found."
    return (f"Quiet hours in {where}: {settings.quiet_hours}. Alerts found in that window wait until it ends, "
            f"then go out.")


def render_layout(settings: DestinationSettings) -> str:
    return (f"Alerts in {channel_tag(settings.destination.target)} come as {LAYOUT_WORDS[settings.layout]} "
            f"({settings.layout.value}).")


def render_settings(settings: DestinationSettings, now: datetime) -> str:
    """/settings show: this channel's quiet hours and layout, and how to change them."""
    quiet = settings.quiet_hours
    lines = [f"Alert settings of {channel_tag(settings.destination.target)}:",
             "Quiet hours: " + (f"{quiet}" + (" (quiet now)" if quiet.covers(now) else "") if quiet else "none"),
             f"Layout: {settings.layout.value} ({LAYOUT_WORDS[settings.layout]})",
             "Channel managers change them with `/settings quiet` and `/settings layout`."]
    return "\n".join(lines)
