"""Support in the portal: opening a ticket (with checked attachments), replies and
their status, closing, downloads only for the owner, user text never rendered as
HTML, and the public knowledge base with its staff HTML sanitised."""
from __future__ import annotations

import io
import os

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.support import (
    KbArticle, KbCategory, SupportDepartment, Ticket, TicketReply,
)
from app.models.system import ActivityLog, EmailMessage, EmailTemplate
from app.support.attachments import store_folder
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    client_a, portal_login, text_of, world,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def department_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(SupportDepartment.id))


def new_ticket(app, http, world, **changes):
    data = {"department": department_id(app), "priority": "High",
            "service": world["a"]["service"], "subject": "Site is down",
            "message": "Since 9:00 <script>alert('x')</script> nothing loads."}
    data.update(changes)
    return http.post("/portal/tickets/new", data=data, content_type="multipart/form-data")


def stored_files() -> set[str]:
    folder = store_folder()
    return set(os.listdir(folder))


def test_opening_a_ticket_with_an_attachment(app, client_a, world):
    with app.app_context():
        db.session.add(EmailTemplate(name="Support Ticket Opened", type="support",
                                     subject="[Ticket ID: {{ ticket_id }}] {{ ticket_subject }}",
                                     body_html="<p>{{ ticket_link }}</p>"))
        db.session.commit()
        before = stored_files()
    response = new_ticket(app, client_a, world,
                          attachments=[(io.BytesIO(PNG), "screen shot.png")])
    assert response.status_code == 302
    with app.app_context():
        ticket = db.session.scalar(select(Ticket).where(Ticket.subject == "Site is down"))
        assert (ticket.status, ticket.priority, ticket.client_id, ticket.service_id) == \
            ("Open", "High", world["a"]["client"], world["a"]["service"])
        [reply] = ticket.replies
        assert reply.user_id is not None and reply.admin_id is None
        [attachment] = ticket.attachments
        assert (attachment.original_name, attachment.content_type, attachment.size) == \
            ("screen shot.png", "image/png", len(PNG))
        assert attachment.reply_id == reply.id
        # Stored outside the web root under a random name, never the client's.
        [new_file] = stored_files() - before
        assert new_file == attachment.stored_name and len(new_file) == 32
        assert not store_folder().is_relative_to(app.static_folder)
        email = db.session.scalar(select(EmailMessage))
        assert email.subject == f"[Ticket ID: {ticket.tid}] Site is down"
        assert f"/portal/tickets/{ticket.id}" in email.body_html
        assert db.session.scalar(select(ActivityLog.action).where(
            ActivityLog.object_type == "Ticket")) == "ticket_opened"
        ticket_id, attachment_id = ticket.id, attachment.id
    assert response.headers["Location"] == f"/portal/tickets/{ticket_id}"

    page = text_of(client_a.get(f"/portal/tickets/{ticket_id}"))
    # The message is shown as text: the script tag is escaped, never markup.
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<script>alert" not in page

    download = client_a.get(f"/portal/tickets/{ticket_id}/attachments/{attachment_id}")
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]

    # Nobody else gets it, not even signed out.
    other = app.test_client()
    portal_login(other, world["user_b"])
    assert other.get(f"/portal/tickets/{ticket_id}/attachments/{attachment_id}").status_code == 404
    assert app.test_client().get(
        f"/portal/tickets/{ticket_id}/attachments/{attachment_id}").status_code == 302


@pytest.mark.parametrize("name, content, message", [
    ("page.html", b"<html><script>alert(1)</script></html>", "this type of file is not accepted"),
    ("run.exe", b"MZ\x90\x00", "this type of file is not accepted"),
    ("photo.png", b"<svg onload=alert(1)>", "does not contain what its name says"),
    ("notes.txt", b"\x00\x01\x02binary", "does not contain what its name says"),
    ("empty.pdf", b"", "is empty"),
])
def test_attachments_outside_the_allow_list_are_refused(app, client_a, world, name, content,
                                                         message):
    with app.app_context():
        before = stored_files()
    response = new_ticket(app, client_a, world, attachments=[(io.BytesIO(content), name)])
    assert response.status_code == 200
    assert message in text_of(response)
    with app.app_context():
        assert db.session.scalar(select(Ticket).where(Ticket.subject == "Site is down")) is None
        assert stored_files() == before


