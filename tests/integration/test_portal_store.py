"""The public store over HTTP: catalog in the visitor's currency, configuration,
domain search, the cart priced by the order engine, promotions, bad input that
changes nothing, checkout with sign-up and its double-submit guard, CSRF, escaping."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.billing import Invoice
from app.models.catalog import Currency, ProductPricing
from app.models.clients import Client
from app.models.orders import Order
from app.models.portal import EmailVerificationToken
from app.models.system import EmailMessage, EmailTemplate
from app.orders.cart import Cart
from app.orders.pricing import price_cart
from tests import orders_catalog
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.helpers import run_rate_limited
from tests.integration.test_portal_world import link, make_client_user, portal_login

D = Decimal
STORE_CART = "store_cart"


@pytest.fixture
def shop(app):
    """The order-engine catalog (plan 10.00/mo + 5.00 setup, 100.00/yr; options; SSL
    addon; .com), in USD and EUR (plan 9.00 EUR/mo), a bank-transfer gateway, the
    email templates, and a 20% promotion."""
    with app.app_context():
        catalog = orders_catalog.build(require_domain=True, name="Starter", slug="starter")
        eur = Currency(code="EUR", prefix="€", suffix="", rate=D("0.9"), is_default=False)
        db.session.add(eur)
        db.session.flush()
        db.session.add(ProductPricing(product_id=catalog.product.id, currency_id=eur.id,
                                      cycle="Monthly", price=D("9.00"), setup_fee=D("4.50")))
        # orders_catalog.build set up the enabled bank-transfer gateway.
        for name in ("Order Confirmation", "Client Email Address Verification",
                     "Client Signup Email"):
            db.session.add(EmailTemplate(name=name, type="general", subject=name,
                                         body_html="<p>{{ client_email_verification_link }}</p>"))
        orders_catalog.promotion("SAVE20", value="20")
        orders_catalog.promotion("OLD", value="50", expiration_date=date(2020, 1, 1))
        db.session.commit()
        return {"product": catalog.product.id, "large": catalog.large.id,
                "size": catalog.size.id, "ssl": catalog.ssl.id, "eur": eur.id}


def csrf_token(http, path="/portal/store") -> str:
    """The page's CSRF token ("" when the test config switches CSRF off)."""
    page = http.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    return found.group(1) if found else ""


def session_cart(http) -> dict | None:
    with http.session_transaction() as session:
        return session.get(STORE_CART)


def add_plan(http, shop, domain="mysite.com", choice="register", **extra):
    data = {"csrf_token": csrf_token(http), "billing_cycle": "Monthly", "domain_choice": choice,
            "domain": domain, **extra}
    return http.post(f"/portal/store/product/{shop['product']}", data=data)


@pytest.fixture
def csrf_on(app):
    previous = app.config.get("WTF_CSRF_ENABLED", True)
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = previous


def test_catalog_shows_prices_and_switches_currency(client, shop, csrf_on):
    page = client.get("/portal/store").get_data(as_text=True)
    assert "Starter" in page and "$10.00" in page and "$100.00" in page
    assert "+ $5.00" in page  # the monthly cycle's setup fee
    token = csrf_token(client)
    response = client.post("/portal/store/currency", data={"csrf_token": token, "currency": "EUR"})
    assert response.status_code == 302
    page = client.get("/portal/store").get_data(as_text=True)
    assert "€9.00" in page and "+ €4.50" in page and "$10.00" not in page
    # A currency that does not exist changes nothing.
    client.post("/portal/store/currency", data={"csrf_token": token, "currency": "XXX"})
    assert "€9.00" in client.get("/portal/store").get_data(as_text=True)


def test_configure_page_prices_options_and_addons(client, shop):
    page = client.get(f"/portal/store/product/{shop['product']}?billing_cycle=Monthly").get_data(as_text=True)
    assert "Large (+$3.00) + $1.00 setup" in page   # option value priced by the engine
    assert "SSL Certificate" in page and "$4.00" in page
    assert "Register a new domain" in page and "Transfer my domain" in page
    assert "Use my own domain" in page


