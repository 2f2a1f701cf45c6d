"""Client isolation and permissions: a client user reaches the selected account's
records only (another client's id answers 404 on every route, and changes
nothing), a login without a permission gets 403, staff and client users are each
kept in their own world, and a user of several accounts switches between them."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.billing import PayMethod
from app.models.clients import Client
from app.models.orders import CancellationRequest, Order
from app.models.billing import Quote, QuoteStage
from app.models.support import TicketReply
from app.models.system import ActivityLog
from tests.conftest import login
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    PASSWORD, client_a, link, make_client_user, portal_login, text_of, world,
)

# Route argument -> the key of the row in an account of the world fixture.
ROW_OF_ARGUMENT = {"service_id": "service", "domain_id": "domain", "invoice_id": "invoice",
                   "ticket_id": "ticket", "attachment_id": "attachment"}
# Routes whose arguments are not client records: assets, the reset link, and the
# public knowledge base and announcements (the same for everybody).
NOT_CLIENT_ROUTES = {"portal.bootstrap_asset", "portal.reset_password", "portal.kb_category",
                     "portal.kb_article", "portal.announcement"}
# A body each POST route would accept for a record of the user's own account, so
# that a 404 can only come from the record belonging to someone else.
VALID_POST_BODIES = {
    "portal.cancel_service": {"type": "Immediate", "reason": "Moving elsewhere"},
    "portal.domain_auto_renew": {"value": "off"},
    "portal.domain_lock": {"value": "off"},
    "portal.domain_nameservers": {"ns1": "ns1.other.test", "ns2": "ns2.other.test"},
    "portal.domain_epp_code": {},
    "portal.domain_renew": {},
    "portal.invoice_pay_with_credit": {"amount": "1.00"},
    "portal.ticket_reply": {"message": "Hello?"},
    "portal.ticket_close": {},
}
# The account pages: email history, users and invitations, service plan and password.
ROW_OF_ARGUMENT.update({"email_id": "email_message", "membership_id": "membership",
                        "invitation_id": "invitation"})
NOT_CLIENT_ROUTES |= {"portal.invitation"}  # a public link: its token is the key
# The public store: catalog entries, cart positions and emailed links are the same
# for everybody; an order's confirmation page is a record of the client's.
NOT_CLIENT_ROUTES |= {"portal.store", "portal.configure", "portal.cart_update",
                      "portal.cart_remove", "portal.verify_email_link"}
ROW_OF_ARGUMENT["order_id"] = "order"
# A ticket reply (the client's rating of an answer) is reached through its ticket.
ROW_OF_ARGUMENT["reply_id"] = "reply"
VALID_POST_BODIES["portal.ticket_rate"] = {"rating": "5"}
# Quotes (app/portal/quotes.py): a quote sent to the client is its record.
ROW_OF_ARGUMENT["quote_id"] = "quote"
VALID_POST_BODIES["portal.quote_accept"] = {}
VALID_POST_BODIES.update({
    "portal.service_upgrade": {"choice": "1:Monthly"},
    "portal.service_password": {"password": "Tulip-Kettle-93!", "confirm": "Tulip-Kettle-93!"},
    "portal.account_user_permissions": {"permissions": ["tickets"]},
    "portal.remove_account_user": {},
    "portal.cancel_account_invitation": {},
})

# Paying (app/portal/payments.py): a saved payment method is a record; the gateway in
# the return URL is a name (the invoice in the same URL is what is looked up).
ROW_OF_ARGUMENT["method_id"] = "pay_method"
NAME_ARGUMENTS = {"gateway": "stripe"}
# Domain addons (app/portal/domain_addons.py): the domain is the record, the addon a name.
NAME_ARGUMENTS["addon"] = "id_protection"
VALID_POST_BODIES["portal.domain_addon"] = {"value": "on"}
VALID_POST_BODIES.update({"portal.pay_invoice": {"gateway": "banktransfer"},
                          "portal.delete_payment_method": {}})


def account_user_rows(app, world, key: str) -> dict:
    """An email, the owner's membership and an open invitation of an account."""
    from app.activity import Actor
    from app.models.clients import ClientUser
    from app.models.system import EmailMessage
    from app.portal.users import invite_user

    account = world[key]
    with app.app_context():
        owner = db.session.scalar(select(ClientUser).where(
            ClientUser.client_id == account["client"]))
        email = EmailMessage(client_id=account["client"], to_address=account["email"],
                             subject="Notice", body_html="<p>Hi</p>", status="sent")
        db.session.add(email)
        invitation = invite_user(account["client"], f"guest-{key}@example.com", ["tickets"],
                                 owner.user, lambda token: token, Actor.system())
        order = Order(order_number=f"TEST-{key}", client_id=account["client"],
                      currency_id=db.session.get(Client, account["client"]).currency_id)
        db.session.add(order)
        pay_method = PayMethod(client_id=account["client"], gateway="stripe",
                               token="cus_test|pm_test", brand="visa", last4="4242")
        db.session.add(pay_method)
        db.session.commit()
        reply = db.session.scalar(select(TicketReply.id).where(
            TicketReply.ticket_id == account["ticket"]))
        quote = Quote(subject=f"Quote for {key}", client_id=account["client"],
                      stage=QuoteStage.DELIVERED.value, valid_until=date.today(),
                      currency_id=db.session.get(Client, account["client"]).currency_id)
        db.session.add(quote)
        db.session.flush()
        return {"email_message": email.id, "membership": owner.id, "invitation": invitation.id,
                "order": order.id, "pay_method": pay_method.id, "reply": reply,
                "quote": quote.id}


