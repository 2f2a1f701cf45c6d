"""Payment gateway bookkeeping: the webhooks received (each applied once) and the
payment attempts made at a gateway (so a charge whose outcome is unknown is
reconciled, never blindly repeated).

Gateway settings (PaymentGateway) and stored methods (PayMethod) live in
app.models.billing; money moves only as Transaction rows written by the billing engine."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import Date, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import MONEY, TimestampMixin, status_column, utcnow


class GatewayEventOutcome(StrEnum):
    APPLIED = "applied"          # its effect was made (a payment, a refund, a saved card)
    ALREADY_APPLIED = "already"  # the same payment came first by another path (return, charge)
    NOTIFIED = "notified"        # the client was emailed (payment needs their action)
    RECORDED = "recorded"        # noted only (a failed payment)
    IGNORED = "ignored"          # an event type we do not act on


class GatewayEvent(Model):
    """One webhook event, written in the same transaction as its effect: the unique key
    makes a repeated delivery (or a concurrent one) a no-op. Rejected deliveries are
    not stored (a forged event must not be able to claim a real event id)."""

    __tablename__ = "gateway_events"
    __table_args__ = (UniqueConstraint("gateway", "event_id", name="uq_gateway_events_event"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    gateway: Mapped[str] = mapped_column(String(50))
    event_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(100))
    # The vendor object the event is about (a PaymentIntent, a refund...).
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    summary: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[str] = mapped_column(String(20))

    invoice = relationship("Invoice")

    def __repr__(self) -> str:
        return f"{self.gateway} {self.event_id}"


class AttemptKind(StrEnum):
    CHECKOUT = "checkout"  # the client pays on a payment page
    STORED = "stored"      # a stored method charged by the daily run


class AttemptStatus(StrEnum):
    PENDING = "pending"                  # created at the gateway, not finished
    REQUIRES_ACTION = "requires_action"  # waits for the client (3-D Secure)
    UNKNOWN = "unknown"                  # no answer (timeout): reconcile before anything else
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentAttempt(TimestampMixin, Model):
    """A payment asked of a gateway. Written (and committed) before the gateway is
    called, with the idempotency key sent along, so that whatever happens next the
    attempt can be looked up at the gateway and finished exactly once."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_payment_attempts_key"),
        UniqueConstraint("gateway", "remote_id", name="uq_payment_attempts_remote"),
        # The daily run charges an invoice at most once per run date.
        UniqueConstraint("invoice_id", "run_date", name="uq_payment_attempts_run"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    gateway: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20), default=AttemptKind.CHECKOUT.value)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    pay_method_id: Mapped[int | None] = mapped_column(ForeignKey("pay_methods.id"), index=True)
    run_date: Mapped[date | None] = mapped_column(Date)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    remote_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = status_column(AttemptStatus, AttemptStatus.PENDING)
    action_url: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    invoice = relationship("Invoice")
    client = relationship("Client")
    pay_method = relationship("PayMethod")

    def __repr__(self) -> str:
        return f"{self.gateway} {self.remote_id or self.idempotency_key}"
