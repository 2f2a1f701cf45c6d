"""The report builder and analytics: datasets over the billing data, a builder that
aggregates in SQL and shapes with pandas, Plotly charts, CSV/Excel/PDF exports,
built-in reports, the analytics dashboard and scheduled report emails."""
# The report tables live on the shared metadata once this package is imported.
from app.models import reports as _report_models  # noqa: F401
