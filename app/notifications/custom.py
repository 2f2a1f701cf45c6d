"""Emails written on the spot rather than from a stored template (the WHMCS API's
SendEmail and SendAdminEmail with a custom subject and message): rendered in the
same sandbox as templates and queued like any other email."""
from __future__ import annotations

from app.extensions import db
from app.models.clients import Client
from app.models.system import EmailMessage, EmailTemplate
from sqlalchemy import select

from app.notifications.queue import Attachment, attach, client_context, render

MAX_SUBJECT_LENGTH = 255


def queue_custom_email(subject: str, body_html: str, to_address: str, *,
                       client_id: int | None = None, context: dict | None = None,
                       related: tuple[str, int] | None = None,
                       attachments: list[Attachment] | None = None,
                       dedupe_key: str | None = None) -> EmailMessage | None:
    """Queue one email; None when the dedupe key was used already (sent once)."""
    subject = (subject or "").strip()
    body_html = (body_html or "").strip()
    if not subject or not body_html:
        raise ValueError("A custom email needs a subject and a message")
    if not to_address:
        raise ValueError("an email needs a recipient")
    if dedupe_key and db.session.scalar(select(EmailMessage.id).where(
            EmailMessage.dedupe_key == dedupe_key)):
        return None
    client = db.session.get(Client, client_id) if client_id else None
    merge = {**(client_context(client) if client else {}), **(context or {})}
    # An unsaved template object: the same sandboxed rendering as stored templates.
    subject, html, text = render(EmailTemplate(subject=subject, body_html=body_html), merge)
    message = EmailMessage(client_id=client_id, template=None, to_address=to_address,
                           dedupe_key=dedupe_key,
                           subject=subject[:MAX_SUBJECT_LENGTH], body_html=html, body_text=text,
                           related_type=related[0] if related else None,
                           related_id=related[1] if related else None)
    db.session.add(message)
    db.session.flush()
    attach(message, attachments or [])
    return message
