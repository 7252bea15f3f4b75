"""A notifier that prints alerts to the terminal: the default when no chat token is configured."""

from __future__ import annotations

import sys
from typing import TextIO

from scout.delivery import DeliveryResult
from scout.models import Alert, Destination


def render_console_alert(alert: Alert) -> str:
    listing = alert.listing
    price = str(listing.price) if listing.price else (listing.price_text or "no price")
    parts = [f"[{listing.marketplace}] {listing.title}", price]
    if listing.location:
        parts.append(listing.location)
    head = " | ".join(parts)
    search = f"search #{alert.search_id} {alert.search_query!r}" if alert.search_id else "deleted search"
    return f"DEAL {head}\n     {listing.url}\n     matched {search} -> {alert.destination}"


class ConsoleNotifier:
    platform = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult:
        stream = self._stream or sys.stdout
        print(render_console_alert(alert), file=stream, flush=True)
        return DeliveryResult.ok()

    async def send_ops(self, message: str) -> DeliveryResult:
        stream = self._stream or sys.stdout
        print(f"OPS  {message}", file=stream, flush=True)
        return DeliveryResult.ok()
