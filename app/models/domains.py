"""Domain names: TLDs and their prices, registrars, and clients' domains."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean, CheckConstraint, Date, DateTime, ForeignKey, Integer, String, Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import MONEY, EncryptedText, TimestampMixin, status_column


class DomainStatus(StrEnum):
    PENDING = "Pending"
    PENDING_REGISTRATION = "Pending Registration"
    PENDING_TRANSFER = "Pending Transfer"
    ACTIVE = "Active"
    GRACE = "Grace"
    REDEMPTION = "Redemption"
    EXPIRED = "Expired"
    TRANSFERRED_AWAY = "Transferred Away"
    CANCELLED = "Cancelled"
    FRAUD = "Fraud"


class Registrar(Model):
    """A registrar module's settings; credentials are encrypted at rest."""

    __tablename__ = "registrars"
    id: Mapped[int] = mapped_column(primary_key=True)
    module: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    test_mode: Mapped[bool] = mapped_column(Boolean, default=True)
    username: Mapped[str | None] = mapped_column(String(100))
    api_key: Mapped[str | None] = mapped_column(EncryptedText)
    api_url: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        return self.display_name


class Tld(Model):
    __tablename__ = "tlds"
    id: Mapped[int] = mapped_column(primary_key=True)
    extension: Mapped[str] = mapped_column(String(63), unique=True)  # ".com"
    registrar_module: Mapped[str | None] = mapped_column(String(50))
    epp_required: Mapped[bool] = mapped_column(Boolean, default=True)
    dns_management: Mapped[bool] = mapped_column(Boolean, default=False)
    email_forwarding: Mapped[bool] = mapped_column(Boolean, default=False)
    id_protection: Mapped[bool] = mapped_column(Boolean, default=False)
    grace_period_days: Mapped[int] = mapped_column(Integer, default=30)
    grace_fee: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    redemption_period_days: Mapped[int] = mapped_column(Integer, default=30)
    redemption_fee: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    label: Mapped[str | None] = mapped_column(String(20))  # hot|new|sale
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    pricing = relationship("TldPricing", back_populates="tld", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.extension


class TldPricing(Model):
    __tablename__ = "tld_pricing"
    __table_args__ = (
        UniqueConstraint("tld_id", "currency_id", "years"),
        CheckConstraint("years BETWEEN 1 AND 10", name="ck_tld_pricing_years"),
        CheckConstraint("register_price >= 0 AND transfer_price >= 0 AND renew_price >= 0",
                        name="ck_tld_pricing_prices"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    tld_id: Mapped[int] = mapped_column(ForeignKey("tlds.id"), index=True)
    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"))
    years: Mapped[int] = mapped_column(Integer, default=1)
    register_price: Mapped[Decimal] = mapped_column(MONEY)
    transfer_price: Mapped[Decimal] = mapped_column(MONEY)
    renew_price: Mapped[Decimal] = mapped_column(MONEY)

    tld = relationship("Tld", back_populates="pricing")
    currency = relationship("Currency")


class DomainAddon(StrEnum):
    """The three domain addons WHMCS sells per year (its "Domain Addons" pricing); the
    values are the flag names on Domain and Tld."""

    DNS_MANAGEMENT = "dns_management"
    EMAIL_FORWARDING = "email_forwarding"
    ID_PROTECTION = "id_protection"

    @property
    def label(self) -> str:
        return {"dns_management": "DNS Management", "email_forwarding": "Email Forwarding",
                "id_protection": "ID Protection"}[self.value]


def addon_lines(flags) -> str:
    """" + ID Protection" lines for an invoice line's text (flags: a Domain, or a row
    with its three flag columns), as WHMCS lists a renewal's addons."""
    return "".join(f"\n + {addon.label}" for addon in DomainAddon if getattr(flags, addon.value, False))


class DomainAddonPricing(Model):
    """The yearly price of one domain addon in one currency. A TLD offers the addon
    when its flag (Tld.dns_management ...) is on; no row, or 0, makes it free."""

    __tablename__ = "domain_addon_pricing"
    __table_args__ = (
        UniqueConstraint("currency_id", "addon", name="uq_domain_addon_pricing"),
        CheckConstraint("price >= 0", name="ck_domain_addon_pricing_price"),
        CheckConstraint("addon IN ('dns_management', 'email_forwarding', 'id_protection')",
                        name="ck_domain_addon_pricing_addon"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"), index=True)
    addon: Mapped[str] = mapped_column(String(20))
    price: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))

    currency = relationship("Currency")

    def __repr__(self) -> str:
        return f"{DomainAddon(self.addon).label} {self.currency}"


class Domain(TimestampMixin, Model):
    __tablename__ = "domains"
    __table_args__ = (
        CheckConstraint("registration_period BETWEEN 1 AND 10", name="ck_domains_period"),
        CheckConstraint("recurring_amount >= 0", name="ck_domains_recurring_amount"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(20), default="Register")  # Register|Transfer
    status: Mapped[str] = status_column(DomainStatus, DomainStatus.PENDING)
    registrar: Mapped[str | None] = mapped_column(String(50))
    registration_date: Mapped[date | None] = mapped_column(Date)
    expiry_date: Mapped[date | None] = mapped_column(Date, index=True)
    next_due_date: Mapped[date | None] = mapped_column(Date, index=True)
    next_invoice_date: Mapped[date | None] = mapped_column(Date, index=True)
    registration_period: Mapped[int] = mapped_column(Integer, default=1)
    first_payment_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    recurring_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    payment_method: Mapped[str | None] = mapped_column(String(50))
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"))
    nameservers: Mapped[str] = mapped_column(Text, default="")  # one per line
    # The authorisation code of an incoming transfer, encrypted at rest (a secret).
    epp_code: Mapped[str | None] = mapped_column(EncryptedText)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    registrar_lock: Mapped[bool] = mapped_column(Boolean, default=True)
    id_protection: Mapped[bool] = mapped_column(Boolean, default=False)
    dns_management: Mapped[bool] = mapped_column(Boolean, default=False)
    email_forwarding: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_renew: Mapped[bool] = mapped_column(Boolean, default=False)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime)
    notes: Mapped[str | None] = mapped_column(Text)

    client = relationship("Client", back_populates="domains")
    order = relationship("Order")

    @property
    def nameserver_list(self) -> list[str]:
        return [ns.strip() for ns in (self.nameservers or "").splitlines() if ns.strip()]

    def __repr__(self) -> str:
        return self.name
