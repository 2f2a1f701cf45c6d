"""The permission walk: every route of the portal, the other engineers' included,
is either in an area of access.AREA_PERMISSIONS, and then a login without that
area's permission gets 403 from it (checked before any view runs, whatever the
record id), or deliberately outside every area (listed below). A login holding the
permission is let through."""
from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.models.clients import CLIENT_PERMISSIONS, Client
from app.portal.access import OWNER_ONLY, permissions_for_path
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    link, make_client_user, portal_login, world,
)

# Pages any signed-in user (or anybody) may open: sign-in and sign-out, the user's
# own security page, the account switcher and language, the public knowledge base,
# announcements and store, sign-up and email confirmation, invitation links, assets.
OUTSIDE_AREAS = {
    "portal.dashboard", "portal.login", "portal.login_code", "portal.logout",
    "portal.forgot_password", "portal.reset_password", "portal.staff_refused",
    "portal.switch_client", "portal.set_language", "portal.bootstrap_asset", "portal.icons",
    "portal.knowledgebase", "portal.kb_category", "portal.kb_article", "portal.announcements",
    "portal.announcement", "portal.security", "portal.change_password",
    "portal.twofactor_start", "portal.twofactor_confirm", "portal.twofactor_disable",
    "portal.twofactor_recovery_codes", "portal.invitation", "portal.register",
    "portal.verify_email_link", "portal.resend_verification", "portal.store",
    "portal.store_currency_switch", "portal.domain_search", "portal.domain_add",
    "portal.configure", "portal.cart", "portal.cart_remove", "portal.cart_update",
    "portal.cart_empty", "portal.cart_promotion",
}
# Pages inside an area that a signed-out visitor may use: checkout makes the
# visitor's account, and a guest opens and follows a ticket with its access code.
VISITOR_PAGES_IN_AREAS = {
    "portal.checkout", "portal.guest_new_ticket", "portal.guest_ticket",
    "portal.guest_ticket_reply", "portal.guest_ticket_attachment",
}
ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")


def portal_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("portal.")]


def concrete_path(rule, ids: dict) -> str:
    def value(match):
        converter, name = match.group(1), match.group(2)
        return str(ids.get(name, 1)) if converter == "int" else "x"
    return ARGUMENT.sub(value, rule.rule)


def methods_of(rule) -> list[str]:
    return [method for method in ("GET", "POST") if method in rule.methods]


@pytest.fixture
def logins(app, world):
    """For each permission (and owner-ship), a signed-in login on account A holding
    every other permission; and one holding all of them."""
    clients = {}
    with app.app_context():
        account = db.session.get(Client, world["a"]["client"])
        for n, missing in enumerate((*CLIENT_PERMISSIONS, OWNER_ONLY, None)):
            email = f"walker{n}@clients.test"
            user = make_client_user(email, "Walker", str(n))
            link(user, account, owner=False,
                 permissions=tuple(p for p in CLIENT_PERMISSIONS if p != missing))
            clients[missing] = email
        db.session.commit()
    signed_in = {}
    for missing, email in clients.items():
        http = app.test_client()
        assert portal_login(http, email).status_code == 302
        signed_in[missing] = http
    return signed_in


def test_every_portal_route_is_in_an_area_or_deliberately_outside(app, world):
    ids = {"service_id": world["a"]["service"], "invoice_id": world["a"]["invoice"]}
    unguarded = set()
    for rule in portal_rules(app):
        path = concrete_path(rule, ids)
        if not any(permissions_for_path(path, method) for method in methods_of(rule)):
            unguarded.add(rule.endpoint)
    # A new route outside every area must be added to OUTSIDE_AREAS on purpose (or
    # get an area in access.AREA_PERMISSIONS / access.protect_area).
    assert unguarded == OUTSIDE_AREAS & {rule.endpoint for rule in portal_rules(app)}, \
        sorted(unguarded ^ OUTSIDE_AREAS)


