"""Courier adapters: an in-memory fake and a file capture for the demo (no real carrier)."""
