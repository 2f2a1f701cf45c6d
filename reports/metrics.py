"""Subscription and support metrics: MRR and ARR with their monthly movements, clients
won and lost, churn rates, customer lifetime value, the order funnel and ticket times.

The service row keeps only its current recurring amount; a service's monthly value in
past months comes from its dates and the history kept beside it:

- it counts from the month of its registration date, until the month its termination
  date (or, for an ended service without one, the day its row last changed) falls in,
  that month excluded (the same rule as "MRR by month");
- each change of amount starts a new amount in the month it was made: a completed
  Upgrade row (new_recurring_amount over the new cycle's months) or a hand change by
  staff or the API, which the engine keeps in service_amount_changes (new amount over
  new cycle). All of a service's changes are ordered by time;
- before its first change a service stood at the amount that change says it left (a
  hand change keeps it); before a first upgrade, which does not, at the amount of its
  last Hosting invoice line billed before the upgrade, over the old cycle's months
  (its first payment amount when none was billed).

A client's MRR in a month is the sum of its services' monthly values at that month's
end. Comparing each client's MRR with the month before gives the movements: new (first
month ever with MRR), reactivation (MRR again after a month without), expansion and
contraction (more or less than the month before), churn (MRR the month before, none
now). Everything up to these per-month sums runs as one SQL statement; pandas shapes
the few rows that come back."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
from sqlalchemy import and_, case, cast, func, literal_column, null, or_, select, union_all

from app.extensions import db
from app.models.billing import InvoiceItem, ItemType
from app.models.base import MONEY as MONEY_TYPE
from app.models.orders import (
    OrderStatus, Service, ServiceAmountChange, ServiceStatus, Upgrade,
)
from app.models.support import TicketReply
from reports.builder import (
    CheckedFilter, business_date, ReportDefinition, ReportError, ReportResult, ResultColumn, filtered_base,
    quantize,
)
from reports.builtin import OPEN_TICKET_STATUSES, rate_lookup, special
from reports.datasets import DATASETS, DATE, INTEGER, MONEY, NUMBER, TEXT, Dataset, QueryContext, \
    monthly_amount
from reports.sql import date_of, month_index, text_after_first, time_bucket

MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")
MOVEMENT_LABELS = {"new": "New", "expansion": "Expansion", "contraction": "Contraction",
                   "churn": "Churn", "reactivation": "Reactivation"}
UPGRADE_COMPLETED = "Completed"
PERCENT = Decimal("0.01")


def window_months(definition: ReportDefinition, default: int = 12) -> int:
    months = definition.params.get("months", default)
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
        raise ReportError("months must be a whole number from 1 to 120")
    return months


def month_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def index_of(day: date) -> int:
    return day.year * 12 + day.month - 1


# -- MRR per client and month, in SQL --------------------------------------------------

def _service_pieces(ctx: QueryContext, dataset: Dataset, filters: list[CheckedFilter]):
    """(client_id, currency, start, stop, amount): a monthly amount in force from month
    `start` until month `stop` (excluded; null while live), in the client's currency."""
    dialect = ctx.dialect
    base, where = filtered_base(QueryContext(dialect, ctx.today), dataset, filters)
    where = [*where, base.c.status.notin_((ServiceStatus.PENDING.value, ServiceStatus.FRAUD.value))]
    start = month_index(base.c.registration_date, dialect)
    stop = month_index(base.c.end_date, dialect)
    applied = (Upgrade.status == UPGRADE_COMPLETED, Upgrade.applied_at.is_not(None))

    # Every time a service's amount changed: its completed upgrades (kind 0) and its hand
    # changes (kind 1, which also keep the amount before them).
    upgrade_rows = select(
        Upgrade.service_id, Upgrade.applied_at.label("at_time"),
        literal_column("0").label("kind"),
        Upgrade.id, Upgrade.new_recurring_amount.label("new_amount"),
        text_after_first(Upgrade.new_value, ",", dialect).label("new_cycle"),
        cast(null(), MONEY_TYPE).label("old_amount"),
        text_after_first(Upgrade.old_value, ",", dialect).label("old_cycle"),
    ).where(*applied)
    change_rows = select(
        ServiceAmountChange.service_id, ServiceAmountChange.changed_at, literal_column("1"),
        ServiceAmountChange.id, ServiceAmountChange.new_amount, ServiceAmountChange.new_cycle,
        ServiceAmountChange.old_amount, ServiceAmountChange.old_cycle)
    changes = union_all(upgrade_rows, change_rows).subquery("changes")
    c = changes.c

    plain = select(base.c.client_id, base.c.currency, start.label("start"), stop.label("stop"),
                   base.c.monthly_amount.label("amount")).where(
        *where, base.c.service_id.notin_(select(c.service_id)))

    order = (c.at_time, c.kind, c.id)
    changed_month = month_index(c.at_time, dialect)
    boundaries = select(
        c.service_id, c.at_time, c.kind, c.new_amount, c.new_cycle, c.old_amount, c.old_cycle,
        changed_month.label("at"),
        func.lead(changed_month).over(partition_by=c.service_id, order_by=order).label("next_at"),
        func.row_number().over(partition_by=c.service_id, order_by=order).label("rank"),
    ).subquery("boundaries")
    b = boundaries.c

    def until(limit):
        """The earlier of a month and the service's end (null: open)."""
        return case((stop.is_(None), limit), (limit.is_(None), stop), (stop < limit, stop),
                    else_=limit)

    # Not before the service's first month (staff may change a Pending service's price,
    # or move its registration date, after the change).
    from_month = case((b.at < start, start), else_=b.at)
    changed = select(base.c.client_id, base.c.currency, from_month, until(b.next_at),
                     monthly_amount(b.new_amount, b.new_cycle)) \
        .select_from(base.join(boundaries, b.service_id == base.c.service_id)).where(*where)

    # Before an upgrade that comes first, the amount last billed stood (or the first
    # payment); before a hand change, the amount it changed.
    last_billed = (select(InvoiceItem.amount)
                   .where(InvoiceItem.type == ItemType.HOSTING.value,
                          InvoiceItem.rel_id == b.service_id,
                          InvoiceItem.period_start < date_of(b.at_time, dialect))
                   .order_by(InvoiceItem.period_start.desc()).limit(1).scalar_subquery())
    amount_before = case((b.kind == 1, b.old_amount),
                         else_=func.coalesce(last_billed, Service.first_payment_amount))
    before_first = select(
        base.c.client_id, base.c.currency, start, until(b.at),
        monthly_amount(amount_before, b.old_cycle),
    ).select_from(base.join(boundaries, b.service_id == base.c.service_id)
                  .join(Service, Service.id == base.c.service_id)) \
        .where(*where, b.rank == 1)
    # A CTE: evaluated once, though the events read it twice.
    return union_all(plain, changed, before_first).cte("pieces")


