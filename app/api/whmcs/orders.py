"""WHMCS API actions of the Products and Orders areas: the catalog, TLD pricing, and
the module commands on a service. (AddOrder and AcceptOrder wait for the order engine.)"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.activity import Actor
from app.api.whmcs.clients import PRODUCT_TYPE_NAMES, find_client
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import amount, listing, rate
from app.extensions import db
from app.models.catalog import (
    BillingCycle, ConfigOption, ConfigOptionGroup, ConfigOptionValue, Currency, PaymentType,
    Product,
)
from app.models.domains import Tld
from app.models.system import CustomField
from app.provisioning import service_commands

# WHMCS's pricing keys for each cycle: the price, then the setup fee.
CYCLE_KEYS = {
    BillingCycle.MONTHLY: ("monthly", "msetupfee"),
    BillingCycle.QUARTERLY: ("quarterly", "qsetupfee"),
    BillingCycle.SEMI_ANNUALLY: ("semiannually", "ssetupfee"),
    BillingCycle.ANNUALLY: ("annually", "asetupfee"),
    BillingCycle.BIENNIALLY: ("biennially", "bsetupfee"),
    BillingCycle.TRIENNIALLY: ("triennially", "tsetupfee"),
}
NOT_OFFERED = "-1.00"  # WHMCS's price of a cycle that is not offered
OPTION_TYPES = {"dropdown": "1", "radio": "2", "yesno": "3", "quantity": "4"}


def _pricing_table(rows, currencies: dict[int, Currency], with_affixes: bool) -> dict:
    """{currency code: {monthly..., msetupfee...}} from pricing rows; a one-time price
    sits under "monthly", as WHMCS stores it."""
    table: dict[str, dict] = {}
    for row in rows:
        currency = currencies[row.currency_id]
        prices = table.setdefault(currency.code, {
            **({"prefix": currency.prefix, "suffix": currency.suffix} if with_affixes else {}),
            **{setup: "0.00" for _, setup in CYCLE_KEYS.values()},
            **{price: NOT_OFFERED for price, _ in CYCLE_KEYS.values()},
        })
        cycle = BillingCycle.MONTHLY if row.cycle in (BillingCycle.ONE_TIME, BillingCycle.FREE) \
            else BillingCycle(row.cycle)
        price_key, setup_key = CYCLE_KEYS[cycle]
        prices[price_key] = amount(row.price)
        prices[setup_key] = amount(row.setup_fee)
    return table


def _config_options(product: Product, currencies: dict[int, Currency]) -> list[dict]:
    options = []
    for group in product.config_groups:
        for option in sorted(group.options, key=lambda item: (item.sort_order, item.id)):
            if option.hidden:
                continue
            values = [value for value in sorted(option.values, key=lambda item: (item.sort_order, item.id))
                      if not value.hidden]
            options.append({
                "id": option.id, "name": option.name,
                "type": OPTION_TYPES.get(option.option_type, "1"),
                "minqty": option.quantity_min, "maxqty": option.quantity_max,
                "options": {"option": [
                    {"id": value.id, "name": value.name,
                     "pricing": _pricing_table(value.pricing, currencies, with_affixes=False)}
                    for value in values]},
            })
    return options


@action("GetProducts", "ProductApi", "can_get")
def get_products(params: Params, actor: Actor) -> dict:
    query = select(Product).options(
        selectinload(Product.pricing), selectinload(Product.group),
        selectinload(Product.config_groups).selectinload(ConfigOptionGroup.options)
        .selectinload(ConfigOption.values).selectinload(ConfigOptionValue.pricing))
    wanted = params.text("pid")
    if wanted:
        ids = [part.strip() for part in wanted.split(",") if part.strip()]
        if not all(part.isdigit() for part in ids):
            raise ApiError("Parameter pid must be a product id or a comma-separated list of them")
        query = query.where(Product.id.in_([int(part) for part in ids]))
    group_id = params.id("gid")
    if group_id is not None:
        query = query.where(Product.group_id == group_id)
    module = params.text("module")
    if module:
        query = query.where(Product.module == module)
    products = db.session.scalars(query.order_by(Product.sort_order, Product.id)).all()
    currencies = {currency.id: currency for currency in db.session.scalars(select(Currency))}
    fields = {}
    product_ids = [product.id for product in products]
    for field in db.session.scalars(select(CustomField).where(
            CustomField.applies_to == "product", CustomField.rel_id.in_(product_ids),
            CustomField.show_on_order.is_(True)).order_by(CustomField.sort_order, CustomField.id)):
        fields.setdefault(field.rel_id, []).append(
            {"id": field.id, "name": field.name, "description": field.description or "",
             "required": "on" if field.required else ""})
    rows = []
    for product in products:
        rows.append({
            "pid": product.id, "gid": product.group_id,
            "type": PRODUCT_TYPE_NAMES.get(product.type, product.type), "name": product.name,
            "slug": product.slug, "description": product.description or "",
            "module": product.module, "paytype": product.payment_type,
            "hidden": bool(product.hidden), "retired": bool(product.retired),
            "quantity_available": product.stock_quantity if product.stock_control else 0,
            "pricing": ({} if product.payment_type == PaymentType.FREE else
                        _pricing_table(product.pricing, currencies, with_affixes=True)),
            "customfields": {"customfield": fields.get(product.id, [])},
            "configoptions": {"configoption": _config_options(product, currencies)},
        })
    return listing("products", "product", rows, len(rows), 0)


@action("GetTLDPricing", "TldPricingApi", "can_get")
def get_tld_pricing(params: Params, actor: Actor) -> dict:
    client = find_client(params, required=False)
    if client is not None:
        currency = client.currency
    elif params.id("currencyid") is not None:
        currency = db.session.get(Currency, params.id("currencyid"))
        if currency is None:
            raise ApiError("Invalid currency id")
    else:
        currency = db.session.scalar(select(Currency).where(Currency.is_default.is_(True)).limit(1))
        if currency is None:
            raise ApiError("No default currency is set up")
    pricing = {}
    tlds = db.session.scalars(select(Tld).options(selectinload(Tld.pricing))
                              .order_by(Tld.sort_order, Tld.extension)).all()
    for tld in tlds:
        prices = sorted((row for row in tld.pricing if row.currency_id == currency.id),
                        key=lambda row: row.years)
        if not prices:
            continue
        pricing[tld.extension.lstrip(".")] = {
            "categories": [], "group": tld.label or "",
            "addons": {"dns": bool(tld.dns_management), "email": bool(tld.email_forwarding),
                       "idprotect": bool(tld.id_protection)},
            "register": {str(row.years): amount(row.register_price) for row in prices},
            "transfer": {str(row.years): amount(row.transfer_price) for row in prices},
            "renew": {str(row.years): amount(row.renew_price) for row in prices},
            "grace_period": {"days": tld.grace_period_days, "price": amount(tld.grace_fee)},
            "redemption_period": {"days": tld.redemption_period_days,
                                  "price": amount(tld.redemption_fee)},
        }
    return {"currency": {"id": currency.id, "code": currency.code, "prefix": currency.prefix,
                         "suffix": currency.suffix, "format": "1", "rate": rate(currency.rate, 5)},
            "pricing": pricing}


@action("ModuleSuspend", "ServiceApi", "can_suspend")
def module_suspend(params: Params, actor: Actor) -> dict:
    service_commands.suspend_service(params.id("accountid", required=True),
                                     params.text("suspendreason", max_length=255), actor=actor)
    return {}


@action("ModuleUnsuspend", "ServiceApi", "can_unsuspend")
def module_unsuspend(params: Params, actor: Actor) -> dict:
    service_commands.unsuspend_service(params.id("accountid", required=True), actor=actor)
    return {}


@action("ModuleTerminate", "ServiceApi", "can_terminate")
def module_terminate(params: Params, actor: Actor) -> dict:
    service_commands.terminate_service(params.id("accountid", required=True), actor=actor)
    return {}
