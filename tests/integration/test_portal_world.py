"""The data the portal tests share: two client accounts with one of everything
(service, domain, invoice, ticket with an attachment, contact), client users
linked to them, and portal sign-in. The tests here check what the dashboard shows
of that data, to the cent."""
from __future__ import annotations

import os
from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import current_app

from app.activity import Actor
from app.billing import credit, invoicing
from app.extensions import db
from app.models.billing import ItemType
from app.models.clients import Client, ClientUser, Contact
from app.models.support import (
    Announcement, KbArticle, KbCategory, SupportDepartment, Ticket, TicketAttachment, TicketReply,
)
from app.support.attachments import store_folder
from tests import factories

PASSWORD = "Portal-Pass-9"


def make_client_user(email: str, first_name: str = "Ada", last_name: str = "Lovelace",
                     password: str = PASSWORD):
    sm = current_app.appbuilder.sm
    user = sm.add_user(email, first_name, last_name, email, sm.find_role("Client"),
                       password=password)
    assert user, f"user {email} not created"
    return user


def link(user, client, owner: bool = True, permissions: tuple[str, ...] = ()) -> ClientUser:
    membership = ClientUser(user_id=user.id, client_id=client.id, is_owner=owner,
                            permissions=",".join(permissions))
    db.session.add(membership)
    db.session.flush()
    return membership


def department(name: str = "Technical Support") -> SupportDepartment:
    found = db.session.query(SupportDepartment).filter_by(name=name).one_or_none()
    if found:
        return found
    row = SupportDepartment(name=name, email=f"{name.split()[0].lower()}@support.test")
    db.session.add(row)
    db.session.flush()
    return row


def account(label: str, email: str, *, credit_amount: str = "0",
            invoice_amount: str = "24.00") -> dict:
    """A client with an active service, a domain expiring in 10 days, an unpaid
    invoice, a ticket with a staff answer and an attachment, and a contact."""
    today = date.today()
    client = factories.client(first_name=label.title(), last_name="Owner",
                              company_name=f"{label.title()} Ltd", email=email)
    plan = factories.product(name=f"{label.title()} Hosting", slug=f"{label}-hosting",
                             price=invoice_amount)
    service = factories.service(client, plan, amount=invoice_amount,
                                next_due=today + timedelta(days=20), domain=f"{label}-site.example")
    domain = factories.domain(client, name=f"{label}-domain.example",
                              expiry_date=today + timedelta(days=10),
                              registration_date=today - timedelta(days=355),
                              nameservers="ns1.host.test\nns2.host.test")
    if Decimal(credit_amount):
        credit.add_credit(client.id, credit_amount, "Goodwill credit", Actor.system())
    invoice = invoicing.create_invoice(
        client.id,
        [invoicing.InvoiceLine(type=ItemType.HOSTING, rel_id=service.id,
                               description=f"{plan.name} - {service.domain}",
                               amount=Decimal(invoice_amount),
                               period_start=today, period_end=today + timedelta(days=30))],
        issue_date=today, due_date=today + timedelta(days=7), apply_credit=False)
    ticket = Ticket(tid=f"{label[:3].upper()}-{100000 + client.id}", department_id=department().id,
                    client_id=client.id, name=client.full_name, email=client.email,
                    subject=f"{label.title()} mail question", status="Answered")
    ticket.replies.append(TicketReply(name=client.full_name, email=client.email,
                                      message="How do I set up email?"))
    db.session.add(ticket)
    db.session.flush()
    stored_name = os.urandom(16).hex()
    (store_folder() / stored_name).write_bytes(b"log line 1\n")
    attachment = TicketAttachment(ticket_id=ticket.id, reply_id=ticket.replies[0].id,
                                  original_name="error.log", stored_name=stored_name,
                                  content_type="text/plain", size=11)
    db.session.add(attachment)
    contact = Contact(client_id=client.id, first_name="Carl", last_name=f"{label.title()}contact",
                      email=f"carl@{label}.test")
    db.session.add(contact)
    db.session.flush()
    return {"client": client.id, "service": service.id, "domain": domain.id,
            "invoice": invoice.id, "invoice_number": invoice.number, "ticket": ticket.id,
            "attachment": attachment.id, "contact": contact.id, "email": email}