def movement_frame(ctx: QueryContext, dataset: Dataset, filters: list[CheckedFilter],
                   first: int, last: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per month index (first..last), currency and kind of movement: the number of
    clients and the change of their MRR; and per currency the MRR and the paying
    clients at the end of the month before `first`.

    A client's MRR only changes in a month where one of its pieces starts or stops,
    so the statement works on those events, not on every client and month: a running
    sum over a client's events is its MRR after each of them."""
    pieces = _service_pieces(ctx, dataset, filters)
    p = pieces.c
    counted = and_(p.amount > 0, or_(p.stop.is_(None), p.stop > p.start))
    events = union_all(
        select(p.client_id, p.currency, p.start.label("m"), p.amount.label("delta"))
        .where(counted),
        select(p.client_id, p.currency, p.stop, -p.amount).where(counted, p.stop.is_not(None)),
    ).subquery("events")
    per_month = (select(events.c.client_id, events.c.currency, events.c.m,
                        func.sum(events.c.delta).label("delta"))
                 .group_by(events.c.client_id, events.c.currency, events.c.m)
                 .subquery("per_month"))
    pm = per_month.c
    running = func.sum(pm.delta).over(partition_by=(pm.client_id, pm.currency), order_by=pm.m)
    # Rounded to 6 places: SQLite adds in floating point, and an ended client must be 0.
    after = select(
        pm.client_id, pm.currency, pm.m, pm.delta,
        func.round(running, 6).label("cur"), func.round(running - pm.delta, 6).label("prev"),
        func.min(pm.m).over(partition_by=pm.client_id).label("since"),
    ).subquery("after")
    a = after.c
    kind = case(
        (and_(a.prev == 0, a.cur > 0, a.since < a.m), "reactivation"),
        (and_(a.prev == 0, a.cur > 0), "new"),
        (and_(a.prev > 0, a.cur == 0), "churn"),
        (a.cur > a.prev, "expansion"),
        (a.cur < a.prev, "contraction"),
        else_="unchanged").label("kind")
    # Events before the window are added up into the month before it: the opening.
    before = first - 1
    bucket = case((a.m < first, before), else_=a.m).label("m")
    rows = db.session.execute(
        select(bucket, a.currency, kind, func.count().label("clients"),
               func.sum(a.delta).label("delta"))
        .where(a.m <= last).group_by(bucket, a.currency, kind)).all()
    frame = pd.DataFrame([tuple(row) for row in rows],
                         columns=["m", "currency", "kind", "clients", "delta"])
    frame["m"] = frame["m"].astype(int)
    frame["clients"] = frame["clients"].astype(int)
    frame["delta"] = frame["delta"].map(_decimal).astype(object)
    early = frame[frame["m"] == before]
    sign = early["kind"].map({"new": 1, "reactivation": 1, "churn": -1}).fillna(0).astype(int)
    opening = pd.DataFrame({"currency": early["currency"], "mrr": early["delta"],
                            "clients": early["clients"] * sign})
    opening = opening.groupby("currency")[["mrr", "clients"]].sum()
    return frame[frame["m"] >= first], opening


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def _money(series: pd.Series) -> pd.Series:
    return series.map(lambda value: quantize(value, MONEY)).astype(object)


def percent(numerator, denominator) -> Decimal | None:
    """numerator / denominator as a percentage with two decimals (none when 0)."""
    if not denominator:
        return None
    return (Decimal(str(numerator)) * 100 / Decimal(str(denominator))).quantize(
        PERCENT, ROUND_HALF_UP)


def _percent(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return pd.Series([percent(n, d) for n, d in zip(numerator, denominator)],
                     index=numerator.index, dtype=object)


def monthly_movements(ctx: QueryContext, dataset: Dataset, filters: list[CheckedFilter],
                      months: int) -> pd.DataFrame:
    """One row per month and currency: MRR and paying clients at the start and end,
    each movement's amount and its clients. Converted amounts use each month's end
    rate; the start is the month before's end at that month's rate, and `fx` is what
    the change of rate moved."""
    last = index_of(ctx.today)
    first = last - months + 1
    moves, opening = movement_frame(ctx, dataset, filters, first, last)
    currencies = sorted(set(moves["currency"]) | set(opening.index))
    grid = pd.MultiIndex.from_product([currencies, range(first, last + 1)],
                                      names=["currency", "m"])
    chosen = moves[moves["kind"].isin(MOVEMENTS)]
    amounts = chosen.groupby(["currency", "m", "kind"])["delta"].sum().unstack("kind")
    counts = chosen.groupby(["currency", "m", "kind"])["clients"].sum().unstack("kind")
    frame = pd.DataFrame(index=grid)
    zero = Decimal(0)
    for kind in MOVEMENTS:
        column = amounts[kind] if kind in amounts.columns else pd.Series(dtype=object)
        frame[kind] = column.reindex(grid).map(lambda v: zero if pd.isna(v) else v).astype(object)
        count = counts[kind] if kind in counts.columns else pd.Series(dtype=int)
        frame[f"{kind}_clients"] = count.reindex(grid).fillna(0).astype(int)
    frame["change"] = sum(frame[kind] for kind in MOVEMENTS)
    frame["client_change"] = (frame["new_clients"] + frame["reactivation_clients"]
                              - frame["churn_clients"])
    # Running totals per currency, from the opening figures (a few rows per currency).
    ends, client_ends = [], []
    for currency in currencies:
        mrr = opening["mrr"].get(currency, zero)
        clients = int(opening["clients"].get(currency, 0))
        part = frame.loc[currency]
        for change, client_change in zip(part["change"], part["client_change"]):
            mrr += change
            clients += client_change
            ends.append(mrr)
            client_ends.append(clients)
    frame["mrr"] = pd.Series(ends, index=grid, dtype=object)
    frame["clients"] = client_ends
    frame["mrr_start"] = (frame["mrr"] - frame["change"]).astype(object)
    frame["clients_start"] = frame["clients"] - frame["client_change"]
    frame = frame.reset_index()
    frame["fx"] = zero
    if ctx.convert:
        frame = _converted(ctx, frame, currencies, first, last)
    frame["fx"] = frame["fx"].astype(object)
    frame["month"] = frame["m"].map(month_of)
    return frame.sort_values(["m", "currency"], kind="stable").reset_index(drop=True)


def _converted(ctx: QueryContext, frame: pd.DataFrame, currencies: list[str], first: int,
               last: int) -> pd.DataFrame:
    """Each currency's figures in the default currency, added up per month."""
    rate = rate_lookup(set(currencies), ctx.today)

    def rate_at(code: str, index: int) -> Decimal:
        return rate(code, min(month_of(index + 1) - timedelta(days=1), ctx.today))

    rates = pd.DataFrame([{"currency": code, "m": index, "rate": rate_at(code, index),
                           "prev_rate": rate_at(code, index - 1)}
                          for code in currencies for index in range(first, last + 1)],
                         columns=["currency", "m", "rate", "prev_rate"])
    frame = frame.merge(rates, on=["currency", "m"], how="left")
    for name in (*MOVEMENTS, "mrr"):
        frame[name] = (frame[name] / frame["rate"]).astype(object)
    frame["mrr_start"] = (frame["mrr_start"] / frame["prev_rate"]).astype(object)
    frame["fx"] = (frame["mrr"] - frame["mrr_start"]
                   - sum(frame[kind] for kind in MOVEMENTS)).astype(object)
    frame["currency"] = ctx.default_currency
    money = [*MOVEMENTS, "mrr", "mrr_start", "fx"]
    counts = [f"{kind}_clients" for kind in MOVEMENTS] + ["clients", "clients_start"]
    summed = frame.groupby(["m", "currency"])[money + counts].sum().reset_index()
    if summed.empty:  # no service at all: one row of zeros per month
        summed = pd.DataFrame({"m": range(first, last + 1), "currency": ctx.default_currency})
        for name in money:
            summed[name] = Decimal(0)
        for name in counts:
            summed[name] = 0
    return summed


def _result(definition, ctx, columns: list[ResultColumn], frame: pd.DataFrame) -> ReportResult:
    frame = frame[[column.name for column in columns]].astype(object)
    return ReportResult("", definition, columns, frame.reset_index(drop=True),
                        currency=ctx.default_currency or None)


MONTH = ResultColumn("month", "Month", DATE, bucket="month")
CURRENCY = ResultColumn("currency", "Currency", TEXT)


@special("mrr_movements", "services")
def mrr_movements(definition, ctx, dataset, filters) -> ReportResult:
    movements = monthly_movements(ctx, dataset, filters, window_months(definition))
    movements["arr"] = (movements["mrr"] * 12).astype(object)
    for name in ("mrr_start", "mrr", *MOVEMENTS, "fx", "arr"):
        movements[name] = _money(movements[name])
    # The chart shows the movements; the table also the MRR they lead from and to.
    columns = [MONTH, CURRENCY,
               ResultColumn("mrr_start", "MRR at start", MONEY, is_value=True, charted=False),
               *[ResultColumn(kind, MOVEMENT_LABELS[kind], MONEY, is_value=True)
                 for kind in MOVEMENTS]]
    if ctx.convert:
        columns.append(ResultColumn("fx", "Exchange rate effect", MONEY, is_value=True))
    columns += [ResultColumn("mrr", "MRR at end", MONEY, is_value=True, charted=False),
                ResultColumn("arr", "ARR", MONEY, is_value=True, charted=False)]
    return _result(definition, ctx, columns, movements)


@special("client_activity", "services")
def client_activity(definition, ctx, dataset, filters) -> ReportResult:
    """Clients paying at the start and end of each month, and those who started,
    came back or left (counted over all currencies: a client bills in one)."""
    plain = QueryContext(ctx.dialect, ctx.today)
    months = window_months(definition)
    movements = monthly_movements(plain, dataset, filters, months)
    counts = ["clients_start", "new_clients", "reactivation_clients", "churn_clients", "clients"]
    last = index_of(ctx.today)
    window = [month_of(index) for index in range(last - months + 1, last + 1)]
    # Every month of the window, with zeros before the first service.
    frame = (movements.groupby("month")[counts].sum()
             .reindex(pd.Index(window, name="month"), fill_value=0).reset_index())
    frame["net"] = frame["clients"] - frame["clients_start"]
    columns = [MONTH,
               ResultColumn("clients_start", "Active at start", INTEGER, is_value=True,
                            charted=False),
               ResultColumn("new_clients", "New", INTEGER, is_value=True),
               ResultColumn("reactivation_clients", "Reactivated", INTEGER, is_value=True),
               ResultColumn("churn_clients", "Churned", INTEGER, is_value=True),
               ResultColumn("clients", "Active at end", INTEGER, is_value=True, charted=False),
               ResultColumn("net", "Net change", INTEGER, is_value=True, charted=False)]
    return _result(definition, ctx, columns, frame)


@special("churn_rate", "services")
def churn_rate(definition, ctx, dataset, filters) -> ReportResult:
    """Client churn: clients lost in the month / clients paying at its start. Revenue
    churn: MRR lost to churn and contraction / MRR at the start; net revenue churn
    also counts expansion and reactivation back in (negative: the base grew)."""
    frame = monthly_movements(ctx, dataset, filters, window_months(definition))
    lost = (-(frame["churn"] + frame["contraction"])).astype(object)
    regained = (frame["expansion"] + frame["reactivation"]).astype(object)
    frame["client_churn"] = _percent(frame["churn_clients"], frame["clients_start"])
    frame["lost"] = _money(lost)
    frame["revenue_churn"] = _percent(lost, frame["mrr_start"])
    frame["net_revenue_churn"] = _percent((lost - regained).astype(object), frame["mrr_start"])
    frame["mrr_start"] = _money(frame["mrr_start"])
    columns = [MONTH, CURRENCY,
               ResultColumn("clients_start", "Clients at start", INTEGER, is_value=True,
                            charted=False),
               ResultColumn("churn_clients", "Clients lost", INTEGER, is_value=True,
                            charted=False),
               ResultColumn("client_churn", "Client churn %", NUMBER, is_value=True),
               ResultColumn("mrr_start", "MRR at start", MONEY, is_value=True, charted=False),
               ResultColumn("lost", "MRR lost (churn + contraction)", MONEY, is_value=True,
                            charted=False),
               ResultColumn("revenue_churn", "Revenue churn %", NUMBER, is_value=True),
               ResultColumn("net_revenue_churn", "Net revenue churn %", NUMBER, is_value=True)]
    return _result(definition, ctx, columns, frame)


def _lifetime_revenue(ctx: QueryContext, dataset: Dataset,
                      filters: list[CheckedFilter]) -> pd.DataFrame:
    """Money received less refunds since the first transaction, per currency: the
    total and the number of clients it came from. With filters, only the clients they
    select count: those holding a service that passes them (as the MRR side counts,
    Pending and Fraud apart), so a filter on country, group, currency, product or
    dates narrows this column as it narrows the others. Without, every client who
    paid counts (one paying for domains only too)."""
    base = DATASETS["transactions"].select(ctx).subquery("paid")
    statement = (select(base.c.currency, func.sum(base.c.net_amount).label("revenue"),
                        func.count(func.distinct(base.c.client_id)).label("payers"))
                 .group_by(base.c.currency))
    if filters:
        services, where = filtered_base(QueryContext(ctx.dialect, ctx.today), dataset, filters)
        statement = statement.where(base.c.client_id.in_(select(services.c.client_id).where(
            *where, services.c.status.notin_((ServiceStatus.PENDING.value,
                                              ServiceStatus.FRAUD.value)))))
    rows = [tuple(row) for row in db.session.execute(statement)]
    return pd.DataFrame(rows, columns=["currency", "revenue", "payers"]).set_index("currency")


@special("customer_lifetime_value", "services")
def customer_lifetime_value(definition, ctx, dataset, filters) -> ReportResult:
    """Over the last `months` months, per currency: the average MRR per paying client
    (ARPA: the months' MRR added up / the client-months paying), the average monthly
    client churn (clients lost / clients at the months' starts), and lifetime value =
    ARPA / churn (none without churn). Beside it, what clients actually paid: money
    received less refunds, ever, per client who paid, of the clients the filters
    select (every filter applies to every column)."""
    frame = monthly_movements(ctx, dataset, filters, window_months(definition))
    per = frame.groupby("currency")[["mrr", "clients", "churn_clients", "clients_start"]].sum()
    actual = _lifetime_revenue(ctx, dataset, filters)
    currencies = sorted(set(per.index) | set(actual.index))
    per = per.reindex(currencies)
    actual = actual.reindex(currencies)
    result = pd.DataFrame({"currency": currencies})
    result["client_months"] = per["clients"].fillna(0).astype(int).to_numpy()
    mrr_total = per["mrr"].map(lambda value: Decimal(0) if pd.isna(value) else value).to_numpy()
    arpa = [total / months if months else None
            for total, months in zip(mrr_total, result["client_months"])]
    result["arpa"] = [quantize(value, MONEY) for value in arpa]
    lost = per["churn_clients"].fillna(0).astype(int).to_numpy()
    start = per["clients_start"].fillna(0).astype(int).to_numpy()
    result["churn"] = _percent(pd.Series(lost), pd.Series(start))
    result["clv"] = [quantize(value * int(s) / int(n), MONEY) if value is not None and n
                     else None for value, n, s in zip(arpa, lost, start)]
    revenue = actual["revenue"].to_numpy()
    payers = actual["payers"].fillna(0).astype(int).to_numpy()
    result["payers"] = payers
    result["revenue"] = [quantize(value, MONEY) if not pd.isna(value) else None
                         for value in revenue]
    result["revenue_per_client"] = [quantize(Decimal(str(value)) / count, MONEY) if count else None
                                    for value, count in zip(revenue, payers)]
    columns = [CURRENCY,
               ResultColumn("client_months", "Paying client-months", INTEGER, is_value=True),
               ResultColumn("arpa", "Average MRR per client", MONEY, is_value=True),
               ResultColumn("churn", "Monthly client churn %", NUMBER, is_value=True),
               ResultColumn("clv", "Lifetime value (ARPA / churn)", MONEY, is_value=True),
               ResultColumn("payers", "Clients who paid", INTEGER, is_value=True),
               ResultColumn("revenue", "Received less refunds", MONEY, is_value=True),
               ResultColumn("revenue_per_client", "Actual revenue per client", MONEY,
                            is_value=True)]
    return _result(definition, ctx, columns, result)


# -- orders and tickets ----------------------------------------------------------------

@special("order_funnel", "orders")
def order_funnel(definition, ctx, dataset, filters) -> ReportResult:
    """Orders placed per month; of them, those paid (their invoice is Paid, or they
    cost nothing) and those active (accepted: status Active)."""
    base, where = filtered_base(ctx, dataset, filters)
    month = time_bucket(base.c.date, "month", ctx.dialect).label("month")
    paid = or_(base.c.invoice_status == "Paid", base.c.amount == 0)
    active = base.c.status == OrderStatus.ACTIVE.value
    statement = (select(month, func.count().label("orders"),
                        func.sum(case((paid, 1), else_=0)).label("paid"),
                        func.sum(case((active, 1), else_=0)).label("active"))
                 .where(*where).group_by(month).order_by(month))
    frame = pd.DataFrame([tuple(row) for row in db.session.execute(statement)],
                         columns=["month", "orders", "paid", "active"])
    frame["month"] = frame["month"].map(lambda value: quantize(value, DATE))
    for name in ("orders", "paid", "active"):
        frame[name] = frame[name].astype(int)
    frame["paid_pct"] = _percent(frame["paid"], frame["orders"])
    frame["active_pct"] = _percent(frame["active"], frame["orders"])
    columns = [MONTH, ResultColumn("orders", "Orders", INTEGER, is_value=True),
               ResultColumn("paid", "Paid", INTEGER, is_value=True),
               ResultColumn("active", "Active", INTEGER, is_value=True),
               ResultColumn("paid_pct", "Paid %", NUMBER, is_value=True),
               ResultColumn("active_pct", "Active %", NUMBER, is_value=True)]
    return _result(definition, ctx, columns, frame)


TICKET_GROUPS = {"department": "Department", "staff": "Assigned to"}


@special("ticket_metrics", "tickets")
def ticket_metrics(definition, ctx, dataset, filters) -> ReportResult:
    """Per department (params by=department) or staff member (by=staff): tickets,
    how many got an answer and the average hours to it, how many were closed and the
    average hours to closing, and the clients' ratings of staff replies (1-5)."""
    by = definition.params.get("by", "department")
    if by not in TICKET_GROUPS:
        raise ReportError(f"by must be one of {', '.join(TICKET_GROUPS)}")
    base, where = filtered_base(ctx, dataset, filters)
    rated = TicketReply.rating.is_not(None)
    ratings = (select(TicketReply.ticket_id, func.sum(TicketReply.rating).label("points"),
                      func.count(TicketReply.rating).label("ratings"))
               .where(rated).group_by(TicketReply.ticket_id).subquery("ratings"))
    group = base.c[by]
    statement = (
        select(group.label("grouping"), func.count().label("tickets"),
               func.count(base.c.first_response_at).label("answered"),
               func.avg(base.c.response_hours).label("response"),
               func.count(base.c.closed_at).label("closed"),
               func.avg(base.c.resolution_hours).label("resolution"),
               func.coalesce(func.sum(ratings.c.ratings), 0).label("ratings"),
               func.sum(ratings.c.points).label("points"))
        .select_from(base.outerjoin(ratings, ratings.c.ticket_id == base.c.ticket_id))
        .where(*where).group_by(group).order_by(group))
    frame = pd.DataFrame([tuple(row) for row in db.session.execute(statement)],
                         columns=["grouping", "tickets", "answered", "response", "closed",
                                  "resolution", "ratings", "points"])
    for name in ("tickets", "answered", "closed", "ratings"):
        frame[name] = frame[name].astype(int)
    for name in ("response", "resolution"):
        frame[name] = frame[name].map(lambda value: quantize(value, NUMBER)).astype(object)
    frame["rating"] = [(Decimal(str(points)) / count).quantize(PERCENT, ROUND_HALF_UP)
                       if count else None for points, count in zip(frame["points"], frame["ratings"])]
    columns = [ResultColumn("grouping", TICKET_GROUPS[by], TEXT),
               ResultColumn("tickets", "Tickets", INTEGER, is_value=True),
               ResultColumn("answered", "Answered", INTEGER, is_value=True),
               ResultColumn("response", "Avg hours to first response", NUMBER, is_value=True),
               ResultColumn("closed", "Closed", INTEGER, is_value=True),
               ResultColumn("resolution", "Avg hours to resolution", NUMBER, is_value=True),
               ResultColumn("ratings", "Ratings", INTEGER, is_value=True),
               ResultColumn("rating", "Avg rating (1-5)", NUMBER, is_value=True)]
    return _result(definition, ctx, columns, frame)


# Age of an open ticket in whole business days since it was opened: (from, label).
OPEN_TICKET_AGES = ((0, "Opened today"), (1, "1-2 days"), (3, "3-6 days"), (7, "7-29 days"),
                    (30, "30 days or more"))
PRIORITY_ORDER = ("High", "Medium", "Low")


def ticket_age(days: int) -> str:
    return next(label for start, label in reversed(OPEN_TICKET_AGES) if days >= start)


@special("open_tickets", "tickets")
def open_tickets(definition, ctx, dataset, filters) -> ReportResult:
    """Tickets waiting on staff (Open, Customer-Reply, In Progress, On Hold) by
    department, status, priority and age (days since opened): how many, the oldest
    one's age, and their ticket numbers, oldest first. Open tickets are few, so they
    are read one by one and grouped here."""
    base, where = filtered_base(ctx, dataset, filters)
    statement = (select(base.c.department, base.c.status, base.c.priority, base.c.tid,
                        base.c.created)
                 .where(*where, base.c.status.in_(OPEN_TICKET_STATUSES))
                 .order_by(base.c.created, base.c.ticket_id))
    groups: dict[tuple, dict] = {}
    for department, status, priority, tid, created in db.session.execute(statement):
        days = max(0, (ctx.today - business_date(created)).days)
        group = groups.setdefault((department, status, priority, ticket_age(days)),
                                  {"tickets": 0, "oldest_days": days, "numbers": []})
        group["tickets"] += 1
        group["oldest_days"] = max(group["oldest_days"], days)
        group["numbers"].append(f"#{tid}")
    ages = [label for _, label in OPEN_TICKET_AGES]

    def order(key: tuple) -> tuple:
        department, status, priority, age = key
        return (department, OPEN_TICKET_STATUSES.index(status),
                PRIORITY_ORDER.index(priority) if priority in PRIORITY_ORDER else len(PRIORITY_ORDER),
                str(priority), ages.index(age))

    columns = [ResultColumn("department", "Department", TEXT),
               ResultColumn("status", "Status", TEXT),
               ResultColumn("priority", "Priority", TEXT),
               ResultColumn("age", "Age", TEXT),
               ResultColumn("tickets", "Tickets", INTEGER, is_value=True),
               ResultColumn("oldest_days", "Oldest (days)", INTEGER, is_value=True,
                            charted=False),
               ResultColumn("ticket_list", "Tickets, oldest first", TEXT, is_value=True)]
    records = [{"department": key[0], "status": key[1], "priority": key[2], "age": key[3],
                "tickets": group["tickets"], "oldest_days": group["oldest_days"],
                "ticket_list": ", ".join(group["numbers"])}
               for key, group in sorted(groups.items(), key=lambda item: order(item[0]))]
    frame = pd.DataFrame(records, columns=[column.name for column in columns], dtype=object)
    return _result(definition, ctx, columns, frame)
