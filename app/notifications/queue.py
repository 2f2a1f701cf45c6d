"""Queue an email from a template. Sending is a separate job (notifications.sender).

A queued message may carry a dedupe key: the database refuses a second message with
the same key, so a notice that must go once (an overdue reminder) goes once even if
the job that queues it runs twice.

A message may carry attachments: each file is copied under MAIL_ATTACHMENT_DIR
(default instance/mail_attachments, outside the web root) with a random name and
recorded as an EmailAttachment row; the sender adds them to the MIME message."""
from __future__ import annotations

import os
import re
import secrets

from flask import current_app
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models.clients import Client
from app.models.system import EmailAttachment, EmailMessage, EmailTemplate

# (file name as the recipient sees it, MIME type, the content or a path to a file)
Attachment = tuple[str, str, "bytes | str | os.PathLike"]
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]*"
_MIME_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(\s*;.*)?$", re.I)

# User-editable templates render in Jinja's sandbox, with autoescaping for HTML.
_html_env = SandboxedEnvironment(autoescape=True)
_text_env = SandboxedEnvironment(autoescape=False)


MAX_SUBJECT_LENGTH = 255  # EmailMessage.subject's column


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
                dedupe_key: str | None = None,
                attachments: list[Attachment] | None = None) -> EmailMessage | None:
    """Queue one email; returns None when the template is disabled or the dedupe key
    was used already. Runs inside the caller's transaction (a savepoint guards the
    dedupe insert so a duplicate does not spoil the caller's work).

    attachments: (filename, mimetype, bytes or path of a file) each; a bad one raises
    ValueError before anything is queued."""
    template = db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == template_name))
    if template is None:
        raise EmailTemplateMissing(f"no email template named {template_name!r}")
    if template.disabled:
        return None
    return queue_rendered(template, client_id, context, template_name=template_name,
                          to_address=to_address, related=related, dedupe_key=dedupe_key,
                          attachments=attachments)


def queue_rendered(template: EmailTemplate, client_id: int | None, context: dict, *,
                   template_name: str | None = None, to_address: str | None = None,
                   related: tuple[str, int] | None = None, dedupe_key: str | None = None,
                   attachments: list[Attachment] | None = None) -> EmailMessage | None:
    """Render a template (stored, or unsaved for a one-off text) with the client's merge
    fields and queue it: the one place an EmailMessage row is made. None when the
    dedupe key was used already."""
    files = prepare_attachments(attachments or [])
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
        subject=subject[:MAX_SUBJECT_LENGTH], body_html=html, body_text=text,
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
    store_attachments(message, files)
    return message


def prepare_attachments(attachments: list[Attachment]) -> list[tuple[str, str, bytes]]:
    """Check every attachment and read its content, so a bad one refuses the whole
    message before anything is written."""
    prepared = []
    for entry in attachments:
        try:
            filename, mimetype, content = entry
        except (TypeError, ValueError):
            raise ValueError("an attachment is (filename, mimetype, bytes or path)") from None
        # The name is shown to the recipient only: no folders, no header breaks.
        name = os.path.basename(str(filename or "").replace("\\", "/")).strip()
        if not name or any(ch in name for ch in "\r\n\"") or len(name) > 255:
            raise ValueError(f"attachment file name {filename!r} is not usable")
        if not isinstance(mimetype, str) or not _MIME_TYPE.match(mimetype.strip()):
            raise ValueError(f"attachment {name}: {mimetype!r} is not a MIME type")
        if isinstance(content, (bytes, bytearray)):
            data = bytes(content)
        elif isinstance(content, (str, os.PathLike)):
            try:
                with open(content, "rb") as handle:
                    data = handle.read(MAX_ATTACHMENT_BYTES + 1)
            except OSError as error:
                raise ValueError(f"attachment {name}: cannot read {content}: "
                                 f"{error.strerror}") from error
        else:
            raise ValueError(f"attachment {name}: content must be bytes or a file path")
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise ValueError(f"attachment {name} is larger than "
                             f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
        prepared.append((name, mimetype.strip(), data))
    return prepared


def attachment_folder() -> str:
    return current_app.config.get("MAIL_ATTACHMENT_DIR") or os.path.join(
        current_app.instance_path, "mail_attachments")


def store_attachments(message: EmailMessage,
                      files: list[tuple[str, str, bytes]]) -> list[EmailAttachment]:
    """Write prepared attachments of a message (added to the session) to disk and
    record them; the rows join the caller's transaction."""
    if not files:
        return []
    folder = attachment_folder()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if message.id is None:
        db.session.flush()
    rows = []
    for name, mimetype, data in files:
        # A random name: nothing a sender chose reaches the file system.
        path = os.path.join(folder, secrets.token_hex(16))
        with open(path, "xb") as handle:
            handle.write(data)
        row = EmailAttachment(message_id=message.id, filename=name, content_type=mimetype,
                              stored_path=path, size=len(data))
        db.session.add(row)
        rows.append(row)
    return rows
