"""Emails written on the spot rather than from a stored template (the WHMCS API's
SendEmail and SendAdminEmail with a custom subject and message): rendered in the
same sandbox as templates and queued like any other email (queue.queue_rendered)."""
from __future__ import annotations

from app.models.system import EmailMessage, EmailTemplate
from app.notifications.queue import Attachment, queue_rendered


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
    # An unsaved template object: the same sandboxed rendering as stored templates.
    return queue_rendered(EmailTemplate(subject=subject, body_html=body_html), client_id,
                          context or {}, to_address=to_address, related=related,
                          dedupe_key=dedupe_key, attachments=attachments)
