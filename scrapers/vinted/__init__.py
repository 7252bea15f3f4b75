"""Vinted: catalog API answers parsed into listings, and the adapter that keeps a session to fetch them."""
