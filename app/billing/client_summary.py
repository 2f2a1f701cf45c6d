"""The figures at the top of a client's admin page (WHMCS's client summary),
aggregated in SQL: a handful of queries whatever the size of the account.

Amounts are per currency code: a client's invoices are normally all in its own
currency, but one that changed currency keeps its old invoices in the old one, and
money in two currencies is never added up."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import case, func, select

from app.billing.errors import BillingError
from app.billing.stats import OPEN_TICKET_STATUSES
from app.extensions import db
from app.models.base import money
from app.models.billing import Invoice, InvoiceStatus, Transaction
from app.models.catalog import Currency
from app.models.clients import Client
from app.models.domains import Domain, DomainStatus
from app.models.orders import Service, ServiceStatus
from app.models.support import Ticket


@dataclass(frozen=True)
class ClientSummary:
    client_id: int
    currency_code: str
    credit_balance: Decimal
    active_services: int
    services: int                 # all services, whatever their status
    active_domains: int
    unpaid_invoices: int
    overdue_invoices: int
    open_tickets: int
    # Per currency code; a currency with nothing in it is left out.
    unpaid_amount: dict[str, Decimal] = field(default_factory=dict)
    overdue_amount: dict[str, Decimal] = field(default_factory=dict)
    paid_amount: dict[str, Decimal] = field(default_factory=dict)
    net_income: dict[str, Decimal] = field(default_factory=dict)  # received less refunds


def _amounts(rows, column: str) -> dict[str, Decimal]:
    return {row.code: money(getattr(row, column)) for row in rows if getattr(row, column)}


def client_summary(client_id: int, today: date) -> ClientSummary:
    """The summary of one client as of `today` (an invoice is overdue once its due
    date has passed and it is still Unpaid)."""
    if isinstance(client_id, bool) or not isinstance(client_id, int):
        raise BillingError(f"client id must be an integer, not {client_id!r}")
    if not isinstance(today, date):
        raise BillingError(f"today must be a date, not {today!r}")
    client = db.session.execute(
        select(Client.id, Client.credit_balance, Currency.code)
        .join(Currency, Currency.id == Client.currency_id).where(Client.id == client_id)
    ).one_or_none()
    if client is None:
        raise BillingError(f"client {client_id} does not exist")

    unpaid = Invoice.status == InvoiceStatus.UNPAID.value
    overdue = unpaid & (Invoice.due_date < today)
    balance = Invoice.total - Invoice.amount_paid
    invoices = db.session.execute(
        select(
            Currency.code,
            func.count(case((unpaid, Invoice.id))).label("unpaid_count"),
            func.sum(case((unpaid, balance), else_=0)).label("unpaid"),
            func.count(case((overdue, Invoice.id))).label("overdue_count"),
            func.sum(case((overdue, balance), else_=0)).label("overdue"),
            func.sum(case((Invoice.status == InvoiceStatus.PAID.value, Invoice.total),
                          else_=0)).label("paid"),
        )
        .join(Currency, Currency.id == Invoice.currency_id)
        .where(Invoice.client_id == client_id)
        .group_by(Currency.code)
    ).all()
    income = db.session.execute(
        select(Currency.code,
               func.sum(Transaction.amount_in - Transaction.amount_out).label("net"))
        .join(Currency, Currency.id == Transaction.currency_id)
        .where(Transaction.client_id == client_id)
        .group_by(Currency.code)
    ).all()
    services = db.session.execute(
        select(func.count(Service.id),
               func.count(case((Service.status == ServiceStatus.ACTIVE.value, Service.id))))
        .where(Service.client_id == client_id)
    ).one()
    active_domains = db.session.scalar(
        select(func.count(Domain.id)).where(Domain.client_id == client_id,
                                            Domain.status == DomainStatus.ACTIVE.value))
    open_tickets = db.session.scalar(
        select(func.count(Ticket.id)).where(Ticket.client_id == client_id,
                                            Ticket.status.in_(OPEN_TICKET_STATUSES)))
    return ClientSummary(
        client_id=client.id,
        currency_code=client.code,
        credit_balance=money(client.credit_balance),
        active_services=services[1],
        services=services[0],
        active_domains=active_domains,
        unpaid_invoices=sum(row.unpaid_count for row in invoices),
        overdue_invoices=sum(row.overdue_count for row in invoices),
        open_tickets=open_tickets,
        unpaid_amount=_amounts(invoices, "unpaid"),
        overdue_amount=_amounts(invoices, "overdue"),
        paid_amount=_amounts(invoices, "paid"),
        net_income=_amounts(income, "net"),
    )
