"""portal models (filled in by the portal work)."""