def test_add_plan_with_new_domain_and_cart_totals_equal_the_engine(client, shop, fake_rdap, app):
    response = add_plan(client, shop, option_1=str(shop["large"]), addons=str(shop["ssl"]))
    assert response.status_code == 302 and response.location.endswith("/portal/cart")
    data = session_cart(client)
    assert [line["kind"] for line in data["lines"]] == ["product", "domain"]
    assert data["lines"][0]["domain"] == "mysite.com"
    assert data["lines"][1]["domain_action"] == "register"
    page = client.get("/portal/cart").get_data(as_text=True)
    with app.app_context():
        quote = price_cart(Cart.from_dict(data))
    # 10.00 + 3.00 (Large) + 5.00 + 1.00 setup + 4.00 SSL + 12.00 .com = 35.00
    assert quote.total_due_today == D("35.00")
    assert re.search(r'id="summary-total">\$35\.00<', page)
    assert re.search(r'id="summary-subtotal">\$35\.00<', page)


def test_cart_shows_tax_as_configured(client, shop, fake_rdap, app):
    with app.app_context():
        orders_catalog.vat("20", country="US")
        db.session.commit()
    add_plan(client, shop)
    data = session_cart(client)
    with app.app_context():
        quote = price_cart(Cart.from_dict(data))
    page = client.get("/portal/cart").get_data(as_text=True)
    assert quote.taxes and quote.taxes[0].amount == D("5.40")   # 20% of 27.00
    assert "VAT (20.00%)" in page and "$5.40" in page
    assert f'id="summary-total">${quote.total_due_today}<' in page
    assert "Tax is added to the prices." in page


def test_promotion_apply_and_remove(client, shop, fake_rdap):
    add_plan(client, shop, domain="promo.com", choice="own")
    token = csrf_token(client)
    client.post("/portal/cart/promotion", data={"csrf_token": token, "promo_code": "SAVE20"})
    assert session_cart(client)["promo_code"] == "SAVE20"
    page = client.get("/portal/cart").get_data(as_text=True)
    # 20% of the plan's 10.00 + 5.00 setup = 3.00 off 15.00
    assert 'id="summary-discount">−$3.00<' in page and 'id="summary-total">$12.00<' in page
    client.post("/portal/cart/promotion", data={"csrf_token": token, "remove": "1"})
    assert session_cart(client)["promo_code"] is None
    assert 'id="summary-total">$15.00<' in client.get("/portal/cart").get_data(as_text=True)


def count_rows(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(model))
                     for model in (Order, Invoice, Client))


@pytest.mark.parametrize("case", ["unknown product", "cycle not sold", "expired promotion",
                                  "malformed domain", "beyond stock", "unknown promotion",
                                  "bad quantity", "domain line years"])
def test_bad_input_changes_nothing(client, shop, fake_rdap, app, case):
    add_plan(client, shop, domain="keep.com", choice="own")
    before_cart = session_cart(client)
    before_rows = count_rows(app)
    token = csrf_token(client)
    if case == "unknown product":
        response = client.post("/portal/store/product/9999", data={"csrf_token": token})
        assert response.status_code == 404
        expected = None
    elif case == "cycle not sold":
        response = client.post("/portal/cart/0/update",
                               data={"csrf_token": token, "billing_cycle": "Triennially"},
                               follow_redirects=True)
        expected = "is not sold triennially"
    elif case == "expired promotion":
        response = client.post("/portal/cart/promotion", data={"csrf_token": token,
                                                               "promo_code": "OLD"},
                               follow_redirects=True)
        expected = "expired"
    elif case == "unknown promotion":
        response = client.post("/portal/cart/promotion", data={"csrf_token": token,
                                                               "promo_code": "NOPE"},
                               follow_redirects=True)
        expected = "NOPE is not valid"
    elif case == "malformed domain":
        response = client.post(f"/portal/store/product/{shop['product']}",
                               data={"csrf_token": token, "billing_cycle": "Monthly",
                                     "domain_choice": "own", "domain": "bad..name"})
        expected = "not a valid domain name"
    elif case == "beyond stock":
        with app.app_context():
            from app.models.catalog import Product
            product = db.session.get(Product, shop["product"])
            product.stock_control, product.stock_quantity = True, 1
            db.session.commit()
        response = client.post("/portal/cart/0/update", data={"csrf_token": token, "quantity": "2"},
                               follow_redirects=True)
        expected = "Only 1 of Starter left in stock"
    elif case == "bad quantity":
        response = client.post("/portal/cart/0/update", data={"csrf_token": token, "quantity": "lots"},
                               follow_redirects=True)
        expected = "whole number"
    else:
        response = client.post("/portal/store/domains/add",
                               data={"csrf_token": token, "action": "register",
                                     "domain": "new-one.com", "years": "7"},
                               follow_redirects=True)
        expected = "for 7 year(s)"
    if expected:
        assert expected in response.get_data(as_text=True)
        assert "Your cart was not changed" in response.get_data(as_text=True)
    assert session_cart(client) == before_cart
    assert count_rows(app) == before_rows


