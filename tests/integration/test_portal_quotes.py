"""Quotes in the portal: the client lists, reads, downloads and accepts its own
quotes (once: the accepted quote becomes one invoice); drafts and other clients'
quotes are not found; the staff answer rating of the ticket engine."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing import quotes
from app.extensions import db
from app.models.billing import Invoice, Quote
from app.models.support import Ticket, TicketReply
from app.models.system import ActivityLog
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    client_a, portal_login, text_of, world,
)


def make_quote(app, client_id: int, stage: str = "Delivered", valid_days: int = 30) -> int:
    with app.app_context():
        quote = quotes.create_quote(
            client_id, "Migration project",
            [quotes.QuoteLine("Site migration", Decimal("80.00"), quantity=2,
                              discount_percent=Decimal("25")),
             quotes.QuoteLine("SSL setup", Decimal("15.00"), taxed=False)],
            stage=stage, valid_until=date.today() + timedelta(days=valid_days),
            proposal="We move <b>everything</b>.")
        db.session.commit()
        return quote.id


@pytest.fixture
def quote_ids(app, world):
    return {"a": make_quote(app, world["a"]["client"]), "b": make_quote(app, world["b"]["client"]),
            "draft": make_quote(app, world["a"]["client"], stage="Draft")}


def test_the_client_lists_reads_and_downloads_its_quotes(client_a, quote_ids):
    listing = text_of(client_a.get("/portal/quotes"))
    assert f'href="/portal/quotes/{quote_ids["a"]}"' in listing
    assert f'/portal/quotes/{quote_ids["draft"]}"' not in listing
    assert f'/portal/quotes/{quote_ids["b"]}"' not in listing

    page = client_a.get(f"/portal/quotes/{quote_ids['a']}")
    assert page.status_code == 200
    text = text_of(page)
    assert "We move &lt;b&gt;everything&lt;/b&gt;." in text
    assert 'id="quote-total">$135.00<' in text
    assert 'id="accept-quote"' in text

    pdf = client_a.get(f"/portal/quotes/{quote_ids['a']}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Content-Disposition"] == f"attachment; filename=Quote-{quote_ids['a']}.pdf"


@pytest.mark.parametrize("which", ["b", "draft"])
def test_another_clients_quote_and_drafts_are_not_found(client_a, quote_ids, which):
    quote_id = quote_ids[which]
    assert client_a.get(f"/portal/quotes/{quote_id}").status_code == 404
    assert client_a.get(f"/portal/quotes/{quote_id}/pdf").status_code == 404
    assert client_a.post(f"/portal/quotes/{quote_id}/accept").status_code == 404


def test_accepting_makes_one_invoice(app, client_a, world, quote_ids):
    response = client_a.post(f"/portal/quotes/{quote_ids['a']}/accept")
    assert response.status_code == 302
    with app.app_context():
        quote = db.session.get(Quote, quote_ids["a"])
        invoice = db.session.get(Invoice, quote.invoice_id)
        assert response.headers["Location"].endswith(f"/portal/invoices/{invoice.id}")
        assert (quote.stage, invoice.client_id, invoice.total, invoice.status) == (
            "Accepted", world["a"]["client"], Decimal("135.00"), "Unpaid")
        assert db.session.scalar(select(ActivityLog.actor_type).where(
            ActivityLog.action == "quote_accepted")) == "client"
        invoices = db.session.scalar(select(func.count()).select_from(Invoice))
    again = client_a.post(f"/portal/quotes/{quote_ids['a']}/accept", follow_redirects=True)
    assert "has been accepted already" in text_of(again)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == invoices
    assert 'id="accept-quote"' not in text_of(client_a.get(f"/portal/quotes/{quote_ids['a']}"))


def test_an_expired_quote_cannot_be_accepted(app, client_a, world):
    quote_id = make_quote(app, world["a"]["client"], valid_days=-1)
    page = text_of(client_a.get(f"/portal/quotes/{quote_id}"))
    assert 'id="quote-expired"' in page and 'id="accept-quote"' not in page
    client_a.post(f"/portal/quotes/{quote_id}/accept")
    with app.app_context():
        assert db.session.get(Quote, quote_id).stage == "Delivered"
        assert db.session.get(Quote, quote_id).invoice_id is None


def test_rating_a_staff_answer(app, client_a, world, staff):
    username, _ = staff("Support")
    with app.app_context():
        ticket = db.session.get(Ticket, world["a"]["ticket"])
        staff_user = app.appbuilder.sm.find_user(username=username)
        staff = TicketReply(ticket_id=ticket.id, admin_id=staff_user.id, name="Sam Staff",
                            message="Done.")
        client_reply = ticket.replies[0]
        db.session.add(staff)
        db.session.commit()
        staff_id, client_reply_id = staff.id, client_reply.id
        other_ticket = world["b"]["ticket"]
    url = f"/portal/tickets/{world['a']['ticket']}/replies/{staff_id}/rate"
    assert client_a.post(url, data={"rating": "4"}).status_code == 302
    assert client_a.post(url, data={"rating": "9"}).status_code == 302
    assert client_a.post(f"/portal/tickets/{world['a']['ticket']}/replies/{client_reply_id}/rate",
                         data={"rating": "5"}).status_code == 302
    assert client_a.post(f"/portal/tickets/{other_ticket}/replies/{staff_id}/rate",
                         data={"rating": "1"}).status_code == 404
    with app.app_context():
        assert db.session.get(TicketReply, staff_id).rating == 4
        assert db.session.get(TicketReply, client_reply_id).rating is None
    page = text_of(client_a.get(f"/portal/tickets/{world['a']['ticket']}"))
    assert 'aria-pressed="true"' in page
