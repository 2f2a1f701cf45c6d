"""Datasets: what a report can be built from.

A dataset is one SQLAlchemy Core select over the billing tables with its useful joins
made once, and every output column declared with a name, a label, a kind (what values
it holds) and a role: a dimension (something to group or filter by) or a measure
(something to add up). Money columns know their currency and the day whose exchange
rate converts them, so a dataset can answer in each row's own currency or in the
default currency."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from sqlalchemy import (
    DateTime, Numeric, String, and_, case, cast, func, literal, select, type_coerce,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from app.models.billing import Invoice, InvoiceItem, ItemType, Transaction
from app.models.catalog import BillingCycle, Currency, ExchangeRate, Product, ProductGroup
from app.models.clients import Client, ClientGroup
from app.models.domains import Domain
from app.models.orders import Order, Service, ServiceStatus
from app.models.support import SupportDepartment, Ticket
from reports.sql import date_of, hours_between, suffix_from_first_dot

# Kinds of values a column holds.
TEXT = "text"
INTEGER = "integer"
NUMBER = "number"
MONEY = "money"
DATE = "date"
DATETIME = "datetime"
BOOLEAN = "boolean"

NUMERIC_KINDS = (INTEGER, NUMBER, MONEY)
TIME_KINDS = (DATE, DATETIME)

DIMENSION = "dimension"
MEASURE = "measure"

# Months in one billing cycle: a recurring amount divided by it is its monthly value.
CYCLE_MONTHS = {
    BillingCycle.MONTHLY.value: 1,
    BillingCycle.QUARTERLY.value: 3,
    BillingCycle.SEMI_ANNUALLY.value: 6,
    BillingCycle.ANNUALLY.value: 12,
    BillingCycle.BIENNIALLY.value: 24,
    BillingCycle.TRIENNIALLY.value: 36,
}

CONVERTED = Numeric(28, 6)


@dataclass(frozen=True)
class QueryContext:
    """What a select depends on besides the definition: the database dialect, the
    day reports count from, and whether money is converted to the default currency."""

    dialect: str
    today: date
    convert: bool = False
    default_currency: str = "USD"
    default_currency_id: int | None = None


Expression = ColumnElement | Callable[[QueryContext], ColumnElement]


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    kind: str
    role: str = DIMENSION
    expr: Expression | None = None
    is_currency: bool = False  # the currency code of the row's money columns

    def expression(self, ctx: QueryContext) -> ColumnElement:
        return self.expr(ctx) if callable(self.expr) else self.expr

    @property
    def is_time(self) -> bool:
        return self.kind in TIME_KINDS

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    description: str
    columns: tuple[Column, ...]
    joins: Callable[[QueryContext], object]     # the FROM clause with its joins
    currency_id: ColumnElement | None = None    # currency of the money columns
    rate_day: Expression | None = None          # the day whose rate converts them
    default_time: str | None = None             # the column time charts use first
    where: Callable[[QueryContext], ColumnElement] | None = None
    _by_name: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({column.name: column for column in self.columns})

    def column(self, name: str) -> Column | None:
        return self._by_name.get(name)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def dimensions(self) -> list[Column]:
        return [column for column in self.columns if column.role == DIMENSION]

    @property
    def measures(self) -> list[Column]:
        return [column for column in self.columns if column.role == MEASURE]

    def select(self, ctx: QueryContext) -> Select:
        """Every declared column, labelled by its name; money converted when asked."""
        from_clause = self.joins(ctx)
        divisor = None
        if ctx.convert and self.currency_id is not None:
            day = self.rate_day(ctx) if callable(self.rate_day) else self.rate_day
            # Rates are kept per day: an equi-join finds most rows' rate cheaply; only
            # rows of a day without a rate look further back, one by one.
            daily = aliased(ExchangeRate)
            day_key = date_of(day, ctx.dialect) if isinstance(day.type, DateTime) else day
            from_clause = from_clause.outerjoin(
                daily, and_(daily.currency_id == self.currency_id, daily.day == day_key))
            divisor = func.nullif(func.coalesce(daily.rate, rate_as_of(self.currency_id, day)), 0)
        outputs = []
        for column in self.columns:
            expr = column.expression(ctx)
            if divisor is not None and column.kind == MONEY:
                # The default currency is its own unit: no rate to look up.
                expr = type_coerce(case((self.currency_id == ctx.default_currency_id, expr),
                                        else_=expr / divisor), CONVERTED)
            elif ctx.convert and column.is_currency:
                expr = literal(ctx.default_currency)
            outputs.append(expr.label(column.name))
        statement = select(*outputs).select_from(from_clause)
        if self.where is not None:
            statement = statement.where(self.where(ctx))
        return statement


def rate_as_of(currency_id: ColumnElement, day: ColumnElement) -> ColumnElement:
    """Units of a currency for one unit of the default currency on a day: the newest
    daily rate on or before it, else the currency's current rate."""
    rates = aliased(ExchangeRate)
    currencies = aliased(Currency)
    daily = (select(rates.rate)
             .where(rates.currency_id == currency_id, rates.day <= day)
             .order_by(rates.day.desc()).limit(1).scalar_subquery())
    current = select(currencies.rate).where(currencies.id == currency_id).scalar_subquery()
    return func.coalesce(daily, current)


