"""AddOrder (WHMCS API over HTTP) and the store's order engine accept only a payment
method the store offers: an enabled gateway taking the client's currency. An unknown
or disabled gateway is refused in WHMCS's error shape and nothing is created."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models.billing import Invoice, PaymentGateway
from app.models.domains import Domain
from app.models.orders import Order, Service
from app.models.system import ActivityLog
from app.orders.cart import Cart, CartLine, OrderError
from app.orders.checkout import create_order
from tests import factories, orders_catalog
from tests.integration.test_api_whmcs import call


@pytest.fixture
def shop(db):
    shop = orders_catalog.build()
    db.session.add(PaymentGateway(module="paypal", display_name="PayPal", enabled=False))
    db.session.commit()
    return shop


def _counts(db) -> list[int]:
    return [db.session.scalar(select(func.count()).select_from(model))
            for model in (Order, Service, Domain, Invoice)]


@pytest.mark.parametrize("method, why", [
    ("paypal", "'paypal' is not enabled for payments in USD"),
    ("nosuchgateway", "'nosuchgateway' is not a payment method"),
    ("credit", "'credit' pays invoices, not orders (apply credit to the order's invoice)"),
])
def test_add_order_refuses_a_disabled_or_unknown_gateway(client, db, key, shop, method, why):
    customer = factories.client()
    db.session.commit()
    before = _counts(db)
    status, body = call(client, key, "AddOrder", clientid=customer.id, paymentmethod=method,
                        **{"domain[0]": "refused.com", "domaintype[0]": "register"})
    assert body == {"result": "error", "message": f"Invalid Payment Method: {why}. "
                                                  "Valid options include banktransfer."}
    assert _counts(db) == before
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.action == "order_created")) is None

    # The same order with the enabled gateway goes through.
    status, body = call(client, key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer",
                        **{"domain[0]": "accepted.com", "domaintype[0]": "register"})
    assert body["result"] == "success", body
    assert db.session.get(Order, body["orderid"]).payment_method == "banktransfer"


def test_store_checkout_engine_refuses_a_gateway_switched_off(db, shop):
    """The store calls the same create_order: a gateway disabled after the cart page was
    drawn is refused there too, and enabling it makes it acceptable."""
    customer = factories.client()
    db.session.commit()
    cart = Cart("USD", [CartLine("domain", domain="store.com", domain_action="register")])
    with pytest.raises(OrderError, match="'paypal' is not enabled"):
        create_order(cart, customer.id, "paypal", None)
    db.session.rollback()
    assert _counts(db) == [0, 0, 0, 0]
    db.session.scalar(select(PaymentGateway).where(PaymentGateway.module == "paypal")).enabled = True
    db.session.commit()
    order = create_order(cart, customer.id, "PayPal", None)
    assert order.payment_method == "paypal"
