"""Every model module, imported so that all tables are on one metadata."""
from app.models import (  # noqa: F401
    api,
    billing,
    catalog,
    clients,
    domains,
    gateways,
    orders,
    portal,
    reports,
    support,
    system,
)