def routes_with_client_records(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("portal.") and rule.arguments \
                and rule.endpoint not in NOT_CLIENT_ROUTES:
            yield rule


def url_for_rule(rule, rows: dict) -> str:
    path = rule.rule
    for argument in rule.arguments:
        if argument in NAME_ARGUMENTS:
            path = path.replace(f"<{argument}>", NAME_ARGUMENTS[argument])
            continue
        path = path.replace(f"<int:{argument}>", str(rows[ROW_OF_ARGUMENT[argument]]))
    return path


def activity_count(app, client_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(ActivityLog.id))
                                 .where(ActivityLog.client_id == client_id))


def test_every_portal_route_answers_404_for_another_clients_record(app, client_a, world):
    b = {**world["b"], **account_user_rows(app, world, "b")}
    before = activity_count(app, b["client"])
    walked = set()
    for rule in routes_with_client_records(app):
        url = url_for_rule(rule, b)
        if "GET" in rule.methods:
            assert client_a.get(url).status_code == 404, f"GET {url} ({rule.endpoint})"
        if "POST" in rule.methods:
            body = VALID_POST_BODIES[rule.endpoint]
            assert client_a.post(url, data=body).status_code == 404, f"POST {url}"
        walked.add(rule.endpoint)
    # Every route with a record id was walked (a new route must be added above).
    assert walked == {"portal.service", "portal.cancel_service", "portal.domain",
                      "portal.domain_auto_renew", "portal.domain_lock",
                      "portal.domain_nameservers", "portal.invoice", "portal.invoice_pdf",
                      "portal.invoice_pay_with_credit", "portal.ticket", "portal.ticket_reply",
                      "portal.ticket_close", "portal.ticket_attachment",
                      "portal.service_upgrade", "portal.service_password", "portal.email",
                      "portal.account_user_permissions", "portal.remove_account_user",
                      "portal.cancel_account_invitation", "portal.order_complete",
                      "portal.pay_invoice", "portal.payment_return",
                      "portal.delete_payment_method", "portal.ticket_rate",
                      "portal.quote", "portal.quote_pdf", "portal.quote_accept",
                      "portal.domain_addon", "portal.domain_epp_code", "portal.domain_renew",
                      # without the guest ticket's number and access code
                      "portal.guest_ticket_attachment"}
    # Nothing of B's changed or was logged.
    assert activity_count(app, b["client"]) == before
    with app.app_context():
        assert db.session.scalar(select(func.count(CancellationRequest.id))) == 0


def test_the_same_routes_answer_for_the_users_own_records(client_a, world):
    a = world["a"]
    for path in (f"/portal/services/{a['service']}", f"/portal/domains/{a['domain']}",
                 f"/portal/invoices/{a['invoice']}", f"/portal/tickets/{a['ticket']}",
                 f"/portal/tickets/{a['ticket']}/attachments/{a['attachment']}",
                 f"/portal/services/{a['service']}/cancel"):
        assert client_a.get(path).status_code == 200, path


def test_an_attachment_of_another_ticket_is_not_found_through_ones_own(client_a, world):
    own_ticket, foreign_attachment = world["a"]["ticket"], world["b"]["attachment"]
    response = client_a.get(f"/portal/tickets/{own_ticket}/attachments/{foreign_attachment}")
    assert response.status_code == 404


def test_switching_to_an_account_one_does_not_belong_to_is_404(client_a, world):
    response = client_a.post("/portal/switch", data={"client_id": world["b"]["client"]})
    assert response.status_code == 404
    assert "Alpha Ltd" in text_of(client_a.get("/portal/"))


@pytest.fixture
def tickets_only_user(app, world):
    """A second login on account A that may only handle tickets."""
    with app.app_context():
        user = make_client_user("helper@clients.test", "Hal", "Helper")
        link(user, db.session.get(Client, world["a"]["client"]), owner=False,
             permissions=("tickets",))
        db.session.commit()
    http = app.test_client()
    assert portal_login(http, "helper@clients.test").status_code == 302
    return http


