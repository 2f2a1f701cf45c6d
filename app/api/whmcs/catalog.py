"""WHMCS API actions of the catalog: adding a product, and the promotions."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from app.activity import Actor
from app.api.whmcs.orders import CYCLE_KEYS
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import amount, day, flag, listing
from app.catalog_products import create_product
from app.extensions import db
from app.models.catalog import BillingCycle, PaymentType, ProductType
from app.models.orders import Promotion

# WHMCS's product type and pay type words -> ours.
TYPES = {"hostingaccount": ProductType.HOSTING.value, "reselleraccount": ProductType.RESELLER.value,
         "server": ProductType.SERVER.value, "other": ProductType.OTHER.value}
PAY_TYPES = {"free": PaymentType.FREE.value, "onetime": PaymentType.ONE_TIME.value,
             "recurring": PaymentType.RECURRING.value}
AUTO_SETUP = {"order": "order", "payment": "payment", "on": "accept", "": "never"}
_PRICE_KEY = re.compile(r"^pricing\[(\d+)\]\[([a-z]+)\]$")


def _prices(params: Params, pay_type: str) -> dict:
    """pricing[currency id][monthly|msetupfee|...] -> {(currency id, cycle): (price, setup)}."""
    by_key = {price: (cycle, False) for cycle, (price, _) in CYCLE_KEYS.items()}
    by_key.update({setup: (cycle, True) for cycle, (_, setup) in CYCLE_KEYS.items()})
    found: dict = {}
    for key in params.form:
        match = _PRICE_KEY.match(key)
        if not match:
            continue
        if match[2] not in by_key:
            raise ApiError(f"Unknown pricing key {match[2]}")
        cycle, is_setup = by_key[match[2]]
        value = params.money(key, allow_negative=True)
        if value is None or value < 0:
            continue  # WHMCS's -1: the cycle is not offered
        if pay_type == PaymentType.ONE_TIME and cycle == BillingCycle.MONTHLY:
            cycle = BillingCycle.ONE_TIME  # a one-time price sits under "monthly"
        price, setup = found.get((int(match[1]), cycle.value), (None, 0))
        found[(int(match[1]), cycle.value)] = (price, value) if is_setup else (value, setup)
    return {key: (price, setup) for key, (price, setup) in found.items() if price is not None}


@action("AddProduct", "ProductApi", "can_post")
def add_product(params: Params, actor: Actor) -> dict:
    kind = (params.text("type") or "other").lower()
    if kind not in TYPES:
        raise ApiError("Invalid product type: hostingaccount, reselleraccount, server or other")
    pay_type = (params.text("paytype") or "recurring").lower()
    if pay_type not in PAY_TYPES:
        raise ApiError("Invalid pay type: free, onetime or recurring")
    auto_setup = (params.text("autosetup") or "").lower()
    if auto_setup not in AUTO_SETUP:
        raise ApiError("Invalid autosetup: order, payment, on or empty")
    product = create_product(
        params.id("gid", required=True), params.text("name", required=True), type=TYPES[kind],
        payment_type=PAY_TYPES[pay_type], description=params.text("description"),
        module=params.text("module") or "manual", hidden=bool(params.bool("hidden")),
        taxed=bool(params.bool("tax")), stock_control=bool(params.bool("stockcontrol")),
        stock_quantity=params.int("qty", minimum=0) or 0,
        require_domain=bool(params.bool("showdomainoptions", default=True)),
        auto_setup=AUTO_SETUP[auto_setup], welcome_email=params.text("welcomeemail"),
        sort_order=params.int("order", minimum=0) or 0, slug=params.text("slug"),
        prices=_prices(params, PAY_TYPES[pay_type]), actor=actor)
    return {"pid": product.id}


@action("GetPromotions", "PromotionApi", "can_get")
def get_promotions(params: Params, actor: Actor) -> dict:
    query = select(Promotion)
    code = params.text("code")
    if code:
        query = query.where(func.lower(Promotion.code) == code.lower())
    rows = db.session.scalars(query.order_by(Promotion.id)).all()
    promotions = [{
        "id": row.id, "code": row.code, "type": row.type, "recurring": flag(row.recurring),
        "value": amount(row.value), "cycles": row.cycles or "",
        "appliesto": ",".join(str(product.id) for product in row.products),
        "requires": "", "requiresexisting": flag(row.existing_clients_only),
        "startdate": day(row.start_date), "expirationdate": day(row.expiration_date),
        "maxuses": row.max_uses, "uses": row.uses, "lifetimepromo": 0,
        "applyonce": flag(row.once_per_client), "newsignups": flag(row.new_clients_only),
        "existingclient": flag(row.existing_clients_only), "onceperclient": flag(row.once_per_client),
        "recurfor": row.recur_for, "upgrades": 0, "notes": row.notes or ""}
        for row in rows]
    return listing("promotions", "promotion", promotions, len(promotions))