def client_name(client=Client) -> ColumnElement:
    return func.coalesce(func.nullif(client.company_name, ""),
                         client.first_name + " " + client.last_name)


def monthly_amount(amount: ColumnElement, cycle: ColumnElement) -> ColumnElement:
    """A recurring amount as its value per month (0 for free and one-time)."""
    return type_coerce(case(
        *[(cycle == name, amount / months) for name, months in CYCLE_MONTHS.items()],
        else_=0,
    ), CONVERTED)


def _today(ctx: QueryContext) -> ColumnElement:
    return literal(ctx.today)


# -- the datasets -------------------------------------------------------------------

def _client_columns(client=Client) -> tuple[Column, ...]:
    return (
        Column("client_id", "Client ID", INTEGER, expr=client.id),
        Column("client", "Client", TEXT, expr=client_name(client)),
        # The name alone can belong to two clients: grouping by this keeps them apart.
        Column("client_ref", "Client (with ID)", TEXT,
               expr=client_name(client) + " #" + cast(client.id, String)),
        Column("client_country", "Client country", TEXT, expr=client.country),
    )


INVOICES = Dataset(
    name="invoices",
    label="Invoices",
    description="One row per invoice, with its client, client group and currency.",
    columns=(
        Column("invoice_id", "Invoice ID", INTEGER, expr=Invoice.id),
        Column("number", "Number", TEXT, expr=Invoice.number),
        *_client_columns(),
        Column("client_group", "Client group", TEXT,
               expr=func.coalesce(ClientGroup.name, "(no group)")),
        Column("currency", "Currency", TEXT, expr=Currency.code, is_currency=True),
        Column("status", "Status", TEXT, expr=Invoice.status),
        Column("date", "Invoice date", DATE, expr=Invoice.date),
        Column("due_date", "Due date", DATE, expr=Invoice.due_date),
        Column("paid_at", "Paid at", DATETIME, expr=Invoice.paid_at),
        Column("tax1_name", "Tax 1", TEXT, expr=Invoice.tax1_name),
        Column("tax1_rate", "Tax 1 rate %", NUMBER, expr=Invoice.tax1_rate),
        Column("tax2_name", "Tax 2", TEXT, expr=Invoice.tax2_name),
        Column("tax2_rate", "Tax 2 rate %", NUMBER, expr=Invoice.tax2_rate),
        Column("subtotal", "Subtotal", MONEY, MEASURE, expr=Invoice.subtotal),
        Column("tax1", "Tax 1 amount", MONEY, MEASURE, expr=Invoice.tax1),
        Column("tax2", "Tax 2 amount", MONEY, MEASURE, expr=Invoice.tax2),
        Column("tax", "Tax", MONEY, MEASURE, expr=Invoice.tax1 + Invoice.tax2),
        Column("total", "Total", MONEY, MEASURE, expr=Invoice.total),
        Column("amount_paid", "Amount paid", MONEY, MEASURE, expr=Invoice.amount_paid),
        Column("balance", "Balance", MONEY, MEASURE, expr=Invoice.total - Invoice.amount_paid),
    ),
    joins=lambda ctx: Invoice.__table__
    .join(Client, Client.id == Invoice.client_id)
    .outerjoin(ClientGroup, ClientGroup.id == Client.group_id)
    .join(Currency, Currency.id == Invoice.currency_id),
    currency_id=Invoice.currency_id,
    rate_day=Invoice.date,
    default_time="date",
)

