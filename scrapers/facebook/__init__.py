"""Facebook Marketplace: logged-out search pages parsed from their embedded JSON, and the adapter that fetches them."""
