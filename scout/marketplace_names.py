"""The marketplaces' display names by key, to name a marketplace without building (or importing) its adapter."""

from __future__ import annotations

# Each adapter's `name` (scrapers.registry builds them); tests/dealscout/test_cli_direct.py holds the two equal.
MARKETPLACE_NAMES: dict[str, str] = {
    "ebay": "eBay",
    "facebook": "Facebook Marketplace",
    "vinted": "Vinted",
    "craigslist": "Craigslist",
    "kleinanzeigen": "Kleinanzeigen",
    "kijiji": "Kijiji",
    "reddit": "Reddit",
    "rss": "RSS/Atom feed",
}
