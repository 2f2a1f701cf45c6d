"""The APIs: credentials of the WHMCS-compatible API, and the log of every API call."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import EncryptedText, utcnow


class ApiCredential(Model):
    """An identifier + secret pair of the WHMCS-compatible API (WHMCS's "API
    Authentication Credentials"). The secret is stored only as a hash and shown once.

    The credential acts with the permissions of a FAB role (the same role regexes
    the admin screens and the REST API obey), from the IPs in allowed_ips, or from
    anywhere with the optional access key."""

    __tablename__ = "api_credentials"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(64))  # a FAB role name
    # IP addresses or networks (CIDR), one per line; empty: only with the access key.
    allowed_ips: Mapped[str] = mapped_column(Text, default="")
    access_key_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_ip: Mapped[str | None] = mapped_column(String(45))

    def __repr__(self) -> str:
        return self.name


class ApiCallLog(Model):
    """One API call: who (a WHMCS-API credential or a REST user), what, and how it ended."""

    __tablename__ = "api_call_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    api: Mapped[str] = mapped_column(String(10))  # rest | whmcs
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_credentials.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"),
                                                index=True)
    # The WHMCS action, or the REST method and path.
    endpoint: Mapped[str] = mapped_column(String(255))
    status_code: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(10), index=True)  # success | error | denied
    message: Mapped[str | None] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(45))

    credential = relationship("ApiCredential")
    user = relationship("User")

    def __repr__(self) -> str:
        return f"{self.api} {self.endpoint} {self.outcome}"


class WebhookEndpoint(Model):
    """A URL that receives signed POSTs of the events it subscribes to."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    # Event names separated by commas (e.g. "InvoicePaid,TicketOpen"), or "*" for all.
    events: Mapped[str] = mapped_column(Text, default="*")
    # Signs each body (HMAC-SHA256); the receiver holds the same secret.
    secret: Mapped[str] = mapped_column(EncryptedText)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def subscribes_to(self, event: str) -> bool:
        names = {name.strip() for name in (self.events or "").split(",") if name.strip()}
        return "*" in names or event in names

    def __repr__(self) -> str:
        return self.url


class WebhookDelivery(Model):
    """One event sent (or being sent) to one endpoint, with the outcome of its last try."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending",
                                        index=True)  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    # The transport error, or the start of the response body.
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    endpoint = relationship("WebhookEndpoint")

    def __repr__(self) -> str:
        return f"{self.event} #{self.id} {self.status}"
