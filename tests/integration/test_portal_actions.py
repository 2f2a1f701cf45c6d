"""What a client does in the portal, through its routes: request a cancellation,
change a domain's settings, pay an invoice with credit, download the PDF, edit the
profile and the email address. Each change is logged; bad input changes nothing."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.models.billing import CreditEntry, Invoice
from app.models.clients import Client
from app.models.domains import Domain
from app.models.orders import CancellationRequest, Service
from app.models.system import ActivityLog
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    PASSWORD, client_a, portal_login, text_of, world,
)


def logged(app, action: str) -> list[ActivityLog]:
    with app.app_context():
        rows = list(db.session.scalars(select(ActivityLog).where(ActivityLog.action == action)
                                       .order_by(ActivityLog.id)))
        db.session.expunge_all()
        return rows


def test_requesting_a_cancellation_records_and_logs_it(app, client_a, world):
    service = world["a"]["service"]
    response = client_a.post(f"/portal/services/{service}/cancel",
                             data={"type": "End of Billing Period", "reason": "Moving to a VPS"})
    assert response.status_code == 302
    page = text_of(client_a.get(response.headers["Location"]))
    assert 'id="pending-cancellation"' in page and "End of billing period" in page
    assert 'id="request-cancellation"' not in page  # one open request at a time
    with app.app_context():
        [request] = db.session.scalars(select(CancellationRequest)).all()
        assert (request.service_id, request.type, request.reason) == \
            (service, "End of Billing Period", "Moving to a VPS")
        assert db.session.get(Service, service).status == "Active"  # carried out later
    [entry] = logged(app, "cancellation_requested")
    assert (entry.actor_type, entry.user_id is not None, entry.object_id, entry.client_id) == \
        ("client", True, service, world["a"]["client"])

    again = client_a.post(f"/portal/services/{service}/cancel",
                          data={"type": "Immediate", "reason": "Twice"})
    assert again.status_code == 200 and "requested already" in text_of(again)
    with app.app_context():
        assert len(db.session.scalars(select(CancellationRequest)).all()) == 1


def test_a_cancellation_needs_a_known_type_and_a_reason(app, client_a, world):
    service = world["a"]["service"]
    for body in ({"type": "Yesterday", "reason": "x"}, {"type": "Immediate", "reason": "  "}):
        response = client_a.post(f"/portal/services/{service}/cancel", data=body)
        assert response.status_code == 200
        assert "is-invalid" in text_of(response)
    with app.app_context():
        assert db.session.scalars(select(CancellationRequest)).all() == []


def test_domain_auto_renew_and_lock_toggles_are_saved_and_logged(app, client_a, world):
    domain = world["a"]["domain"]
    assert client_a.post(f"/portal/domains/{domain}/auto-renew",
                         data={"value": "off"}).status_code == 302
    assert client_a.post(f"/portal/domains/{domain}/lock", data={"value": "off"}).status_code == 302
    # Sending the state already set changes and logs nothing.
    client_a.post(f"/portal/domains/{domain}/lock", data={"value": "off"})
    with app.app_context():
        row = db.session.get(Domain, domain)
        assert (row.auto_renew, row.registrar_lock) == (False, False)
    [renew] = logged(app, "domain_auto_renew")
    assert (renew.before, renew.after) == ({"auto_renew": True}, {"auto_renew": False})
    assert len(logged(app, "domain_registrar_lock")) == 1
    page = text_of(client_a.get(f"/portal/domains/{domain}"))
    assert "Unlocked: the domain can be transferred away." in page
    # Anything but on/off is refused.
    assert client_a.post(f"/portal/domains/{domain}/lock",
                         data={"value": "maybe"}).status_code == 400


def test_nameservers_are_checked_before_they_are_saved(app, client_a, world):
    domain = world["a"]["domain"]
    bad = client_a.post(f"/portal/domains/{domain}/nameservers",
                        data={"ns1": "ns1.good.test", "ns2": "not a host!"}, follow_redirects=True)
    assert "not a valid nameserver host name" in text_of(bad)
    one = client_a.post(f"/portal/domains/{domain}/nameservers", data={"ns1": "ns1.good.test"},
                        follow_redirects=True)
    assert "give 2 to 5 nameservers" in text_of(one)
    with app.app_context():
        assert db.session.get(Domain, domain).nameserver_list == ["ns1.host.test", "ns2.host.test"]
    good = client_a.post(f"/portal/domains/{domain}/nameservers",
                         data={"ns1": "NS1.Cloud.Example.", "ns2": "ns2.cloud.example"})
    assert good.status_code == 302
    with app.app_context():
        assert db.session.get(Domain, domain).nameserver_list == ["ns1.cloud.example",
                                                                  "ns2.cloud.example"]
    [entry] = logged(app, "domain_nameservers")
    assert entry.before == {"nameservers": "ns1.host.test, ns2.host.test"}


def test_an_inactive_domains_settings_cannot_be_changed(app, client_a, world):
    domain = world["a"]["domain"]
    with app.app_context():
        db.session.get(Domain, domain).status = "Expired"
        db.session.commit()
    assert "Turn off" not in text_of(client_a.get(f"/portal/domains/{domain}"))
    response = client_a.post(f"/portal/domains/{domain}/auto-renew", data={"value": "off"},
                             follow_redirects=True)
    assert "its settings cannot be changed now" in text_of(response)
    with app.app_context():
        assert db.session.get(Domain, domain).auto_renew is True


def test_paying_with_credit_uses_the_credit_and_shows_the_new_balance(app, client_a, world):
    invoice = world["a"]["invoice"]
    response = client_a.post(f"/portal/invoices/{invoice}/credit", data={"amount": "10.00"},
                             follow_redirects=True)
    page = text_of(response)
    assert "Credit applied to the invoice." in page
    assert 'id="invoice-credit-applied">$10.00<' in page
    assert 'id="invoice-balance">$14.00<' in page
    assert 'id="credit-form"' not in page  # no credit left to offer
    with app.app_context():
        row = db.session.get(Invoice, invoice)
        assert (row.status, row.amount_paid, row.credit_applied) == \
            ("Unpaid", Decimal("10.00"), Decimal("10.00"))
        assert db.session.get(Client, world["a"]["client"]).credit_balance == Decimal("0.00")
        assert db.session.scalar(select(CreditEntry.amount).order_by(CreditEntry.id.desc())
                                 .limit(1)) == Decimal("-10.00")
    assert 'id="credit-balance">$0.00<' in text_of(client_a.get("/portal/"))


def test_more_credit_than_the_client_has_is_refused_and_changes_nothing(app, client_a, world):
    invoice = world["a"]["invoice"]
    for amount in ("10.01", "abc", "-1"):
        response = client_a.post(f"/portal/invoices/{invoice}/credit", data={"amount": amount},
                                 follow_redirects=True)
        assert "No credit was applied" in text_of(response), amount
    with app.app_context():
        assert db.session.get(Invoice, invoice).amount_paid == Decimal("0.00")
        assert db.session.get(Client, world["a"]["client"]).credit_balance == Decimal("10.00")


def test_credit_that_pays_the_whole_invoice_marks_it_paid(app, world):
    from app.activity import Actor
    from app.billing import credit

    with app.app_context():
        credit.add_credit(world["a"]["client"], "20.00", "Refund of an old order", Actor.system())
        db.session.commit()
    http = app.test_client()
    portal_login(http, world["user_a"])
    invoice = world["a"]["invoice"]
    assert 'value="24.00"' in text_of(http.get(f"/portal/invoices/{invoice}"))
    page = text_of(http.post(f"/portal/invoices/{invoice}/credit", data={"amount": "24.00"},
                             follow_redirects=True))
    assert 'id="invoice-balance">$0.00<' in page and "Pay this invoice" not in page
    with app.app_context():
        assert db.session.get(Invoice, invoice).status == "Paid"
        assert db.session.get(Client, world["a"]["client"]).credit_balance == Decimal("6.00")


def test_the_invoice_pdf_downloads(client_a, world):
    response = client_a.get(f"/portal/invoices/{world['a']['invoice']}/pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename=Invoice-{world["a"]["invoice_number"]}.pdf'


def test_draft_invoices_are_not_shown(app, client_a, world):
    invoice = world["a"]["invoice"]
    with app.app_context():
        db.session.get(Invoice, invoice).status = "Draft"
        db.session.commit()
    assert client_a.get(f"/portal/invoices/{invoice}").status_code == 404
    assert world["a"]["invoice_number"] not in text_of(client_a.get("/portal/invoices"))


def profile(**changes) -> dict:
    values = {"first_name": "Alpha", "last_name": "Owner", "company_name": "Alpha Ltd",
              "phone": "", "address1": "", "address2": "", "city": "", "state": "",
              "postcode": "", "country": "US"}
    values.update(changes)
    return values


def test_the_profile_is_saved_and_logged(app, client_a, world):
    response = client_a.post("/portal/account", data=profile(
        phone="+49 30 123456", address1="Unter den Linden 1", city="Berlin", postcode="10117",
        country="DE"))
    assert response.status_code == 302
    with app.app_context():
        client = db.session.get(Client, world["a"]["client"])
        assert (client.phone, client.city, client.country) == ("+49 30 123456", "Berlin", "DE")
    [entry] = logged(app, "client_updated")
    assert entry.before["city"] is None and entry.after["city"] == "Berlin"


def test_a_profile_without_a_name_or_with_a_bad_country_is_refused(app, client_a, world):
    for body in (profile(first_name=""), profile(country="XX")):
        response = client_a.post("/portal/account", data=body)
        assert response.status_code == 200 and "is-invalid" in text_of(response)
    with app.app_context():
        client = db.session.get(Client, world["a"]["client"])
        assert (client.first_name, client.country) == ("Alpha", "US")
    assert logged(app, "client_updated") == []


def test_changing_the_email_needs_the_password(app, client_a, world):
    with app.app_context():
        db.session.get(Client, world["b"]["client"]).email = "bravo@bravo-web.com"
        db.session.commit()
    wrong = client_a.post("/portal/account/email",
                          data={"email": "alpha@new-domain.com", "password": "guess"},
                          follow_redirects=True)
    assert "the password is not correct" in text_of(wrong)
    with app.app_context():
        assert db.session.get(Client, world["a"]["client"]).email == "alpha@clients.test"
    taken = client_a.post("/portal/account/email",
                          data={"email": "BRAVO@bravo-web.com", "password": PASSWORD},
                          follow_redirects=True)
    assert "another account uses that email address" in text_of(taken)

    done = client_a.post("/portal/account/email",
                         data={"email": "alpha@new-domain.com", "password": PASSWORD},
                         follow_redirects=True)
    assert "The account&#39;s email address is now alpha@new-domain.com." in text_of(done)
    with app.app_context():
        assert db.session.get(Client, world["a"]["client"]).email == "alpha@new-domain.com"
    [entry] = logged(app, "client_email_changed")
    assert entry.before == {"email": "alpha@clients.test"}
    # The login used another address than the account's: it stays as it was.
    assert portal_login(app.test_client(), world["user_a"]).status_code == 302


def test_a_login_with_the_accounts_address_follows_the_change(app, world):
    from tests.integration.test_portal_world import link, make_client_user

    with app.app_context():
        client = db.session.get(Client, world["b"]["client"])
        client.email = "bob@bravo-web.com"
        link(make_client_user("bob@bravo-web.com", "Bob", "Bravo"), client)
        db.session.commit()
    http = app.test_client()
    portal_login(http, "bob@bravo-web.com")
    response = http.post("/portal/account/email",
                         data={"email": "bob@bravo-hosting.com", "password": PASSWORD})
    assert response.status_code == 302
    assert portal_login(app.test_client(), "bob@bravo-hosting.com").status_code == 302
    assert portal_login(app.test_client(), "bob@bravo-web.com").status_code == 200
