"""Small builders of valid rows for tests (call inside an app context)."""
from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from app.extensions import db
from app.models.catalog import Currency, Product, ProductGroup, ProductPricing
from app.models.clients import Client
from app.models.domains import Domain
from app.models.orders import Service

_seq = itertools.count(1)


def currency(code: str = "USD", default: bool = True, rate: str = "1") -> Currency:
    found = db.session.query(Currency).filter_by(code=code).one_or_none()
    if found:
        return found
    row = Currency(code=code, prefix="$" if code == "USD" else "", suffix="" if code == "USD" else f" {code}",
                   rate=Decimal(rate), is_default=default)
    db.session.add(row)
    db.session.flush()
    return row


def client(**fields) -> Client:
    n = next(_seq)
    values = dict(first_name="Ada", last_name=f"Client{n}", email=f"client{n}@example.test",
                  country="US", currency_id=currency().id)
    values.update(fields)
    row = Client(**values)
    db.session.add(row)
    db.session.flush()
    return row


def product(price: str = "10.00", cycle: str = "Monthly", setup_fee: str = "0.00", **fields) -> Product:
    n = next(_seq)
    group = db.session.query(ProductGroup).first()
    if group is None:
        group = ProductGroup(name="Shared Hosting", slug="shared-hosting")
        db.session.add(group)
        db.session.flush()
    values = dict(name=f"Plan {n}", slug=f"plan-{n}", group_id=group.id)
    values.update(fields)
    row = Product(**values)
    db.session.add(row)
    db.session.flush()
    db.session.add(ProductPricing(product_id=row.id, currency_id=currency().id, cycle=cycle,
                                  price=Decimal(price), setup_fee=Decimal(setup_fee)))
    db.session.flush()
    return row


def service(client_row: Client, product_row: Product, amount: str = "10.00",
            cycle: str = "Monthly", next_due: date | None = None, status: str = "Active",
            **fields) -> Service:
    values = dict(client_id=client_row.id, product_id=product_row.id, billing_cycle=cycle,
                  recurring_amount=Decimal(amount), first_payment_amount=Decimal(amount),
                  status=status, next_due_date=next_due, next_invoice_date=next_due,
                  domain=f"site{next(_seq)}.example")
    values.update(fields)
    row = Service(**values)
    db.session.add(row)
    db.session.flush()
    return row


def domain(client_row: Client, name: str | None = None, **fields) -> Domain:
    values = dict(client_id=client_row.id, name=name or f"domain{next(_seq)}.com",
                  status="Active", recurring_amount=Decimal("12.00"))
    values.update(fields)
    row = Domain(**values)
    db.session.add(row)
    db.session.flush()
    return row
