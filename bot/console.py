"""A notifier that prints alerts to the terminal: the default when no chat token is configured."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.alert_text import compact_line, extra_lines
from scout.delivery import DeliveryResult
from scout.models import Alert, Destination, Layout, Notice, NoticeKind


def render_console_alert(alert: Alert) -> str:
    listing = alert.listing
    price = str(listing.price) if listing.price else (listing.price_text or "no price")
    parts = [f"[{listing.marketplace}] {listing.title}", price]
    if listing.location:
        parts.append(listing.location)
    head = " | ".join(parts)
    search = f"search #{alert.search_id} {alert.search_query!r}" if alert.search_id else "deleted search"
    if alert.layout is Layout.COMPACT:
        return f"DEAL {compact_line(alert)} {listing.url}"
    lines = "".join(f"\n     {line}" for line in extra_lines(alert))
    return f"DEAL {head}{lines}\n     {listing.url}\n     matched {search} -> {alert.destination}"


def render_console_notice(notice: Notice) -> str:
    if notice.kind is NoticeKind.OPS:
        return f"OPS  {notice.text}"
    return f"NOTE {notice.text}\n     -> {notice.destination}"


class ConsoleNotifier:
    platform = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult:
        return self._print(render_console_alert(alert))

    async def send_notice(self, destination: Destination, notice: Notice) -> DeliveryResult:
        return self._print(render_console_notice(notice))

    def _print(self, text: str) -> DeliveryResult:
        print(text, file=self._stream or sys.stdout, flush=True)
        return DeliveryResult.ok()
