"""Typed errors of the billing engine."""


class BillingError(ValueError):
    """Bad input to a billing rule (unknown cycle, negative amount, bad day...).

    A ValueError, so callers that validate input can catch either."""