def test_domain_search_suggests_and_adds_register_and_transfer(client, shop, fake_rdap, app):
    with app.app_context():
        from app.models.domains import Tld, TldPricing
        net = Tld(extension=".net", id_protection=True)
        db.session.add(net)
        db.session.flush()
        db.session.add(TldPricing(tld_id=net.id, currency_id=1, years=1, register_price=D("14.00"),
                                  transfer_price=D("11.00"), renew_price=D("15.00")))
        db.session.commit()
    fake_rdap.register("taken.com")
    page = client.get("/portal/store/domains?q=taken.com").get_data(as_text=True)
    assert "taken.com" in page and "is not available to register" in page
    assert "Transfer for $9.00" in page
    assert "taken.net" in page and "1 year · $14.00" in page
    token = csrf_token(client)
    client.post("/portal/store/domains/add", data={"csrf_token": token, "action": "register",
                                                   "domain": "taken.net", "years": "1",
                                                   "id_protection": "1"})
    # A transfer needs the EPP code: refused without, accepted with.
    refused = client.post("/portal/store/domains/add",
                          data={"csrf_token": token, "action": "transfer", "domain": "taken.com",
                                "years": "1"}, follow_redirects=True)
    assert "Enter the EPP (authorisation) code" in refused.get_data(as_text=True)
    client.post("/portal/store/domains/add", data={"csrf_token": token, "action": "transfer",
                                                   "domain": "taken.com", "years": "1",
                                                   "epp_code": "AB-12"})
    lines = session_cart(client)["lines"]
    assert [(l["domain"], l["domain_action"]) for l in lines] == [("taken.net", "register"),
                                                                   ("taken.com", "transfer")]
    assert lines[0]["id_protection"] is True and lines[1]["epp_code"] == "AB-12"
    # Registering a taken name is refused with the reason.
    refused = client.post("/portal/store/domains/add",
                          data={"csrf_token": token, "action": "register", "domain": "taken.com",
                                "years": "1"}, follow_redirects=True)
    assert "taken.com is not available to register" in refused.get_data(as_text=True)
    assert len(session_cart(client)["lines"]) == 2


