"""The registry of marketplace adapters: the one list the scheduler, the CLI and the bots choose from."""

from __future__ import annotations

from scout.config import Settings
from scrapers.base import Adapter
from scrapers.craigslist.adapter import CraigslistAdapter
from scrapers.ebay.adapter import EbayAdapter
from scrapers.ebay_api.adapter import EbayApiAdapter
from scrapers.facebook.adapter import FacebookAdapter
from scrapers.kijiji.adapter import KijijiAdapter
from scrapers.kleinanzeigen.adapter import KleinanzeigenAdapter
from scrapers.reddit.adapter import RedditAdapter
from scrapers.rss.adapter import RssAdapter
from scrapers.vinted.adapter import VintedAdapter


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    adapters: list[Adapter] = [
        _ebay(settings),
        FacebookAdapter(default_location=settings.facebook_location),
        VintedAdapter(domain=settings.vinted_domain),
        CraigslistAdapter(default_site=settings.craigslist_site),
        KleinanzeigenAdapter(),
        KijijiAdapter(),
        RedditAdapter(default_subreddits=settings.reddit_subreddits),
        RssAdapter(),  # always with its URL guard: the feed URL is a user's
    ]
    return {adapter.key: adapter for adapter in adapters}


def _ebay(settings: Settings) -> Adapter:
    """The Browse API when credentials are set (either one alone is a ConfigError), else the web pages; key "ebay"."""
    if settings.ebay_client_id or settings.ebay_client_secret:
        return EbayApiAdapter(
            settings.ebay_client_id or "", settings.ebay_client_secret or "",
            marketplace_id=settings.ebay_marketplace_id, daily_calls=settings.ebay_api_daily_calls,
        )
    return EbayAdapter(domain=settings.ebay_domain)
