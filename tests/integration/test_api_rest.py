"""The REST API over HTTP: JWT and API-key logins, permissions by role, read-only money,
engine-backed endpoints, secrets never sent, the OpenAPI spec, the call log."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing import invoicing
from app.billing.invoicing import InvoiceLine
from app.models.api import ApiCallLog
from app.models.billing import Transaction
from app.models.catalog import Product, Server
from app.models.clients import Client
from app.models.orders import Service
from app.models.system import ActivityLog
from tests import factories


def jwt_headers(client, username: str, password: str) -> dict:
    response = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db", "refresh": False})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


@pytest.fixture
def as_role(client, staff):
    """as_role(role) -> JWT headers of a new staff user with that role."""
    return lambda role: jwt_headers(client, *staff(role))


@pytest.fixture
def unpaid_invoice(db):
    customer = factories.client()
    invoice = invoicing.create_invoice(
        customer.id, [InvoiceLine(type="", rel_id=None, description="Hosting", amount=Decimal("120.00"))],
        issue_date=date(2030, 1, 1))
    db.session.commit()
    return invoice


def test_finance_lists_clients_and_invoices_but_cannot_add_products(client, db, as_role, unpaid_invoice):
    headers = as_role("Finance")
    clients = client.get("/api/v1/client/", headers=headers)
    assert clients.status_code == 200
    body = clients.get_json()
    assert body["count"] == 1 and body["result"][0]["email"] == unpaid_invoice.client.email
    invoices = client.get("/api/v1/invoice/", headers=headers).get_json()
    assert invoices["count"] == 1
    assert invoices["result"][0]["total"] == "120.00" and invoices["result"][0]["status"] == "Unpaid"

    group_id = factories.product().group_id
    db.session.commit()
    refused = client.post("/api/v1/product/", headers=headers,
                          json={"name": "Sneaky", "slug": "sneaky", "group_id": group_id})
    assert refused.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Product).where(Product.slug == "sneaky")) == 0


def test_support_cannot_list_transactions(client, db, as_role):
    headers = as_role("Support")
    assert client.get("/api/v1/transaction/", headers=headers).status_code == 403
    assert client.get("/api/v1/ticket/", headers=headers).status_code == 200


def test_no_token_no_data(client, db):
    assert client.get("/api/v1/client/").status_code == 401


def test_api_keys_log_in_too(client, app, db, staff):
    username, _ = staff("Finance")
    user = app.appbuilder.sm.find_user(username=username)
    key = app.appbuilder.sm.create_api_key(user, "reporting")["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/invoice/", headers=headers).status_code == 200
    assert client.get("/api/v1/setting/", headers=headers).status_code == 403
    assert client.get("/api/v1/invoice/", headers={"Authorization": "Bearer sst_forged"}).status_code == 401


def test_money_records_are_read_only(client, db, as_role, unpaid_invoice):
    headers = as_role("Admin")
    assert client.post("/api/v1/invoice/", headers=headers, json={"client_id": 1}).status_code == 405
    assert client.put(f"/api/v1/invoice/{unpaid_invoice.id}", headers=headers,
                      json={"total": "1.00"}).status_code == 405
    assert client.delete("/api/v1/transaction/1", headers=headers).status_code == 405
    assert client.post("/api/v1/credit_entry/", headers=headers, json={}).status_code == 405
    db.session.refresh(unpaid_invoice)
    assert unpaid_invoice.total == Decimal("120.00")


def test_payment_endpoint_applies_a_payment_through_the_engine(client, db, as_role, unpaid_invoice):
    headers = as_role("Finance")
    url = f"/api/v1/invoice/{unpaid_invoice.id}/payment"
    # A JSON number arrives as a Decimal: 50.1 is exactly 50.10, never a float.
    first = client.post(url, headers=headers, data=json.dumps(
        {"amount": 50.1, "gateway": "banktransfer", "transaction_id": "BT-1"}),
        content_type="application/json")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.get_json() == {
        "invoice_id": unpaid_invoice.id, "number": unpaid_invoice.number, "status": "Unpaid",
        "total": "120.00", "amount_paid": "50.10", "balance": "69.90", "currency": "USD",
        "applied": "50.10", "credited": "0.00", "transaction": first.get_json()["transaction"]}
    duplicate = client.post(url, headers=headers, json={"amount": "69.90", "gateway": "banktransfer",
                                                        "transaction_id": "BT-1"})
    assert duplicate.status_code == 409
    refused = client.post(url, headers=headers, json={"amount": "-5", "gateway": "banktransfer"})
    assert refused.status_code == 422 and "more than zero" in refused.get_json()["message"]
    assert client.post(url, headers=headers, json={"gateway": "banktransfer"}).status_code == 422
    assert client.post("/api/v1/invoice/999999/payment", headers=headers,
                       json={"amount": "1.00", "gateway": "x"}).status_code == 404
    rest = client.post(url, headers=headers, json={"amount": "69.90", "gateway": "banktransfer",
                                                   "transaction_id": "BT-2"})
    assert rest.get_json()["status"] == "Paid" and rest.get_json()["balance"] == "0.00"
    assert db.session.scalar(select(func.count()).select_from(Transaction)) == 2


def test_support_cannot_post_payments(client, db, as_role, unpaid_invoice):
    response = client.post(f"/api/v1/invoice/{unpaid_invoice.id}/payment", headers=as_role("Support"),
                           json={"amount": "10.00", "gateway": "banktransfer"})
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Transaction)) == 0


def test_service_suspend_and_unsuspend_run_the_module(client, db, as_role):
    customer = factories.client()
    service = factories.service(customer, factories.product(), next_due=date.today(),
                                password="root-pass-123")
    db.session.commit()
    headers = as_role("Finance")
    shown = client.get(f"/api/v1/service/{service.id}", headers=headers).get_json()["result"]
    assert "password" not in shown and "root-pass-123" not in json.dumps(shown)
    suspended = client.post(f"/api/v1/service/{service.id}/suspend", headers=headers,
                            json={"reason": "Chargeback"})
    assert suspended.status_code == 200
    assert suspended.get_json()["status"] == "Suspended"
    assert suspended.get_json()["suspension_reason"] == "Chargeback"
    again = client.post(f"/api/v1/service/{service.id}/suspend", headers=headers, json={})
    assert again.status_code == 422 and "only Active services" in again.get_json()["message"]
    # Status is not a field CRUD may write: it moves only through the module.
    sneaky = client.put(f"/api/v1/service/{service.id}", headers=headers, json={"status": "Active"})
    assert sneaky.status_code == 422
    assert client.post(f"/api/v1/service/{service.id}/unsuspend", headers=headers).get_json()[
        "status"] == "Active"
    assert client.post(f"/api/v1/service/{service.id}/suspend",
                       headers=as_role("Support"), json={}).status_code == 403
    db.session.refresh(service)
    assert service.status == "Active"


def test_secrets_are_write_only(client, db, as_role):
    headers = as_role("Admin")
    created = client.post("/api/v1/server/", headers=headers, json={
        "name": "saturn", "hostname": "saturn.example.test", "module": "cpanel",
        "username": "root", "password": "s3cret-Pa55", "access_hash": "TOKEN-123"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert "s3cret-Pa55" not in created.get_data(as_text=True)
    assert "TOKEN-123" not in created.get_data(as_text=True)
    server_id = created.get_json()["id"]
    shown = client.get(f"/api/v1/server/{server_id}", headers=headers).get_data(as_text=True)
    assert "password" not in shown and "access_hash" not in shown
    # A PUT that leaves the secret out keeps it.
    assert client.put(f"/api/v1/server/{server_id}", headers=headers,
                      json={"max_accounts": 300}).status_code == 200
    server = db.session.get(Server, server_id)
    db.session.refresh(server)
    assert (server.password, server.access_hash, server.max_accounts) == ("s3cret-Pa55", "TOKEN-123", 300)
    listed = client.get("/api/v1/pay_method/", headers=headers).get_json()
    assert "token" not in listed["list_columns"]
    log = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "server_created"))
    assert log.after["password"] == "(secret)" and "s3cret" not in json.dumps(log.after)


def test_crud_writes_are_audited_and_credit_is_not_writable(client, db, as_role):
    usd = factories.currency()
    db.session.commit()
    headers = as_role("Finance")
    refused = client.post("/api/v1/client/", headers=headers, json={
        "first_name": "Ann", "last_name": "Lee", "email": "ann@example.test", "country": "US",
        "currency_id": usd.id, "credit_balance": "500.00"})
    assert refused.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0

    created = client.post("/api/v1/client/", headers=headers, json={
        "first_name": "Ann", "last_name": "Lee", "email": "ann@example.test", "country": "US",
        "currency_id": usd.id})
    assert created.status_code == 201, created.get_data(as_text=True)
    client_id = created.get_json()["id"]
    assert db.session.get(Client, client_id).credit_balance == Decimal("0.00")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "client_created"))
    assert entry.client_id == client_id and entry.actor_name.endswith("(REST API)")

    assert client.put(f"/api/v1/client/{client_id}", headers=headers,
                      json={"city": "Oslo"}).status_code == 200
    change = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "client_updated"))
    assert (change.before, change.after) == ({"city": None}, {"city": "Oslo"})

    duplicate = client.post("/api/v1/client/", headers=headers, json={
        "first_name": "Ann", "last_name": "Two", "email": "ann@example.test", "country": "US",
        "currency_id": usd.id})
    assert duplicate.status_code == 422 and "conflicts" in duplicate.get_json()["message"]
    assert db.session.scalar(select(func.count()).select_from(Client)) == 1


def test_every_rest_call_is_logged(client, db, staff):
    username, password = staff("Finance")
    headers = jwt_headers(client, username, password)
    client.get("/api/v1/client/", headers=headers)
    client.get("/api/v1/setting/", headers=headers)
    rows = db.session.scalars(select(ApiCallLog).where(ApiCallLog.api == "rest").order_by(ApiCallLog.id)).all()
    assert [(row.endpoint, row.status_code, row.outcome) for row in rows] == [
        ("POST /api/v1/security/login", 200, "success"),
        ("GET /api/v1/client/", 200, "success"),
        ("GET /api/v1/setting/", 403, "denied")]
    assert rows[1].user_id is not None and rows[1].user_id == rows[2].user_id


def test_openapi_spec_and_local_swagger_ui(client, app, db, admin_client, as_role):
    spec = client.get("/api/v1/_openapi", headers=as_role("Admin"))
    assert spec.status_code == 200
    document = spec.get_json()
    assert "/api/v1/invoice/{pk}/payment" in document["paths"]
    assert "/api/v1/service/{pk}/suspend" in document["paths"]
    assert "post" not in document["paths"]["/api/v1/invoice/"]
    assert "post" in document["paths"]["/api/v1/client/"]
    schemas = document["components"]["schemas"]
    assert "password" not in schemas["ServerApi.get"]["properties"]
    assert "token" not in schemas["PayMethodApi.get"]["properties"]
    assert "secret_hash" not in schemas["ApiCredentialApi.get"]["properties"]

    page = admin_client.get("/swagger/v1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "swagger-ui-bundle.js" in html and "/api/v1/_openapi" in html
    assert "cdn" not in html.lower() and "unpkg" not in html
    assert "validatorUrl: null" in html  # no badge fetched from validator.swagger.io
    for asset in ("/static/appbuilder/js/swagger-ui-bundle.js",
                  "/static/appbuilder/css/swagger/swagger-ui.css"):
        assert admin_client.get(asset).status_code == 200


def test_service_records_keep_their_password_through_crud(client, db, as_role):
    customer = factories.client()
    service = factories.service(customer, factories.product(), password="keep-me-123")
    db.session.commit()
    headers = as_role("Finance")
    assert client.put(f"/api/v1/service/{service.id}", headers=headers,
                      json={"notes": "Moved to new rack"}).status_code == 200
    stored = db.session.get(Service, service.id)
    db.session.refresh(stored)
    assert (stored.password, stored.notes) == ("keep-me-123", "Moved to new rack")


def test_values_that_cannot_be_stored_are_refused_clearly(client, db, as_role):
    usd = factories.currency()
    db.session.commit()
    headers = as_role("Admin")
    assert client.get("/api/v1/currency/99999999999999999999", headers=headers).status_code == 404
    assert client.put("/api/v1/currency/99999999999999999999", headers=headers,
                      json={"prefix": "$"}).status_code == 404
    too_big = client.put(f"/api/v1/currency/{usd.id}", headers=headers,
                         json={"decimal_places": 99999999999})
    assert too_big.status_code == 422 and "decimal_places" in too_big.get_json()["message"]
    too_rich = client.post("/api/v1/tax_rule/", headers=headers,
                           json={"name": "VAT", "level": 1, "rate": "1000000"})
    assert too_rich.status_code == 422 and "rate" in too_rich.get_json()["message"]
    db.session.refresh(usd)
    assert usd.decimal_places == 2


def test_client_addresses_are_checked_as_in_the_admin(client, db, as_role):
    usd = factories.currency()
    db.session.commit()
    headers = as_role("Admin")
    bad = client.post("/api/v1/client/", headers=headers, json={
        "first_name": "Ann", "last_name": "Lee", "email": "not-an-email", "country": "ZZ",
        "currency_id": usd.id})
    assert bad.status_code == 422
    assert set(bad.get_json()["message"]) == {"email", "country"}
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0


def test_amounts_with_more_decimals_than_their_column_are_refused(client, db, as_role):
    plan = factories.product()
    db.session.commit()
    headers = as_role("Admin")
    pricing_id = client.get("/api/v1/product_pricing/", headers=headers).get_json()["ids"][0]
    refused = client.put(f"/api/v1/product_pricing/{pricing_id}", headers=headers,
                         json={"price": "10.005"})
    assert refused.status_code == 422 and "decimal places" in str(refused.get_json()["message"])
    accepted = client.put(f"/api/v1/product_pricing/{pricing_id}", headers=headers,
                          json={"price": "12.50"})
    assert accepted.status_code == 200
    assert client.get(f"/api/v1/product_pricing/{pricing_id}", headers=headers).get_json()[
        "result"]["price"] == "12.50"
    assert plan.pricing[0].price == Decimal("12.50")
