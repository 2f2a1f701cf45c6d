"""Celery task of quotes: the PDF is made in a worker (in the document store, so a
download of the same quote serves that file), then the quote is emailed."""
from __future__ import annotations

from pathlib import Path

from app.activity import Actor
from app.billing import quotes
from app.billing.pdf import stored_pdf
from app.extensions import celery, db


@celery.task(name="app.quote_tasks.send_quote")
def send_quote(quote_id: int, send_key: str, actor_type: str = "system",
               actor_name: str = "System", actor_user_id: int | None = None) -> str:
    """Render the quote's PDF and email it; a repeated run with the same send_key
    emails nothing more. Returns "sent" or why not."""
    try:
        pdf = Path(stored_pdf("quote", quote_id)).read_bytes()
        quotes.send_quote(quote_id, pdf=pdf, send_key=send_key,
                          actor=Actor(actor_type, actor_name, actor_user_id))
        db.session.commit()
    except quotes.QuoteError as error:
        db.session.rollback()
        return str(error)
    return "sent"
