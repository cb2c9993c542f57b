"""Fixtures for the dask service (filled in by its owner)."""
