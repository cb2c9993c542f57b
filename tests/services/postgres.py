"""Fixtures for the postgres service (filled in by its owner)."""
