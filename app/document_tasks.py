"""Celery task of document PDFs (invoice, quote, credit note): a request renders
only the HTML and asks this task for the PDF (app.billing.pdf.queue_pdf)."""
from __future__ import annotations

from app.extensions import celery


@celery.task(name="app.document_tasks.make_document_pdf")
def make_document_pdf(kind: str, record_id: int, html: str) -> str:
    """Make the PDF of exactly this HTML (the document as the request saw it) in the
    document store; a PDF already there is left alone. Returns its stored name."""
    from app.billing.pdf import DocumentHtml, store_pdf

    document = DocumentHtml(kind, record_id, html)
    store_pdf(document)
    return document.stored_name
