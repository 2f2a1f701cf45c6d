"""Adding a product to the catalog from outside the admin screens (the WHMCS API's
AddProduct): checked values, prices per currency and cycle, one log entry.

Flushes and never commits; the caller commits."""
from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import select

from app.activity import Actor, log
from app.billing.money import to_money
from app.extensions import db
from app.models.catalog import (
    BillingCycle, Currency, PaymentType, Product, ProductGroup, ProductPricing, ProductType,
)
from app.provisioning.registry import available_modules


class CatalogError(ValueError):
    """A refused catalog change; nothing was written."""


def _slug(name: str, wanted: str | None = None) -> str:
    """The wanted slug when free, else one made from the name (numbered when taken)."""
    if wanted:
        wanted = wanted.strip().lower()
        if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", wanted) or len(wanted) > 150:
            raise CatalogError("The slug is lower-case letters, digits and single dashes")
        if db.session.scalar(select(Product.id).where(Product.slug == wanted)) is not None:
            raise CatalogError(f"The slug {wanted!r} is taken")
        return wanted
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:140] or "product"
    slug, number = base, 1
    while db.session.scalar(select(Product.id).where(Product.slug == slug)) is not None:
        number += 1
        slug = f"{base}-{number}"
    return slug


def create_product(group_id: int, name: str, *, type: str = ProductType.HOSTING.value,
                   payment_type: str = PaymentType.RECURRING.value, description: str | None = None,
                   module: str = "manual", module_package: str | None = None,
                   hidden: bool = False, taxed: bool = True, stock_control: bool = False,
                   stock_quantity: int = 0, require_domain: bool = True,
                   auto_setup: str = "payment", welcome_email: str | None = None,
                   sort_order: int = 0, slug: str | None = None,
                   prices: dict[tuple[int, str], tuple[Decimal, Decimal]] | None = None,
                   actor: Actor | None = None) -> Product:
    """prices: (currency id, BillingCycle value) -> (price, setup fee)."""
    actor = actor or Actor.system()
    name = (name or "").strip()
    if not name:
        raise CatalogError("Product name is required")
    if len(name) > 150:
        raise CatalogError("Product name is at most 150 characters")
    group = db.session.get(ProductGroup, group_id) if group_id else None
    if group is None:
        raise CatalogError("You must supply a valid Product Group ID")
    if type not in {value.value for value in ProductType}:
        raise CatalogError(f"Invalid product type {type!r}")
    if payment_type not in {value.value for value in PaymentType}:
        raise CatalogError(f"Invalid payment type {payment_type!r}")
    if module not in available_modules():
        raise CatalogError(f"Invalid module {module!r}: one of {', '.join(available_modules())}")
    if auto_setup not in ("order", "payment", "accept", "never"):
        raise CatalogError("Invalid auto setup: order, payment, accept or never")
    product = Product(group_id=group.id, name=name, slug=_slug(name, slug), type=type,
                      payment_type=payment_type, description=description, module=module,
                      module_package=module_package, hidden=hidden, taxed=taxed,
                      stock_control=stock_control, stock_quantity=stock_quantity,
                      require_domain=require_domain, auto_setup=auto_setup,
                      welcome_email=welcome_email, sort_order=sort_order)
    for (currency_id, cycle), (price, setup_fee) in sorted((prices or {}).items()):
        if db.session.get(Currency, currency_id) is None:
            raise CatalogError(f"Invalid currency id {currency_id}")
        if cycle not in {value.value for value in BillingCycle}:
            raise CatalogError(f"Invalid billing cycle {cycle!r}")
        price, setup_fee = to_money(price), to_money(setup_fee)
        if price < 0 or setup_fee < 0:
            raise CatalogError("Prices cannot be negative")
        product.pricing.append(ProductPricing(currency_id=currency_id, cycle=cycle, price=price,
                                              setup_fee=setup_fee))
    db.session.add(product)
    db.session.flush()
    log("product_added", f"Product #{product.id} {name} added to {group.name}", product,
        after={"prices": len(product.pricing), "module": module}, actor=actor)
    return product
