"""The demo business has promotions the store accepts and pending orders to accept."""
from __future__ import annotations

from sqlalchemy import select

from app.demo import seed_demo
from app.models.catalog import Product, ProductPricing
from app.models.orders import Order, Promotion
from app.orders.cart import Cart, CartLine
from app.orders.pricing import price_cart


def test_demo_promotions_and_pending_orders(db):
    seed_demo()
    codes = set(db.session.scalars(select(Promotion.code)))
    assert {"WELCOME10", "FREESETUP"} <= codes
    assert db.session.scalars(select(Order).where(Order.status == "Pending")).first() is not None
    pricing = db.session.scalars(select(ProductPricing).join(Product).where(
        ProductPricing.cycle == "Monthly", Product.require_domain.is_(True))).first()
    cart = Cart(pricing.currency.code, [CartLine("product", pricing.product_id, "Monthly", domain="newshop.example")],
                promo_code="WELCOME10")
    quote = price_cart(cart)
    assert quote.promotion_error is None and quote.discount > 0