@pytest.fixture
def world(app):
    """Accounts A and B, each with an owner login; A has 10.00 credit."""
    with app.app_context():
        a = account("alpha", "alpha@clients.test", credit_amount="10.00")
        b = account("bravo", "bravo@clients.test")
        user_a = make_client_user("owner-a@clients.test", "Alice", "Alpha")
        user_b = make_client_user("owner-b@clients.test", "Bob", "Bravo")
        link(user_a, db.session.get(Client, a["client"]))
        link(user_b, db.session.get(Client, b["client"]))
        db.session.commit()
        return {"a": a, "b": b, "user_a": "owner-a@clients.test",
                "user_b": "owner-b@clients.test"}


def portal_login(http, email: str, password: str = PASSWORD, follow: bool = False):
    return http.post("/portal/login", data={"email": email, "password": password},
                     follow_redirects=follow)


@pytest.fixture
def client_a(app, world):
    """A test client signed in to the portal as the owner of account A."""
    http = app.test_client()
    response = portal_login(http, world["user_a"])
    assert response.status_code == 302, response.data[:400]
    assert response.headers["Location"].endswith("/portal/")
    return http


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_dashboard_shows_the_accounts_figures(client_a, world):
    page = client_a.get("/portal/")
    assert page.status_code == 200
    html = text_of(page)
    assert "Welcome back, Alice" in html
    assert 'id="credit-balance">$10.00<' in html
    assert world["a"]["invoice_number"] in html
    assert "$24.00" in html                      # the unpaid invoice's balance
    assert "alpha-domain.example" in html        # expires in 10 days
    assert "Alpha mail question" in html         # an open (Answered) ticket
    # Nothing of account B.
    assert world["b"]["invoice_number"] not in html
    assert "bravo" not in html.lower()


def test_dashboard_lists_published_announcements_only(app, client_a):
    with app.app_context():
        db.session.add_all([
            Announcement(title="Data centre maintenance", body="<p>Friday night.</p>"),
            Announcement(title="Draft news", body="<p>Not yet.</p>", published=False),
        ])
        db.session.commit()
    html = text_of(client_a.get("/portal/"))
    assert "Data centre maintenance" in html
    assert "Draft news" not in html


def test_services_domains_and_invoice_pages_show_exact_values(client_a, world):
    services = text_of(client_a.get("/portal/services"))
    assert "Alpha Hosting" in services and "alpha-site.example" in services
    assert "$24.00" in services and "Monthly" in services

    service = text_of(client_a.get(f"/portal/services/{world['a']['service']}"))
    assert "Alpha Hosting" in service and "$24.00" in service

    domain = text_of(client_a.get(f"/portal/domains/{world['a']['domain']}"))
    assert "ns1.host.test" in domain and "ns2.host.test" in domain

    invoice = text_of(client_a.get(f"/portal/invoices/{world['a']['invoice']}"))
    assert f'id="invoice-reference">{world["a"]["invoice_number"]}<' in invoice
    assert 'id="invoice-total">$24.00<' in invoice
    assert 'id="invoice-balance">$24.00<' in invoice
    # The credit offered is the smaller of the credit (10.00) and the balance.
    assert 'value="10.00"' in invoice


def test_public_pages_need_no_sign_in(app, client):
    with app.app_context():
        category = KbCategory(name="Email")
        db.session.add(category)
        db.session.flush()
        db.session.add(KbArticle(category_id=category.id, title="Set up Thunderbird",
                                 slug="set-up-thunderbird", body="<p>Open the settings.</p>"))
        db.session.commit()
    for public in ("/portal/", "/portal/knowledgebase", "/portal/announcements"):
        assert client.get(public).status_code == 200, public
    assert "Set up Thunderbird" in text_of(client.get("/portal/knowledgebase?q=thunder"))


def test_signed_out_pages_send_to_the_portal_login(client):
    response = client.get("/portal/invoices")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/login?next=/portal/invoices")


def test_contact_list_and_account_page(client_a, world):
    contacts = text_of(client_a.get("/portal/contacts"))
    assert "carl@alpha.test" in contacts and "carl@bravo.test" not in contacts
    account_page = text_of(client_a.get("/portal/account"))
    assert 'value="Alpha Ltd"' in account_page
