"""Column types and mixins shared by every model module."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from decimal import Decimal
from enum import StrEnum

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import DateTime, Numeric, String, Text, TypeDecorator
from sqlalchemy.orm import Mapped, mapped_column

MONEY = Numeric(18, 2)          # amounts, always with a currency
RATE = Numeric(10, 4)           # tax rates, percentages
EXCHANGE_RATE = Numeric(18, 6)  # currency conversion factors


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def money(value) -> Decimal:
    """A Decimal for a money value read from anywhere (None counts as zero)."""
    if value is None:
        return Decimal("0.00")
    return Decimal(str(value)).quantize(Decimal("0.01"))


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


def status_column(enum: type[StrEnum], default: StrEnum, **kwargs):
    """A status stored as its text value: readable in SQL and in exports."""
    return mapped_column(
        String(32), default=default.value, server_default=default.value,
        nullable=False, index=True, **kwargs
    )


def _fernet() -> Fernet:
    key = current_app.config.get("ENCRYPTION_KEY")
    if not key:
        digest = hashlib.sha256(current_app.config["SECRET_KEY"].encode()).digest()
        key = base64.urlsafe_b64encode(digest)
    return Fernet(key)


class EncryptedText(TypeDecorator):
    """Text encrypted at rest (Fernet); secrets never sit in the database in clear."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or value == "":
            return value
        return _fernet().encrypt(value.encode()).decode()

    def process_result_value(self, value, dialect):
        if value is None or value == "":
            return value
        try:
            return _fernet().decrypt(value.encode()).decode()
        except InvalidToken:
            raise ValueError("stored secret cannot be decrypted with this ENCRYPTION_KEY")


def mask_secret(value: str | None) -> str:
    """How a stored secret is shown again: never in full."""
    if not value:
        return ""
    return "•" * 8 + value[-4:] if len(value) > 8 else "•" * 8
