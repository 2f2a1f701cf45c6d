"""The portal's domain page: domain addons turned on (an invoice for the rest of the
paid registration, on when paid; a free one at once) and off; another client's domain
answers 404 and changes nothing."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.billing import payments
from app.extensions import db
from app.models.billing import Invoice, InvoiceItem
from app.models.clients import Client
from app.models.domains import Domain, DomainAddonPricing, Tld
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    client_a, text_of, world,
)

D = Decimal


@pytest.fixture
def addons(app, world):
    """.example offers ID protection (36.50 a year) and email forwarding (free); A's
    domain expires in 10 days, so ID protection costs 36.50 x 10 / 365 = 1.00 now."""
    with app.app_context():
        db.session.add(Tld(extension=".example", id_protection=True, email_forwarding=True))
        currency_id = db.session.get(Client, world["a"]["client"]).currency_id
        db.session.add(DomainAddonPricing(currency_id=currency_id, addon="id_protection",
                                          price=D("36.50")))
        db.session.commit()
    return world["a"]["domain"]


def domain_row(app, domain_id) -> Domain:
    with app.app_context():
        row = db.session.get(Domain, domain_id)
        db.session.expunge(row)
        return row


def test_turning_id_protection_on_invoices_it_and_payment_switches_it_on(app, client_a, addons):
    with app.app_context():
        settings.set_value("NoAutoApplyCredit", "on")   # A's credit would pay it at once
        db.session.commit()
    page = text_of(client_a.get(f"/portal/domains/{addons}"))
    assert "ID protection" in page and "$36.50 per year" in page
    assert "$1.00 now for the rest of the paid registration" in page
    assert "DNS management" not in page                     # not offered for .example

    response = client_a.post(f"/portal/domains/{addons}/addons/id_protection", data={"value": "on"})
    assert response.status_code == 302
    with app.app_context():
        item = db.session.scalar(select(InvoiceItem).where(InvoiceItem.type == "DomainAddonIDP"))
        assert (item.rel_id, item.amount) == (addons, D("1.00"))
        assert response.headers["Location"].endswith(f"/portal/invoices/{item.invoice_id}")
        invoice_id = item.invoice_id
    assert domain_row(app, addons).id_protection is False   # not before it is paid

    with app.app_context():
        payments.apply_payment(invoice_id, D("1.00"), "USD", "banktransfer", "idp-paid",
                               paid_at=datetime.now())
        db.session.commit()
    row = domain_row(app, addons)
    assert row.id_protection is True and row.recurring_amount == D("48.50")   # 12.00 + 36.50

    response = client_a.post(f"/portal/domains/{addons}/addons/id_protection", data={"value": "off"},
                             follow_redirects=True)
    assert "ID protection is off. Your next renewal will not include it." in text_of(response)
    row = domain_row(app, addons)
    assert row.id_protection is False and row.recurring_amount == D("12.00")


def test_credit_pays_it_at_once(app, client_a, addons, world):
    client_a.post(f"/portal/domains/{addons}/addons/id_protection", data={"value": "on"})
    assert domain_row(app, addons).id_protection is True
    with app.app_context():
        client = db.session.get(Client, world["a"]["client"])
        assert client.credit_balance == D("9.00")


def test_a_free_addon_is_on_at_once(app, client_a, addons):
    response = client_a.post(f"/portal/domains/{addons}/addons/email_forwarding",
                             data={"value": "on"}, follow_redirects=True)
    assert "Email forwarding is on." in text_of(response)
    assert domain_row(app, addons).email_forwarding is True
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(InvoiceItem).where(
            InvoiceItem.type.like("DomainAddon%"))) == 0


def test_refused_and_foreign_requests_change_nothing(app, client_a, addons, world):
    response = client_a.post(f"/portal/domains/{addons}/addons/dns_management", data={"value": "on"},
                             follow_redirects=True)
    assert "Nothing was changed: DNS Management is not offered" in text_of(response)
    assert client_a.post(f"/portal/domains/{addons}/addons/nonsense",
                         data={"value": "on"}).status_code == 400
    other = world["b"]["domain"]
    assert client_a.post(f"/portal/domains/{other}/addons/id_protection",
                         data={"value": "on"}).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice).where(
            Invoice.client_id == world["b"]["client"])) == 1    # only its own fixture invoice
        assert db.session.scalar(select(func.count()).select_from(InvoiceItem).where(
            InvoiceItem.type.like("DomainAddon%"))) == 0


def test_the_form_needs_its_csrf_token(app, client_a, addons):
    previous = app.config.get("WTF_CSRF_ENABLED", True)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client_a.post(f"/portal/domains/{addons}/addons/email_forwarding",
                                 data={"value": "on"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = previous
    assert response.status_code == 400
    assert domain_row(app, addons).email_forwarding is False