# Invoice lines that bill a service carry the service id in rel_id.
SERVICE_ITEM_TYPES = (ItemType.HOSTING.value, ItemType.SETUP.value, ItemType.PROMO.value)
DOMAIN_ITEM_TYPES = (ItemType.DOMAIN_REGISTER.value, ItemType.DOMAIN_TRANSFER.value,
                     ItemType.DOMAIN_RENEW.value, ItemType.DOMAIN_ADDON_DNS.value,
                     ItemType.DOMAIN_ADDON_EMF.value, ItemType.DOMAIN_ADDON_IDP.value)

INVOICE_ITEMS = Dataset(
    name="invoice_items",
    label="Invoice items",
    description="One row per invoice line, with the product and product group of the "
                "service it bills.",
    columns=(
        Column("item_id", "Item ID", INTEGER, expr=InvoiceItem.id),
        Column("invoice_id", "Invoice ID", INTEGER, expr=Invoice.id),
        Column("invoice_number", "Invoice number", TEXT, expr=Invoice.number),
        Column("invoice_date", "Invoice date", DATE, expr=Invoice.date),
        Column("invoice_status", "Invoice status", TEXT, expr=Invoice.status),
        *_client_columns(),
        Column("currency", "Currency", TEXT, expr=Currency.code, is_currency=True),
        Column("type", "Type", TEXT, expr=func.coalesce(func.nullif(InvoiceItem.type, ""),
                                                        "Manual")),
        Column("description", "Description", TEXT, expr=InvoiceItem.description),
        Column("product", "Product", TEXT, expr=Product.name),
        Column("product_group", "Product group", TEXT, expr=case(
            (ProductGroup.name.is_not(None), ProductGroup.name),
            (InvoiceItem.type.in_(DOMAIN_ITEM_TYPES), "Domains"),
            else_="Other",
        )),
        Column("amount", "Amount", MONEY, MEASURE, expr=InvoiceItem.amount),
    ),
    joins=lambda ctx: InvoiceItem.__table__
    .join(Invoice, Invoice.id == InvoiceItem.invoice_id)
    .join(Client, Client.id == Invoice.client_id)
    .join(Currency, Currency.id == Invoice.currency_id)
    .outerjoin(Service, and_(Service.id == InvoiceItem.rel_id,
                             InvoiceItem.type.in_(SERVICE_ITEM_TYPES)))
    .outerjoin(Product, Product.id == Service.product_id)
    .outerjoin(ProductGroup, ProductGroup.id == Product.group_id),
    currency_id=Invoice.currency_id,
    rate_day=Invoice.date,
    default_time="invoice_date",
)

TRANSACTIONS = Dataset(
    name="transactions",
    label="Transactions",
    description="Money received and refunded, per gateway, with the client's country.",
    columns=(
        Column("transaction_id", "Transaction ID", INTEGER, expr=Transaction.id),
        Column("date", "Date", DATETIME, expr=Transaction.date),
        Column("gateway", "Gateway", TEXT, expr=Transaction.gateway),
        Column("currency", "Currency", TEXT, expr=Currency.code, is_currency=True),
        *_client_columns(),
        Column("invoice_id", "Invoice ID", INTEGER, expr=Transaction.invoice_id),
        Column("description", "Description", TEXT, expr=Transaction.description),
        Column("amount_in", "Amount in", MONEY, MEASURE, expr=Transaction.amount_in),
        Column("amount_out", "Amount out", MONEY, MEASURE, expr=Transaction.amount_out),
        Column("net_amount", "Net income", MONEY, MEASURE,
               expr=Transaction.amount_in - Transaction.amount_out),
        Column("fees", "Fees", MONEY, MEASURE, expr=Transaction.fees),
    ),
    joins=lambda ctx: Transaction.__table__
    .join(Client, Client.id == Transaction.client_id)
    .join(Currency, Currency.id == Transaction.currency_id),
    currency_id=Transaction.currency_id,
    rate_day=Transaction.date,
    default_time="date",
)

