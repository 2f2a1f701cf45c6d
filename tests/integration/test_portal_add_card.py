"""Saving a card from the portal without paying, on the gateway's own hosted page:
Stripe Checkout in setup mode and Authorize.net's hosted profile page. The card is
stored by the gateway's webhook (the method-saved path) and by the return, once; no
third-party script in our pages; another client's page saves nothing here; CSRF."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.extensions import db
from app.gateways import methods
from app.models.billing import PayMethod
from app.models.gateways import GatewayEvent
from tests.fakes.authorizenet_server import add_authorizenet_gateway, fake_authorizenet  # noqa: F401
from tests.fakes.base import live_app  # noqa: F401  (fixture)
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401
from tests.helpers import connect_gateway, follow_back
from tests.integration.test_portal_world import client_a, text_of, world  # noqa: F401


def cards_of(app, client_id: int) -> list[tuple]:
    with app.app_context():
        rows = db.session.scalars(select(PayMethod).where(PayMethod.client_id == client_id)
                                  .order_by(PayMethod.id)).all()
        return [(row.gateway, row.brand, row.last4, row.is_default) for row in rows]


def test_a_card_saved_on_stripe_checkout_in_setup_mode(app, client_a, world, fake_stripe, live_app):
    connect_gateway(app, add_stripe_gateway, fake_stripe, live_app, "stripe")
    page = text_of(client_a.get("/portal/payment-methods"))
    assert 'id="add-card-stripe"' in page and "js.stripe.com" not in page and "<script src=\"http" not in page

    start = client_a.post("/portal/payment-methods/add", data={"gateway": "stripe"})
    assert start.status_code == 302
    hosted = start.headers["Location"]
    assert hosted.startswith(f"{fake_stripe.base_url}/fake/checkout/cs_test_")
    session = fake_stripe.objects[hosted.rsplit("/", 1)[-1]]
    assert (session["mode"], session["metadata"]["client_id"]) == ("setup", str(world["a"]["client"]))

    back = fake_stripe.browser_checkout(hosted, card="4242424242424242")
    fake_stripe.wait_for_deliveries()
    assert ("checkout.session.completed", 200) in fake_stripe.deliveries
    # The webhook stored it (the method-saved path); nothing was charged.
    assert cards_of(app, world["a"]["client"]) == [("stripe", "visa", "4242", True)]
    assert fake_stripe.count("POST", r"/v1/payment_intents.*") == 0
    with app.app_context():
        outcomes = dict(db.session.execute(select(GatewayEvent.type, GatewayEvent.outcome)).all())
    assert outcomes["checkout.session.completed"] == "applied"
    assert outcomes["setup_intent.succeeded"] == "ignored"  # the session's event saves it

    result = follow_back(client_a, back, follow_redirects=True)
    assert result.status_code == 200 and "Your card was saved." in text_of(result)
    assert cards_of(app, world["a"]["client"]) == [("stripe", "visa", "4242", True)]
    assert "4242" in text_of(client_a.get("/portal/payment-methods"))


def test_the_return_alone_saves_the_stripe_card_and_the_late_webhook_adds_nothing(
        app, client, client_a, world, fake_stripe):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        db.session.commit()
    start = client_a.post("/portal/payment-methods/add", data={"gateway": "stripe"})
    back = fake_stripe.browser_checkout(start.headers["Location"], card="4242424242424242")
    assert "Your card was saved." in text_of(follow_back(client_a, back, follow_redirects=True))
    assert cards_of(app, world["a"]["client"]) == [("stripe", "visa", "4242", True)]
    event = fake_stripe.last_event("checkout.session.completed")
    payload = fake_stripe.event_payload(event["type"], event["data"]["object"], event_id=event["id"])
    late = client.post("/gateways/stripe/webhook", data=payload.encode(), headers=fake_stripe.signed(payload))
    assert late.status_code == 200
    assert cards_of(app, world["a"]["client"]) == [("stripe", "visa", "4242", True)]


def test_a_card_saved_on_authorizenets_hosted_profile_page(app, client_a, world, fake_authorizenet,
                                                           live_app):
    connect_gateway(app, add_authorizenet_gateway, fake_authorizenet, live_app, "authorizenet")
    page = client_a.post("/portal/payment-methods/add", data={"gateway": "authorizenet"})
    assert page.status_code == 200
    html = text_of(page)
    # Reached by a form POST of the token: no Authorize.net script in our page.
    assert f'action="{fake_authorizenet.base_url}/customer/addPayment"' in html
    assert "Accept.js" not in html and "jstest.authorize.net" not in html
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    start = SimpleNamespace(url=f"{fake_authorizenet.base_url}/customer/addPayment", form={"token": token})

    back = fake_authorizenet.customer_adds_card(start, "5424000000000015")
    fake_authorizenet.wait_for_deliveries()
    assert fake_authorizenet.deliveries == [("net.authorize.customer.paymentProfile.created", 200)]
    assert cards_of(app, world["a"]["client"]) == [("authorizenet", "MasterCard", "0015", True)]
    assert fake_authorizenet.count("createTransactionRequest") == 0

    result = follow_back(client_a, back, follow_redirects=True)
    assert "Your card was saved." in text_of(result)
    assert cards_of(app, world["a"]["client"]) == [("authorizenet", "MasterCard", "0015", True)]


def test_another_clients_card_page_saves_nothing_here(app, client_a, world, fake_stripe,
                                                      fake_authorizenet):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        add_authorizenet_gateway(fake_authorizenet)
        db.session.commit()
        b_page = methods.begin_card_page(world["b"]["client"], "stripe", "https://billing.example/back")
        b_anet = methods.begin_card_page(world["b"]["client"], "authorizenet", "https://billing.example/back")
        db.session.commit()
    b_back = fake_stripe.browser_checkout(b_page.url, card="4242424242424242")
    session_id = re.search(r"session_id=(cs_test_\w+)", b_back).group(1)
    fake_authorizenet.customer_adds_card(b_anet, "4111111111111111")  # no webhook delivered

    stolen = client_a.get(f"/portal/payment-methods/added?gateway=stripe&session_id={session_id}",
                          follow_redirects=True)
    assert "No card was saved: that card page belongs to another client" in text_of(stolen)
    # Authorize.net's return reads only the signed-in client's own profile.
    client_a.get("/portal/payment-methods/added?gateway=authorizenet", follow_redirects=True)
    assert cards_of(app, world["a"]["client"]) == []
    assert cards_of(app, world["b"]["client"]) == []
    # A gateway without a card page, or an unknown one, opens nothing.
    answer = client_a.post("/portal/payment-methods/add", data={"gateway": "paypal"}, follow_redirects=True)
    assert "That payment method is not available." in text_of(answer)


def test_adding_a_card_needs_the_csrf_token(app, client_a, world, fake_stripe, monkeypatch):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        db.session.commit()
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    answer = client_a.post("/portal/payment-methods/add", data={"gateway": "stripe"})
    assert answer.status_code == 400
    assert fake_stripe.count("POST", r"/v1/checkout/sessions") == 0
