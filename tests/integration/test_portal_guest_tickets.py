"""Tickets of visitors without an account (WHMCS's guest tickets): opened on the public
portal with a name and an email (CSRF, rate limit, the upload checks), followed by the
emailed link with the ticket's number and access code; only the right code opens the
page, replies and downloads (anything else is 404)."""
from __future__ import annotations

import io
import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.support import SupportDepartment, Ticket, TicketAttachment, TicketReply
from app.models.system import EmailMessage, EmailTemplate
from app.support.attachments import store_folder
from app.support import tickets as ticket_engine
from tests.helpers import run_rate_limited
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    client_a, text_of, world,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


@pytest.fixture
def desk(app):
    """A public department, a hidden one and one for clients only; the emails."""
    with app.app_context():
        public = SupportDepartment(name="Sales", email="sales@example.test")
        hidden = SupportDepartment(name="Abuse", email="abuse@example.test", hidden=True)
        clients = SupportDepartment(name="Billing", email="billing@example.test",
                                    clients_only=True)
        db.session.add_all([public, hidden, clients])
        for name in ("Support Ticket Opened", "Support Ticket Reply"):
            db.session.add(EmailTemplate(name=name, type="support", subject=f"{name} {{{{ ticket_id }}}}",
                                         body_html="<p>Dear {{ client_name }}: {{ ticket_link }}</p>"))
        db.session.commit()
        return {"public": public.id, "hidden": hidden.id, "clients": clients.id}


def guest_form(department: int, **changes) -> dict:
    data = {"name": "Grace Hopper", "email": "grace@example.com", "department": department,
            "priority": "Low", "subject": "Do you offer SSL?",
            "message": "For a <b>small</b> shop."}
    data.update(changes)
    return data


def open_as_guest(http, department: int, **changes):
    return http.post("/portal/tickets/submit", data=guest_form(department, **changes),
                     content_type="multipart/form-data")


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def emailed_link(app, to: str) -> str:
    """The path and query of the link in the newest email to `to`."""
    with app.app_context():
        body = db.session.scalars(select(EmailMessage).where(EmailMessage.to_address == to)
                                  .order_by(EmailMessage.id.desc())).first().body_html
    url = re.search(r"https://example\.com(/portal/tickets/view\?[^<\s]+)", body).group(1)
    return url.replace("&amp;", "&")


def test_a_visitor_opens_a_ticket_and_follows_it_by_the_emailed_link(app, desk):
    visitor = app.test_client()
    # A visitor finds the form from any public page's menu.
    assert 'href="/portal/tickets/submit" id="nav-contact"' in text_of(visitor.get("/portal/"))
    page = text_of(visitor.get("/portal/tickets/submit"))
    # Only the departments a guest may write to are offered.
    assert ">Sales</option>" in page and "Abuse" not in page and "Billing" not in page

    response = open_as_guest(visitor, desk["public"],
                             attachments=[(io.BytesIO(PNG), "shop.png")])
    assert response.status_code == 302
    with app.app_context():
        ticket = db.session.scalar(select(Ticket))
        assert (ticket.client_id, ticket.name, ticket.email, ticket.status, ticket.priority) == \
            (None, "Grace Hopper", "grace@example.com", "Open", "Low")
        [attachment] = ticket.attachments
        assert (attachment.original_name, attachment.size) == ("shop.png", len(PNG))
        tid, code, attachment_id = ticket.tid, ticket.access_code, attachment.id
        email = db.session.scalar(select(EmailMessage))
        assert email.to_address == "grace@example.com" and email.client_id is None
        assert "Dear Grace Hopper" in email.body_html
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"tid": [tid], "c": [code]}

    # Another browser, never signed in, with only the emailed link.
    link = emailed_link(app, "grace@example.com")
    assert parse_qs(urlsplit(link).query) == {"tid": [tid], "c": [code]}
    stranger = app.test_client()
    shown = stranger.get(link)
    assert shown.status_code == 200
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    html = text_of(shown)
    assert "Do you offer SSL?" in html and "For a &lt;b&gt;small&lt;/b&gt; shop." in html
    assert 'id="close-ticket"' not in html and "rating-form" not in html
    download = stranger.get(f"/portal/tickets/view/attachments/{attachment_id}?tid={tid}&c={code}")
    assert download.status_code == 200 and download.data == PNG

    reply = stranger.post(f"/portal/tickets/view/reply?tid={tid}&c={code}",
                          data={"message": "Also: do you sell domains?"},
                          content_type="multipart/form-data")
    assert reply.status_code == 302
    with app.app_context():
        ticket = db.session.scalar(select(Ticket))
        assert ticket.status == "Customer-Reply"
        assert [(r.name, r.email, r.message) for r in ticket.replies][-1] == \
            ("Grace Hopper", "grace@example.com", "Also: do you sell domains?")
        # Staff answer: the guest is emailed the same link.
        staff_user = app.appbuilder.sm.add_user("helper", "Hal", "Helper", "hal@staff.test",
                                                app.appbuilder.sm.find_role("Support"), "x" * 12)
        ticket_engine.add_reply(ticket, "Yes, we do.", ticket_engine.staff_author(staff_user))
        db.session.commit()
    assert emailed_link(app, "grace@example.com") == link
    assert "Yes, we do." in text_of(stranger.get(link))


