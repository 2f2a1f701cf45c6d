"""The finance and support dashboards: headline figures and panels, each computed by
running a built-in report (or a narrowed copy of its definition), so a card and the
report it links to always agree."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from reports.builder import ReportDefinition, ReportResult, business_today, run_report
from reports.builtin import (
    AGING_BUCKETS, BUILTINS_BY_KEY, OPEN_TICKET_STATUSES, Kpi, _month_start, _per_currency,
)

HUNDREDTH = Decimal("0.01")


@dataclass
class Panel:
    """A chart or table on a dashboard and the built-in report behind it."""

    result: ReportResult
    report_key: str


def _builtin(key: str, *filters: dict, **overrides) -> ReportDefinition:
    """A built-in report's definition narrowed by more filters (its own stay)."""
    definition = BUILTINS_BY_KEY[key].definition
    return ReportDefinition.from_dict({**definition, **overrides,
                                       "filters": [*definition.get("filters", []), *filters]})


def _total(result: ReportResult, column: str) -> int:
    return int(sum(value or 0 for value in result.frame[column])) if len(result.frame) else 0


def _average(result: ReportResult, total: str, count: str) -> Decimal | None:
    """A weighted average of per-group averages (total = sum of avg x count)."""
    weighted = sum((value or 0) * weight for value, weight
                   in zip(result.frame[total], result.frame[count]) if value is not None)
    weights = sum(weight for value, weight in zip(result.frame[total], result.frame[count])
                  if value is not None)
    return (Decimal(weighted) / weights).quantize(HUNDREDTH, ROUND_HALF_UP) if weights else None


def finance_dashboard(today: date | None = None) -> tuple[list[Kpi], list[Panel]]:
    """Receivables by aging bucket, payments by gateway and tax collected this month."""
    today = today or business_today()
    month = _month_start(today).isoformat()
    aging = run_report(_builtin("invoice_aging"), "Receivables by days past due", today)
    this_month = {"column": "date", "op": "gte", "value": month}
    gateways = run_report(_builtin("transactions_by_gateway", this_month),
                          "Payments by gateway this month", today)
    tax = run_report(_builtin("tax_collected", this_month), "Tax collected this month", today)
    kpis = [
        Kpi("receivables", "Receivables", "invoice_aging",
            amounts=_per_currency(aging, "balance")),
        Kpi("overdue", "Overdue", "invoice_aging",
            amounts=_per_currency(aging, "balance", lambda r: r["bucket"] != AGING_BUCKETS[0])),
        Kpi("payments", "Payments this month", "transactions_by_gateway",
            amounts=_per_currency(gateways, "sum_amount_in")),
        Kpi("tax", "Tax collected this month", "tax_collected",
            amounts=_per_currency(tax, "amount")),
    ]
    panels = [Panel(aging, "invoice_aging"), Panel(gateways, "transactions_by_gateway"),
              Panel(tax, "tax_collected")]
    return kpis, panels


def support_dashboard(today: date | None = None) -> tuple[list[Kpi], list[Panel]]:
    """Open tickets by department and status, and first response and resolution times:
    the last 30 days for the cards, the last 12 months for the trend."""
    today = today or business_today()
    open_tickets = run_report(ReportDefinition.from_dict({
        "dataset": "tickets",
        "filters": [{"column": "status", "op": "in", "value": OPEN_TICKET_STATUSES}],
        "group_by": [{"column": "department"}, {"column": "status"}],
        "measures": [{"agg": "count", "label": "Tickets"}], "pivot": "status",
        "chart": "stacked_bar"}), "Open tickets by department and status", today)
    recent = run_report(_builtin("ticket_metrics_by_department", {
        "column": "created", "op": "gte", "value": (today - timedelta(days=30)).isoformat()}),
        "Ticket metrics, last 30 days", today)
    trend = run_report(_builtin("ticket_times_by_month", {
        "column": "created", "op": "gte", "value": _month_start(today, 11).isoformat()},
        measures=[{"agg": "avg", "column": "response_hours", "label": "Hours to first response"},
                  {"agg": "avg", "column": "resolution_hours", "label": "Hours to resolution"}]),
        "First response and resolution (hours)", today)
    waiting = run_report(_builtin("open_tickets"), "Open tickets", today)
    kpis = [
        Kpi("open_tickets", "Open tickets", "open_tickets", count=_total(waiting, "tickets")),
        Kpi("first_response", "Avg hours to first response (30 days)", "ticket_times_by_month",
            number=_average(recent, "response", "answered")),
        Kpi("resolution", "Avg hours to resolution (30 days)", "ticket_times_by_month",
            number=_average(recent, "resolution", "closed")),
        Kpi("rating", "Avg rating (30 days, 1-5)", "ticket_metrics_by_department",
            number=_average(recent, "rating", "ratings")),
    ]
    panels = [Panel(open_tickets, "open_tickets"),
              Panel(trend, "ticket_times_by_month"),
              Panel(recent, "ticket_metrics_by_department")]
    return kpis, panels
