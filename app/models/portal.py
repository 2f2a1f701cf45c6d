"""The client portal's own records: password-reset and email-verification tokens,
and the store's checkout double-submit guard."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import utcnow


class PasswordResetToken(Model):
    """One emailed password-reset link. Only the SHA-256 of the token is kept, so a
    copy of the database cannot be turned into working links; a token works once
    (used_at) and until expires_at."""

    __tablename__ = "password_reset_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    ip_address: Mapped[str | None] = mapped_column(String(45))

    user = relationship("User")

    def __repr__(self) -> str:
        return f"reset token {self.id} of user {self.user_id}"


class EmailVerificationToken(Model):
    """One emailed "confirm your email address" link of a client account. As with
    password resets only the SHA-256 of the token is kept; the link works once and
    until expires_at, and only for the address it was sent to."""

    __tablename__ = "email_verification_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    email: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    client = relationship("Client")

    def __repr__(self) -> str:
        return f"email verification token {self.id} of client {self.client_id}"


class CheckoutSubmission(Model):
    """The store's double-submit guard: each checkout form carries a random token,
    and the order it created is recorded under that token. The unique key makes a
    second post of the same form (a double click, a reload, two tabs) find the first
    order instead of creating another order and invoice."""

    __tablename__ = "checkout_submissions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"checkout {self.token[:8]}… of client {self.client_id}"
