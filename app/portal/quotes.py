"""The client's quotes in the portal: list, view, download the PDF, accept. Drafts
(not sent yet) are not shown; another client's quote is not found (404)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from app.activity import current_actor
from app.billing import quotes as quote_engine
from app.billing.automation import business_today
from app.billing.pdf import quote_context
from app.document_downloads import pdf_download
from app.extensions import db
from app.models.billing import Quote, QuoteStage
from app.portal import portal
from app.portal.access import client_login_required, current_client, owned_or_404


def _owned_quote(quote_id: int) -> Quote:
    quote = owned_or_404(Quote, quote_id)
    if quote.stage == QuoteStage.DRAFT:
        abort(404)
    return quote


@portal.route("/quotes")
@client_login_required
def quotes():
    return render_template("portal/quotes.html", quotes=quote_engine.client_quotes(current_client().id),
                           today=business_today())


@portal.route("/quotes/<int:quote_id>")
@client_login_required
def quote(quote_id: int):
    row = _owned_quote(quote_id)
    today = business_today()
    acceptable = row.stage in quote_engine.OPEN_STAGES and row.valid_until >= today
    return render_template("portal/quote.html", quote=row, doc=quote_context(row),
                           acceptable=acceptable, expired=row.valid_until < today)


@portal.route("/quotes/<int:quote_id>/pdf")
@client_login_required
def quote_pdf(quote_id: int):
    return pdf_download("quote", _owned_quote(quote_id).id, render_template)


@portal.route("/quotes/<int:quote_id>/accept", methods=["POST"])
@client_login_required
def quote_accept(quote_id: int):
    """Accept the quote (CSRF-checked app-wide): it becomes an invoice to pay."""
    row = _owned_quote(quote_id)
    try:
        invoice = quote_engine.accept_quote(row.id, client_id=current_client().id,
                                            today=business_today(), actor=current_actor())
        db.session.commit()
    except quote_engine.QuoteError as error:
        db.session.rollback()
        flash(_("The quote was not accepted: %(reason)s", reason=str(error)), "danger")
        return redirect(url_for("portal.quote", quote_id=row.id))
    flash(_("Thank you: the quote is accepted and its invoice is ready."), "success")
    return redirect(url_for("portal.invoice", invoice_id=invoice.id))