def test_only_the_right_code_opens_a_guest_ticket(app, desk, world):
    open_as_guest(app.test_client(), desk["public"])
    with app.app_context():
        ticket = db.session.scalar(select(Ticket).where(Ticket.client_id.is_(None)))
        tid, code, ticket_id = ticket.tid, ticket.access_code, ticket.id
        replies = count(TicketReply)
        # A client's ticket has a code too, but is read in the account only.
        client_ticket = db.session.get(Ticket, world["a"]["ticket"])
        client_tid, client_code = client_ticket.tid, client_ticket.access_code
        attachment = TicketAttachment(ticket_id=ticket_id, original_name="a.txt",
                                      stored_name=os.urandom(16).hex(), content_type="text/plain",
                                      size=2)
        (store_folder() / attachment.stored_name).write_bytes(b"hi")
        db.session.add(attachment)
        db.session.commit()
        attachment_id = attachment.id
    http = app.test_client()
    assert http.get(f"/portal/tickets/view?tid={tid}&c={code}").status_code == 200
    wrong = code[:-1] + ("A" if code[-1] != "A" else "B")
    for query in (f"tid={tid}&c={wrong}", f"tid={tid}&c=", f"tid={tid}", f"c={code}",
                  f"tid={tid}&c={code.lower() if code.lower() != code else code.upper()}",
                  f"tid={tid}&c={code}x", f"tid=NOPE&c={code}",
                  f"tid={client_tid}&c={client_code}"):
        assert http.get(f"/portal/tickets/view?{query}").status_code == 404, query
        assert http.get(f"/portal/tickets/view/attachments/{attachment_id}?{query}") \
            .status_code == 404, query
        assert http.post(f"/portal/tickets/view/reply?{query}", data={"message": "Hi"}) \
            .status_code == 404, query
    assert http.get(f"/portal/tickets/view/attachments/{attachment_id}?tid={tid}&c={code}") \
        .status_code == 200
    with app.app_context():
        assert count(TicketReply) == replies


@pytest.mark.parametrize("name, content, message", [
    ("page.html", b"<html></html>", "this type of file is not accepted"),
    ("photo.png", b"<svg onload=alert(1)>", "does not contain what its name says"),
])
def test_a_guest_ticket_with_a_bad_attachment_creates_nothing(app, desk, name, content, message):
    with app.app_context():
        before = set(os.listdir(store_folder()))
    response = open_as_guest(app.test_client(), desk["public"],
                             attachments=[(io.BytesIO(content), name)])
    assert response.status_code == 200 and message in text_of(response)
    with app.app_context():
        assert count(Ticket) == 0
        assert set(os.listdir(store_folder())) == before


def test_a_guest_cannot_pick_a_hidden_or_clients_only_department(app, desk):
    http = app.test_client()
    for department in (desk["hidden"], desk["clients"]):
        response = open_as_guest(http, department)
        assert response.status_code == 200 and "Not a valid choice" in text_of(response)
    response = open_as_guest(http, desk["public"], email="not an address")
    assert "Enter a valid email address." in text_of(response)
    with app.app_context():
        assert count(Ticket) == 0
        # The engine refuses it too, whoever calls it for the portal.
        with pytest.raises(ticket_engine.TicketError, match="Only clients"):
            ticket_engine.open_ticket(desk["clients"], "S", "M",
                                      ticket_engine.guest_author("G", "g@example.test"),
                                      visible_only=True)
        db.session.rollback()


def test_guest_forms_need_the_csrf_token(app, desk):
    open_as_guest(app.test_client(), desk["public"])
    with app.app_context():
        ticket = db.session.scalar(select(Ticket))
        tid, code, replies = ticket.tid, ticket.access_code, count(TicketReply)
    previous = app.config["WTF_CSRF_ENABLED"]
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        http = app.test_client()
        assert open_as_guest(http, desk["public"], subject="Forged").status_code == 400
        assert http.post(f"/portal/tickets/view/reply?tid={tid}&c={code}",
                         data={"message": "Forged"}).status_code == 400
        # With the token of the page, the same form goes through.
        page = text_of(http.get("/portal/tickets/submit"))
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        assert open_as_guest(http, desk["public"], subject="Real",
                             csrf_token=token).status_code == 302
    finally:
        app.config["WTF_CSRF_ENABLED"] = previous
    with app.app_context():
        assert [t.subject for t in db.session.scalars(select(Ticket).order_by(Ticket.id))] == \
            ["Do you offer SSL?", "Real"]
        assert count(TicketReply) == replies + 1


def test_a_signed_in_client_is_sent_to_the_accounts_form(client_a):
    response = client_a.get("/portal/tickets/submit")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/tickets/new"


# Run in a rate-limited app of its own (tests.helpers.run_rate_limited).
RATE_LIMITED_GUEST = """
print(*[http.post("/portal/tickets/submit", data={}).status_code for _ in range(4)],
      *[http.post("/portal/tickets/view/reply?tid=x&c=y", data={}).status_code
        for _ in range(4)])
"""


def test_guest_ticket_posts_are_rate_limited(tmp_path):
    lines = run_rate_limited(RATE_LIMITED_GUEST, tmp_path)
    # The fourth post in a minute is refused (the form answers its errors, an unknown
    # ticket is not found).
    assert lines[-1] == "200 200 200 429 404 404 404 429"


def test_a_guests_own_messages_are_labelled_you_not_client(app, desk, client_a, world):
    open_as_guest(app.test_client(), desk["public"])
    with app.app_context():
        ticket = db.session.scalar(select(Ticket).where(Ticket.client_id.is_(None)))
        tid, code = ticket.tid, ticket.access_code
    html = text_of(app.test_client().get(f"/portal/tickets/view?tid={tid}&c={code}"))
    assert '<div class="small text-body-secondary">You</div>' in html
    assert ">Client</div>" not in html
    # A client's own ticket still names the client side as such.
    account_html = text_of(client_a.get(f"/portal/tickets/{world['a']['ticket']}"))
    assert '<div class="small text-body-secondary">Client</div>' in account_html
