"""Headline figures for the staff dashboard, aggregated in SQL."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from app.models.base import money
from app.models.billing import Invoice, InvoiceStatus, Transaction
from app.models.catalog import Currency
from app.models.clients import Client, ClientStatus
from app.models.orders import Order, OrderStatus, Service, ServiceStatus
from app.models.support import Ticket, TicketStatus

OPEN_TICKET_STATUSES = (TicketStatus.OPEN, TicketStatus.CUSTOMER_REPLY, TicketStatus.IN_PROGRESS,
                        TicketStatus.ON_HOLD)


@dataclass
class DashboardStats:
    active_clients: int
    active_services: int
    pending_orders: int
    unpaid_invoices: int
    overdue_invoices: int
    open_tickets: int
    awaiting_reply: int
    # Amounts per currency code: money in different currencies is never added up.
    income_this_month: dict[str, Decimal] = field(default_factory=dict)
    income_last_month: dict[str, Decimal] = field(default_factory=dict)
    overdue_amount: dict[str, Decimal] = field(default_factory=dict)


def month_start(day: date, months_back: int = 0) -> date:
    """The first day of the month `months_back` months before day's (negative: after)."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _count(statement) -> int:
    return db.session.execute(statement).scalar_one()


def _by_currency(statement) -> dict[str, Decimal]:
    return {code: money(total) for code, total in db.session.execute(statement) if total}


def income_between(start: date, end: date) -> dict[str, Decimal]:
    """Money received less refunds, per currency, for start <= day < end."""
    return _by_currency(
        select(Currency.code, func.sum(Transaction.amount_in - Transaction.amount_out))
        .join(Currency, Currency.id == Transaction.currency_id)
        .where(Transaction.date >= start, Transaction.date < end)
        .group_by(Currency.code)
    )


def dashboard_stats(today: date) -> DashboardStats:
    unpaid = Invoice.status == InvoiceStatus.UNPAID
    overdue = unpaid & (Invoice.due_date < today)
    this_month = month_start(today)
    return DashboardStats(
        active_clients=_count(select(func.count()).where(Client.status == ClientStatus.ACTIVE)),
        active_services=_count(select(func.count()).where(Service.status == ServiceStatus.ACTIVE)),
        pending_orders=_count(select(func.count()).where(Order.status == OrderStatus.PENDING)),
        unpaid_invoices=_count(select(func.count()).select_from(Invoice).where(unpaid)),
        overdue_invoices=_count(select(func.count()).select_from(Invoice).where(overdue)),
        open_tickets=_count(select(func.count()).where(Ticket.status.in_(OPEN_TICKET_STATUSES))),
        awaiting_reply=_count(select(func.count()).where(
            Ticket.status.in_((TicketStatus.OPEN, TicketStatus.CUSTOMER_REPLY)))),
        income_this_month=income_between(this_month, month_start(today, -1)),
        income_last_month=income_between(month_start(today, 1), this_month),
        overdue_amount=_by_currency(
            select(Currency.code, func.sum(Invoice.total - Invoice.amount_paid))
            .join(Currency, Currency.id == Invoice.currency_id)
            .where(overdue).group_by(Currency.code)
        ),
    )


def overdue_invoices(today: date, limit: int = 8) -> list[Invoice]:
    return list(db.session.scalars(
        select(Invoice).where(Invoice.status == InvoiceStatus.UNPAID, Invoice.due_date < today)
        .order_by(Invoice.due_date).limit(limit)
    ))


def tickets_awaiting_reply(limit: int = 8) -> list[Ticket]:
    return list(db.session.scalars(
        select(Ticket).where(Ticket.status.in_((TicketStatus.OPEN, TicketStatus.CUSTOMER_REPLY)))
        .order_by(Ticket.last_reply_at).limit(limit)
    ))
