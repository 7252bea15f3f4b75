"""Any RSS or Atom deal feed a user gives: items parsed into listings, and the adapter that fetches the feed."""
