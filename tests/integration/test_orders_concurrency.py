"""Orders under concurrency: a promotion's maximum uses and a once-only set-up hold
when orders and payments arrive at the same moment (threads on PostgreSQL, one after
the other on SQLite: the same outcome either way)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from app.billing.payments import apply_payment
from app.extensions import db as _db
from app.models.billing import Invoice
from app.models.orders import Order, Promotion, Service
from app.models.support import Ticket
from app.orders.cart import Cart, CartLine, OrderError
from app.orders.checkout import create_order
from tests import factories, orders_catalog
from tests.integration.test_numbering_concurrency import run_workers

D = Decimal
TODAY = date(2026, 12, 5)


def test_a_promotion_is_never_used_more_than_its_maximum(app, db):
    shop = orders_catalog.build()
    promo = orders_catalog.promotion("RUSH", "Percentage", "50", max_uses=2)
    client_ids = [factories.client().id for _ in range(5)]
    db.session.commit()
    product_id = shop.product.id  # read here: the workers must not touch this session
    refused: list[str] = []

    def place(client_id: int, n: int):
        def work():
            cart = Cart("USD", [CartLine("product", product_id, "Monthly", domain=f"rush{n}.example")],
                        promo_code="RUSH")
            try:
                create_order(cart, client_id, "banktransfer", None, today=TODAY)
                _db.session.commit()
            except OrderError as error:
                _db.session.rollback()
                refused.append(str(error))
        return work

    errors = run_workers(app, [place(client_id, n) for n, client_id in enumerate(client_ids)])
    assert errors == []
    db.session.expire_all()
    assert db.session.get(Promotion, promo.id).uses == 2
    assert db.session.scalar(select(func.count()).select_from(Order)) == 2
    assert len(refused) == 3 and all("maximum number of times" in reason for reason in refused)


def test_two_payments_at_once_set_the_order_up_once(app, db):
    shop = orders_catalog.build()
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="twice.example")])
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    invoice_id, total = order.invoice_id, db.session.get(Invoice, order.invoice_id).total
    customer_id = customer.id

    def pay(reference: str):
        def work():
            apply_payment(invoice_id, total, "USD", "banktransfer", reference)
            _db.session.commit()
        return work

    errors = run_workers(app, [pay(f"WIRE-{n}") for n in range(3)])
    assert errors == []
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "Active"
    assert db.session.scalar(select(Service)).status == "Active"
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert db.session.get(type(customer), customer_id).credit_balance == total * 2
