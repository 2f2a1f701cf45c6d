"""Money: invoices and their items, transactions, the credit ledger, taxes,
billable items, quotes, gateways and stored payment methods.

Rows here change through the billing engine (app/billing), never by free edits."""
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

from app.models.base import MONEY, RATE, EncryptedText, TimestampMixin, status_column, utcnow


class InvoiceStatus(StrEnum):
    DRAFT = "Draft"
    UNPAID = "Unpaid"
    PAYMENT_PENDING = "Payment Pending"
    PAID = "Paid"
    CANCELLED = "Cancelled"
    REFUNDED = "Refunded"
    COLLECTIONS = "Collections"


class ItemType(StrEnum):
    """What an invoice line bills (WHMCS's tblinvoiceitems.type)."""

    HOSTING = "Hosting"
    SETUP = "Setup"
    ADDON = "Addon"
    DOMAIN_REGISTER = "DomainRegister"
    DOMAIN_TRANSFER = "DomainTransfer"
    DOMAIN_RENEW = "Domain"
    # Domain addons billed on their own line (WHMCS's names): at order, and when a
    # client turns one on for the rest of the registration year.
    DOMAIN_ADDON_DNS = "DomainAddonDNS"
    DOMAIN_ADDON_EMF = "DomainAddonEMF"
    DOMAIN_ADDON_IDP = "DomainAddonIDP"
    UPGRADE = "Upgrade"
    PROMO = "PromoHosting"
    LATE_FEE = "LateFee"
    BILLABLE = "Item"
    ADD_FUNDS = "AddFunds"
    MASS_PAY = "Invoice"
    MANUAL = ""


# The line types that bill a service itself: an overdue one suspends the service.
SERVICE_ITEM_TYPES = (ItemType.HOSTING.value, ItemType.SETUP.value, ItemType.PROMO.value)


class TaxRule(Model):
    __tablename__ = "tax_rules"
    __table_args__ = (
        CheckConstraint("level IN (1, 2)", name="ck_tax_rules_level"),
        CheckConstraint("rate >= 0 AND rate < 100", name="ck_tax_rules_rate"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))  # empty = every country
    state: Mapped[str | None] = mapped_column(String(100))  # empty = every state
    rate: Mapped[Decimal] = mapped_column(RATE)

    def __repr__(self) -> str:
        return f"{self.name} {self.rate}%"


class InvoiceCounter(Model):
    """The locked counter an invoice number is drawn from when it is finalised.

    One row per numbering period (e.g. 'invoice', 'invoice-2026'); a rollback
    returns the number, so numbers have no gaps."""

    __tablename__ = "invoice_counters"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    next_value: Mapped[int] = mapped_column(Integer, default=1)


class Invoice(TimestampMixin, Model):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("total >= 0", name="ck_invoices_total"),
        CheckConstraint("credit_applied >= 0", name="ck_invoices_credit"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # Null until the invoice is finalised (or paid, in proforma mode).
    number: Mapped[str | None] = mapped_column(String(50), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    status: Mapped[str] = status_column(InvoiceStatus, InvoiceStatus.UNPAID)
    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"))
    date: Mapped[date] = mapped_column(Date, index=True)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    subtotal: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    tax1_name: Mapped[str | None] = mapped_column(String(100))
    tax1_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal("0"))
    tax1: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    tax2_name: Mapped[str | None] = mapped_column(String(100))
    tax2_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal("0"))
    tax2: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    credit_applied: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    amount_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    reverse_charge: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_method: Mapped[str | None] = mapped_column(String(50))
    notes: Mapped[str | None] = mapped_column(Text)
    admin_notes: Mapped[str | None] = mapped_column(Text)

    client = relationship("Client", back_populates="invoices")
    currency = relationship("Currency")
    items = relationship("InvoiceItem", back_populates="invoice", cascade="all, delete-orphan",
                         order_by="InvoiceItem.id")
    transactions = relationship("Transaction", back_populates="invoice")

    @property
    def balance(self) -> Decimal:
        return self.total - self.amount_paid

    def __repr__(self) -> str:
        return self.number or f"Draft #{self.id}"


