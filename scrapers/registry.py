"""The registry of marketplace adapters: the one list the scheduler, the CLI and the bots choose from."""

from __future__ import annotations

from scout.config import Settings
from scrapers.base import Adapter
from scrapers.craigslist.adapter import CraigslistAdapter
from scrapers.ebay.adapter import EbayAdapter


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    adapters: list[Adapter] = [
        EbayAdapter(domain=settings.ebay_domain),
        CraigslistAdapter(default_site=settings.craigslist_site),
    ]
    return {adapter.key: adapter for adapter in adapters}
