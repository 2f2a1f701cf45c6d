"""The account's email history: the sent emails of the selected account only,
each shown in a sandboxed frame (the stored HTML never enters the page) or as
text; emails with a login's own secret link are left out; "emails" permission."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client
from app.models.system import EmailMessage
from app.portal.emails import PAGE_SIZE
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    client_a, link, make_client_user, portal_login, text_of, world,
)

HOSTILE = ('<p>Your invoice</p><script>parent.document.title="owned"</script>'
           '<img src="https://tracker.example/p.gif" onerror="alert(1)">"quoted"')


def add_email(client_id: int, subject: str, *, status: str = "sent", body_html: str = "<p>Hi</p>",
              body_text: str | None = None, related: tuple[str, int] | None = None,
              minutes_ago: int = 0, template: str = "Invoice Created") -> int:
    row = EmailMessage(client_id=client_id, template=template, to_address="to@x.test",
                       subject=subject, body_html=body_html, body_text=body_text, status=status,
                       related_type=related[0] if related else None,
                       related_id=related[1] if related else None,
                       sent_at=utcnow() - timedelta(minutes=minutes_ago) if status == "sent" else None)
    db.session.add(row)
    db.session.flush()
    return row.id


@pytest.fixture
def mails(app, world):
    with app.app_context():
        a, b = world["a"]["client"], world["b"]["client"]
        ids = {
            "hostile": add_email(a, "Customer Invoice INV-1", body_html=HOSTILE, minutes_ago=5),
            "text": add_email(a, "Plain notice", body_html="", body_text="Line one\n<b>not bold</b>",
                              minutes_ago=10),
            "queued": add_email(a, "Not sent yet", status="queued"),
            "failed": add_email(a, "Bounced one", status="failed"),
            "reset": add_email(a, "Reset your password", related=("user", 1), minutes_ago=1),
            "invite": add_email(a, "You are invited", related=("invitation", 1), minutes_ago=2),
            "other": add_email(b, "Bravo's invoice", minutes_ago=3),
            "epp": add_email(a, "EPP code of alpha-domain.example", template="Domain EPP Code",
                             related=("domain", 1), minutes_ago=4),
        }
        db.session.commit()
        return ids


def test_the_list_shows_the_accounts_sent_emails_newest_first(client_a, mails):
    page = text_of(client_a.get("/portal/emails"))
    subjects = re.findall(r'href="/portal/emails/\d+">([^<]+)</a>', page)
    assert subjects == ["Customer Invoice INV-1", "Plain notice"]
    for hidden in ("Not sent yet", "Bounced one", "Reset your password", "You are invited",
                   "Bravo", "EPP code"):
        assert hidden not in page


def test_the_html_body_is_only_inside_a_sandboxed_frame(client_a, mails):
    response = client_a.get(f"/portal/emails/{mails['hostile']}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    page = text_of(response)
    # No part of the stored HTML is markup of the page itself.
    assert "<script>parent" not in page and "<img src=\"https://tracker" not in page
    frame = re.search(r'<iframe[^>]*id="email-frame"[^>]*>', page).group(0)
    assert 'sandbox=""' in frame
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    # The frame gets the body behind a policy that loads nothing from outside.
    assert srcdoc.endswith(HOSTILE)
    assert srcdoc.startswith('<meta http-equiv="Content-Security-Policy" '
                             "content=\"default-src 'none';")


def test_the_text_view_escapes_the_body(client_a, mails):
    page = text_of(client_a.get(f"/portal/emails/{mails['text']}"))
    assert "Line one\n&lt;b&gt;not bold&lt;/b&gt;" in page and "<iframe" not in page
    as_text = text_of(client_a.get(f"/portal/emails/{mails['hostile']}?view=text"))
    assert "<iframe" not in as_text and "<script>" not in as_text
    assert "Your invoice" in as_text
    assert client_a.get(f"/portal/emails/{mails['hostile']}?view=raw").status_code == 404


def test_other_and_private_emails_are_not_found(client_a, mails):
    for key in ("other", "reset", "invite", "queued", "failed", "epp"):
        assert client_a.get(f"/portal/emails/{mails[key]}").status_code == 404, key
    assert client_a.get("/portal/emails/999999").status_code == 404


def test_the_list_pages(app, client_a, world):
    with app.app_context():
        for n in range(PAGE_SIZE + 3):
            add_email(world["a"]["client"], f"Notice {n:02d}", minutes_ago=n)
        db.session.commit()
    first = text_of(client_a.get("/portal/emails"))
    assert "Notice 00" in first and f"Notice {PAGE_SIZE:02d}" not in first
    assert "Page 1 of 2" in first
    second = text_of(client_a.get("/portal/emails?page=2"))
    assert f"Notice {PAGE_SIZE + 2:02d}" in second and "Notice 00" not in second
    assert client_a.get("/portal/emails?page=3").status_code == 404


def test_the_emails_permission_guards_the_history(app, world, mails):
    with app.app_context():
        user = make_client_user("billing@clients.test", "Bill", "Ing")
        link(user, db.session.get(Client, world["a"]["client"]), owner=False,
             permissions=("invoices",))
        db.session.commit()
    http = app.test_client()
    portal_login(http, "billing@clients.test")
    assert http.get("/portal/emails").status_code == 403
    assert http.get(f"/portal/emails/{mails['hostile']}").status_code == 403
    assert 'id="nav-emails"' not in text_of(http.get("/portal/"))
