"""What the business sells: currencies, products and their prices, options, addons,
and the servers products are provisioned on."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean, CheckConstraint, Column, Date, ForeignKey, Integer, String, Table, Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from app.models.base import EXCHANGE_RATE, MONEY, EncryptedText, TimestampMixin


class BillingCycle(StrEnum):
    """Cycle names as WHMCS spells them (the WHMCS-compatible API relies on it)."""

    FREE = "Free Account"
    ONE_TIME = "One Time"
    MONTHLY = "Monthly"
    QUARTERLY = "Quarterly"
    SEMI_ANNUALLY = "Semi-Annually"
    ANNUALLY = "Annually"
    BIENNIALLY = "Biennially"
    TRIENNIALLY = "Triennially"


RECURRING_CYCLES = tuple(c for c in BillingCycle if c not in (BillingCycle.FREE, BillingCycle.ONE_TIME))


class ProductType(StrEnum):
    HOSTING = "hosting"
    RESELLER = "reseller"
    SERVER = "server"
    OTHER = "other"


class PaymentType(StrEnum):
    FREE = "free"
    ONE_TIME = "onetime"
    RECURRING = "recurring"


class Currency(Model):
    __tablename__ = "currencies"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(3), unique=True)
    prefix: Mapped[str] = mapped_column(String(10), default="")
    suffix: Mapped[str] = mapped_column(String(10), default="")
    decimal_places: Mapped[int] = mapped_column(Integer, default=2)
    # Units of this currency for one unit of the default currency.
    rate: Mapped[Decimal] = mapped_column(EXCHANGE_RATE, default=Decimal("1"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)

    def format(self, amount: Decimal) -> str:
        return f"{self.prefix}{amount:,.2f}{self.suffix}"

    def __repr__(self) -> str:
        return self.code


class ExchangeRate(Model):
    """The rate of each day, kept so reports convert at the rate of the day."""

    __tablename__ = "exchange_rates"
    __table_args__ = (UniqueConstraint("currency_id", "day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(EXCHANGE_RATE)

    currency = relationship("Currency")


class PricingMixin:
    """Price and setup fee of one billing cycle in one currency."""

    currency_id: Mapped[int] = mapped_column(ForeignKey("currencies.id"))
    cycle: Mapped[str] = mapped_column(String(20))
    price: Mapped[Decimal] = mapped_column(MONEY)
    setup_fee: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))

    @declared_attr
    def currency(cls):
        return relationship("Currency")

    # Each pricing table names in owner_key the column of what it prices.
    owner_key = ""

    @declared_attr
    def __table_args__(cls):
        return (
            CheckConstraint("price >= 0", name=f"ck_{cls.__tablename__}_price"),
            CheckConstraint("setup_fee >= 0", name=f"ck_{cls.__tablename__}_setup_fee"),
            UniqueConstraint(cls.owner_key, "currency_id", "cycle",
                             name=f"uq_{cls.__tablename__}_cycle"),
        )


class ProductGroup(Model):
    __tablename__ = "product_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    headline: Mapped[str | None] = mapped_column(String(255))
    tagline: Mapped[str | None] = mapped_column(String(255))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)

    products = relationship("Product", back_populates="group", order_by="Product.sort_order")

    def __repr__(self) -> str:
        return self.name


product_config_groups = Table(
    "product_config_groups",
    Model.metadata,
    Column("product_id", ForeignKey("products.id"), primary_key=True),
    Column("config_group_id", ForeignKey("config_option_groups.id"), primary_key=True),
)

addon_products = Table(
    "addon_products",
    Model.metadata,
    Column("addon_id", ForeignKey("addons.id"), primary_key=True),
    Column("product_id", ForeignKey("products.id"), primary_key=True),
)


class Product(TimestampMixin, Model):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("product_groups.id"), index=True)
    type: Mapped[str] = mapped_column(String(20), default=ProductType.HOSTING.value)
    name: Mapped[str] = mapped_column(String(150))
    slug: Mapped[str] = mapped_column(String(150), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    payment_type: Mapped[str] = mapped_column(String(20), default=PaymentType.RECURRING.value)
    stock_control: Mapped[bool] = mapped_column(Boolean, default=False)
    stock_quantity: Mapped[int] = mapped_column(Integer, default=0)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    taxed: Mapped[bool] = mapped_column(Boolean, default=True)
    require_domain: Mapped[bool] = mapped_column(Boolean, default=True)
    # Prorata: align every service on this day of the month; orders placed after the
    # cut-off day also pay the following month on the first invoice.
    prorata_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    prorata_day: Mapped[int | None] = mapped_column(Integer)
    prorata_charge_next_month_day: Mapped[int | None] = mapped_column(Integer)
    # Provisioning: module name (cpanel, plesk, directadmin, manual) and package.
    module: Mapped[str] = mapped_column(String(50), default="manual")
    module_package: Mapped[str | None] = mapped_column(String(100))
    server_group_id: Mapped[int | None] = mapped_column(ForeignKey("server_groups.id"))
    auto_setup: Mapped[str] = mapped_column(String(20), default="payment")  # order|payment|accept|never
    welcome_email: Mapped[str | None] = mapped_column(String(100))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    group = relationship("ProductGroup", back_populates="products")
    server_group = relationship("ServerGroup")
    pricing = relationship("ProductPricing", back_populates="product", cascade="all, delete-orphan")
    config_groups = relationship("ConfigOptionGroup", secondary=product_config_groups,
                                 back_populates="products")
    addons = relationship("Addon", secondary=addon_products, back_populates="products")

    def __repr__(self) -> str:
        return self.name


class ProductPricing(PricingMixin, Model):
    __tablename__ = "product_pricing"
    owner_key = "product_id"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    product = relationship("Product", back_populates="pricing")

    def __repr__(self) -> str:
        return f"{self.cycle} {self.price}"


class ConfigOptionGroup(Model):
    __tablename__ = "config_option_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))

    products = relationship("Product", secondary=product_config_groups, back_populates="config_groups")
    options = relationship("ConfigOption", back_populates="group", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.name


class ConfigOption(Model):
    __tablename__ = "config_options"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("config_option_groups.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    option_type: Mapped[str] = mapped_column(String(20), default="dropdown")  # dropdown|radio|yesno|quantity
    quantity_min: Mapped[int] = mapped_column(Integer, default=0)
    quantity_max: Mapped[int] = mapped_column(Integer, default=0)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)

    group = relationship("ConfigOptionGroup", back_populates="options")
    values = relationship("ConfigOptionValue", back_populates="option", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.name


class ConfigOptionValue(Model):
    __tablename__ = "config_option_values"
    id: Mapped[int] = mapped_column(primary_key=True)
    option_id: Mapped[int] = mapped_column(ForeignKey("config_options.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)

    option = relationship("ConfigOption", back_populates="values")
    pricing = relationship("ConfigOptionPricing", back_populates="value", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.name


class ConfigOptionPricing(PricingMixin, Model):
    __tablename__ = "config_option_pricing"
    owner_key = "value_id"
    id: Mapped[int] = mapped_column(primary_key=True)
    value_id: Mapped[int] = mapped_column(ForeignKey("config_option_values.id"), index=True)
    value = relationship("ConfigOptionValue", back_populates="pricing")


class Addon(Model):
    __tablename__ = "addons"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(150))
    description: Mapped[str | None] = mapped_column(Text)
    taxed: Mapped[bool] = mapped_column(Boolean, default=True)
    show_on_order: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_activate: Mapped[str] = mapped_column(String(20), default="payment")
    module: Mapped[str | None] = mapped_column(String(50))
    welcome_email: Mapped[str | None] = mapped_column(String(100))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)

    products = relationship("Product", secondary=addon_products, back_populates="addons")
    pricing = relationship("AddonPricing", back_populates="addon", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.name


class AddonPricing(PricingMixin, Model):
    __tablename__ = "addon_pricing"
    owner_key = "addon_id"
    id: Mapped[int] = mapped_column(primary_key=True)
    addon_id: Mapped[int] = mapped_column(ForeignKey("addons.id"), index=True)
    addon = relationship("Addon", back_populates="pricing")


server_group_members = Table(
    "server_group_members",
    Model.metadata,
    Column("server_group_id", ForeignKey("server_groups.id"), primary_key=True),
    Column("server_id", ForeignKey("servers.id"), primary_key=True),
)


class ServerGroup(Model):
    __tablename__ = "server_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    fill_type: Mapped[str] = mapped_column(String(20), default="least_full")  # least_full|fill_active

    servers = relationship("Server", secondary=server_group_members, back_populates="groups")

    def __repr__(self) -> str:
        return self.name


class Server(Model):
    __tablename__ = "servers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    hostname: Mapped[str] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    module: Mapped[str] = mapped_column(String(50), default="cpanel")
    username: Mapped[str | None] = mapped_column(String(100))
    password: Mapped[str | None] = mapped_column(EncryptedText)
    access_hash: Mapped[str | None] = mapped_column(EncryptedText)  # API token
    port: Mapped[int | None] = mapped_column(Integer)
    secure: Mapped[bool] = mapped_column(Boolean, default=True)
    max_accounts: Mapped[int] = mapped_column(Integer, default=200)
    nameserver1: Mapped[str | None] = mapped_column(String(255))
    nameserver2: Mapped[str | None] = mapped_column(String(255))
    monthly_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    groups = relationship("ServerGroup", secondary=server_group_members, back_populates="servers")

    def __repr__(self) -> str:
        return self.name
