"""Kleinanzeigen (Germany): search result pages parsed into listings, and the adapter that fetches them."""
