"""End to end through the portal over real HTTP, for Authorize.net and BTCPay: an unpaid
invoice, the client picks the gateway in the portal, pays on the (fake) vendor's page,
the vendor's signed webhook reaches the running app, the invoice is Paid, the return
page says so, and staff see the transaction (with its fee) in the transactions list."""
from __future__ import annotations

import re
from decimal import Decimal
from html import unescape
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.billing import Invoice, Transaction
from app.models.gateways import GatewayEvent
from tests.fakes.authorizenet_server import add_authorizenet_gateway, fake_authorizenet  # noqa: F401
from tests.fakes.base import live_app  # noqa: F401  (fixture)
from tests.fakes.btcpay_server import add_btcpay_gateway, fake_btcpay  # noqa: F401
from tests.helpers import admin_transactions, connect_gateway, follow_back
from tests.integration.test_portal_world import client_a, text_of, world  # noqa: F401

D = Decimal


def invoice_state(app, invoice_id: int) -> tuple:
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        payments = db.session.execute(select(Transaction.gateway, Transaction.amount_in, Transaction.fees)
                                      .where(Transaction.invoice_id == invoice_id)).all()
        return invoice.status, invoice.amount_paid, invoice.payment_method, [tuple(p) for p in payments]


def test_paying_with_authorize_net_from_the_portal(app, client_a, world, fake_authorizenet, live_app,
                                                   admin_client):
    connect_gateway(app, add_authorizenet_gateway, fake_authorizenet, live_app, "authorizenet")
    invoice_id = world["a"]["invoice"]
    assert 'id="pay-with-authorizenet"' in text_of(client_a.get(f"/portal/invoices/{invoice_id}"))

    # The browser's amount is ignored; the page posts the form token to the hosted form.
    page = client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "authorizenet",
                                                                    "amount": "1.00"})
    assert page.status_code == 200
    html = text_of(page)
    # No third-party script on our page: every script is served by the app itself.
    assert "Accept.js" not in html
    assert all(src.startswith("/") for src in re.findall(r'<script[^>]*src="([^"]+)"', html))
    action = re.search(r'<form method="post" action="([^"]+)" id="hosted-payment-form">', html).group(1)
    token = unescape(re.search(r'name="token" value="([^"]+)"', html).group(1))
    assert action == f"{fake_authorizenet.base_url}/payment/payment"
    assert fake_authorizenet.page_tokens[token]["transactionRequest"]["amount"] == "24.00"

    back = fake_authorizenet.customer_pays(SimpleNamespace(url=action, form={"token": token}))
    fake_authorizenet.wait_for_deliveries()
    assert fake_authorizenet.deliveries == [("net.authorize.payment.authcapture.created", 200)]
    # 2.9% + 0.30 of 24.00 = 0.996: the configured fee, rounded.
    assert invoice_state(app, invoice_id) == ("Paid", D("24.00"), "authorizenet",
                                              [("authorizenet", D("24.00"), D("1.00"))])
    result = follow_back(client_a, back)
    assert result.status_code == 200 and 'data-status="succeeded"' in text_of(result)
    assert len(invoice_state(app, invoice_id)[3]) == 1  # the return applied nothing more

    trans_id = fake_authorizenet.last_notification("net.authorize.payment.authcapture.created")["payload"]["id"]
    listed = admin_transactions(admin_client)
    assert trans_id in listed and "<td>24.00 USD</td>" in listed and "<td>1.00 USD</td>" in listed


def test_paying_with_btcpay_from_the_portal(app, client_a, world, fake_btcpay, live_app, admin_client):
    connect_gateway(app, add_btcpay_gateway, fake_btcpay, live_app, "btcpay")
    invoice_id = world["a"]["invoice"]

    start = client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "btcpay"})
    assert start.status_code == 302
    checkout = start.headers["Location"]
    invoice = fake_btcpay.invoice_of_link(checkout)
    assert (invoice["amount"], invoice["currency"], invoice["metadata"]["orderId"]) == ("24.00", "USD",
                                                                                         str(invoice_id))
    fake_btcpay.customer_pays(checkout)
    fake_btcpay.wait_for_deliveries()
    assert invoice_state(app, invoice_id)[:2] == ("Unpaid", D("0.00"))  # waiting for confirmations
    back = fake_btcpay.confirms(invoice["id"])
    fake_btcpay.wait_for_deliveries()
    assert {status for _, status in fake_btcpay.deliveries} == {200}
    assert invoice_state(app, invoice_id) == ("Paid", D("24.00"), "btcpay", [("btcpay", D("24.00"), D("0.00"))])
    with app.app_context():
        outcomes = dict(db.session.execute(select(GatewayEvent.type, GatewayEvent.outcome)).all())
    assert outcomes == {"InvoiceCreated": "ignored", "InvoiceReceivedPayment": "ignored",
                        "InvoiceProcessing": "ignored", "InvoiceSettled": "applied"}

    result = follow_back(client_a, back)
    assert result.status_code == 200 and 'data-status="succeeded"' in text_of(result)
    listed = admin_transactions(admin_client)
    assert invoice["id"] in listed and "<td>24.00 USD</td>" in listed