def test_an_attachment_over_the_size_limit_is_refused(app, client_a, world, monkeypatch):
    monkeypatch.setitem(app.config, "TICKET_ATTACHMENT_MAX_BYTES", 1024)
    big = b"%PDF-1.7\n" + b"0" * 2000
    response = new_ticket(app, client_a, world, attachments=[(io.BytesIO(big), "invoice.pdf")])
    assert response.status_code == 200
    assert "invoice.pdf is larger than 1 KB." in text_of(response)
    with app.app_context():
        assert db.session.scalar(select(Ticket).where(Ticket.subject == "Site is down")) is None


def test_a_ticket_needs_a_department_a_subject_and_the_clients_own_service(app, client_a, world):
    assert new_ticket(app, client_a, world, subject="").status_code == 200
    assert new_ticket(app, client_a, world, department=9999).status_code == 200
    response = new_ticket(app, client_a, world, service=world["b"]["service"])
    assert response.status_code == 200 and "is-invalid" in text_of(response)
    with app.app_context():
        opened = db.session.scalars(select(Ticket).where(Ticket.subject == "Site is down"))
        assert opened.all() == []


def test_replying_makes_the_ticket_customer_reply_and_closing_closes_it(app, client_a, world):
    ticket = world["a"]["ticket"]
    response = client_a.post(f"/portal/tickets/{ticket}/reply",
                             data={"message": "Still broken <b>today</b>"},
                             content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        row = db.session.get(Ticket, ticket)
        assert row.status == "Customer-Reply"
        assert row.replies[-1].message == "Still broken <b>today</b>"
    page = text_of(client_a.get(f"/portal/tickets/{ticket}"))
    assert "Still broken &lt;b&gt;today&lt;/b&gt;" in page

    assert client_a.post(f"/portal/tickets/{ticket}/close").status_code == 302
    with app.app_context():
        row = db.session.get(Ticket, ticket)
        assert row.status == "Closed" and row.closed_at is not None
    assert 'id="close-ticket"' not in text_of(client_a.get(f"/portal/tickets/{ticket}"))
    # A reply to a closed ticket opens it again.
    client_a.post(f"/portal/tickets/{ticket}/reply", data={"message": "It is back"},
                  content_type="multipart/form-data")
    with app.app_context():
        row = db.session.get(Ticket, ticket)
        assert (row.status, row.closed_at) == ("Customer-Reply", None)
        actions = db.session.scalars(select(ActivityLog.action).where(
            ActivityLog.object_type == "Ticket", ActivityLog.object_id == ticket)
            .order_by(ActivityLog.id)).all()
        assert actions == ["ticket_reply", "ticket_closed", "ticket_reply"]


def test_an_empty_reply_is_refused(app, client_a, world):
    ticket = world["a"]["ticket"]
    response = client_a.post(f"/portal/tickets/{ticket}/reply", data={"message": "   "},
                             content_type="multipart/form-data", follow_redirects=True)
    assert "This field is required." in text_of(response)
    with app.app_context():
        assert len(db.session.scalars(select(TicketReply).where(
            TicketReply.ticket_id == ticket)).all()) == 1


def test_staff_replies_show_as_staff(app, client_a, world):
    with app.app_context():
        db.session.add(TicketReply(ticket_id=world["a"]["ticket"], admin_id=None, name="Sam Staff",
                                   message="Fixed."))
        db.session.commit()
    ticket_page = text_of(client_a.get(f"/portal/tickets/{world['a']['ticket']}"))
    assert "Sam Staff" in ticket_page and "How do I set up email?" in ticket_page
    listing = text_of(client_a.get("/portal/tickets"))
    assert "Alpha mail question" in listing and "Bravo mail question" not in listing


@pytest.fixture
def knowledge_base(app):
    with app.app_context():
        public = KbCategory(name="Email")
        hidden = KbCategory(name="Internal", hidden=True)
        db.session.add_all([public, hidden])
        db.session.flush()
        articles = {
            "html": KbArticle(category_id=public.id, title="Set up Thunderbird",
                              slug="thunderbird", tags="imap",
                              body='<h2>Steps</h2><p onclick="steal()">Open <b>settings</b>'
                                   '<script>alert(1)</script> and see <a href="javascript:x()">'
                                   'this</a> or <a href="https://docs.example/imap">that</a>.</p>'
                                   '<img src="https://tracker.example/p.gif">'),
            "private": KbArticle(category_id=public.id, title="Reseller IMAP limits",
                                 slug="reseller-imap", body="<p>Limits.</p>", private=True),
            "draft": KbArticle(category_id=public.id, title="IMAP draft", slug="imap-draft",
                               body="<p>Soon.</p>", published=False),
            "hidden": KbArticle(category_id=hidden.id, title="IMAP internals", slug="internals",
                                body="<p>Staff only.</p>"),
        }
        db.session.add_all(articles.values())
        db.session.commit()
        return {key: row.id for key, row in articles.items()} | {"public": public.id,
                                                                   "hidden_category": hidden.id}


def test_article_html_is_shown_through_the_allow_list(client, knowledge_base):
    page = text_of(client.get(f"/portal/knowledgebase/article/{knowledge_base['html']}"))
    body = page.split('id="article-body">', 1)[1].split("</div>", 1)[0]
    assert "<h2>Steps</h2>" in body and "<b>settings</b>" in body
    assert "<script" not in body and "onclick" not in body and "javascript:" not in body
    assert '<a href="https://docs.example/imap" rel="noopener noreferrer nofollow">that</a>' in body
    assert "tracker.example" not in body  # no image is loaded from elsewhere


def test_the_knowledge_base_shows_only_what_the_visitor_may_read(app, client, knowledge_base,
                                                                 world):
    results = search_results(client, "imap")
    assert "Set up Thunderbird" in results  # found by its tag
    for title in ("Reseller IMAP limits", "IMAP draft", "IMAP internals"):
        assert title not in results
    for key in ("private", "draft", "hidden"):
        assert client.get(f"/portal/knowledgebase/article/{knowledge_base[key]}").status_code == 404
    assert client.get(
        f"/portal/knowledgebase/category/{knowledge_base['hidden_category']}").status_code == 404
    # A signed-in client reads private articles too.
    portal_login(client, world["user_a"])
    assert "Reseller IMAP limits" in search_results(client, "imap")
    assert client.get(
        f"/portal/knowledgebase/article/{knowledge_base['private']}").status_code == 200


def search_results(client, query: str) -> str:
    page = text_of(client.get(f"/portal/knowledgebase?q={query}"))
    return page.split('id="kb-results"', 1)[1].split("</section>", 1)[0]


def test_search_wildcards_are_taken_literally(client, knowledge_base):
    assert "Set up Thunderbird" in search_results(client, "thunder")
    assert "Set up Thunderbird" not in search_results(client, "%25%25")
    assert "No article matches your search." in search_results(client, "t_under")
    assert "at least two characters" in text_of(client.get("/portal/knowledgebase?q=x"))


def test_reading_an_article_counts_the_view(app, client, knowledge_base):
    client.get(f"/portal/knowledgebase/article/{knowledge_base['html']}")
    client.get(f"/portal/knowledgebase/article/{knowledge_base['html']}")
    with app.app_context():
        assert db.session.get(KbArticle, knowledge_base["html"]).views == 2
