"""Engine actions on the staff's quote page: send to the client (its PDF is made and
emailed by a Celery job), accept and convert it to an invoice (once), download the
PDF. Like app.admin.actions: a CSRF-checked POST, one engine call in one
transaction, the engine's refusal shown and nothing changed."""
from __future__ import annotations

import secrets

from flask import url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access, permission_name

from app.activity import current_actor
from app.admin.actions import Button, EngineActions
from app.billing import invoicing, quotes
from app.billing.automation import business_today
from app.document_downloads import pdf_download
from app.models.billing import QuoteStage


class QuoteActions(EngineActions):
    action_permissions = ("send_quote", "accept_quote")

    def record_title(self, quote) -> str:
        return f"Quote #{quote.id}: {quote.subject}"

    def buttons(self, quote):
        still_open = quote.invoice_id is None and quote.stage != QuoteStage.ACCEPTED
        return [
            self.button("send_quote", "Send to client", quote, icon="fa-envelope", post=True,
                        confirm="Email this quote and its PDF to the client?")
            if still_open else None,
            self.button("accept_quote", "Accept and convert to invoice", quote, icon="fa-check",
                        style="success", post=True,
                        confirm="Mark the quote Accepted and create its invoice?")
            if still_open else None,
            Button("Download PDF", url_for(f"{self.endpoint}.pdf", pk=quote.id),
                   icon="fa-file-pdf-o", download=True),
            Button("Open its invoice", url_for("InvoiceView.show", pk=quote.invoice_id),
                   icon="fa-file-text-o") if quote.invoice_id else None,
        ]

    @expose("/send_quote/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("send_quote")
    def send_quote(self, pk):
        def queue_job(quote):
            from app.quote_tasks import send_quote as job

            actor = current_actor()
            job.delay(quote.id, secrets.token_hex(8), actor.type, actor.name, actor.user_id)
            return f"Quote #{quote.id} is being emailed to {quote.client.email} with its PDF."

        # The check runs in the request; the PDF and the email in the job, once committed.
        return self.one_click(pk, lambda quote: quotes.check_sendable(quote.id), queue_job)

    @expose("/accept_quote/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("accept_quote")
    def accept_quote(self, pk):
        return self.one_click(
            pk, lambda quote: quotes.accept_quote(quote.id, today=business_today(),
                                                  actor=current_actor()),
            lambda invoice: f"Quote accepted: invoice {invoicing.invoice_label(invoice)} created "
                            f"for {invoice.currency.format(invoice.total)}.")

    # Anyone who may see the quote may download it.
    @expose("/pdf/<int:pk>", methods=["GET"])
    @has_access
    @permission_name("show")
    def pdf(self, pk):
        return pdf_download("quote", self.record_or_404(pk).id, self.render_template)
