"""The portal's domain page: "Request EPP code" (emailed, never shown) and "Renew now"
(a renewal invoice through the billing engine, then the invoice page); another
client's domain answers 404 and changes nothing."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from app.models.billing import Invoice, InvoiceItem
from app.models.domains import Domain
from app.models.system import ActivityLog, EmailMessage
from app.registrars.local import LocalRegistrar
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    client_a, text_of, world,
)


def use_local_registrar(app, domain_id: int) -> None:
    with app.app_context():
        db.session.get(Domain, domain_id).registrar = "local"
        db.session.commit()


def test_domain_page_offers_renew_and_epp_code(client_a, world):
    page = text_of(client_a.get(f"/portal/domains/{world['a']['domain']}"))
    assert f"/portal/domains/{world['a']['domain']}/renew" in page
    assert f"/portal/domains/{world['a']['domain']}/epp-code" in page


def test_requesting_the_epp_code_emails_it_and_shows_it_nowhere(app, client_a, world):
    domain_id = world["a"]["domain"]
    use_local_registrar(app, domain_id)
    response = client_a.post(f"/portal/domains/{domain_id}/epp-code", follow_redirects=True)
    page = text_of(response)
    assert "We have emailed the EPP code to alpha@clients.test." in page
    with app.app_context():
        code = LocalRegistrar().get_epp_code("alpha-domain.example").epp_code
        email = db.session.scalar(select(EmailMessage).where(
            EmailMessage.template == "Domain EPP Code"))
        assert email.to_address == "alpha@clients.test" and code in email.body_text
        entry = db.session.scalar(select(ActivityLog).where(
            ActivityLog.action == "domain_epp_code_sent"))
        assert entry.actor_type == "client" and code not in entry.description
    assert code not in page


def test_epp_code_without_a_registrar_module_is_refused_clearly(app, client_a, world):
    response = client_a.post(f"/portal/domains/{world['a']['domain']}/epp-code",
                             follow_redirects=True)
    assert "Nothing was changed" in text_of(response) and "no registrar module" in text_of(response)
    with app.app_context():
        assert db.session.scalar(select(func.count(EmailMessage.id)).where(
            EmailMessage.template == "Domain EPP Code")) == 0


def test_renew_now_creates_one_renewal_invoice_and_shows_it(app, client_a, world):
    domain_id = world["a"]["domain"]
    with app.app_context():
        domain = db.session.get(Domain, domain_id)
        domain.next_due_date = domain.next_invoice_date = domain.expiry_date
        db.session.commit()
        expiry = domain.expiry_date
    response = client_a.post(f"/portal/domains/{domain_id}/renew")
    assert response.status_code == 302
    with app.app_context():
        item = db.session.scalar(select(InvoiceItem).where(InvoiceItem.rel_id == domain_id,
                                                           InvoiceItem.type == "Domain"))
        assert (item.amount, item.period_start) == (Decimal("12.00"), expiry)
        invoice = db.session.get(Invoice, item.invoice_id)
        assert invoice.status == "Unpaid" and invoice.client_id == world["a"]["client"]
        assert db.session.get(Domain, domain_id).next_invoice_date == expiry.replace(
            year=expiry.year + 1)
    assert response.headers["Location"].endswith(f"/portal/invoices/{invoice.id}")
    # Asked again: the same open invoice, no second one.
    again = client_a.post(f"/portal/domains/{domain_id}/renew")
    assert again.headers["Location"].endswith(f"/portal/invoices/{invoice.id}")
    with app.app_context():
        assert db.session.scalar(select(func.count(InvoiceItem.id)).where(
            InvoiceItem.rel_id == domain_id, InvoiceItem.type == "Domain")) == 1


def test_an_expired_domain_cannot_be_renewed_from_the_portal(app, client_a, world):
    domain_id = world["a"]["domain"]
    with app.app_context():
        db.session.get(Domain, domain_id).status = "Expired"
        db.session.commit()
    assert f"/portal/domains/{domain_id}/renew" not in text_of(
        client_a.get(f"/portal/domains/{domain_id}"))
    response = client_a.post(f"/portal/domains/{domain_id}/renew", follow_redirects=True)
    assert "it cannot be renewed now" in text_of(response)


def test_another_clients_domain_is_404_and_nothing_happens(app, client_a, world):
    other = world["b"]["domain"]
    use_local_registrar(app, other)
    assert client_a.post(f"/portal/domains/{other}/epp-code").status_code == 404
    assert client_a.post(f"/portal/domains/{other}/renew").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count(EmailMessage.id)).where(
            EmailMessage.template == "Domain EPP Code")) == 0
        assert db.session.scalar(select(func.count(InvoiceItem.id)).where(
            InvoiceItem.rel_id == other, InvoiceItem.type == "Domain")) == 0
