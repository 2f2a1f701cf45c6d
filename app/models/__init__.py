"""Every model module, imported so that all tables are on one metadata."""
from app.models import (  # noqa: F401
    billing,
    catalog,
    clients,
    domains,
    orders,
    support,
    system,
)
