"""Send queued email (EmailMessage rows with status "queued") over SMTP.

Each message is claimed in its own short transaction: the row is locked, sent, marked
and committed before the next one is taken. On PostgreSQL the claim is
SELECT ... FOR UPDATE SKIP LOCKED, so two workers running at once never take the same
row (each skips what the other holds); SQLite has a single writer, so a plain SELECT
suffices there. A crash between the SMTP hand-off and the commit can send a message
twice (at-least-once); it can never mark an unsent message sent.

With no MAIL_SERVER configured (the embedded default) nothing leaves the machine: each
message is written to a local outbox (instance/mail/<id>.eml) where it can be read.

A message's attachments (EmailAttachment rows, files under instance/mail_attachments)
go into the MIME message and the outbox copy; a missing file fails that message.
"""
from __future__ import annotations

import html
import logging
import os
import re
import smtplib
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models.base import utcnow
from app.models.system import EmailAttachment, EmailMessage, EmailStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
SMTP_TIMEOUT_SECONDS = 30

# Errors that concern the server or the connection, not one message: the run stops
# (the rest of the queue is left for the next run, its attempts untouched).
_CONNECTION_ERRORS = (OSError, smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected,
                      smtplib.SMTPAuthenticationError, smtplib.SMTPHeloError,
                      smtplib.SMTPNotSupportedError)


class _ConnectionFailed(Exception):
    pass


