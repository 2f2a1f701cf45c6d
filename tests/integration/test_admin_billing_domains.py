"""The Billing and Domains admin screens, through HTTP as a logged-in Admin."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.billing import (
    BillableItem, CreditEntry, CreditNote, Invoice, InvoiceItem, PaymentGateway, PayMethod,
    Quote, QuoteItem, TaxRule, Transaction,
)
from app.models.domains import Domain, Registrar, Tld, TldPricing
from app.models.system import ActivityLog
from tests import factories

REGISTRAR_KEY = "registrar-api-key-7f3a9c"
GATEWAY_SECRET = "sk_live_gateway_secret_51HxYz"
CARD_TOKEN = "tok_visa_stored_0042abc"


def count(db, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return db.session.scalar(query)


@pytest.fixture
def books(db):
    """A client with invoices, payments, credit, a quote, a domain and the billing
    and domain settings, committed."""
    usd = factories.currency("USD")
    client = factories.client(first_name="Grace", last_name="Hopper")
    paid = Invoice(number="INV-2025-0001", client_id=client.id, currency_id=usd.id,
                   status="Paid", date=date(2025, 1, 1), due_date=date(2025, 1, 15),
                   subtotal=Decimal("1250.00"), total=Decimal("1250.00"),
                   amount_paid=Decimal("1250.00"))
    unpaid = Invoice(number="INV-2025-0002", client_id=client.id, currency_id=usd.id,
                     status="Unpaid", date=date(2025, 2, 1), due_date=date(2025, 2, 15),
                     subtotal=Decimal("30.00"), total=Decimal("30.00"),
                     amount_paid=Decimal("10.00"))
    db.session.add_all([paid, unpaid])
    db.session.flush()
    db.session.add_all([
        InvoiceItem(invoice_id=unpaid.id, client_id=client.id, type="Hosting",
                    description="Starter Plan (01/02/2025 - 28/02/2025)", amount=Decimal("18.00")),
        InvoiceItem(invoice_id=unpaid.id, client_id=client.id, type="DomainRenew",
                    description="Domain renewal - hopper.dev", amount=Decimal("12.00")),
        InvoiceItem(invoice_id=paid.id, client_id=client.id, description="Consulting",
                    amount=Decimal("1250.00")),
    ])
    payment = Transaction(client_id=client.id, invoice_id=paid.id, currency_id=usd.id,
                          date=datetime(2025, 1, 3, 10, 30), gateway="stripe",
                          gateway_transaction_id="ch_3PaYmEnT", amount_in=Decimal("1250.00"),
                          fees=Decimal("36.55"))
    db.session.add(payment)
    db.session.flush()
    db.session.add_all([
        CreditEntry(client_id=client.id, description="Overpayment credited",
                    amount=Decimal("25.00"), balance_after=Decimal("25.00")),
        CreditNote(number="CN-2025-0001", invoice_id=paid.id, client_id=client.id,
                   date=date(2025, 1, 20), amount=Decimal("50.00"), reason="Goodwill refund",
                   transaction_id=payment.id),
        BillableItem(client_id=client.id, description="Site migration", amount=Decimal("75.00"),
                     hours=Decimal("1.5")),
        TaxRule(level=1, name="VAT", country="GB", rate=Decimal("20.0000")),
        PaymentGateway(module="stripe", display_name="Stripe Cards", enabled=True,
                       credentials='{"secret_key": "%s"}' % GATEWAY_SECRET),
        PayMethod(client_id=client.id, gateway="stripe", token=CARD_TOKEN, brand="Visa",
                  last4="4242", expiry_month=12, expiry_year=2030),
        Registrar(module="enom", display_name="eNom", api_key=REGISTRAR_KEY),
    ])
    quote = Quote(subject="Dedicated server proposal", client_id=client.id, currency_id=usd.id,
                  valid_until=date(2025, 6, 30), stage="Delivered", total=Decimal("199.00"))
    db.session.add(quote)
    db.session.flush()
    db.session.add(QuoteItem(quote_id=quote.id, description="Xeon box, 64 GB RAM",
                             unit_price=Decimal("199.00")))
    tld = Tld(extension=".dev", registrar_module="enom")
    db.session.add(tld)
    db.session.flush()
    db.session.add(TldPricing(tld_id=tld.id, currency_id=usd.id, years=1,
                              register_price=Decimal("14.99"), transfer_price=Decimal("13.99"),
                              renew_price=Decimal("15.49")))
    domain = factories.domain(client, name="hopper.dev", registrar="enom",
                              expiry_date=date(2026, 1, 1))
    db.session.commit()
    return dict(usd=usd.id, client=client.id, paid=paid.id, unpaid=unpaid.id,
                payment=payment.id, quote=quote.id, tld=tld.id, domain=domain.id)


LIST_PAGES = [
    ("invoiceview", ["INV-2025-0001", "INV-2025-0002", "Grace Hopper", "1,250.00 USD",
                     "20.00 USD", '<span class="label label-success">Paid</span>',
                     '<span class="label label-warning">Unpaid</span>']),
    ("invoiceitemview", ["Domain renewal - hopper.dev", "18.00 USD"]),
    ("transactionview", ["ch_3PaYmEnT", "stripe", "1,250.00 USD", "36.55 USD", "INV-2025-0001"]),
    ("creditentryview", ["Overpayment credited", "25.00 USD", "Grace Hopper"]),
    ("creditnoteview", ["CN-2025-0001", "50.00 USD", "Goodwill refund"]),
    ("billableitemview", ["Site migration", "75.00 USD"]),
    ("quoteview", ["Dedicated server proposal", "199.00 USD", "Delivered"]),
    ("quoteitemview", ["Xeon box, 64 GB RAM", "199.00 USD"]),
    ("taxruleview", ["VAT", "GB", "20%"]),
    ("paymentgatewayview", ["Stripe Cards", "stripe"]),
    ("paymethodview", ["Visa", "4242", "Grace Hopper"]),
    ("domainview", ["hopper.dev", "Grace Hopper", "12.00 USD", "2026-01-01",
                    '<span class="label label-success">Active</span>']),
    ("tldview", [".dev", "enom"]),
    ("tldpricingview", [".dev", "14.99 USD", "13.99 USD", "15.49 USD"]),
    ("registrarview", ["eNom", "enom"]),
]


@pytest.mark.parametrize("view, expected", LIST_PAGES, ids=[v for v, _ in LIST_PAGES])
def test_list_pages_show_their_rows(admin_client, books, view, expected):
    response = admin_client.get(f"/{view}/list/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for text in expected:
        assert text in html, f"{text!r} missing from /{view}/list/"


def test_invoice_list_is_newest_first(admin_client, books):
    html = admin_client.get("/invoiceview/list/").get_data(as_text=True)
    assert html.index("INV-2025-0002") < html.index("INV-2025-0001")


def test_invoice_list_filters_by_status(admin_client, books):
    # FAB's filter 3 on a text column is "Equal to"
    html = admin_client.get("/invoiceview/list/?_flt_3_status=Paid").get_data(as_text=True)
    assert "INV-2025-0001" in html
    assert "INV-2025-0002" not in html


def test_invoice_show_page_lists_its_items_and_amounts(admin_client, books):
    response = admin_client.get(f"/invoiceview/show/{books['unpaid']}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "INV-2025-0002" in html
    assert "Starter Plan (01/02/2025 - 28/02/2025)" in html
    assert "Domain renewal - hopper.dev" in html
    assert "Consulting" not in html  # another invoice's item
    assert "30.00 USD" in html       # total
    assert "20.00 USD" in html       # balance due


def test_invoice_show_page_lists_its_payments(admin_client, books):
    html = admin_client.get(f"/invoiceview/show/{books['paid']}").get_data(as_text=True)
    assert "ch_3PaYmEnT" in html
    assert "CN-2025-0001" in html


READ_ONLY = [
    ("invoiceview", Invoice, "paid"),
    ("transactionview", Transaction, "payment"),
]


@pytest.mark.parametrize("view, model, key", READ_ONLY, ids=[v for v, _, _ in READ_ONLY])
def test_money_records_cannot_be_added_edited_or_deleted(admin_client, books, db, view, model,
                                                          key):
    rows_before = count(db, model)
    response = admin_client.post(f"/{view}/add", data={"client": str(books["client"]),
                                                       "gateway": "manual"})
    assert response.status_code in (403, 404, 405)
    assert admin_client.get(f"/{view}/add").status_code in (403, 404, 405)
    response = admin_client.post(f"/{view}/edit/{books[key]}",
                                 data={"status": "Cancelled", "amount_in": "1.00"})
    assert response.status_code in (403, 404, 405)
    response = admin_client.post(f"/{view}/delete/{books[key]}")
    assert response.status_code in (403, 404, 405)
    db.session.expire_all()
    assert count(db, model) == rows_before
    row = db.session.get(model, books[key])
    assert getattr(row, "status", "Paid") == "Paid"
    assert row.client_id == books["client"]


@pytest.mark.parametrize("view", ["invoiceitemview", "creditentryview", "creditnoteview"])
def test_ledger_screens_offer_no_add(admin_client, books, view):
    assert admin_client.get(f"/{view}/add").status_code in (403, 404, 405)


def test_invoice_list_page_has_no_add_or_edit_links(admin_client, books):
    html = admin_client.get("/invoiceview/list/").get_data(as_text=True)
    assert "/invoiceview/add" not in html
    assert f"/invoiceview/edit/{books['paid']}" not in html


# -- domains -------------------------------------------------------------------------


def domain_form(client_id: int, **overrides) -> dict:
    form = dict(name="Lovelace.Dev", client=str(client_id), type="Register", status="Pending",
                registration_period="1", first_payment_amount="14.99",
                recurring_amount="15.49", nameservers="ns1.host.test\nns2.host.test",
                auto_renew="y", registrar_lock="y")
    form.update(overrides)
    return form


def test_domain_add_lowercases_the_name_and_logs_it(admin_client, books, db):
    response = admin_client.post("/domainview/add", data=domain_form(books["client"]))
    assert response.status_code == 302
    domain = db.session.scalars(select(Domain).filter_by(name="lovelace.dev")).one()
    assert domain.client_id == books["client"]
    assert domain.recurring_amount == Decimal("15.49")
    assert domain.nameserver_list == ["ns1.host.test", "ns2.host.test"]
    assert domain.id_protection is False
    entry = db.session.scalars(select(ActivityLog).filter_by(object_type="Domain")).one()
    assert entry.object_id == domain.id
    assert entry.client_id == books["client"]


@pytest.mark.parametrize("name", ["not a domain", "example", "-bad-.com", "exa_mple.com",
                                  "example.c0m", "example..com"])
def test_malformed_domain_names_are_refused(admin_client, books, db, name):
    response = admin_client.post("/domainview/add", data=domain_form(books["client"], name=name))
    assert response.status_code == 200
    assert "Enter a domain name such as example.com" in response.get_data(as_text=True)
    assert count(db, Domain) == 1


def test_a_domain_already_on_file_is_refused_whatever_its_case(admin_client, books, db):
    response = admin_client.post("/domainview/add",
                                 data=domain_form(books["client"], name="HOPPER.dev"))
    assert response.status_code == 200
    assert "The domain hopper.dev is already on file." in response.get_data(as_text=True)
    assert count(db, Domain) == 1


@pytest.mark.parametrize("period", ["0", "11"])
def test_domain_period_outside_one_to_ten_years_is_refused(admin_client, books, db, period):
    response = admin_client.post("/domainview/add", data=domain_form(
        books["client"], registration_period=period))
    assert "The registration period is 1 to 10 years." in response.get_data(as_text=True)
    assert count(db, Domain) == 1


def test_domain_without_client_is_refused(admin_client, books, db):
    form = domain_form(books["client"])
    del form["client"]
    response = admin_client.post("/domainview/add", data=form)
    assert response.status_code == 200
    assert "This field is required." in response.get_data(as_text=True)
    assert count(db, Domain) == 1


def test_domain_edit_keeps_its_own_name_and_logs_the_change(admin_client, books, db):
    response = admin_client.post(f"/domainview/edit/{books['domain']}", data=domain_form(
        books["client"], name="hopper.dev", status="Expired"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Domain, books["domain"]).status == "Expired"
    entry = db.session.scalars(select(ActivityLog).filter_by(object_type="Domain")).one()
    assert entry.before["status"] == "Active"
    assert entry.after["status"] == "Expired"


@pytest.mark.parametrize("extension, message", [
    ("com", "A TLD starts with a dot"),
    (".DEV", "The TLD .dev exists already."),
])
def test_bad_tld_extensions_are_refused(admin_client, books, db, extension, message):
    response = admin_client.post("/tldview/add", data=dict(
        extension=extension, grace_period_days="30", grace_fee="0",
        redemption_period_days="30", redemption_fee="0", sort_order="0"))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(db, Tld) == 1


@pytest.mark.parametrize("years, price, message", [
    ("11", "10.00", "Years must be between 1 and 10."),
    ("2", "-10.00", "The register price cannot be negative."),
    ("1", "10.00", "There is already a 1-year price in USD for .dev"),
])
def test_bad_tld_prices_are_refused(admin_client, books, db, years, price, message):
    response = admin_client.post("/tldpricingview/add", data=dict(
        tld=str(books["tld"]), currency=str(books["usd"]), years=years,
        register_price=price, transfer_price="9.00", renew_price="9.00"))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(db, TldPricing) == 1


# -- tax rules -----------------------------------------------------------------------


@pytest.mark.parametrize("fields, message", [
    (dict(rate="100"), "A tax rate is at least 0 and below 100 percent."),
    (dict(rate="-1"), "A tax rate is at least 0 and below 100 percent."),
    (dict(level="3"), "Not a valid choice"),
    (dict(country="USA"), "A country is a two-letter code such as US or GB."),
])
def test_bad_tax_rules_are_refused(admin_client, books, db, fields, message):
    form = dict(level="1", name="Sales tax", country="US", state="", rate="7.25")
    form.update(fields)
    response = admin_client.post("/taxruleview/add", data=form)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(db, TaxRule) == 1


def test_tax_rule_keeps_four_decimal_places_and_an_empty_country(admin_client, books, db):
    response = admin_client.post("/taxruleview/add", data=dict(
        level="2", name="Levy", country="", state="", rate="8.8750"))
    assert response.status_code == 302
    rule = db.session.scalars(select(TaxRule).filter_by(name="Levy")).one()
    assert rule.rate == Decimal("8.8750")
    assert rule.level == 2
    assert not rule.country
    edit = admin_client.get(f"/taxruleview/edit/{rule.id}").get_data(as_text=True)
    assert 'value="8.8750"' in edit


# -- secrets -------------------------------------------------------------------------


def test_billing_and_registrar_secrets_are_only_shown_masked(admin_client, books, db):
    gateway = db.session.scalar(select(PaymentGateway.id))
    pay_method = db.session.scalar(select(PayMethod.id))
    registrar = db.session.scalar(select(Registrar.id))
    pages = {
        GATEWAY_SECRET: ["/paymentgatewayview/list/", f"/paymentgatewayview/show/{gateway}",
                         f"/paymentgatewayview/edit/{gateway}"],
        CARD_TOKEN: ["/paymethodview/list/", f"/paymethodview/show/{pay_method}"],
        REGISTRAR_KEY: ["/registrarview/list/", f"/registrarview/show/{registrar}",
                        f"/registrarview/edit/{registrar}"],
    }
    for secret, urls in pages.items():
        for url in urls:
            response = admin_client.get(url)
            assert response.status_code == 200, url
            assert secret not in response.get_data(as_text=True), url
    show = admin_client.get(f"/registrarview/show/{registrar}").get_data(as_text=True)
    assert "••••••••" + REGISTRAR_KEY[-4:] in show


def test_gateway_credentials_must_be_a_json_object(admin_client, books, db):
    gateway = db.session.scalar(select(PaymentGateway.id))
    response = admin_client.post(f"/paymentgatewayview/edit/{gateway}", data=dict(
        display_name="Stripe Cards", module="stripe", enabled="y", currencies="",
        credentials="secret_key=abc", surcharge_percent="0", surcharge_fixed="0",
        sort_order="0"))
    assert response.status_code == 200
    assert "Credentials are a JSON object" in response.get_data(as_text=True)
    db.session.expire_all()
    assert GATEWAY_SECRET in db.session.get(PaymentGateway, gateway).credentials


def test_gateway_edit_with_empty_credentials_keeps_them(admin_client, books, db):
    gateway = db.session.scalar(select(PaymentGateway.id))
    response = admin_client.post(f"/paymentgatewayview/edit/{gateway}", data=dict(
        display_name="Stripe", module="stripe", enabled="y", currencies="usd,eur",
        credentials="", surcharge_percent="2.9", surcharge_fixed="0.30", sort_order="1"))
    assert response.status_code == 302
    db.session.expire_all()
    row = db.session.get(PaymentGateway, gateway)
    assert row.display_name == "Stripe"
    assert row.currencies == "USD,EUR"
    assert row.surcharge_percent == Decimal("2.9000")
    assert GATEWAY_SECRET in row.credentials


def test_pay_methods_are_not_added_or_edited_by_hand(admin_client, books, db):
    # Only a gateway saves a method (app.gateways.methods): the screen is read-only.
    pay_method = db.session.scalar(select(PayMethod.id))
    response = admin_client.post("/paymethodview/add", data=dict(
        client=str(books["client"]), gateway="stripe", kind="card", token="tok_x",
        brand="Mastercard", last4="5454", expiry_month="1", expiry_year="2031"))
    assert response.status_code == 403
    assert admin_client.post(f"/paymethodview/edit/{pay_method}",
                             data=dict(last4="0000")).status_code == 403
    db.session.expire_all()
    assert count(db, PayMethod) == 1
    assert db.session.get(PayMethod, pay_method).last4 != "0000"


# -- billable items and quotes -------------------------------------------------------


def test_billable_item_with_negative_amount_is_refused(admin_client, books, db):
    response = admin_client.post("/billableitemview/add", data=dict(
        client=str(books["client"]), description="Refund?", amount="-5.00", hours="0",
        invoice_action="next_cron", recur_every="0", recur_for="0"))
    assert response.status_code == 200
    assert "The amount cannot be negative." in response.get_data(as_text=True)
    assert count(db, BillableItem) == 1


def test_quote_item_add_works_and_zero_quantity_is_refused(admin_client, books, db):
    form = dict(quote=str(books["quote"]), description="Setup", quantity="1",
                unit_price="49.00", discount_percent="0", taxed="y")
    assert admin_client.post("/quoteitemview/add", data=form).status_code == 302
    response = admin_client.post("/quoteitemview/add", data={**form, "quantity": "0"})
    assert "The quantity is at least 1." in response.get_data(as_text=True)
    items = db.session.scalars(select(QuoteItem).order_by(QuoteItem.id)).all()
    assert [(i.description, i.unit_price) for i in items] == [
        ("Xeon box, 64 GB RAM", Decimal("199.00")), ("Setup", Decimal("49.00"))]


def test_deleting_a_tax_rule_removes_it_and_logs_it(admin_client, books, db):
    rule_id = db.session.scalar(select(TaxRule.id))
    response = admin_client.post(f"/taxruleview/delete/{rule_id}")
    assert response.status_code == 302
    db.session.expire_all()
    assert count(db, TaxRule) == 0
    entry = db.session.scalars(select(ActivityLog).filter_by(object_type="TaxRule")).one()
    assert entry.object_id == rule_id
    assert entry.before["name"] == "VAT"


def test_billing_and_domains_menus_list_their_screens(admin_client, books):
    html = admin_client.get("/invoiceview/list/").get_data(as_text=True)
    for label in ["Billing", "Invoices", "Transactions", "Credit Ledger", "Credit Notes",
                  "Tax Rules", "Domains", "Registrars"]:
        assert label in html
    assert "fa-file-text-o" in html and "fa-globe" in html
