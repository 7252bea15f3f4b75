"""Persistence: the engine, the tables, the migrations and the one repository that holds all SQL."""
