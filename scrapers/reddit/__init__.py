"""Reddit deal subreddits: the JSON listing of new posts parsed into listings, and the adapter that fetches it."""
