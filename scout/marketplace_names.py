"""The marketplaces' display names by key, to name a marketplace without building (or importing) its adapter."""

from __future__ import annotations

# Each adapter's `name` reads its entry; tests/dealscout/test_cli_direct.py holds the keys to the adapters built.
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