CLIENTS = Dataset(
    name="clients",
    label="Clients",
    description="One row per client account.",
    columns=(
        *_client_columns(),
        Column("email", "Email", TEXT, expr=Client.email),
        Column("company", "Company", TEXT, expr=Client.company_name),
        Column("client_group", "Client group", TEXT,
               expr=func.coalesce(ClientGroup.name, "(no group)")),
        Column("currency", "Currency", TEXT, expr=Currency.code, is_currency=True),
        Column("status", "Status", TEXT, expr=Client.status),
        Column("created", "Signed up", DATETIME, expr=Client.created_at),
        Column("credit_balance", "Credit balance", MONEY, MEASURE, expr=Client.credit_balance),
    ),
    joins=lambda ctx: Client.__table__
    .outerjoin(ClientGroup, ClientGroup.id == Client.group_id)
    .join(Currency, Currency.id == Client.currency_id),
    currency_id=Client.currency_id,
    rate_day=_today,
    default_time="created",
)

LIVE_SERVICE_STATUSES = (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)


def _service_end(ctx: QueryContext) -> ColumnElement:
    """The day a service stopped being billed: none while it is live; else its
    termination date, or the day its row last changed when that is missing."""
    return case(
        (Service.status.in_(LIVE_SERVICE_STATUSES), None),
        else_=func.coalesce(Service.termination_date, date_of(Service.updated_at, ctx.dialect)),
    )


SERVICES = Dataset(
    name="services",
    label="Services",
    description="Products clients have, with their client group, cycle and recurring "
                "amount (in the client's currency) and that amount per month.",
    columns=(
        Column("service_id", "Service ID", INTEGER, expr=Service.id),
        *_client_columns(),
        Column("client_group", "Client group", TEXT,
               expr=func.coalesce(ClientGroup.name, "(no group)")),
        Column("product", "Product", TEXT, expr=Product.name),
        Column("product_group", "Product group", TEXT, expr=ProductGroup.name),
        Column("billing_cycle", "Billing cycle", TEXT, expr=Service.billing_cycle),
        Column("status", "Status", TEXT, expr=Service.status),
        Column("currency", "Currency", TEXT, expr=Currency.code, is_currency=True),
        Column("registration_date", "Registered", DATE, expr=Service.registration_date),
        Column("next_due_date", "Next due", DATE, expr=Service.next_due_date),
        Column("termination_date", "Terminated", DATE, expr=Service.termination_date),
        Column("end_date", "Ended", DATE, expr=_service_end),
        Column("recurring_amount", "Recurring amount", MONEY, MEASURE,
               expr=Service.recurring_amount),
        Column("monthly_amount", "Monthly amount", MONEY, MEASURE,
               expr=monthly_amount(Service.recurring_amount, Service.billing_cycle)),
    ),
    joins=lambda ctx: Service.__table__
    .join(Client, Client.id == Service.client_id)
    .outerjoin(ClientGroup, ClientGroup.id == Client.group_id)
    .join(Currency, Currency.id == Client.currency_id)
    .join(Product, Product.id == Service.product_id)
    .join(ProductGroup, ProductGroup.id == Product.group_id),
    currency_id=Client.currency_id,
    rate_day=_today,
    default_time="registration_date",
)

DOMAINS = Dataset(
    name="domains",
    label="Domains",
    description="Clients' domain names with TLD, expiry and renewal amount (in the "
                "client's currency).",
    columns=(
        Column("domain_id", "Domain ID", INTEGER, expr=Domain.id),
        Column("domain", "Domain", TEXT, expr=Domain.name),
        Column("tld", "TLD", TEXT,
               expr=lambda ctx: suffix_from_first_dot(Domain.name, ctx.dialect)),
        *_client_columns(),
        Column("currency", "Currency", TEXT, expr=Currency.code, is_currency=True),
        Column("status", "Status", TEXT, expr=Domain.status),
        Column("registrar", "Registrar", TEXT, expr=Domain.registrar),
        Column("registration_date", "Registered", DATE, expr=Domain.registration_date),
        Column("expiry_date", "Expires", DATE, expr=Domain.expiry_date),
        Column("next_due_date", "Next due", DATE, expr=Domain.next_due_date),
        Column("recurring_amount", "Renewal amount", MONEY, MEASURE,
               expr=Domain.recurring_amount),
    ),
    joins=lambda ctx: Domain.__table__
    .join(Client, Client.id == Domain.client_id)
    .join(Currency, Currency.id == Client.currency_id),
    currency_id=Client.currency_id,
    rate_day=_today,
    default_time="next_due_date",
)


