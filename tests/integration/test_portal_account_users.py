"""Users of an account: the owner invites by email (a single-use, expiring link;
only its hash is stored), the invitee creates a login or, having one, signs in and
accepts; the owner changes permissions and removes users; a user of several
accounts switches between them. Another account's users and invitations are not
found (404), and only the owner reaches these pages."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.activity import Actor
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client, ClientInvitation, ClientUser
from app.models.system import ActivityLog, EmailMessage
from app.portal import users
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    PASSWORD, client_a, link, make_client_user, portal_login, text_of, world,
)

LINK = re.compile(r"/portal/invitation/([A-Za-z0-9_\-]+)")
NEW_PASSWORD = "Invited-Person-42"


def invite(http, email: str, *permissions: str):
    return http.post("/portal/users/invite",
                     data={"email": email, "permissions": list(permissions)})


def last_invitation_token(app, email: str) -> str:
    with app.app_context():
        message = db.session.scalar(select(EmailMessage).where(EmailMessage.to_address == email)
                                    .order_by(EmailMessage.id.desc()))
        return LINK.search(message.body_text).group(1)


def membership(app, email: str, client_id: int) -> ClientUser | None:
    with app.app_context():
        user = app.appbuilder.sm.find_user(email=email)
        if user is None:
            return None
        row = db.session.scalar(select(ClientUser).where(ClientUser.user_id == user.id,
                                                         ClientUser.client_id == client_id))
        if row is not None:
            db.session.expunge(row)
        return row


def test_inviting_a_new_person_who_creates_a_login(app, client_a, world):
    response = invite(client_a, "Helper@Example.com", "invoices", "tickets")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/users"
    with app.app_context():
        row = db.session.scalar(select(ClientInvitation))
        assert row.email == "Helper@example.com" and row.permissions == "invoices,tickets"
        assert row.client_id == world["a"]["client"]
        assert timedelta(days=6, hours=23) < row.expires_at - row.created_at <= timedelta(days=7)
        message = db.session.scalar(select(EmailMessage)
                                    .where(EmailMessage.template == "Client User Invitation"))
        assert message.to_address == "Helper@example.com"
        assert message.related_type == "invitation" and message.related_id == row.id
        token = LINK.search(message.body_text).group(1)
        # Only the hash of the link's token is kept.
        assert row.token_hash == users.hash_token(token) and token not in row.token_hash
        assert "Alpha Ltd" in message.subject
    page = text_of(client_a.get("/portal/users"))
    assert 'id="open-invitations"' in page and "Helper@example.com" in page

    visitor = app.test_client()
    form = visitor.get(f"/portal/invitation/{token}")
    assert form.status_code == 200
    assert form.headers["Referrer-Policy"] == "no-referrer"
    assert form.headers["Cache-Control"] == "private, no-store"
    html = text_of(form)
    assert "Alpha Ltd" in html and "View and pay invoices" in html and "Manage domain" not in html
    short = visitor.post(f"/portal/invitation/{token}", data={
        "first_name": "Hal", "last_name": "Helper", "password": "short", "confirm": "short"})
    assert short.status_code == 400 and membership(app, "Helper@example.com", 1) is None
    done = visitor.post(f"/portal/invitation/{token}", data={
        "first_name": "Hal", "last_name": "Helper", "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/portal/login"
    joined = membership(app, "Helper@example.com", world["a"]["client"])
    assert joined is not None and not joined.is_owner and joined.permissions == "invoices,tickets"
    # The link worked once.
    assert visitor.get(f"/portal/invitation/{token}").status_code == 404
    assert "not valid" in text_of(visitor.get(f"/portal/invitation/{token}"))

    helper = app.test_client()
    assert portal_login(helper, "Helper@example.com", NEW_PASSWORD).status_code == 302
    assert helper.get("/portal/invoices").status_code == 200
    assert helper.get(f"/portal/invoices/{world['a']['invoice']}").status_code == 200
    assert helper.get("/portal/services").status_code == 403
    assert helper.get("/portal/users").status_code == 403
    with app.app_context():
        actions = list(db.session.scalars(select(ActivityLog.action)
                                          .where(ActivityLog.client_id == world["a"]["client"])))
    assert "client_user_invited" in actions and "client_user_added" in actions


@pytest.fixture
def bea(app, world):
    """The owner of account B, with an address the invitation form accepts."""
    with app.app_context():
        user = make_client_user("bea@example.com", "Bea", "Bravo")
        link(user, db.session.get(Client, world["b"]["client"]))
        db.session.commit()
    return "bea@example.com"


def test_an_existing_login_signs_in_accepts_and_switches_accounts(app, client_a, world, bea):
    invite(client_a, bea, "invoices")
    token = last_invitation_token(app, bea)
    bob = app.test_client()
    page = text_of(bob.get(f"/portal/invitation/{token}"))
    assert 'id="sign-in-to-accept"' in page and 'id="register-invited-form"' not in page
    # Posting the new-login form for an address with a login creates nothing.
    bob.post(f"/portal/invitation/{token}", data={
        "first_name": "X", "last_name": "Y", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert membership(app, bea, world["a"]["client"]) is None

    signed_in = bob.post(f"/portal/login?next=/portal/invitation/{token}",
                         data={"email": bea, "password": PASSWORD})
    assert signed_in.headers["Location"] == f"/portal/invitation/{token}"
    assert 'id="accept-invitation-form"' in text_of(bob.get(f"/portal/invitation/{token}"))
    accepted = bob.post(f"/portal/invitation/{token}")
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/portal/"
    assert membership(app, bea, world["a"]["client"]).permissions == "invoices"

    # The accepted account is the active one; the switcher offers both.
    dashboard = text_of(bob.get("/portal/"))
    assert 'id="client-switcher"' in dashboard and "Alpha Ltd" in dashboard
    assert bob.get(f"/portal/invoices/{world['a']['invoice']}").status_code == 200
    assert bob.get(f"/portal/invoices/{world['b']['invoice']}").status_code == 404
    assert bob.get("/portal/tickets").status_code == 403   # only invoices on account A
    bob.post("/portal/switch", data={"client_id": world["b"]["client"]})
    assert bob.get(f"/portal/invoices/{world['b']['invoice']}").status_code == 200
    assert bob.get(f"/portal/invoices/{world['a']['invoice']}").status_code == 404
    assert bob.get("/portal/tickets").status_code == 200   # the owner of B


def test_only_the_invited_address_can_accept(app, client_a, world):
    invite(client_a, "someone@example.com", "tickets")
    token = last_invitation_token(app, "someone@example.com")
    bob = app.test_client()
    portal_login(bob, world["user_b"])
    page = text_of(bob.get(f"/portal/invitation/{token}"))
    assert "This invitation is for someone@example.com" in page
    assert bob.post(f"/portal/invitation/{token}").status_code == 200
    assert membership(app, world["user_b"], world["a"]["client"]) is None


def test_expired_withdrawn_and_replaced_links_do_not_work(app, client_a, world):
    with app.app_context():
        owner = app.appbuilder.sm.find_user(email=world["user_a"])
        users.invite_user(world["a"]["client"], "late@example.com", ["tickets"], owner,
                          lambda token: f"/portal/invitation/{token}", Actor.system(),
                          now=utcnow() - timedelta(days=8))
        db.session.commit()
    expired = last_invitation_token(app, "late@example.com")
    assert app.test_client().get(f"/portal/invitation/{expired}").status_code == 404

    invite(client_a, "twice@example.com", "tickets")
    first = last_invitation_token(app, "twice@example.com")
    invite(client_a, "twice@example.com", "tickets", "invoices")
    second = last_invitation_token(app, "twice@example.com")
    assert first != second
    assert app.test_client().get(f"/portal/invitation/{first}").status_code == 404
    assert app.test_client().get(f"/portal/invitation/{second}").status_code == 200

    with app.app_context():
        open_row = db.session.scalar(select(ClientInvitation).where(
            ClientInvitation.email == "twice@example.com",
            ClientInvitation.cancelled_at.is_(None)))
    response = client_a.post(f"/portal/users/invitations/{open_row.id}/cancel")
    assert response.status_code == 302
    assert app.test_client().get(f"/portal/invitation/{second}").status_code == 404
    assert app.test_client().get("/portal/invitation/not-a-token").status_code == 404


def test_bad_invitations_are_refused_and_send_nothing(app, client_a, world):
    with app.app_context():
        member = make_client_user("member@example.com", "Mem", "Ber")
        link(member, db.session.get(Client, world["a"]["client"]), owner=False,
             permissions=("tickets",))
        db.session.commit()
    cases = [("not-an-email", ("tickets",), "Enter a valid email address."),
             ("x@example.com", (), "at least one permission"),
             ("x@example.com", ("tickets", "superpowers"), "unknown permission"),
             ("Member@Example.com", ("tickets",), "can manage this account already")]
    for email, permissions, message in cases:
        response = invite(client_a, email, *permissions)
        assert response.status_code == 400, email
        assert message in text_of(response), email
    with app.app_context():
        assert db.session.scalar(select(func.count(ClientInvitation.id))) == 0
        assert db.session.scalar(select(func.count(EmailMessage.id))) == 0


@pytest.fixture
def helper(app, world):
    """A second login on account A with invoices and tickets, signed in."""
    with app.app_context():
        user = make_client_user("helper@clients.test", "Hal", "Helper")
        row = link(user, db.session.get(Client, world["a"]["client"]), owner=False,
                   permissions=("invoices", "tickets"))
        db.session.commit()
        membership_id = row.id
    http = app.test_client()
    portal_login(http, "helper@clients.test")
    return {"http": http, "membership": membership_id}


def test_the_owner_changes_a_users_permissions(app, client_a, world, helper):
    page = text_of(client_a.get("/portal/users"))
    assert f'id="member-{helper["membership"]}"' in page and "helper@clients.test" in page
    assert helper["http"].get("/portal/invoices").status_code == 200

    response = client_a.post(f"/portal/users/{helper['membership']}/permissions",
                             data={"permissions": ["tickets", "domains"]})
    assert response.status_code == 302
    assert membership(app, "helper@clients.test", world["a"]["client"]).permissions == \
        "domains,tickets"
    assert helper["http"].get("/portal/invoices").status_code == 403
    assert helper["http"].get(f"/portal/invoices/{world['a']['invoice']}/pdf").status_code == 403
    assert helper["http"].get("/portal/domains").status_code == 200
    with app.app_context():
        entry = db.session.scalar(select(ActivityLog)
                                  .where(ActivityLog.action == "client_user_permissions"))
        assert entry.before == {"permissions": "invoices,tickets"}
        assert entry.after == {"permissions": "domains,tickets"}

    refused = client_a.post(f"/portal/users/{helper['membership']}/permissions",
                            data={"permissions": ["root"]}, follow_redirects=True)
    assert "unknown permission" in text_of(refused)
    assert membership(app, "helper@clients.test", world["a"]["client"]).permissions == \
        "domains,tickets"


def test_removing_a_user_ends_their_access_at_once(app, client_a, world, helper):
    assert client_a.post(f"/portal/users/{helper['membership']}/remove").status_code == 302
    assert membership(app, "helper@clients.test", world["a"]["client"]) is None
    response = helper["http"].get("/portal/tickets")
    assert response.status_code == 302 and "/portal/login" in response.headers["Location"]
    with app.app_context():
        assert app.appbuilder.sm.find_user(email="helper@clients.test") is not None  # login kept
        assert db.session.scalar(select(func.count(ActivityLog.id))
                                 .where(ActivityLog.action == "client_user_removed")) == 1


def test_the_owner_cannot_be_changed_or_removed(app, client_a, world):
    owner = membership(app, world["user_a"], world["a"]["client"])
    for path in (f"/portal/users/{owner.id}/remove", f"/portal/users/{owner.id}/permissions"):
        response = client_a.post(path, data={"permissions": ["tickets"]}, follow_redirects=True)
        assert "the account owner always has every permission" in text_of(response)
    assert membership(app, world["user_a"], world["a"]["client"]).is_owner


def test_another_accounts_users_and_invitations_are_not_found(app, client_a, world):
    with app.app_context():
        other_owner = db.session.scalar(select(ClientUser).where(
            ClientUser.client_id == world["b"]["client"]))
        bob = app.appbuilder.sm.find_user(email=world["user_b"])
        other_invitation = users.invite_user(world["b"]["client"], "x@bravo.example.com", ["tickets"],
                                             bob, lambda t: t, Actor.system())
        db.session.commit()
        other_ids = (other_owner.id, other_invitation.id)
    assert client_a.post(f"/portal/users/{other_ids[0]}/remove").status_code == 404
    assert client_a.post(f"/portal/users/{other_ids[0]}/permissions",
                         data={"permissions": ["tickets"]}).status_code == 404
    assert client_a.post(f"/portal/users/invitations/{other_ids[1]}/cancel").status_code == 404
    with app.app_context():
        assert db.session.get(ClientUser, other_ids[0]) is not None
        assert db.session.get(ClientInvitation, other_ids[1]).cancelled_at is None
    page = text_of(client_a.get("/portal/users"))
    assert "x@bravo.example.com" not in page and "owner-b@" not in page


def test_only_the_owner_manages_users(app, world, helper):
    http = helper["http"]
    assert 'id="nav-account-users"' not in text_of(http.get("/portal/"))
    assert http.get("/portal/users").status_code == 403
    assert invite(http, "friend@example.com", "tickets").status_code == 403
    assert http.post(f"/portal/users/{helper['membership']}/permissions",
                     data={"permissions": list(users.CLIENT_PERMISSIONS)}).status_code == 403
    assert membership(app, "helper@clients.test", world["a"]["client"]).permissions == \
        "invoices,tickets"


@pytest.fixture
def dormant(app):
    """A client login that manages no account (removed from its last one)."""
    with app.app_context():
        make_client_user("dormant@example.com", "Dora", "Mant")
        db.session.commit()
    return "dormant@example.com"


def test_a_login_without_accounts_accepts_with_its_password(app, client_a, world, dormant):
    # It cannot sign in the usual way: there is no account to show it.
    assert portal_login(app.test_client(), dormant).headers["Location"] == "/portal/login"
    invite(client_a, dormant, "tickets")
    token = last_invitation_token(app, dormant)
    visitor = app.test_client()
    page = text_of(visitor.get(f"/portal/invitation/{token}"))
    assert 'id="accept-with-password-form"' in page and 'name="code"' not in page
    wrong = visitor.post(f"/portal/invitation/{token}", data={"password": "not-it"})
    assert wrong.status_code == 400 and "Wrong password or code." in text_of(wrong)
    assert membership(app, dormant, world["a"]["client"]) is None

    accepted = visitor.post(f"/portal/invitation/{token}", data={"password": PASSWORD})
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/portal/"
    assert membership(app, dormant, world["a"]["client"]).permissions == "tickets"
    assert "Alpha" in text_of(visitor.get("/portal/"))
    assert visitor.get("/portal/tickets").status_code == 200


def test_a_login_without_accounts_and_with_two_factor_gives_its_code(app, client_a, world,
                                                                     dormant, monkeypatch):
    import pyotp

    from app.auth import twofactor

    now = [30 * 60_000_000 + 10]
    monkeypatch.setattr(twofactor, "now_timestamp", lambda: now[0])
    with app.app_context():
        user = app.appbuilder.sm.find_user(email=dormant)
        secret = twofactor.start_enrolment(user).secret
        twofactor.confirm_enrolment(user, pyotp.TOTP(secret).at(now[0]))
        db.session.commit()
    now[0] += 30
    invite(client_a, dormant, "tickets")
    token = last_invitation_token(app, dormant)
    visitor = app.test_client()
    assert 'name="code"' in text_of(visitor.get(f"/portal/invitation/{token}"))
    no_code = visitor.post(f"/portal/invitation/{token}", data={"password": PASSWORD})
    assert no_code.status_code == 400
    assert membership(app, dormant, world["a"]["client"]) is None
    accepted = visitor.post(f"/portal/invitation/{token}", data={
        "password": PASSWORD, "code": pyotp.TOTP(secret).at(now[0])})
    assert accepted.headers["Location"] == "/portal/"
    assert membership(app, dormant, world["a"]["client"]) is not None
