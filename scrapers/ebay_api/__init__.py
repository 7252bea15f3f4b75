"""The official eBay Browse API: OAuth application tokens, a daily call budget, item summaries as listings."""
