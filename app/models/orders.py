"""Orders, promotions, and what clients own because of them: services (WHMCS's
client products), service addons and configurable option choices."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Integer, String, Table,
    Text, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import MONEY, EncryptedText, TimestampMixin, status_column, utcnow


class OrderStatus(StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    CANCELLED = "Cancelled"
    FRAUD = "Fraud"


class ServiceStatus(StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    TERMINATED = "Terminated"
    CANCELLED = "Cancelled"
    FRAUD = "Fraud"
    COMPLETED = "Completed"


class PromotionType(StrEnum):
    PERCENTAGE = "Percentage"
    FIXED = "Fixed Amount"
    PRICE_OVERRIDE = "Price Override"
    FREE_SETUP = "Free Setup"


promotion_products = Table(
    "promotion_products",
    Model.metadata,
    Column("promotion_id", ForeignKey("promotions.id"), primary_key=True),
    Column("product_id", ForeignKey("products.id"), primary_key=True),
)


class Promotion(TimestampMixin, Model):
    __tablename__ = "promotions"
    __table_args__ = (CheckConstraint("value >= 0", name="ck_promotions_value"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    type: Mapped[str] = mapped_column(String(20), default=PromotionType.PERCENTAGE.value)
    value: Mapped[Decimal] = mapped_column(MONEY)
    recurring: Mapped[bool] = mapped_column(Boolean, default=False)
    recur_for: Mapped[int] = mapped_column(Integer, default=0)  # 0 = for ever
    cycles: Mapped[str] = mapped_column(String(255), default="")  # empty = any cycle
    start_date: Mapped[date | None] = mapped_column(Date)
    expiration_date: Mapped[date | None] = mapped_column(Date)
    max_uses: Mapped[int] = mapped_column(Integer, default=0)  # 0 = unlimited
    uses: Mapped[int] = mapped_column(Integer, default=0)
    once_per_client: Mapped[bool] = mapped_column(Boolean, default=False)
    new_clients_only: Mapped[bool] = mapped_column(Boolean, default=False)
    existing_clients_only: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text)

    products = relationship("Product", secondary=promotion_products)

    def __repr__(self) -> str:
        return self.code


class Order(TimestampMixin, Model):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_number: Mapped[str] = mapped_column(String(20), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    status: Mapped[str] = status_column(OrderStatus, OrderStatus.PENDING)
    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"))
    payment_method: Mapped[str | None] = mapped_column(String(50))
    # Indexed: every paid invoice looks up the order it pays (auto-accept).
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    fraud_score: Mapped[int | None] = mapped_column(Integer)
    fraud_output: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))

    client = relationship("Client")
    currency = relationship("Currency")
    promotion = relationship("Promotion")
    invoice = relationship("Invoice", foreign_keys=[invoice_id])
    items = relationship("OrderItem", back_populates="order", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.order_number


class OrderItem(Model):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # product|addon|domain|upgrade
    description: Mapped[str] = mapped_column(String(255))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    service_addon_id: Mapped[int | None] = mapped_column(ForeignKey("service_addons.id"))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domains.id"))
    billing_cycle: Mapped[str | None] = mapped_column(String(20))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    setup_fee: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    discount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))

    order = relationship("Order", back_populates="items")
    service = relationship("Service")
    domain = relationship("Domain")

    def __repr__(self) -> str:
        return self.description


class Service(TimestampMixin, Model):
    """A product a client has: WHMCS's tblhosting."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("recurring_amount >= 0", name="ck_services_recurring_amount"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id"))
    status: Mapped[str] = status_column(ServiceStatus, ServiceStatus.PENDING)
    domain: Mapped[str | None] = mapped_column(String(255), index=True)
    username: Mapped[str | None] = mapped_column(String(100))
    password: Mapped[str | None] = mapped_column(EncryptedText)
    dedicated_ip: Mapped[str | None] = mapped_column(String(45))
    billing_cycle: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    first_payment_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    recurring_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    payment_method: Mapped[str | None] = mapped_column(String(50))
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"))
    registration_date: Mapped[date] = mapped_column(Date, default=date.today)
    next_due_date: Mapped[date | None] = mapped_column(Date, index=True)
    # The date whose invoice was generated last moves this forward: it is what the
    # daily run compares against, so a paid or unpaid invoice is never made twice.
    next_invoice_date: Mapped[date | None] = mapped_column(Date, index=True)
    termination_date: Mapped[date | None] = mapped_column(Date)
    suspension_reason: Mapped[str | None] = mapped_column(String(255))
    override_auto_suspend: Mapped[bool] = mapped_column(Boolean, default=False)
    suspend_until: Mapped[date | None] = mapped_column(Date)
    override_auto_terminate: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text)

    client = relationship("Client", back_populates="services")
    order = relationship("Order")
    product = relationship("Product")
    server = relationship("Server")
    promotion = relationship("Promotion")
    addons = relationship("ServiceAddon", back_populates="service", cascade="all, delete-orphan")
    config_options = relationship("ServiceConfigOption", back_populates="service",
                                  cascade="all, delete-orphan")
    cancellation_requests = relationship("CancellationRequest", back_populates="service")

    def __repr__(self) -> str:
        label = self.product.name if self.product else "Service"
        return f"{label} - {self.domain}" if self.domain else f"{label} #{self.id}"


