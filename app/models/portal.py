"""The client portal's own records: password-reset tokens."""
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
