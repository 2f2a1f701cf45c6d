"""gateways models (filled in by the gateways work)."""
