"""The system: settings, email templates and the email log/queue, the activity
(audit) log, the automation log, custom fields and staff two-factor secrets."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import (
    JSON, Boolean, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import EncryptedText, TimestampMixin, utcnow


class Setting(Model):
    """One configuration value, under WHMCS's setting name where WHMCS has one."""

    __tablename__ = "settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    value: Mapped[str] = mapped_column(Text, default="")

    def __repr__(self) -> str:
        return self.key


class EmailTemplate(TimestampMixin, Model):
    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("name", "language"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20), default="general")  # general|product|domain|invoice|support|admin
    language: Mapped[str] = mapped_column(String(10), default="en")
    subject: Mapped[str] = mapped_column(String(255))
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    custom: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return self.name


class EmailStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class EmailMessage(Model):
    """The email queue and log in one table: a row is queued, then sent or failed."""

    __tablename__ = "email_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Set for emails that must go once only (e.g. "reminder:first:invoice:42").
    dedupe_key: Mapped[str | None] = mapped_column(String(150), unique=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    template: Mapped[str | None] = mapped_column(String(100))
    to_address: Mapped[str] = mapped_column(String(255))
    cc: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    related_type: Mapped[str | None] = mapped_column(String(30))
    related_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=EmailStatus.QUEUED.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)

    client = relationship("Client")

    def __repr__(self) -> str:
        return self.subject


class ActivityLog(Model):
    """Who changed what, on which record, when, and from what to what."""

    __tablename__ = "activity_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(10))  # staff|client|system|api
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    actor_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50), index=True)
    object_type: Mapped[str | None] = mapped_column(String(30), index=True)
    object_id: Mapped[int | None] = mapped_column(Integer, index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    ip_address: Mapped[str | None] = mapped_column(String(45))

    client = relationship("Client")

    def __repr__(self) -> str:
        return self.description[:80]


class AutomationRun(Model):
    """One step of one daily run: what it did, in counts, and what went wrong."""

    __tablename__ = "automation_runs"
    __table_args__ = (UniqueConstraint("run_date", "step", "chunk"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_date: Mapped[date] = mapped_column(Date, index=True)
    step: Mapped[str] = mapped_column(String(50))
    chunk: Mapped[str] = mapped_column(String(50), default="all")
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|done|failed
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    errors: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"{self.run_date} {self.step}"


class CustomField(Model):
    __tablename__ = "custom_fields"
    id: Mapped[int] = mapped_column(primary_key=True)
    applies_to: Mapped[str] = mapped_column(String(20))  # client|product|support
    rel_id: Mapped[int | None] = mapped_column(Integer)  # product or department id
    name: Mapped[str] = mapped_column(String(100))
    field_type: Mapped[str] = mapped_column(String(20), default="text")  # text|link|password|dropdown|tickbox|textarea
    options: Mapped[str] = mapped_column(Text, default="")  # dropdown choices, comma separated
    regex: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    show_on_order: Mapped[bool] = mapped_column(Boolean, default=False)
    show_on_invoice: Mapped[bool] = mapped_column(Boolean, default=False)
    admin_only: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return self.name


class CustomFieldValue(Model):
    __tablename__ = "custom_field_values"
    __table_args__ = (UniqueConstraint("field_id", "rel_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("custom_fields.id"), index=True)
    rel_id: Mapped[int] = mapped_column(Integer, index=True)  # the client/service/ticket id
    # Encrypted at rest: a field may hold a password or personal data.
    value: Mapped[str] = mapped_column(EncryptedText, default="")

    field = relationship("CustomField")


class TwoFactor(Model):
    """A user's TOTP enrolment: the seed encrypted, recovery codes hashed."""

    __tablename__ = "two_factor"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), unique=True)
    secret: Mapped[str] = mapped_column(EncryptedText)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    recovery_codes: Mapped[list] = mapped_column(JSON, default=list)  # hashes of unused codes
    last_used_step: Mapped[int | None] = mapped_column(Integer)  # blocks replay of a code

    user = relationship("User")


class EmailAttachment(Model):
    """A file sent with a queued email. The bytes live outside the database and the
    web root (instance/mail_attachments/<random name>); the sender reads them back."""

    __tablename__ = "email_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("email_log.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(150))
    stored_path: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(Integer)

    message = relationship("EmailMessage")

    def __repr__(self) -> str:
        return self.filename
