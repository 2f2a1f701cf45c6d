"""Clients, their contacts, the users who log in for them, groups and notes."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import MONEY, RATE, TimestampMixin, status_column, utcnow


class ClientStatus(StrEnum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    CLOSED = "Closed"


# What a client user may do for an account (WHMCS's sub-account permissions).
CLIENT_PERMISSIONS = (
    "profile", "contacts", "products", "manageproducts", "domains", "managedomains",
    "invoices", "quotes", "tickets", "emails", "orders", "payments", "affiliates",
)


class ClientGroup(Model):
    __tablename__ = "client_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    colour: Mapped[str] = mapped_column(String(7), default="#6c757d")
    discount_percent: Mapped[Decimal] = mapped_column(RATE, default=Decimal("0"))
    exempt_from_auto_suspend: Mapped[bool] = mapped_column(Boolean, default=False)
    separate_invoices: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return self.name


class Client(TimestampMixin, Model):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    company_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    phone: Mapped[str | None] = mapped_column(String(50))
    address1: Mapped[str | None] = mapped_column(String(255))
    address2: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2), default="US")
    tax_id: Mapped[str | None] = mapped_column(String(50))
    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("client_groups.id"), index=True)
    status: Mapped[str] = status_column(ClientStatus, ClientStatus.ACTIVE)
    language: Mapped[str] = mapped_column(String(10), default="en")
    # A cached figure: the credit ledger is the truth and only the credit engine
    # writes this, in the same transaction as the ledger entry.
    credit_balance: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    late_fee_exempt: Mapped[bool] = mapped_column(Boolean, default=False)
    tax_exempt: Mapped[bool] = mapped_column(Boolean, default=False)
    overdue_notices_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_suspend_exempt: Mapped[bool] = mapped_column(Boolean, default=False)
    separate_invoices: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_charge_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    marketing_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    default_gateway: Mapped[str | None] = mapped_column(String(50))
    signup_ip: Mapped[str | None] = mapped_column(String(45))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)

    currency = relationship("Currency")
    group = relationship("ClientGroup")
    contacts = relationship("Contact", back_populates="client", cascade="all, delete-orphan")
    notes = relationship("ClientNote", back_populates="client", cascade="all, delete-orphan")
    services = relationship("Service", back_populates="client")
    domains = relationship("Domain", back_populates="client")
    invoices = relationship("Invoice", back_populates="client")
    transactions = relationship("Transaction", back_populates="client")
    tickets = relationship("Ticket", back_populates="client")
    memberships = relationship("ClientUser", back_populates="client", cascade="all, delete-orphan")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def display_name(self) -> str:
        return self.company_name or self.full_name

    def __repr__(self) -> str:
        if self.company_name:
            return f"{self.full_name} ({self.company_name})"
        return self.full_name


class Contact(TimestampMixin, Model):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    company_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(255), index=True)
    phone: Mapped[str | None] = mapped_column(String(50))
    address1: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    # Which emails this contact receives as well as the account owner.
    receives_general: Mapped[bool] = mapped_column(Boolean, default=False)
    receives_invoices: Mapped[bool] = mapped_column(Boolean, default=False)
    receives_support: Mapped[bool] = mapped_column(Boolean, default=False)
    receives_product: Mapped[bool] = mapped_column(Boolean, default=False)
    receives_domain: Mapped[bool] = mapped_column(Boolean, default=False)

    client = relationship("Client", back_populates="contacts")

    def __repr__(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}>"


class ClientUser(Model):
    """One login (a FAB user with the Client role) managing one client account.

    A login may hold several memberships: it then switches between accounts."""

    __tablename__ = "client_users"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    is_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    # Comma-separated names from CLIENT_PERMISSIONS; the owner has them all.
    permissions: Mapped[str] = mapped_column(String(500), default="")
    invited_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user = relationship("User")
    client = relationship("Client", back_populates="memberships")

    def can(self, permission: str) -> bool:
        return self.is_owner or permission in self.permissions.split(",")

    def __repr__(self) -> str:
        return f"user {self.user_id} @ client {self.client_id}"


class ClientNote(TimestampMixin, Model):
    __tablename__ = "client_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    body: Mapped[str] = mapped_column(Text)
    sticky: Mapped[bool] = mapped_column(Boolean, default=False)

    client = relationship("Client", back_populates="notes")
    author = relationship("User")

    def __repr__(self) -> str:
        return self.body[:40]


class ClientInvitation(Model):
    """An emailed invitation to manage a client account with some permissions
    (WHMCS's user invites). Only the SHA-256 of the token is kept; the link works
    once (accepted_at), until expires_at, and not after the owner withdrew it
    (cancelled_at)."""

    __tablename__ = "client_invitations"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    email: Mapped[str] = mapped_column(String(255), index=True)
    # Comma-separated names from CLIENT_PERMISSIONS, given to the membership made.
    permissions: Mapped[str] = mapped_column(String(500), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    accepted_user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)

    client = relationship("Client")
    invited_by = relationship("User", foreign_keys=[invited_by_id])

    @property
    def permission_list(self) -> list[str]:
        return [name for name in self.permissions.split(",") if name]

    def __repr__(self) -> str:
        return f"invitation of {self.email} to client {self.client_id}"
