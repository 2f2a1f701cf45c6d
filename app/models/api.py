"""api models (filled in by the api work)."""