def build_mime(message: EmailMessage, sender: str) -> MimeMessage:
    """The message as multipart/alternative: plain text first, HTML second; with
    attachments, that inside a multipart/mixed followed by each file."""
    mime = MimeMessage()
    mime["From"] = sender
    mime["To"] = message.to_address
    if message.cc:
        mime["Cc"] = message.cc
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(localtime=False)
    mime["Message-ID"] = make_msgid(idstring=f"tallyhost.{message.id}",
                                    domain=_domain_of(sender))
    mime.set_content(message.body_text or _text_from_html(message.body_html))
    mime.add_alternative(message.body_html, subtype="html")
    for attachment in _attachments_of(message):
        maintype, _, subtype = attachment.content_type.split(";")[0].strip().partition("/")
        try:
            with open(attachment.stored_path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            # ValueError: this message fails (and is retried), the run goes on.
            raise ValueError(f"attachment {attachment.filename} cannot be read: "
                             f"{error.strerror}") from error
        mime.add_attachment(data, maintype=maintype, subtype=subtype,
                            filename=attachment.filename)
    return mime


def _attachments_of(message: EmailMessage) -> list[EmailAttachment]:
    if message.id is None:
        return []
    return list(db.session.scalars(select(EmailAttachment)
                                   .where(EmailAttachment.message_id == message.id)
                                   .order_by(EmailAttachment.id)))


def _domain_of(address: str) -> str | None:
    domain = address.rpartition("@")[2].strip("> ")
    return domain or None


def _text_from_html(body: str) -> str:
    """A readable plain-text part for a message that only has HTML."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", body)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|h[1-6]|li)>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    lines = (line.strip() for line in html.unescape(text).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _recipients(message: EmailMessage) -> list[str]:
    addresses = [message.to_address] + (message.cc or "").split(",")
    return [address.strip() for address in addresses if address.strip()]


class _SmtpSession:
    """One SMTP connection for the whole run, opened when the first message needs it."""

    def __init__(self, config) -> None:
        self.host = config.get("MAIL_SERVER")
        self.port = int(config.get("MAIL_PORT") or 25)
        self.username = config.get("MAIL_USERNAME")
        self.password = config.get("MAIL_PASSWORD")
        self.use_tls = bool(config.get("MAIL_USE_TLS"))
        self.use_ssl = bool(config.get("MAIL_USE_SSL"))
        self.connection: smtplib.SMTP | None = None

    def send(self, mime: MimeMessage, recipients: list[str]) -> None:
        if self.connection is None:
            self.connection = self._connect()
        refused = self.connection.send_message(mime, to_addrs=recipients)
        if refused:
            # Some recipients accepted, some not: the message did go out.
            logger.warning("message %s refused for %s", mime["Message-ID"], sorted(refused))

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.use_ssl:
                connection = smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS)
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS)
            connection.ehlo()
            if self.use_tls and not self.use_ssl:
                connection.starttls()
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password or "")
        except _CONNECTION_ERRORS as error:
            raise _ConnectionFailed(
                f"cannot reach mail server {self.host}:{self.port}: {error}") from error
        return connection

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None


def _outbox_dir() -> str:
    return current_app.config.get("MAIL_OUTBOX_DIR") or os.path.join(
        current_app.instance_path, "mail")


def _write_to_outbox(message: EmailMessage, mime: MimeMessage) -> str:
    folder = _outbox_dir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{message.id}.eml")
    with open(path, "wb") as handle:
        handle.write(mime.as_bytes())
    return path


def _claim_next(after_id: int) -> EmailMessage | None:
    """Lock and return the next sendable row after after_id, or None when none is left.

    Walking forward by id means a message that failed in this run is not retried in
    the same run; it waits for the next one."""
    query = (
        select(EmailMessage)
        .where(EmailMessage.status == EmailStatus.QUEUED.value,
               EmailMessage.attempts < MAX_ATTEMPTS,
               EmailMessage.id > after_id)
        .order_by(EmailMessage.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        # Rows held by another worker are skipped, not waited for: no message twice.
        query = query.with_for_update(skip_locked=True)
    return db.session.scalars(query).first()


def _record_failure(message: EmailMessage, error: str) -> str:
    message.attempts = (message.attempts or 0) + 1
    message.error = error[:2000]
    if message.attempts >= MAX_ATTEMPTS:
        message.status = EmailStatus.FAILED.value
        logger.error("email %s failed for good after %s attempts: %s",
                     message.id, message.attempts, error)
        return "failed"
    logger.warning("email %s not sent (attempt %s of %s): %s",
                   message.id, message.attempts, MAX_ATTEMPTS, error)
    return "retry"


def _mark_sent(message: EmailMessage) -> None:
    message.status = EmailStatus.SENT.value
    message.sent_at = utcnow()
    message.attempts = (message.attempts or 0) + 1
    message.error = None


def send_queued(batch_size: int = 100) -> dict[str, int]:
    """Send up to batch_size queued messages; returns counts by outcome:
    sent (over SMTP), outbox (written locally), retry (failed, will be tried again),
    failed (gave up after MAX_ATTEMPTS)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    config = current_app.config
    sender = config.get("MAIL_FROM") or "billing@example.com"
    to_outbox = not config.get("MAIL_SERVER")
    smtp = None if to_outbox else _SmtpSession(config)
    counts = {"sent": 0, "outbox": 0, "retry": 0, "failed": 0}
    # Start from a clean transaction: the claims below commit one by one.
    db.session.commit()
    last_id = 0
    try:
        for _ in range(batch_size):
            message = _claim_next(last_id)
            if message is None:
                break
            last_id = message.id
            try:
                mime = build_mime(message, sender)
                if to_outbox:
                    path = _write_to_outbox(message, mime)
                    logger.info("no MAIL_SERVER configured: email %s written to %s",
                                message.id, path)
                    outcome = "outbox"
                else:
                    smtp.send(mime, _recipients(message))
                    outcome = "sent"
                _mark_sent(message)
            except _ConnectionFailed as error:
                counts[_record_failure(message, str(error))] += 1
                db.session.commit()
                break  # the server is unreachable: the others wait for the next run
            except (smtplib.SMTPException, ValueError, OSError) as error:
                # Refused sender/recipients, a rejected body, a bad header, a full disk.
                if smtp is not None and isinstance(
                        error, (smtplib.SMTPServerDisconnected, OSError)):
                    smtp.close()  # the connection is unusable: the next message reconnects
                outcome = _record_failure(message, f"{type(error).__name__}: {error}")
            counts[outcome] += 1
            db.session.commit()  # releases this row's lock
    except Exception:
        db.session.rollback()
        raise
    finally:
        if smtp is not None:
            smtp.close()
    return counts
