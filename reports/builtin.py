"""Built-in reports, the special computations some of them need, and the figures of
the analytics dashboard.

Built-in reports are ordinary saved definitions (so they can be opened in the builder,
cloned and scheduled) created by ensure_builtin_reports(). A few cannot be said as
one GROUP BY (aging buckets against today, tax levels side by side, MRR month by
month): their definition names a special computation registered here."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Callable

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from app.activity import Actor, log
from app.extensions import db
from app.models.billing import InvoiceStatus
from app.models.catalog import Currency, ExchangeRate
from app.models.clients import ClientStatus
from app.models.orders import ServiceStatus
from app.models.reports import SavedReport
from app.models.support import TicketStatus
from reports.builder import (
    CheckedFilter, ReportDefinition, ReportError, ReportResult, ResultColumn, business_today,
    filtered_base, quantize, run_report,
)
from reports.datasets import DATE, INTEGER, MONEY, NUMBER, TEXT, Dataset, QueryContext
from reports.sql import time_bucket


# -- special computations -----------------------------------------------------------

@dataclass(frozen=True)
class SpecialReport:
    key: str
    dataset: str
    run: Callable[[ReportDefinition, QueryContext, Dataset, list[CheckedFilter]], ReportResult]


SPECIAL_REPORTS: dict[str, SpecialReport] = {}


def special(key: str, dataset: str):
    def register(function):
        SPECIAL_REPORTS[key] = SpecialReport(key, dataset, function)
        return function
    return register


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _frame(records: list[dict], columns: list[ResultColumn]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=[c.name for c in columns], dtype=object)


# Balances still owed: issued, not paid, not cancelled.
OUTSTANDING_STATUSES = (InvoiceStatus.UNPAID.value, InvoiceStatus.PAYMENT_PENDING.value,
                        InvoiceStatus.COLLECTIONS.value)
AGING_BUCKETS = ("Current", "0-30 days", "31-60 days", "61-90 days", "90+ days")


@special("invoice_aging", "invoices")
def invoice_aging(definition: ReportDefinition, ctx: QueryContext, dataset: Dataset,
                  filters: list[CheckedFilter]) -> ReportResult:
    """Unpaid balances by how many days past their due date they are. "Current" is
    not yet overdue (due today or later); "0-30 days" is 1 to 30 days past due."""
    base, where = filtered_base(ctx, dataset, filters)
    today = ctx.today
    bucket = case(
        (base.c.due_date >= today, AGING_BUCKETS[0]),
        (base.c.due_date >= today - timedelta(days=30), AGING_BUCKETS[1]),
        (base.c.due_date >= today - timedelta(days=60), AGING_BUCKETS[2]),
        (base.c.due_date >= today - timedelta(days=90), AGING_BUCKETS[3]),
        else_=AGING_BUCKETS[4],
    ).label("bucket")
    statement = (
        select(bucket, base.c.currency, func.count().label("invoices"),
               func.sum(base.c.balance).label("balance"))
        .where(*where, base.c.status.in_(OUTSTANDING_STATUSES), base.c.balance > 0)
        .group_by(bucket, base.c.currency)
    )
    found = {(row.bucket, row.currency): row for row in db.session.execute(statement)}
    currencies = sorted({currency for _, currency in found}) or (
        [ctx.default_currency] if ctx.convert else [])
    columns = [ResultColumn("bucket", "Days past due", TEXT),
               ResultColumn("currency", "Currency", TEXT),
               ResultColumn("invoices", "Invoices", INTEGER, is_value=True),
               ResultColumn("balance", "Balance due", MONEY, is_value=True)]
    records = []
    for currency in currencies:
        for name in AGING_BUCKETS:
            row = found.get((name, currency))
            records.append({"bucket": name, "currency": currency,
                            "invoices": row.invoices if row else 0,
                            "balance": quantize(row.balance if row else 0, MONEY)})
    return ReportResult("", definition, columns, _frame(records, columns),
                        currency=ctx.default_currency or None)


@special("tax_collected", "invoices")
def tax_collected(definition: ReportDefinition, ctx: QueryContext, dataset: Dataset,
                  filters: list[CheckedFilter]) -> ReportResult:
    """Tax on the invoices the filters select, by client country, tax and rate, with
    both tax levels of an invoice counted under their own name and rate."""
    base, where = filtered_base(ctx, dataset, filters)
    parts = []
    for level in (1, 2):
        name, rate, amount = (base.c[f"tax{level}_name"], base.c[f"tax{level}_rate"],
                              base.c[f"tax{level}"])
        statement = (
            select(base.c.client_country.label("country"), name.label("tax"),
                   rate.label("rate"), base.c.currency.label("currency"),
                   func.count().label("invoices"),
                   func.sum(base.c.subtotal).label("taxable"),
                   func.sum(amount).label("amount"))
            .where(*where, amount != 0)
            .group_by(base.c.client_country, name, rate, base.c.currency)
        )
        parts.extend(dict(row._mapping) for row in db.session.execute(statement))
    columns = [ResultColumn("country", "Country", TEXT), ResultColumn("tax", "Tax", TEXT),
               ResultColumn("rate", "Rate %", NUMBER), ResultColumn("currency", "Currency", TEXT),
               ResultColumn("invoices", "Invoices", INTEGER, is_value=True),
               ResultColumn("taxable", "Taxed subtotal", MONEY, is_value=True),
               ResultColumn("amount", "Tax collected", MONEY, is_value=True)]
    merged: dict[tuple, dict] = {}
    for part in parts:
        key = (part["country"], part["tax"] or "", quantize(part["rate"], NUMBER),
               part["currency"])
        entry = merged.setdefault(key, {"country": key[0], "tax": key[1], "rate": key[2],
                                        "currency": key[3], "invoices": 0,
                                        "taxable": Decimal("0.00"), "amount": Decimal("0.00")})
        entry["invoices"] += int(part["invoices"])
        entry["taxable"] += quantize(part["taxable"], MONEY)
        entry["amount"] += quantize(part["amount"], MONEY)
    records = [merged[key] for key in sorted(merged, key=lambda k: (k[0] or "", k[1], k[2], k[3]))]
    return ReportResult("", definition, columns, _frame(records, columns),
                        currency=ctx.default_currency or None)


def rate_lookup(codes: set[str], until: date) -> Callable[[str, date], Decimal]:
    """rate(code, day): units of the currency per default unit on that day (the newest
    daily rate on or before it, else the currency's current rate). Two queries in all."""
    current = {code: rate for code, rate in db.session.execute(
        select(Currency.code, Currency.rate).where(Currency.code.in_(codes)))}
    days: dict[str, list[date]] = {}
    rates: dict[str, list[Decimal]] = {}
    for code, day, value in db.session.execute(
            select(Currency.code, ExchangeRate.day, ExchangeRate.rate)
            .join(Currency, Currency.id == ExchangeRate.currency_id)
            .where(Currency.code.in_(codes), ExchangeRate.day <= until)
            .order_by(ExchangeRate.day)):
        days.setdefault(code, []).append(day)
        rates.setdefault(code, []).append(Decimal(str(value)))

    def rate(code: str, day: date) -> Decimal:
        position = bisect_right(days.get(code, []), day)
        value = rates[code][position - 1] if position else Decimal(str(current.get(code) or 1))
        return value if value else Decimal(1)

    return rate


@special("mrr_by_month", "services")
def mrr_by_month(definition: ReportDefinition, ctx: QueryContext, dataset: Dataset,
                 filters: list[CheckedFilter]) -> ReportResult:
    """Monthly recurring revenue at the end of each of the last `months` months: the
    monthly value (Monthly x1, Quarterly /3 ... Triennially /36) of every service that
    had started by then and had not ended. Free and one-time services add nothing."""
    months = definition.params.get("months", 12)
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
        raise ReportError("months must be a whole number from 1 to 120")
    per_currency_ctx = QueryContext(ctx.dialect, ctx.today, convert=False)
    base, where = filtered_base(per_currency_ctx, dataset, filters)
    started = time_bucket(base.c.registration_date, "month", ctx.dialect).label("started")
    ended = time_bucket(base.c.end_date, "month", ctx.dialect).label("ended")
    statement = (
        select(started, ended, base.c.currency, func.sum(base.c.monthly_amount).label("amount"))
        .where(*where, base.c.status.notin_((ServiceStatus.PENDING.value,
                                             ServiceStatus.FRAUD.value)),
               base.c.monthly_amount > 0)
        .group_by(started, ended, base.c.currency)
    )
    rows = [(quantize(r.started, DATE), quantize(r.ended, DATE), r.currency,
             Decimal(str(r.amount))) for r in db.session.execute(statement)]
    window = [_month_start(ctx.today, back) for back in range(months - 1, -1, -1)]
    currencies = sorted({row[2] for row in rows})
    rate = rate_lookup(set(currencies), ctx.today) if ctx.convert else None
    totals: dict[tuple[date, str], Decimal] = {}
    for month in window:
        # A month's figure stands at its last day (today for the current month).
        as_of = min(_month_start(month, -1) - timedelta(days=1), ctx.today)
        for started_month, ended_month, currency, amount in rows:
            if started_month is None or started_month > month:
                continue
            if ended_month is not None and ended_month <= month:
                continue
            if rate is not None:
                amount = amount / rate(currency, as_of)
                currency = ctx.default_currency
            totals[(month, currency)] = totals.get((month, currency), Decimal(0)) + amount
    shown = [ctx.default_currency] if ctx.convert else currencies
    columns = [ResultColumn("month", "Month", DATE, bucket="month"),
               ResultColumn("currency", "Currency", TEXT),
               ResultColumn("mrr", "MRR", MONEY, is_value=True)]
    records = [{"month": month, "currency": currency,
                "mrr": quantize(totals.get((month, currency), Decimal(0)), MONEY)}
               for month in window for currency in shown]
    return ReportResult("", definition, columns, _frame(records, columns),
                        currency=ctx.default_currency or None)


# -- the built-in saved reports ------------------------------------------------------

@dataclass(frozen=True)
class BuiltinReport:
    key: str
    name: str
    description: str
    definition: dict
    shared_roles: str = "Finance,Manager"


def _definition(dataset: str, **fields) -> dict:
    return ReportDefinition.from_dict({"dataset": dataset, **fields}).to_dict()


OPEN_TICKET_STATUSES = [TicketStatus.OPEN.value, TicketStatus.CUSTOMER_REPLY.value,
                        TicketStatus.IN_PROGRESS.value, TicketStatus.ON_HOLD.value]

BUILTIN_REPORTS: tuple[BuiltinReport, ...] = (
    BuiltinReport(
        "income_by_month", "Income by month",
        "Money received less refunds, and gateway fees, per month and currency.",
        _definition("transactions", group_by=[{"column": "date", "bucket": "month"}],
                    measures=[{"agg": "sum", "column": "net_amount", "label": "Income"},
                              {"agg": "sum", "column": "fees", "label": "Fees"}],
                    chart="bar")),
    BuiltinReport(
        "transactions_by_gateway", "Transactions by gateway",
        "Payments received, their number and fees, per payment gateway.",
        _definition("transactions", group_by=[{"column": "gateway"}],
                    measures=[{"agg": "sum", "column": "amount_in", "label": "Received"},
                              {"agg": "count", "label": "Transactions"},
                              {"agg": "sum", "column": "fees", "label": "Fees"}],
                    sort=[{"column": "sum_amount_in", "descending": True}], chart="pie")),
    BuiltinReport(
        "invoice_aging", "Invoice aging",
        "Unpaid balances by days past due: current, 0-30, 31-60, 61-90 and over 90 days.",
        _definition("invoices", builtin="invoice_aging", chart="bar")),
    BuiltinReport(
        "tax_collected", "Tax collected by country and rate",
        "Tax on paid invoices by client country, tax name and rate (both tax levels).",
        _definition("invoices", builtin="tax_collected",
                    filters=[{"column": "status", "op": "eq", "value": "Paid"}], chart="table")),
    BuiltinReport(
        "new_clients_by_month", "New clients by month",
        "Client accounts opened per month.",
        _definition("clients", group_by=[{"column": "created", "bucket": "month"}],
                    measures=[{"agg": "count", "label": "New clients"}], chart="bar")),
    BuiltinReport(
        "revenue_by_product_group", "Revenue by product group",
        "Invoiced amounts of paid invoices per product group (domains and other lines "
        "apart).",
        _definition("invoice_items",
                    filters=[{"column": "invoice_status", "op": "eq", "value": "Paid"}],
                    group_by=[{"column": "product_group"}],
                    measures=[{"agg": "sum", "column": "amount", "label": "Revenue"}],
                    sort=[{"column": "sum_amount", "descending": True}], chart="bar")),
    BuiltinReport(
        "top_clients", "Top clients",
        "The 20 clients who paid the most (received less refunds).",
        _definition("transactions", group_by=[{"column": "client_ref"}],
                    measures=[{"agg": "sum", "column": "net_amount", "label": "Paid"},
                              {"agg": "count", "label": "Transactions"}],
                    sort=[{"column": "sum_net_amount", "descending": True}], limit=20,
                    chart="bar")),
    BuiltinReport(
        "domain_renewals", "Domain renewals due (next 90 days)",
        "Active domains whose renewal falls due in the next 90 days, and the revenue "
        "their renewal should bring.",
        _definition("domains",
                    filters=[{"column": "status", "op": "eq", "value": "Active"},
                             {"column": "next_due_date", "op": "between",
                              "value": ["today", "today+90"]}],
                    group_by=[{"column": "next_due_date", "bucket": "month"}],
                    measures=[{"agg": "sum", "column": "recurring_amount",
                               "label": "Expected revenue"},
                              {"agg": "count", "label": "Domains"}],
                    chart="bar")),
    BuiltinReport(
        "ticket_volume", "Ticket volume by department",
        "Tickets opened per month in each department.",
        _definition("tickets", group_by=[{"column": "created", "bucket": "month"},
                                         {"column": "department"}],
                    measures=[{"agg": "count", "label": "Tickets"}], pivot="department",
                    chart="stacked_bar")),
    BuiltinReport(
        "mrr_by_month", "MRR by month",
        "Monthly recurring revenue of live services over the last 12 months (Monthly x1, "
        "Quarterly /3, Semi-Annually /6, Annually /12, Biennially /24, Triennially /36).",
        _definition("services", builtin="mrr_by_month", params={"months": 12}, chart="line")),
    BuiltinReport(
        "mrr_movements", "MRR and ARR movements",
        "MRR at each month's start and end, ARR (MRR x 12), and what moved it: new, "
        "expansion, contraction, churn and reactivation, compared client by client with "
        "the month before. A service counts from its registration month until the month it "
        "ended (excluded), at its recurring amount per month (Quarterly /3, Annually /12 "
        "...); a completed upgrade or downgrade changes the amount from the month it was "
        "applied, and before its first one the service stood at its last Hosting invoice "
        "line. Converted amounts use each month's end rate (the exchange rate effect "
        "column shows what the rate change moved).",
        _definition("services", builtin="mrr_movements", params={"months": 12},
                    chart="bar")),
    BuiltinReport(
        "client_activity", "New, active and churned clients",
        "Clients paying for at least one service at each month's start and end, and "
        "those who started paying (new), came back (reactivated) or stopped (churned) in "
        "the month; the same service history as \"MRR and ARR movements\".",
        _definition("services", builtin="client_activity", params={"months": 12},
                    chart="bar")),
    BuiltinReport(
        "churn_rate", "Churn rate",
        "Client churn % (clients who stopped paying / clients paying at the month's "
        "start), revenue churn % (MRR lost to churn and contraction / MRR at the start) "
        "and net revenue churn % (less expansion and reactivation), per month.",
        _definition("services", builtin="churn_rate", params={"months": 12}, chart="line")),
    BuiltinReport(
        "customer_lifetime_value", "Customer lifetime value",
        "Average MRR per paying client over the last 12 months divided by the average "
        "monthly client churn, per currency; beside it the actual revenue per client "
        "(money received less refunds, ever, per client who paid). Filters apply to every "
        "column: the revenue is that of the clients holding a service the filters select.",
        _definition("services", builtin="customer_lifetime_value", params={"months": 12})),
    BuiltinReport(
        "lifetime_revenue_per_client", "Lifetime revenue per client",
        "What each client has paid since their first payment (received less refunds), "
        "with their first and last payment.",
        _definition("transactions", group_by=[{"column": "client_ref"}],
                    measures=[{"agg": "sum", "column": "net_amount", "label": "Lifetime revenue"},
                              {"agg": "min", "column": "date", "label": "First payment"},
                              {"agg": "max", "column": "date", "label": "Last payment"},
                              {"agg": "count", "label": "Transactions"}],
                    sort=[{"column": "sum_net_amount", "descending": True}])),
    BuiltinReport(
        "order_funnel", "Order funnel",
        "Orders placed per month, how many were paid (invoice paid, or free) and how many "
        "became active (accepted).",
        _definition("orders", builtin="order_funnel", chart="bar")),
    BuiltinReport(
        "ticket_metrics_by_department", "Ticket metrics by department",
        "Tickets, answered and closed, average hours to the first staff response and to "
        "closing, and the clients' ratings of staff replies, per department.",
        _definition("tickets", builtin="ticket_metrics", params={"by": "department"}),
        shared_roles="Finance,Manager,Support"),
    BuiltinReport(
        "ticket_metrics_by_staff", "Ticket metrics by staff",
        "The same ticket figures per assigned staff member.",
        _definition("tickets", builtin="ticket_metrics", params={"by": "staff"}),
        shared_roles="Finance,Manager,Support"),
    BuiltinReport(
        "open_tickets", "Open tickets",
        "Tickets waiting on staff (Open, Customer-Reply, In Progress, On Hold) by "
        "department, status, priority and age since opened (today, 1-2, 3-6, 7-29, 30 days "
        "or more), with the oldest one's age in days and the ticket numbers, oldest first.",
        _definition("tickets", builtin="open_tickets", chart="stacked_bar"),
        shared_roles="Finance,Manager,Support"),
    BuiltinReport(
        "ticket_times_by_month", "Ticket response and resolution times",
        "Tickets opened per month, with the average hours to the first staff response "
        "and to closing.",
        _definition("tickets", group_by=[{"column": "created", "bucket": "month"}],
                    measures=[{"agg": "count", "label": "Tickets"},
                              {"agg": "avg", "column": "response_hours",
                               "label": "Hours to first response"},
                              {"agg": "avg", "column": "resolution_hours",
                               "label": "Hours to resolution"}],
                    chart="line"),
        shared_roles="Finance,Manager,Support"),
)
BUILTINS_BY_KEY = {report.key: report for report in BUILTIN_REPORTS}


def ensure_builtin_reports() -> int:
    """Create the built-in reports that are missing and bring changed ones up to date;
    safe to run any number of times and from two requests at once. Returns how many
    rows it created or updated."""
    existing = {report.name: report for report in db.session.scalars(
        select(SavedReport).where(SavedReport.name.in_([b.name for b in BUILTIN_REPORTS])))}
    actor = Actor.system("Reports")
    changed = 0
    for builtin in BUILTIN_REPORTS:
        row = existing.get(builtin.name)
        if row is None:
            row = SavedReport(name=builtin.name, description=builtin.description,
                              dataset=builtin.definition["dataset"],
                              definition=builtin.definition, shared_roles=builtin.shared_roles,
                              builtin=True)
            try:
                with db.session.begin_nested():
                    db.session.add(row)
            except IntegrityError:
                continue  # another request created it first
            log("report.created", f"Built-in report {builtin.name} created", row, actor=actor)
            changed += 1
        elif row.builtin and (row.definition != builtin.definition
                              or row.description != builtin.description):
            before = {"definition": row.definition}
            row.definition = builtin.definition
            row.dataset = builtin.definition["dataset"]
            row.description = builtin.description
            log("report.updated", f"Built-in report {builtin.name} brought up to date", row,
                before=before, after={"definition": row.definition}, actor=actor)
            changed += 1
    if changed:
        db.session.commit()
    return changed


def builtin_report(key: str) -> SavedReport | None:
    return db.session.scalar(select(SavedReport).where(
        SavedReport.name == BUILTINS_BY_KEY[key].name, SavedReport.builtin.is_(True)))


def builtin_report_ids() -> dict[str, int]:
    """The saved row's id of each built-in report there is, by key (one query)."""
    keys = {report.name: report.key for report in BUILTIN_REPORTS}
    rows = db.session.execute(select(SavedReport.name, SavedReport.id).where(
        SavedReport.name.in_(keys), SavedReport.builtin.is_(True)))
    return {keys[name]: report_id for name, report_id in rows}


# -- the analytics dashboard --------------------------------------------------------

@dataclass
class Kpi:
    key: str
    label: str
    report_key: str                       # the built-in report behind the figure
    amounts: dict[str, Decimal] = field(default_factory=dict)  # per currency
    count: int | None = None
    previous: dict[str, Decimal] | None = None  # the same figure a period earlier
    number: Decimal | None = None         # a rate or an average (hours, %, rating)
    suffix: str = ""                      # its unit, e.g. " %"


def _per_currency(result: ReportResult, value: str, where=None) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for record in result.frame.to_dict("records"):
        if where is not None and not where(record):
            continue
        amount = record[value]
        if amount is None:
            continue
        totals[record["currency"]] = totals.get(record["currency"], Decimal("0.00")) + amount
    return {code: amount for code, amount in sorted(totals.items()) if amount}


def dashboard_kpis(today: date | None = None) -> list[Kpi]:
    """The dashboard's headline figures, each computed by the report it links to."""
    today = today or business_today()
    this_month, last_month = _month_start(today), _month_start(today, 1)

    mrr = run_report(ReportDefinition.from_dict(
        {**BUILTINS_BY_KEY["mrr_by_month"].definition, "params": {"months": 1}}), today=today)
    income = run_report(ReportDefinition.from_dict({
        **BUILTINS_BY_KEY["income_by_month"].definition,
        "filters": [{"column": "date", "op": "gte", "value": last_month.isoformat()}]}),
        today=today)
    aging = run_report(ReportDefinition.from_dict(
        BUILTINS_BY_KEY["invoice_aging"].definition), today=today)
    clients = run_report(ReportDefinition.from_dict({
        "dataset": "clients", "filters": [{"column": "status", "op": "eq",
                                           "value": ClientStatus.ACTIVE.value}],
        "measures": [{"agg": "count"}]}), today=today)
    tickets = run_report(ReportDefinition.from_dict(
        BUILTINS_BY_KEY["open_tickets"].definition), today=today)

    activity = run_report(ReportDefinition.from_dict(
        {**BUILTINS_BY_KEY["client_activity"].definition, "params": {"months": 1}}), today=today)
    paying, lost = (int(activity.frame[name].iloc[0]) for name in ("clients_start", "churn_clients"))

    def month_is(day: date):
        return lambda record: record["date_month"] == day

    return [
        Kpi("mrr", "MRR", "mrr_by_month", amounts=_per_currency(mrr, "mrr")),
        Kpi("income", "Income this month", "income_by_month",
            amounts=_per_currency(income, "sum_net_amount", month_is(this_month)),
            previous=_per_currency(income, "sum_net_amount", month_is(last_month))),
        Kpi("overdue", "Overdue amount", "invoice_aging",
            amounts=_per_currency(aging, "balance", lambda r: r["bucket"] != AGING_BUCKETS[0])),
        Kpi("active_clients", "Active clients", "new_clients_by_month",
            count=int(clients.frame["count"].iloc[0])),
        Kpi("open_tickets", "Open tickets", "open_tickets",
            count=int(tickets.frame["tickets"].sum())),
        Kpi("churn", "Client churn this month", "churn_rate",
            number=metrics.percent(lost, paying),  # rounded as the churn report rounds
            suffix=" %"),
    ]


def dashboard_trends(today: date | None = None) -> list[ReportResult]:
    """The dashboard's trend charts: the last 12 months of three built-in reports."""
    today = today or business_today()
    since = _month_start(today, 11).isoformat()
    income = ReportDefinition.from_dict({
        **BUILTINS_BY_KEY["income_by_month"].definition, "chart": "line",
        "measures": [{"agg": "sum", "column": "net_amount", "label": "Income"}],
        "filters": [{"column": "date", "op": "gte", "value": since}]})
    clients = ReportDefinition.from_dict({
        **BUILTINS_BY_KEY["new_clients_by_month"].definition,
        "filters": [{"column": "created", "op": "gte", "value": since}]})
    mrr = ReportDefinition.from_dict(BUILTINS_BY_KEY["mrr_by_month"].definition)
    return [run_report(income, "Income by month", today),
            run_report(mrr, "MRR by month", today),
            run_report(clients, "New clients by month", today)]


# The computations of reports.metrics register themselves with @special (imported
# last: they build on this module); dashboard_kpis also uses its percent.
from reports import metrics  # noqa: E402
