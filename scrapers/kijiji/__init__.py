"""Kijiji (Canada): search RSS feeds parsed into listings, and the adapter that fetches them."""