def _staff_join(ctx: QueryContext):
    from flask_appbuilder.security.sqla.models import User

    return (Ticket.__table__
            .join(SupportDepartment, SupportDepartment.id == Ticket.department_id)
            .outerjoin(Client, Client.id == Ticket.client_id)
            .outerjoin(User, User.id == Ticket.assigned_to_id))


def _staff_name(ctx: QueryContext) -> ColumnElement:
    from flask_appbuilder.security.sqla.models import User

    return func.coalesce(User.username, "(unassigned)")


TICKETS = Dataset(
    name="tickets",
    label="Tickets",
    description="Support tickets with department, priority, first response time and the "
                "staff member they are assigned to.",
    columns=(
        Column("ticket_id", "Ticket ID", INTEGER, expr=Ticket.id),
        Column("tid", "Ticket", TEXT, expr=Ticket.tid),
        Column("subject", "Subject", TEXT, expr=Ticket.subject),
        Column("department", "Department", TEXT, expr=SupportDepartment.name),
        Column("status", "Status", TEXT, expr=Ticket.status),
        Column("priority", "Priority", TEXT, expr=Ticket.priority),
        Column("client", "Client", TEXT, expr=func.coalesce(client_name(), Ticket.name)),
        Column("staff", "Assigned to", TEXT, expr=_staff_name),
        Column("created", "Opened", DATETIME, expr=Ticket.created_at),
        Column("first_response_at", "First response", DATETIME, expr=Ticket.first_response_at),
        Column("closed_at", "Closed", DATETIME, expr=Ticket.closed_at),
        Column("response_hours", "Hours to first response", NUMBER, MEASURE,
               expr=lambda ctx: hours_between(Ticket.created_at, Ticket.first_response_at,
                                              ctx.dialect)),
        Column("resolution_hours", "Hours to resolution", NUMBER, MEASURE,
               expr=lambda ctx: hours_between(Ticket.created_at, Ticket.closed_at,
                                              ctx.dialect)),
    ),
    joins=_staff_join,
    default_time="created",
)

OrderInvoice = Invoice.__table__.alias("order_invoice")

ORDERS = Dataset(
    name="orders",
    label="Orders",
    description="Orders placed, with the status of their invoice (read from the order "
                "tables only).",
    columns=(
        Column("order_id", "Order ID", INTEGER, expr=Order.id),
        Column("order_number", "Order number", TEXT, expr=Order.order_number),
        *_client_columns(),
        Column("currency", "Currency", TEXT, expr=Currency.code, is_currency=True),
        Column("status", "Status", TEXT, expr=Order.status),
        Column("payment_method", "Payment method", TEXT, expr=Order.payment_method),
        Column("date", "Ordered", DATETIME, expr=Order.created_at),
        Column("accepted_at", "Accepted", DATETIME, expr=Order.accepted_at),
        Column("invoice_status", "Invoice status", TEXT,
               expr=func.coalesce(OrderInvoice.c.status, "(no invoice)")),
        Column("amount", "Amount", MONEY, MEASURE, expr=Order.amount),
    ),
    joins=lambda ctx: Order.__table__
    .join(Client, Client.id == Order.client_id)
    .join(Currency, Currency.id == Order.currency_id)
    .outerjoin(OrderInvoice, OrderInvoice.c.id == Order.invoice_id),
    currency_id=Order.currency_id,
    rate_day=Order.created_at,
    default_time="date",
)

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (INVOICES, INVOICE_ITEMS, TRANSACTIONS, CLIENTS, SERVICES, DOMAINS, TICKETS,
                    ORDERS)
}


def get_dataset(name: str) -> Dataset | None:
    return DATASETS.get(name)
