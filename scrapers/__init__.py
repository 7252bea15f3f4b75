"""Marketplace adapters and the polite fetcher they share."""
