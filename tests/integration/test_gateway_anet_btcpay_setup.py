"""Authorize.net and BTCPay are set up like every gateway: a PaymentGateway row made in
the admin (credentials encrypted, never shown again), found by the registry, and in
the demo as disabled gateways."""
import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.billing.invoicing import InvoiceLine, create_invoice
from app.demo import GATEWAYS, _seed_gateways
from app.gateways import processing
from app.gateways.registry import available_gateways, enabled_gateways
from app.models.billing import ItemType, PaymentGateway
from tests import factories
from tests.fakes.authorizenet_server import fake_authorizenet  # noqa: F401  (fixture)
from tests.fakes.btcpay_server import fake_btcpay  # noqa: F401  (fixture)


def credentials_of(name: str, fake) -> dict:
    if name == "authorizenet":
        return {"api_login_id": fake.login, "transaction_key": fake.transaction_key,
                "signature_key": fake.signature_key, "client_key": fake.client_key}
    return {"server_url": fake.base_url, "store_id": fake.store_id, "api_key": fake.api_key,
            "webhook_secret": fake.webhook_secret}


@pytest.mark.parametrize("name, secret_key", [("authorizenet", "transaction_key"), ("btcpay", "api_key")])
def test_staff_set_the_gateway_up_in_the_admin_and_its_secrets_stay_hidden(
        request, admin_client, db, name, secret_key):
    fake = request.getfixturevalue(f"fake_{name}")
    credentials = credentials_of(name, fake)
    answer = admin_client.post("/paymentgatewayview/add", data=dict(
        display_name=f"{name} payments", module=name, enabled="y", test_mode="y", currencies="USD",
        credentials=json.dumps(credentials), surcharge_percent="0", surcharge_fixed="0",
        sort_order="3", instructions=""))
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    row = db.session.scalars(select(PaymentGateway)).one()
    assert json.loads(row.credentials) == credentials
    raw = db.session.connection().exec_driver_sql(
        f"SELECT credentials FROM payment_gateways WHERE id = {row.id}").scalar()
    assert credentials[secret_key] not in raw  # encrypted at rest
    for url in ("/paymentgatewayview/list/", f"/paymentgatewayview/show/{row.id}",
                f"/paymentgatewayview/edit/{row.id}"):
        page = admin_client.get(url)
        assert page.status_code == 200 and credentials[secret_key] not in page.get_data(as_text=True), url
    # The row is what the gateway runs on: a payment starts at the (fake) vendor.
    assert [gateway.name for gateway in enabled_gateways("USD")] == [name]
    invoice = create_invoice(factories.client().id, [InvoiceLine(ItemType.MANUAL, None, "Work", Decimal("12.00"))],
                             issue_date=date(2026, 3, 1))
    start = processing.begin_payment(invoice.id, name, "https://billing.example/return")
    assert start.kind == "redirect" and start.url.startswith(fake.base_url)


def test_the_demo_lists_both_as_disabled_gateways(db):
    _seed_gateways()
    rows = {row.module: row for row in db.session.scalars(select(PaymentGateway))}
    assert {"authorizenet", "btcpay"} <= set(rows)
    assert not rows["authorizenet"].enabled and not rows["btcpay"].enabled
    # Every demo gateway is a module this installation ships.
    assert {module for module, *_ in GATEWAYS} <= set(available_gateways())
