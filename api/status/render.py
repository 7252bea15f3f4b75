"""The status page's HTML from a StatusView, through a Jinja2 template that escapes every value it prints.

Jinja2 over hand-built strings: autoescaping is on for the whole template, so an operator's pause reason or a notice
can never inject markup, and the page's markup stays readable as markup.
"""

from __future__ import annotations

from datetime import UTC, datetime

import jinja2

from api.status.view import StatusView

TEMPLATE = "status.html"
# The page reloads itself this often (a meta refresh: no script), about when the figures behind it change.
REFRESH_SECONDS = 60

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("api.status", "templates"),
    autoescape=True,  # every value, in every template: the page shows operators' words
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the tests instead of printing nothing
    trim_blocks=True, lstrip_blocks=True,
)


def show_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def show_duration(seconds: float) -> str:
    """'12 s', '4 min', '2 h 5 min', '3 days': as precise as a reader needs."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{hours // 24} days"


_ENV.filters["when"] = show_time
_ENV.filters["duration"] = show_duration


def render_status_page(view: StatusView) -> str:
    return _ENV.get_template(TEMPLATE).render(view=view, refresh_seconds=REFRESH_SECONDS)


def render_unavailable_page(now: datetime) -> str:
    """What the page says while its readings cannot be had (the database is down)."""
    return _ENV.get_template("unavailable.html").render(now=now, refresh_seconds=REFRESH_SECONDS)