def test_a_login_without_the_invoices_permission_gets_403(tickets_only_user, world):
    invoice = world["a"]["invoice"]
    for path in ("/portal/invoices", f"/portal/invoices/{invoice}",
                 f"/portal/invoices/{invoice}/pdf"):
        response = tickets_only_user.get(path)
        assert response.status_code == 403, path
        assert "does not have access" in text_of(response)
    response = tickets_only_user.post(f"/portal/invoices/{invoice}/credit", data={"amount": "1.00"})
    assert response.status_code == 403
    # The dashboard leaves out what the login may not see, and so does the menu.
    dashboard = text_of(tickets_only_user.get("/portal/"))
    assert 'id="unpaid-invoices"' not in dashboard and "/portal/invoices" not in dashboard
    assert 'id="open-tickets"' in dashboard
    assert tickets_only_user.get(f"/portal/tickets/{world['a']['ticket']}").status_code == 200


def test_other_permissions_guard_their_pages(tickets_only_user, world):
    a = world["a"]
    for path in ("/portal/services", f"/portal/services/{a['service']}", "/portal/domains",
                 f"/portal/domains/{a['domain']}", "/portal/account", "/portal/contacts"):
        assert tickets_only_user.get(path).status_code == 403, path
    assert tickets_only_user.post(f"/portal/domains/{a['domain']}/lock",
                                  data={"value": "off"}).status_code == 403


def test_staff_signing_in_at_the_portal_are_refused(app, staff):
    username, password = staff("Support")
    http = app.test_client()
    response = http.post("/portal/login", data={"email": username, "password": password})
    assert response.status_code == 403
    assert "This sign-in is for clients" in text_of(response)
    assert 'href="/login/"' in text_of(response)
    # Not signed in: the portal still wants a sign-in (/portal/ is the public landing page).
    assert http.get("/portal/invoices").headers["Location"].startswith("/portal/login")


def test_a_signed_in_staff_member_opening_the_portal_is_told_why_not(app, admin_client):
    response = admin_client.get("/portal/invoices")
    assert response.status_code == 302
    refused = admin_client.get(response.headers["Location"])
    assert refused.status_code == 403
    assert "Staff members sign in at the staff login" in text_of(refused)


def test_a_client_user_signing_in_at_the_staff_login_lands_in_the_portal(app, world):
    http = app.test_client()
    response = login(http, world["user_a"], PASSWORD)
    assert response.status_code == 302
    landing = http.get(response.headers["Location"])
    assert landing.status_code == 302 and landing.headers["Location"] == "/portal/"
    assert "Welcome back, Alice" in text_of(http.get("/portal/"))
    # Staff screens stay closed to them.
    for path in ("/clientview/list/", "/invoiceview/list/"):
        assert http.get(path).status_code in (302, 403), path


def test_a_login_with_several_accounts_switches_between_them(app, world):
    with app.app_context():
        user = make_client_user("both@clients.test", "Bea", "Both")
        link(user, db.session.get(Client, world["a"]["client"]), owner=True)
        link(user, db.session.get(Client, world["b"]["client"]), owner=False,
             permissions=("invoices",))
        db.session.commit()
    http = app.test_client()
    portal_login(http, "both@clients.test")
    dashboard = text_of(http.get("/portal/"))
    assert 'id="client-switcher"' in dashboard and "Bravo Ltd" in dashboard
    assert world["a"]["invoice_number"] in dashboard
    assert http.get(f"/portal/invoices/{world['b']['invoice']}").status_code == 404

    response = http.post("/portal/switch", data={"client_id": world["b"]["client"]})
    assert response.status_code == 302
    assert http.get(f"/portal/invoices/{world['b']['invoice']}").status_code == 200
    assert http.get(f"/portal/invoices/{world['a']['invoice']}").status_code == 404
    # On account B this login holds the invoices permission only.
    assert http.get("/portal/tickets").status_code == 403


def test_a_login_linked_to_no_open_account_cannot_sign_in(app, world):
    with app.app_context():
        make_client_user("orphan@clients.test")
        client = db.session.get(Client, world["b"]["client"])
        client.status = "Closed"
        db.session.commit()
    http = app.test_client()
    response = portal_login(http, "orphan@clients.test", follow=True)
    assert "not linked to any open client account" in text_of(response)
    assert http.get("/portal/invoices").status_code == 302
    # The owner of a closed account is refused the same way.
    response = portal_login(http, world["user_b"], follow=True)
    assert "not linked to any open client account" in text_of(response)
