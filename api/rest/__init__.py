"""The REST API under /api/v1: searches, listings, marketplaces and the summary, behind API keys."""
