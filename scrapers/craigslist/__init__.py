"""Craigslist: search pages and the JSON search API parsed into listings, and the adapter that fetches them."""