def test_script_in_search_and_order_note_is_text(client, shop, fake_rdap, app):
    page = client.get("/portal/store/domains?q=<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    add_plan(client, shop, domain="note.com", choice="own")
    response = checkout_as_new(client, notes="<script>alert(2)</script>")
    assert response.status_code == 302
    with app.app_context():
        order = db.session.scalar(select(Order))
        assert order.notes == "<script>alert(2)</script>"


def page_messages(response) -> list[str]:
    """The alerts and field errors of a page (for failure messages)."""
    return re.findall(r'class="(?:alert[^"]*|invalid-feedback[^"]*)"[^>]*>\s*([^<]+)',
                      response.get_data(as_text=True))


def signup_form(token, form_token, **overrides):
    data = {"csrf_token": token, "token": form_token, "first_name": "Nina", "last_name": "Neu",
            "email": "nina@nina-shop.com", "phone": "+1 555 0100", "address1": "1 Main St",
            "city": "Springfield", "state": "IL", "postcode": "62701", "country": "US",
            "password": "Secret-Pass-9", "confirm": "Secret-Pass-9",
            "payment_method": "banktransfer", "accept_tos": "y"}
    data.update(overrides)
    return data


def checkout_page_tokens(client) -> tuple[str, str]:
    page = client.get("/portal/checkout").get_data(as_text=True)
    token = re.search(r'id="token" name="token" type="hidden" value="([^"]+)"', page)
    return csrf_token(client, "/portal/checkout"), token.group(1)


def checkout_as_new(client, **overrides):
    csrf, token = checkout_page_tokens(client)
    return client.post("/portal/checkout", data=signup_form(csrf, token, **overrides))


def test_checkout_registers_orders_and_lands_on_the_invoice(client, shop, fake_rdap, app):
    add_plan(client, shop, domain="nina.com")
    client.post("/portal/cart/promotion", data={"csrf_token": csrf_token(client),
                                                "promo_code": "SAVE20"})
    response = checkout_as_new(client)
    assert response.status_code == 302, page_messages(response)
    with app.app_context():
        order = db.session.scalar(select(Order))
        client_row = db.session.get(Client, order.client_id)
        assert response.location == f"/portal/invoices/{order.invoice_id}"
        assert client_row.email == "nina@nina-shop.com" and client_row.email_verified is False
        assert order.promotion.code == "SAVE20"
        # 10.00 + 5.00 setup - 3.00 + 12.00 domain = 24.00
        assert order.invoice.total == D("24.00")
        templates = set(db.session.scalars(select(EmailMessage.template)))
        assert {"Order Confirmation", "Client Email Address Verification"} <= templates
        link = db.session.scalar(select(EmailMessage.body_html).where(
            EmailMessage.template == "Client Email Address Verification"))
    invoice_page = client.get(response.location)
    assert invoice_page.status_code == 200  # signed in as the new client
    assert session_cart(client) is None
    # The emailed link confirms the address once.
    path = re.search(r"(/portal/verify-email/[^<\s\"]+)", link).group(1)
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 404
    with app.app_context():
        assert db.session.get(Client, order.client_id).email_verified is True


def test_checkout_posted_twice_makes_one_order(client, shop, fake_rdap, app):
    user_email = "buyer@shop.test"
    with app.app_context():
        buyer = orders_catalog.factories.client(email="buyer-acct@shop.test", address1="1 St",
                                                city="X", state="Y", postcode="1", phone="1")
        link(make_client_user(user_email), buyer)
        db.session.commit()
    portal_login(client, user_email)
    add_plan(client, shop, domain="twice.com", choice="own")
    csrf, token = checkout_page_tokens(client)
    form = {"csrf_token": csrf, "token": token, "payment_method": "banktransfer", "accept_tos": "y"}
    first = client.post("/portal/checkout", data=form)
    # The second post of the same form (the cart is empty by now in this session,
    # and even with the cart back it must not order again).
    with client.session_transaction() as session:
        session[STORE_CART] = {"currency_code": "USD", "promo_code": None,
                               "lines": [{"kind": "product", "product_id": shop["product"],
                                          "billing_cycle": "Monthly", "domain": "twice.com"}]}
    second = client.post("/portal/checkout", data=form, follow_redirects=True)
    assert first.status_code == 302
    assert "has been placed already" in second.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def test_checkout_requires_terms_and_changes_nothing_without(client, shop, fake_rdap, app):
    add_plan(client, shop, domain="tos.com", choice="own")
    before = count_rows(app)
    csrf, token = checkout_page_tokens(client)
    data = signup_form(csrf, token)
    del data["accept_tos"]
    response = client.post("/portal/checkout", data=data)
    assert response.status_code == 200
    assert "Please accept the terms of service" in response.get_data(as_text=True)
    assert count_rows(app) == before
    # A refused account (the email taken) leaves no order and no account either.
    with app.app_context():
        orders_catalog.factories.client(email="nina@nina-shop.com")
        db.session.commit()
    before = count_rows(app)
    response = checkout_as_new(client)
    assert "A client already exists with that email address" in response.get_data(as_text=True)
    assert count_rows(app) == before


@pytest.mark.parametrize("path", ["/portal/store/currency", "/portal/store/domains/add",
                                  "/portal/cart/promotion", "/portal/cart/0/update",
                                  "/portal/cart/0/remove", "/portal/cart/empty",
                                  "/portal/checkout", "/portal/register",
                                  "/portal/store/product/1", "/portal/verify-email"])
def test_every_store_form_needs_the_csrf_token(client, shop, csrf_on, fake_rdap, path):
    add_plan(client, shop, domain="csrf.com", choice="own")
    before = session_cart(client)
    response = client.post(path, data={"currency": "EUR", "promo_code": "SAVE20",
                                       "action": "register", "domain": "x.com"})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert session_cart(client) == before


def signed_in_buyer(app, http, email="buyer@shop.test", currency_code=None):
    """A client account with an owner login, signed in on `http`; returns the client id."""
    with app.app_context():
        values = dict(email=f"acct-{email}", address1="1 St", city="X", state="Y", postcode="1",
                      phone="1")
        if currency_code:
            values["currency_id"] = db.session.scalar(
                select(Currency.id).where(Currency.code == currency_code))
        buyer = orders_catalog.factories.client(**values)
        link(make_client_user(email), buyer)
        db.session.commit()
        client_id = buyer.id
    assert portal_login(http, email).status_code == 302
    return client_id


def test_order_confirmation_shows_notes_as_text_and_only_to_its_client(client, shop, fake_rdap,
                                                                        app):
    signed_in_buyer(app, client)
    add_plan(client, shop, domain="notes.com", choice="own")
    csrf, token = checkout_page_tokens(client)
    client.post("/portal/checkout", data={"csrf_token": csrf, "token": token,
                                          "payment_method": "banktransfer", "accept_tos": "y",
                                          "notes": "<script>alert(3)</script>"})
    with app.app_context():
        order_id = db.session.scalar(select(Order.id))
    page = client.get(f"/portal/orders/{order_id}/complete").get_data(as_text=True)
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page and "<script>alert(3)" not in page
    assert 'id="resend-verification"' in page  # the address is not confirmed yet
    other = client.application.test_client()
    signed_in_buyer(app, other, email="other@shop.test")
    assert other.get(f"/portal/orders/{order_id}/complete").status_code == 404


def test_signed_in_client_orders_in_the_account_currency(client, shop, app):
    signed_in_buyer(app, client, currency_code="EUR")
    page = client.get("/portal/store").get_data(as_text=True)
    assert "€9.00" in page and "$10.00" not in page
    assert 'id="currency-switch"' not in page
    response = client.post("/portal/store/currency",
                           data={"csrf_token": csrf_token(client), "currency": "USD"},
                           follow_redirects=True)
    assert "Your account is billed in EUR" in response.get_data(as_text=True)


def test_change_options_of_a_cart_line(client, shop, fake_rdap, app):
    add_plan(client, shop, domain="opts.com", choice="own")
    assert 'id="summary-total">$15.00<' in client.get("/portal/cart").get_data(as_text=True)
    page = client.get(f"/portal/store/product/{shop['product']}?line=0").get_data(as_text=True)
    assert "Save changes" in page
    client.post(f"/portal/store/product/{shop['product']}",
                data={"csrf_token": csrf_token(client), "line": "0", "billing_cycle": "Monthly",
                      f"option_{shop['size']}": str(shop["large"])})
    data = session_cart(client)
    assert len(data["lines"]) == 1 and data["lines"][0]["domain"] == "opts.com"
    assert data["lines"][0]["config_options"][str(shop["size"])] == shop["large"]
    # + 3.00 monthly and 1.00 setup for Large
    assert 'id="summary-total">$19.00<' in client.get("/portal/cart").get_data(as_text=True)
    # A line index that is not in the cart is not found.
    assert client.get(f"/portal/store/product/{shop['product']}?line=5").status_code == 404


def test_register_page_and_the_verification_link_expires(client, shop, app):
    from datetime import timedelta

    page = client.get("/portal/register")
    assert page.status_code == 200
    form = signup_form(csrf_token(client, "/portal/register"), "", email="reg@reg-shop.com")
    response = client.post("/portal/register", data=form)
    assert response.status_code == 302 and response.location == "/portal/"
    with app.app_context():
        created = db.session.scalar(select(Client).where(Client.email == "reg@reg-shop.com"))
        assert created.email_verified is False and created.signup_ip == "127.0.0.1"
        token_row = db.session.scalar(select(EmailVerificationToken))
        assert token_row.client_id == created.id
        # The link expires: an old one no longer confirms anything.
        token_row.expires_at = token_row.created_at - timedelta(seconds=1)
        body = db.session.scalar(select(EmailMessage.body_html).where(
            EmailMessage.template == "Client Email Address Verification"))
        db.session.commit()
    path = re.search(r"(/portal/verify-email/[^<\s\"]+)", body).group(1)
    assert client.get(path).status_code == 404
    # A new link can be asked for; it works once.
    client.post("/portal/verify-email", data={"csrf_token": ""})
    with app.app_context():
        bodies = db.session.scalars(select(EmailMessage.body_html).where(
            EmailMessage.template == "Client Email Address Verification")
            .order_by(EmailMessage.id)).all()
    assert len(bodies) == 2
    fresh = re.search(r"(/portal/verify-email/[^<\s\"]+)", bodies[1]).group(1)
    assert client.get(fresh).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Client.email_verified)
                                 .where(Client.email == "reg@reg-shop.com")) is True


