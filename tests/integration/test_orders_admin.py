"""The order page's engine actions through HTTP: Accept, Cancel, Set to Pending, Mark
as Fraud, Delete; roles, CSRF; the list shows the fraud score and status."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from app.models.billing import Invoice
from app.models.orders import Order, Service
from app.models.support import Ticket
from app.orders.cart import Cart, CartLine
from app.orders.checkout import create_order
from tests import factories, orders_catalog
from tests.conftest import login


def page(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def placed(db):
    shop = orders_catalog.build()
    customer = factories.client(first_name="Ada", last_name="Lovelace")
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="ada.example"),
                        CartLine("domain", domain="ada.com", domain_action="register")])
    order = create_order(cart, customer.id, "banktransfer", "192.0.2.44", today=date(2026, 12, 5))
    db.session.commit()
    return order.id


def order_row(db, order_id):
    db.session.expire_all()
    return db.session.get(Order, order_id)


def test_list_shows_fraud_score_and_status(admin_client, db, placed):
    html = page(admin_client.get("/orderview/list/"))
    order = order_row(db, placed)
    assert order.order_number in html and "Fraud score" in html and "Pending" in html


def test_accept_from_the_order_page(admin_client, db, placed):
    show = page(admin_client.get(f"/orderview/show/{placed}"))
    assert f'href="/orderview/accept/{placed}"' in show
    assert f"/orderview/delete_order/{placed}" not in show      # only for cancelled/fraud
    form = page(admin_client.get(f"/orderview/accept/{placed}"))
    assert "Set up the services through their provisioning module" in form
    response = admin_client.post(f"/orderview/accept/{placed}",
                                 data={"run_module": "y", "send_email": "y"}, follow_redirects=True)
    assert "accepted." in page(response)
    order = order_row(db, placed)
    assert order.status == "Active" and order.accepted_by_id is not None
    assert db.session.scalar(select(Service)).status == "Active"
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_cancel_then_pending_then_fraud_then_delete(admin_client, db, placed):
    invoice_id = order_row(db, placed).invoice_id
    response = admin_client.post(f"/orderview/cancel_order/{placed}", data={"reason": ""},
                                 follow_redirects=True)
    assert "Give the reason" in page(response) and order_row(db, placed).status == "Pending"
    admin_client.post(f"/orderview/cancel_order/{placed}", data={"reason": "Client changed mind"})
    assert order_row(db, placed).status == "Cancelled"
    assert db.session.get(Invoice, invoice_id).status == "Cancelled"

    admin_client.post(f"/orderview/set_pending/{placed}")
    assert order_row(db, placed).status == "Pending"
    admin_client.post(f"/orderview/mark_fraud/{placed}", data={"reason": "Stolen card"})
    assert order_row(db, placed).status == "Fraud"
    show = page(admin_client.get(f"/orderview/show/{placed}"))
    assert f"/orderview/delete_order/{placed}" in show
    response = admin_client.post(f"/orderview/delete_order/{placed}", follow_redirects=True)
    assert "deleted." in page(response)
    assert order_row(db, placed) is None and db.session.scalar(select(func.count()).select_from(Service)) == 0


def test_a_refusal_changes_nothing(admin_client, db, placed):
    response = admin_client.post(f"/orderview/delete_order/{placed}", follow_redirects=True)
    assert "Nothing was changed: Order" in page(response) and "only Cancelled or Fraud" in page(response)
    assert order_row(db, placed).status == "Pending"
    assert admin_client.post("/orderview/accept/999999").status_code == 404


def test_support_reads_but_cannot_act(app, staff, db, placed):
    support = app.test_client()
    assert login(support, *staff("Support")).status_code == 302
    assert placed and order_row(db, placed).order_number in page(support.get(f"/orderview/show/{placed}"))
    assert "/orderview/accept/" not in page(support.get(f"/orderview/show/{placed}"))
    for url, data in ((f"/orderview/accept/{placed}", {"run_module": "y"}),
                      (f"/orderview/cancel_order/{placed}", {"reason": "x"}),
                      (f"/orderview/mark_fraud/{placed}", {"reason": "x"}),
                      (f"/orderview/delete_order/{placed}", {})):
        assert support.post(url, data=data).status_code == 403, url
    assert order_row(db, placed).status == "Pending"


def test_actions_need_the_csrf_token(app, admin_client, db, placed):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        forged = admin_client.post(f"/orderview/set_pending/{placed}", follow_redirects=True)
        accept = admin_client.post(f"/orderview/accept/{placed}", data={"run_module": "y"},
                                   follow_redirects=True)
        assert "The page had expired" in page(forged)
        assert "The page had expired" in page(accept)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert order_row(db, placed).status == "Pending"


def test_rest_accept_endpoint(client, staff, db, placed):
    from tests.integration.test_api_rest import jwt_headers

    finance = jwt_headers(client, *staff("Finance"))
    support = jwt_headers(client, *staff("Support"))
    assert client.post(f"/api/v1/order/{placed}/accept", headers=support, json={}).status_code == 403
    assert client.post("/api/v1/order/999999/accept", headers=finance, json={}).status_code == 404
    bad = client.post(f"/api/v1/order/{placed}/accept", headers=finance, json={"run_module": "yes"})
    assert bad.status_code == 422 and order_row(db, placed).status == "Pending"
    response = client.post(f"/api/v1/order/{placed}/accept", headers=finance, json={"send_email": False})
    assert response.status_code == 200
    assert response.get_json()["status"] == "Active"
    assert client.get(f"/api/v1/order/{placed}", headers=support).get_json()["result"]["status"] == "Active"
    assert client.delete(f"/api/v1/order/{placed}", headers=finance).status_code == 405