def test_a_login_without_the_areas_permission_gets_403_on_every_route(app, world, logins):
    a = world["a"]
    ids = {"service_id": a["service"], "domain_id": a["domain"], "invoice_id": a["invoice"],
           "ticket_id": a["ticket"], "attachment_id": a["attachment"]}
    walked: dict[str, set[str]] = {}
    for rule in portal_rules(app):
        path = concrete_path(rule, ids)
        for method in methods_of(rule):
            for permission in permissions_for_path(path, method):
                http = logins[permission]
                response = http.open(path, method=method, data={})
                assert response.status_code == 403, f"{method} {path} without {permission}"
                walked.setdefault(permission, set()).add(rule.endpoint)
    # The areas the brief names are walked, with their pages.
    assert {"portal.invoices", "portal.invoice", "portal.invoice_pdf",
            "portal.invoice_pay_with_credit"} <= walked["invoices"]
    assert {"portal.services", "portal.service"} <= walked["products"]
    assert {"portal.cancel_service", "portal.service_upgrade",
            "portal.service_password"} <= walked["manageproducts"]
    assert {"portal.domains", "portal.domain"} <= walked["domains"]
    assert {"portal.domain_lock", "portal.domain_nameservers"} <= walked["managedomains"]
    assert {"portal.tickets", "portal.ticket", "portal.new_ticket"} <= walked["tickets"]
    assert {"portal.emails", "portal.email"} <= walked["emails"]
    assert {"portal.account", "portal.account_email"} <= walked["profile"]
    assert {"portal.contacts"} <= walked["contacts"]
    assert {"portal.account_users_page", "portal.invite_account_user",
            "portal.remove_account_user"} <= walked[OWNER_ONLY]
    # Nothing was changed by the refused requests.
    with app.app_context():
        from app.models.orders import Upgrade
        from app.models.system import EmailMessage
        assert db.session.query(Upgrade).count() == 0
        assert db.session.query(EmailMessage).count() == 0


def test_a_login_holding_every_permission_is_let_through(app, world, logins):
    """The same GET routes for a login with all permissions: never 403 (the view
    runs; whatever it then answers is its own business)."""
    a = world["a"]
    ids = {"service_id": a["service"], "domain_id": a["domain"], "invoice_id": a["invoice"],
           "ticket_id": a["ticket"], "attachment_id": a["attachment"]}
    http = logins[None]
    for rule in portal_rules(app):
        path = concrete_path(rule, ids)
        if "GET" not in rule.methods or not permissions_for_path(path, "GET"):
            continue
        needed = permissions_for_path(path, "GET")
        try:
            status = http.get(path).status_code
        except Exception:  # noqa: BLE001 - raised inside the view: the gate let it through
            status = 500
        if OWNER_ONLY in needed:
            assert status == 403, path   # only the owner, whatever else the login holds
        else:
            assert status != 403, path


def test_signed_out_visitors_and_staff_are_sent_away_from_every_area_route(app, world,
                                                                           admin_client):
    """The area check lets signed-out visitors and staff through to the views, whose
    own sign-in check (client_login_required) must then stop them on every route of
    every area: the login page for a visitor, the staff notice for staff (but for
    the pages of an area made for visitors, below)."""
    a = world["a"]
    ids = {"service_id": a["service"], "domain_id": a["domain"], "invoice_id": a["invoice"],
           "ticket_id": a["ticket"], "attachment_id": a["attachment"]}
    visitor = app.test_client()
    walked = set()
    for rule in portal_rules(app):
        path = concrete_path(rule, ids)
        for method in methods_of(rule):
            if not permissions_for_path(path, method) or rule.endpoint in VISITOR_PAGES_IN_AREAS:
                continue
            answer = visitor.open(path, method=method, data={})
            assert answer.status_code == 302, f"{method} {path}"
            assert answer.headers["Location"].startswith("/portal/login"), f"{method} {path}"
            staff_answer = admin_client.open(path, method=method, data={})
            assert staff_answer.status_code == 302, f"{method} {path} (staff)"
            assert staff_answer.headers["Location"] == "/portal/staff", f"{method} {path}"
            walked.add(rule.endpoint)
    assert {"portal.invoices", "portal.service_upgrade", "portal.domain_lock",
            "portal.tickets", "portal.account_users_page", "portal.order_complete"} <= walked
    with app.app_context():
        from app.models.orders import Upgrade
        assert db.session.query(Upgrade).count() == 0
