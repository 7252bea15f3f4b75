"""eBay: search pages parsed into listings, and the adapter that fetches them."""
