"""Queue an email from a template. Sending is a separate job (notifications.sender).

A queued message may carry a dedupe key: the database refuses a second message with
the same key, so a notice that must go once (an overdue reminder) goes once even if
the job that queues it runs twice."""
from __future__ import annotations

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models.clients import Client
from app.models.system import EmailMessage, EmailTemplate

# User-editable templates render in Jinja's sandbox, with autoescaping for HTML.
_html_env = SandboxedEnvironment(autoescape=True)
_text_env = SandboxedEnvironment(autoescape=False)


class EmailTemplateMissing(LookupError):
    pass


def render(template: EmailTemplate, context: dict) -> tuple[str, str, str | None]:
    subject = _text_env.from_string(template.subject).render(context)
    html = _html_env.from_string(template.body_html).render(context)
    text = _text_env.from_string(template.body_text).render(context) if template.body_text else None
    return subject, html, text


def client_context(client: Client) -> dict:
    return {
        "client_id": client.id,
        "client_name": client.full_name,
        "client_first_name": client.first_name,
        "client_company_name": client.company_name or "",
        "client_email": client.email,
    }


def queue_email(template_name: str, client_id: int | None, context: dict, *,
                to_address: str | None = None, related: tuple[str, int] | None = None,
                dedupe_key: str | None = None) -> EmailMessage | None:
    """Queue one email; returns None when the template is disabled or the dedupe key
    was used already. Runs inside the caller's transaction (a savepoint guards the
    dedupe insert so a duplicate does not spoil the caller's work)."""
    template = db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == template_name))
    if template is None:
        raise EmailTemplateMissing(f"no email template named {template_name!r}")
    if template.disabled:
        return None
    if dedupe_key and db.session.scalar(
        select(EmailMessage.id).where(EmailMessage.dedupe_key == dedupe_key)
    ):
        return None
    client = db.session.get(Client, client_id) if client_id else None
    full_context = {**(client_context(client) if client else {}), **context}
    subject, html, text = render(template, full_context)
    message = EmailMessage(
        dedupe_key=dedupe_key, client_id=client_id, template=template_name,
        to_address=to_address or (client.email if client else ""),
        subject=subject, body_html=html, body_text=text,
        related_type=related[0] if related else None,
        related_id=related[1] if related else None,
    )
    if not message.to_address:
        raise ValueError("an email needs a recipient")
    try:
        with db.session.begin_nested():
            db.session.add(message)
    except IntegrityError:
        return None  # another run queued the same notice first
    return message
