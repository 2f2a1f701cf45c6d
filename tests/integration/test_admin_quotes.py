"""The staff's quote screen: lines change the totals through the quotes engine, the
Send button emails the PDF (a Celery job, run in-process here), Accept converts to
one invoice, and an accepted quote no longer changes."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from app.billing import quotes
from app.models.billing import Invoice, Quote, TaxRule
from app.models.system import ActivityLog, EmailAttachment, EmailMessage, EmailTemplate
from app import settings
from tests import factories


def make_quote(db, stage: str = "Draft") -> Quote:
    customer = factories.client(country="US", state="TX")
    quote = quotes.create_quote(customer.id, "New servers",
                                [quotes.QuoteLine("Setup", Decimal("100.00"))], stage=stage,
                                valid_until=date.today() + timedelta(days=14))
    db.session.commit()
    return quote


def test_lines_added_in_the_admin_retotal_the_quote_with_taxes(db, admin_client):
    db.session.add(TaxRule(level=1, name="Sales Tax", country="US", state="TX", rate=Decimal("8.25")))
    settings.set_value("TaxEnabled", "on")
    db.session.commit()
    quote = make_quote(db)
    assert quote.total == Decimal("108.25")
    response = admin_client.post("/quoteitemview/add", data={
        "quote": str(quote.id), "description": "Rack space", "quantity": "2",
        "unit_price": "50.00", "discount_percent": "10", "taxed": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    quote = db.session.get(Quote, quote.id)
    # 100.00 + 2 x 50.00 less 10% = 190.00, with 8.25% tax = 15.68 (rounded half-up)
    assert (quote.subtotal, quote.tax1, quote.total) == (
        Decimal("190.00"), Decimal("15.68"), Decimal("205.68"))
    item_id = max(item.id for item in quote.items)
    admin_client.post(f"/quoteitemview/delete/{item_id}")
    db.session.expire_all()
    assert db.session.get(Quote, quote.id).total == Decimal("108.25")


def test_send_emails_the_pdf_once_per_click(db, admin_client):
    db.session.add(EmailTemplate(name="Quote Delivery with PDF", type="general",
                                 subject="Quote #{{ quote_number }}: {{ quote_subject }}",
                                 body_html="<p>Total {{ quote_total }}</p>"))
    db.session.commit()
    quote = make_quote(db)
    response = admin_client.post(f"/quoteview/send_quote/{quote.id}", follow_redirects=True)
    assert "is being emailed to" in response.get_data(as_text=True)
    db.session.expire_all()
    message = db.session.scalar(select(EmailMessage).where(EmailMessage.related_type == "quote"))
    assert message.subject == f"Quote #{quote.id}: New servers"
    [attachment] = db.session.scalars(select(EmailAttachment).where(
        EmailAttachment.message_id == message.id)).all()
    assert (attachment.filename, attachment.content_type) == (f"Quote-{quote.id}.pdf",
                                                              "application/pdf")
    assert db.session.get(Quote, quote.id).stage == "Delivered"

    # The same job run again (a retry) sends nothing more.
    from app.quote_tasks import send_quote
    assert send_quote(quote.id, "same-key") == "sent"
    assert send_quote(quote.id, "same-key") == "sent"
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == 2


def test_accept_converts_once_and_the_accepted_quote_is_frozen(db, admin_client):
    quote = make_quote(db, stage="Delivered")
    response = admin_client.post(f"/quoteview/accept_quote/{quote.id}", follow_redirects=True)
    assert "Quote accepted: invoice" in response.get_data(as_text=True)
    db.session.expire_all()
    quote = db.session.get(Quote, quote.id)
    invoice = db.session.get(Invoice, quote.invoice_id)
    assert (quote.stage, invoice.total, invoice.status) == ("Accepted", Decimal("100.00"), "Unpaid")
    assert db.session.scalar(select(ActivityLog.actor_type).where(
        ActivityLog.action == "quote_accepted")) == "staff"

    again = admin_client.post(f"/quoteview/accept_quote/{quote.id}", follow_redirects=True)
    assert "has been accepted already" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1
    page = admin_client.get(f"/quoteview/show/{quote.id}").get_data(as_text=True)
    assert f"/invoiceview/show/{invoice.id}" in page
    assert "/quoteview/accept_quote/" not in page

    refused = admin_client.post("/quoteitemview/add", data={
        "quote": str(quote.id), "description": "Extra", "quantity": "1", "unit_price": "5.00",
        "discount_percent": "0"}, follow_redirects=True)
    assert "can no longer change" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert len(db.session.get(Quote, quote.id).items) == 1

    pdf = admin_client.get(f"/quoteview/pdf/{quote.id}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")



def test_without_a_template_the_built_in_message_goes(db):
    from app.quote_tasks import send_quote

    quote = make_quote(db)
    assert send_quote(quote.id, "k1") == "sent"
    message = db.session.scalar(select(EmailMessage).where(EmailMessage.related_type == "quote"))
    assert message.subject == f"Quote #{quote.id}: New servers"
    assert "$100.00" in message.body_html and message.to_address == quote.client.email
    assert db.session.scalar(select(EmailAttachment.filename)) == f"Quote-{quote.id}.pdf"
    assert send_quote(quote.id, "k1") == "sent"
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == 1