class InvoiceItem(Model):
    __tablename__ = "invoice_items"
    # A service, addon or domain is billed once per period: the database refuses a
    # second line for the same thing and period, whatever the code does.
    __table_args__ = (UniqueConstraint("type", "rel_id", "period_start", name="uq_invoice_items_period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    type: Mapped[str] = mapped_column(String(20), default=ItemType.MANUAL.value)
    rel_id: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    taxed: Mapped[bool] = mapped_column(Boolean, default=False)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)

    invoice = relationship("Invoice", back_populates="items")

    def __repr__(self) -> str:
        return self.description[:60]


class Transaction(Model):
    __tablename__ = "transactions"
    # A gateway's transaction id is applied once (webhooks arrive more than once).
    __table_args__ = (
        UniqueConstraint("gateway", "gateway_transaction_id", name="uq_transactions_gateway_id"),
        CheckConstraint("amount_in >= 0 AND amount_out >= 0 AND fees >= 0",
                        name="ck_transactions_amounts"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"))
    date: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    gateway: Mapped[str] = mapped_column(String(50))
    gateway_transaction_id: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    amount_in: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    amount_out: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    fees: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    exchange_rate: Mapped[Decimal] = mapped_column(RATE, default=Decimal("1"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))

    client = relationship("Client", back_populates="transactions")
    invoice = relationship("Invoice", back_populates="transactions")
    currency = relationship("Currency")
    refund_of = relationship("Transaction", remote_side=[id])

    def __repr__(self) -> str:
        return self.gateway_transaction_id or f"Transaction #{self.id}"


class CreditEntry(Model):
    """The credit ledger: every change of a client's credit, never edited."""

    __tablename__ = "credit_ledger"
    __table_args__ = (CheckConstraint("balance_after >= 0", name="ck_credit_ledger_balance"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    date: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    description: Mapped[str] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(MONEY)  # positive adds, negative uses
    balance_after: Mapped[Decimal] = mapped_column(MONEY)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))

    client = relationship("Client")
    invoice = relationship("Invoice")


class CreditNote(Model):
    """A correction of a finalised invoice (refund or void), numbered like one."""

    __tablename__ = "credit_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(50), unique=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    tax: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    reason: Mapped[str] = mapped_column(String(255))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))

    invoice = relationship("Invoice")
    client = relationship("Client")

    def __repr__(self) -> str:
        return self.number


class InvoiceReminder(Model):
    """One dunning notice sent for one invoice: the key makes each notice once-only."""

    __tablename__ = "invoice_reminders"
    __table_args__ = (UniqueConstraint("invoice_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # unpaid|first|second|third|late_fee
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BillableItem(TimestampMixin, Model):
    __tablename__ = "billable_items"
    __table_args__ = (CheckConstraint("amount >= 0", name="ck_billable_items_amount"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    description: Mapped[str] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    hours: Mapped[Decimal] = mapped_column(RATE, default=Decimal("0"))
    # none | next_cron | next_invoice | due_date | recurring
    invoice_action: Mapped[str] = mapped_column(String(20), default="next_cron")
    due_date: Mapped[date | None] = mapped_column(Date)
    recur_every: Mapped[int] = mapped_column(Integer, default=0)
    recur_unit: Mapped[str | None] = mapped_column(String(10))  # days|weeks|months|years
    recur_for: Mapped[int] = mapped_column(Integer, default=0)  # 0 = for ever
    invoice_count: Mapped[int] = mapped_column(Integer, default=0)
    invoiced: Mapped[bool] = mapped_column(Boolean, default=False)

    client = relationship("Client")

    def __repr__(self) -> str:
        return self.description


class PaymentGateway(Model):
    """A gateway's settings; credentials encrypted and never shown again in full."""

    __tablename__ = "payment_gateways"
    id: Mapped[int] = mapped_column(primary_key=True)
    module: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    test_mode: Mapped[bool] = mapped_column(Boolean, default=True)
    currencies: Mapped[str] = mapped_column(String(255), default="")  # empty = all
    credentials: Mapped[str | None] = mapped_column(EncryptedText)  # JSON
    surcharge_percent: Mapped[Decimal] = mapped_column(RATE, default=Decimal("0"))
    surcharge_fixed: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    instructions: Mapped[str | None] = mapped_column(Text)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return self.display_name


class PayMethod(TimestampMixin, Model):
    """A stored payment method: only the gateway's token, never a card number."""

    __tablename__ = "pay_methods"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(50))
    token: Mapped[str] = mapped_column(EncryptedText)
    kind: Mapped[str] = mapped_column(String(20), default="card")  # card|bank|paypal
    brand: Mapped[str | None] = mapped_column(String(30))
    last4: Mapped[str | None] = mapped_column(String(4))
    expiry_month: Mapped[int | None] = mapped_column(Integer)
    expiry_year: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)

    client = relationship("Client")

    def __repr__(self) -> str:
        return f"{self.brand or self.kind} ****{self.last4 or ''}"


class QuoteStage(StrEnum):
    DRAFT = "Draft"
    DELIVERED = "Delivered"
    ON_HOLD = "On Hold"
    ACCEPTED = "Accepted"
    LOST = "Lost"
    DEAD = "Dead"


class Quote(TimestampMixin, Model):
    __tablename__ = "quotes"
    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    stage: Mapped[str] = status_column(QuoteStage, QuoteStage.DRAFT)
    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"))
    valid_until: Mapped[date] = mapped_column(Date)
    subtotal: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    tax1: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    tax2: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    proposal: Mapped[str | None] = mapped_column(Text)
    customer_notes: Mapped[str | None] = mapped_column(Text)
    admin_notes: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))

    client = relationship("Client")
    currency = relationship("Currency")
    items = relationship("QuoteItem", back_populates="quote", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"Quote #{self.id}: {self.subject}"


class QuoteItem(Model):
    __tablename__ = "quote_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="ck_quote_items_quantity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id"), index=True)
    description: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    discount_percent: Mapped[Decimal] = mapped_column(RATE, default=Decimal("0"))
    taxed: Mapped[bool] = mapped_column(Boolean, default=True)

    quote = relationship("Quote", back_populates="items")