class ServiceAddon(TimestampMixin, Model):
    __tablename__ = "service_addons"
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    addon_id: Mapped[int | None] = mapped_column(ForeignKey("addons.id"))
    name: Mapped[str] = mapped_column(String(150))
    status: Mapped[str] = status_column(ServiceStatus, ServiceStatus.PENDING)
    billing_cycle: Mapped[str] = mapped_column(String(20))
    setup_fee: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    recurring_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    registration_date: Mapped[date] = mapped_column(Date, default=date.today)
    next_due_date: Mapped[date | None] = mapped_column(Date, index=True)
    next_invoice_date: Mapped[date | None] = mapped_column(Date, index=True)
    termination_date: Mapped[date | None] = mapped_column(Date)

    service = relationship("Service", back_populates="addons")
    addon = relationship("Addon")
    client = relationship("Client")

    def __repr__(self) -> str:
        return self.name


class ServiceConfigOption(Model):
    __tablename__ = "service_config_options"
    __table_args__ = (UniqueConstraint("service_id", "option_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    option_id: Mapped[int] = mapped_column(ForeignKey("config_options.id"))
    value_id: Mapped[int | None] = mapped_column(ForeignKey("config_option_values.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=0)

    service = relationship("Service", back_populates="config_options")
    option = relationship("ConfigOption")
    value = relationship("ConfigOptionValue")


class CancellationRequest(TimestampMixin, Model):
    __tablename__ = "cancellation_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    type: Mapped[str] = mapped_column(String(30))  # Immediate | End of Billing Period
    reason: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)

    service = relationship("Service", back_populates="cancellation_requests")


class Upgrade(TimestampMixin, Model):
    """An upgrade or downgrade of a service, with the prorated amounts."""

    __tablename__ = "upgrades"
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(20))  # product|cycle|configoptions
    old_value: Mapped[str] = mapped_column(String(100))
    new_value: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    credit_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    new_recurring_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(20), default="Pending")  # Pending|Completed|Cancelled
    applied_at: Mapped[datetime | None] = mapped_column(DateTime)

    service = relationship("Service")


class ServiceAmountChange(Model):
    """A hand change of a service's recurring amount or billing cycle (staff, the API):
    the history the MRR reports read, as the service keeps only its current amount."""

    __tablename__ = "service_amount_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    # The history of a service deleted with its order (never live) goes with it.
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"),
                                            index=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    old_amount: Mapped[Decimal] = mapped_column(MONEY)
    new_amount: Mapped[Decimal] = mapped_column(MONEY)
    old_cycle: Mapped[str] = mapped_column(String(20))
    new_cycle: Mapped[str] = mapped_column(String(20))