def test_a_login_without_the_orders_permission_cannot_check_out(client, shop, fake_rdap, app):
    with app.app_context():
        account = orders_catalog.factories.client(email="acct-helper@shop.test")
        link(make_client_user("helper@shop.test"), account, owner=False,
             permissions=("tickets",))
        db.session.commit()
    assert portal_login(client, "helper@shop.test").status_code == 302
    add_plan(client, shop, domain="helper.com", choice="own")
    before = count_rows(app)
    assert client.get("/portal/checkout").status_code == 403
    response = client.post("/portal/checkout", data={"token": "x" * 30,
                                                     "payment_method": "banktransfer",
                                                     "accept_tos": "y"})
    assert response.status_code == 403
    assert count_rows(app) == before


def test_two_simultaneous_posts_of_one_checkout_make_one_order(client, shop, fake_rdap, app):
    import threading

    signed_in_buyer(app, client)
    add_plan(client, shop, domain="race.com", choice="own")
    csrf, token = checkout_page_tokens(client)
    form = {"csrf_token": csrf, "token": token, "payment_method": "banktransfer",
            "accept_tos": "y"}
    # A double click: the same session on two connections at the same moment.
    twin = app.test_client()
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    twin.set_cookie(cookie.key, cookie.value)
    start = threading.Barrier(2)
    statuses = []

    def post(http):
        start.wait()
        statuses.append(http.post("/portal/checkout", data=form).status_code)

    threads = [threading.Thread(target=post, args=(http,)) for http in (client, twin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [302, 302]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def test_a_name_nobody_could_check_is_neither_registered_nor_transferred(client, shop, fake_rdap):
    fake_rdap.failure = "http_500"  # the registry does not answer
    page = client.get("/portal/store/domains?q=unsure.com").get_data(as_text=True)
    assert "could not be checked just now" in page
    assert 'id="add-register"' not in page and 'id="add-transfer"' not in page
    for action, extra in (("register", {}), ("transfer", {"epp_code": "X1"})):
        response = client.post("/portal/store/domains/add",
                               data={"csrf_token": csrf_token(client), "action": action,
                                     "domain": "unsure.com", "years": "1", **extra},
                               follow_redirects=True)
        assert "We could not check unsure.com just now" in response.get_data(as_text=True)
    assert session_cart(client) is None


def test_checkout_applies_credit_when_the_client_chooses(client, shop, fake_rdap, app):
    from app import settings as app_settings
    from app.activity import Actor
    from app.billing import credit

    client_id = signed_in_buyer(app, client)
    with app.app_context():
        app_settings.set_value("NoAutoApplyCredit", "on")  # credit only when asked
        credit.add_credit(client_id, "10.00", "Goodwill", Actor.system())
        db.session.commit()
    add_plan(client, shop, domain="credit.com", choice="own")
    page = client.get("/portal/checkout").get_data(as_text=True)
    assert "Use my account credit" in page and "$10.00" in page
    csrf, token = checkout_page_tokens(client)
    client.post("/portal/checkout", data={"csrf_token": csrf, "token": token,
                                          "payment_method": "banktransfer", "accept_tos": "y",
                                          "apply_credit": "y"})
    with app.app_context():
        invoice = db.session.scalar(select(Order)).invoice
        assert invoice.total == D("15.00") and invoice.balance == D("5.00")
        assert db.session.get(Client, client_id).credit_balance == D("0.00")


def test_inclusive_tax_is_shown_as_included(client, shop, fake_rdap, app):
    from app import settings as app_settings

    with app.app_context():
        app_settings.set_value("TaxType", "Inclusive")
        orders_catalog.vat("20", country="US")
        db.session.commit()
    add_plan(client, shop, domain="incl.com", choice="own")
    with app.app_context():
        quote = price_cart(Cart.from_dict(session_cart(client)))
    page = client.get("/portal/cart").get_data(as_text=True)
    assert quote.tax_inclusive and quote.total_due_today == D("15.00")
    assert "Includes VAT (20.00%)" in page and f"${quote.taxes[0].amount}" in page
    assert "Prices include tax." in page and 'id="summary-total">$15.00<' in page


def test_catalog_shows_limited_stock_and_hides_what_is_not_for_sale(client, shop, app):
    from app.models.catalog import Product

    with app.app_context():
        product = db.session.get(Product, shop["product"])
        product.stock_control, product.stock_quantity = True, 2
        db.session.commit()
    page = client.get("/portal/store").get_data(as_text=True)
    assert "Only 2 left" in page and f'id="order-{shop["product"]}"' in page
    with app.app_context():
        db.session.get(Product, shop["product"]).stock_quantity = 0
        db.session.commit()
    page = client.get("/portal/store").get_data(as_text=True)
    assert "Out of stock" in page and f'id="order-{shop["product"]}"' not in page
    with app.app_context():
        db.session.get(Product, shop["product"]).hidden = True
        db.session.commit()
    assert "Starter" not in client.get("/portal/store").get_data(as_text=True)
    assert client.get(f"/portal/store/product/{shop['product']}").status_code == 404
    assert client.get("/portal/store/no-such-group").status_code == 404


def test_a_cart_with_a_product_gone_from_sale_cannot_check_out(client, shop, fake_rdap, app):
    from app.models.catalog import Product

    add_plan(client, shop, domain="gone.com", choice="own")
    with app.app_context():
        db.session.get(Product, shop["product"]).retired = True
        db.session.commit()
    page = client.get("/portal/cart").get_data(as_text=True)
    assert "That product is not available." in page and 'id="checkout-button"' not in page
    response = client.get("/portal/checkout", follow_redirects=True)
    assert "Your cart cannot be ordered as it is: That product is not available." in \
        response.get_data(as_text=True)
    before = count_rows(app)
    # A form posted anyway (an old tab) creates neither the account nor the order.
    response = client.post("/portal/checkout", data=signup_form("", "t" * 30),
                           follow_redirects=True)
    assert "That product is not available." in response.get_data(as_text=True)
    assert count_rows(app) == before


# Run in a rate-limited app of its own (tests.helpers.run_rate_limited).
RATE_LIMITED_STORE = """
print(*[http.post("/portal/register", data={"email": "x"}).status_code for _ in range(4)],
      *[http.post("/portal/checkout", data={}).status_code for _ in range(4)])
"""


def test_sign_up_and_checkout_posts_are_rate_limited(tmp_path):
    lines = run_rate_limited(RATE_LIMITED_STORE, tmp_path)
    # The fourth post of each form in a minute is refused (the sign-up form answers
    # its errors, the checkout of a shop with no currency yet is not found).
    assert lines[-1] == "200 200 200 429 404 404 404 429"


def test_removing_the_plan_a_code_was_for_drops_the_code(client, shop, fake_rdap):
    token = csrf_token(client)
    client.post("/portal/store/domains/add", data={"csrf_token": token, "action": "register",
                                                   "domain": "keepme.com", "years": "1"})
    add_plan(client, shop, domain="site.com", choice="own")
    client.post("/portal/cart/promotion", data={"csrf_token": token, "promo_code": "SAVE20"})
    assert session_cart(client)["promo_code"] == "SAVE20"
    response = client.post("/portal/cart/1/remove", data={"csrf_token": token},
                           follow_redirects=True)
    data = session_cart(client)
    assert [line["domain"] for line in data["lines"]] == ["keepme.com"]
    assert data["promo_code"] is None
    assert "The promotion code SAVE20 no longer applies and was removed" in \
        response.get_data(as_text=True)


def test_the_store_speaks_german(client, shop):
    client.post("/portal/language", data={"language": "de", "next": "/portal/store"})
    page = client.get("/portal/store").get_data(as_text=True)
    assert "Jetzt bestellen" in page and "Hosting-Tarife für jedes Projekt" in page
    assert "Ihr Warenkorb ist leer." in client.get("/portal/cart").get_data(as_text=True)
