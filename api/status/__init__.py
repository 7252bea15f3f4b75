"""The public status page: GET /status, for users, without a key and without anything private."""
