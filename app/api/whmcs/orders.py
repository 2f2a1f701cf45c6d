"""WHMCS API actions of the Products and Orders areas: the catalog, TLD pricing, the
module commands on a service, and the orders (AddOrder ... GetOrderStatuses) through
the order engine (app.orders)."""
from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.activity import Actor
from app.api.whmcs.clients import PRODUCT_TYPE_NAMES, custom_field_values, find_client
from app.api.whmcs.php_serialized import decode_base64, php_unserialize_flat
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import amount, flag, listing, moment, rate
from app.billing.errors import BillingError
from app.billing.money import parse_amount
from app.extensions import db
from app.models.catalog import (
    BillingCycle, ConfigOption, ConfigOptionGroup, ConfigOptionValue, Currency, PaymentType,
    Product,
)
from app.models.domains import Domain, Tld
from app.models.orders import Order, OrderItem, OrderStatus, Service, ServiceAddon
from app.models.system import CustomField
from app.orders import lifecycle
from app.orders.cart import DOMAIN, PRODUCT, Cart, CartLine
from app.orders.checkout import create_order
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


# Orders (app.orders engine)

_CONFIG_OPTION_KEY = re.compile(r"^configoptions\[(\d+)\]\[(\d+)\]$")


def php_unserialize_int_map(text: bytes | str) -> dict[int, int]:
    """{option id: value} from PHP's serialize() of a flat array of numbers, the form
    WHMCS clients send configoptions in (a:2:{i:4;i:12;i:5;s:1:"3";})."""
    found = php_unserialize_flat(text, "configoptions")
    pairs = [(str(key), str(value)) for key, value in found.items()]
    if not all(re.fullmatch(r"-?\d+", key) and re.fullmatch(r"-?\d+", value) for key, value in pairs):
        raise ApiError("configoptions must map option ids to value ids or quantities")
    return {int(key): int(value) for key, value in pairs}


def _chosen_options(params: Params, index: int, raw: str | None) -> dict[int, int]:
    chosen: dict[int, int] = {}
    if raw:
        chosen.update(php_unserialize_int_map(decode_base64(raw, f"configoptions[{index}]")))
    for key in params.form:  # the documented array form: configoptions[0][12]=5
        match = _CONFIG_OPTION_KEY.match(key)
        if match and int(match[1]) == index:
            value = (params.form.get(key) or "").strip()
            if not re.fullmatch(r"\d{1,9}", value):
                raise ApiError(f"Parameter {key} must be a whole number")
            chosen[int(match[2])] = int(value)
    return chosen


def _ids(text: str | None, name: str) -> list[int]:
    parts = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not all(part.isdigit() for part in parts):
        raise ApiError(f"Parameter {name} must be a comma-separated list of ids")
    return [int(part) for part in parts]


def _indexed_values(params: Params, name: str) -> dict[int, str]:
    """name[0], name[1]... (or name[] repeated, numbered in order) by index."""
    found = {index: value for index, value in params.indexed(name).items()}
    for offset, value in enumerate(params.form.getlist(f"{name}[]")):
        found.setdefault(offset, value)
    if name in params.form and 0 not in found:
        found[0] = params.form.get(name)  # a single product may come without brackets
    return {index: (value or "").strip() for index, value in found.items()}


def _flags(params: Params, name: str) -> dict[int, bool]:
    return {index: value.lower() in ("1", "true", "on", "yes") for index, value in _indexed_values(params, name).items()}


def _override(text: str | None, index: int) -> Decimal | None:
    """priceoverride[i]: the first-payment price staff give product i."""
    if not text:
        return None
    try:
        return parse_amount(text)
    except BillingError as error:
        raise ApiError(f"Parameter priceoverride[{index}]: {error}") from None


def _custom_fields(raw: str | None, index: int) -> dict[int, str]:
    """customfields[i]: product i's custom fields (base64 serialized id => value);
    create_order checks them before anything is written."""
    values = custom_field_values(raw, f"customfields[{index}]")
    if not all(str(key).isdigit() for key in values):
        raise ApiError(f"customfields[{index}] must be keyed by custom field id")
    return {int(key): value for key, value in values.items()}


def cart_from_params(params: Params, currency_code: str) -> Cart:
    """The cart AddOrder describes: product i (pid[i], billingcycle[i], domain[i],
    configoptions[i], addons[i], qty[i]) and, where domaintype[i] is set, the
    registration or transfer of domain[i] (regperiod[i], eppcode[i])."""
    pids, cycles = _indexed_values(params, "pid"), _indexed_values(params, "billingcycle")
    domains, types = _indexed_values(params, "domain"), _indexed_values(params, "domaintype")
    periods, epp = _indexed_values(params, "regperiod"), _indexed_values(params, "eppcode")
    addons, quantities = _indexed_values(params, "addons"), _indexed_values(params, "qty")
    options = _indexed_values(params, "configoptions")
    answers = _indexed_values(params, "customfields")
    id_protection, dns = _flags(params, "idprotection"), _flags(params, "dnsmanagement")
    forwarding = _flags(params, "emailforwarding")
    overrides = _indexed_values(params, "priceoverride")
    lines = []
    for index in sorted(set(pids) | set(types)):
        pid, domain = pids.get(index), domains.get(index) or None
        if pid:
            if not pid.isdigit():
                raise ApiError(f"Parameter pid[{index}] must be a product id")
            quantity = quantities.get(index) or "1"
            if not quantity.isdigit():
                raise ApiError(f"Parameter qty[{index}] must be a whole number")
            lines.append(CartLine(PRODUCT, int(pid), cycles.get(index) or None, quantity=int(quantity),
                                  config_options=_chosen_options(params, index, options.get(index)),
                                  addon_ids=_ids(addons.get(index), f"addons[{index}]"), domain=domain,
                                  price_override=_override(overrides.get(index), index),
                                  custom_fields=_custom_fields(answers.get(index), index)))
        if types.get(index):
            kind = types[index].lower()
            if kind not in ("register", "transfer"):
                raise ApiError(f"Parameter domaintype[{index}] must be register or transfer")
            if not domain:
                raise ApiError(f"Parameter domain[{index}] is required for a domain {kind}")
            period = periods.get(index) or "1"
            if not period.isdigit():
                raise ApiError(f"Parameter regperiod[{index}] must be a number of years")
            lines.append(CartLine(DOMAIN, domain=domain, domain_action=kind, years=int(period),
                                  epp_code=epp.get(index) or None, id_protection=id_protection.get(index, False),
                                  dns_management=dns.get(index, False),
                                  email_forwarding=forwarding.get(index, False)))
    if not lines:
        raise ApiError("No items added to cart so order cannot proceed")
    return Cart(currency_code, lines, promo_code=params.text("promocode", max_length=50))


@action("AddOrder", "OrderApi", "can_post")
def add_order(params: Params, actor: Actor) -> dict:
    client = find_client(params)
    method = params.text("paymentmethod", required=True, max_length=50)
    cart = cart_from_params(params, client.currency.code)
    order = create_order(cart, client.id, method, params.text("clientip", max_length=45),
                         apply_credit=bool(params.bool("applycredit", False)), actor=actor,
                         create_invoice=not params.bool("noinvoice", False),
                         send_email=not params.bool("noemail", False), setup_on_order=False,
                         nameservers=[params.text(f"nameserver{n}") or "" for n in range(1, 6)])
    services = db.session.scalars(select(Service.id).where(Service.order_id == order.id)
                                  .order_by(Service.id)).all()
    addons = db.session.scalars(select(ServiceAddon.id).where(ServiceAddon.service_id.in_(services or [0]))
                                .order_by(ServiceAddon.id)).all()
    domains = db.session.scalars(select(Domain.id).where(Domain.order_id == order.id).order_by(Domain.id)).all()
    joined = lambda ids: ",".join(str(i) for i in ids)  # noqa: E731
    return {"orderid": order.id, "productids": joined(services), "serviceids": joined(services),
            "addonids": joined(addons), "domainids": joined(domains), "invoiceid": order.invoice_id or 0}


def _order_id(params: Params) -> int:
    return params.id("orderid", required=True)


@action("AcceptOrder", "OrderApi", "can_accept")
def accept_order(params: Params, actor: Actor) -> dict:
    lifecycle.accept_order(_order_id(params), actor=actor,
                           run_module=params.bool("autosetup", True),
                           send_email=params.bool("sendemail", True),
                           register_domains=params.bool("sendregistrar", True),
                           server_id=params.id("serverid"),
                           username=params.text("serviceusername", max_length=100),
                           password=params.raw("servicepassword") or None)
    return {}


@action("PendingOrder", "OrderApi", "can_accept")
def pending_order(params: Params, actor: Actor) -> dict:
    lifecycle.set_pending(_order_id(params), actor=actor, reason="through the API")
    return {}


@action("CancelOrder", "OrderApi", "can_cancel")
def cancel_order(params: Params, actor: Actor) -> dict:
    lifecycle.cancel_order(_order_id(params), actor=actor, reason="through the API")
    return {}


@action("FraudOrder", "OrderApi", "can_cancel")
def fraud_order(params: Params, actor: Actor) -> dict:
    lifecycle.mark_fraud(_order_id(params), actor=actor, reason="through the API")
    return {}


@action("DeleteOrder", "OrderApi", "can_delete")
def delete_order(params: Params, actor: Actor) -> dict:
    lifecycle.delete_order(_order_id(params), actor=actor)
    return {}


def _payment_status(order: Order) -> str:
    invoice = order.invoice
    return invoice.status if invoice is not None else ""


def _line_items(order: Order) -> list[dict]:
    items = []
    for item in sorted(order.items, key=lambda row: row.id):
        if item.kind == "domain":
            row, kind, relid = item.domain, "domain", item.domain_id
            product, domain = ("Domain Transfer" if row and row.type == "Transfer" else "Domain Registration"), \
                (row.name if row else "")
        elif item.kind == "addon":
            kind, relid = "addon", item.service_addon_id
            row = db.session.get(ServiceAddon, relid) if relid else None
            product, domain = (row.name if row else item.description), (row.service.domain if row else "")
        else:
            row, kind, relid = item.service, "product", item.service_id
            product = row.product.name if row else item.description
            domain = (row.domain or "") if row else ""
        items.append({"type": kind, "relid": relid or 0,
                      "producttype": PRODUCT_TYPE_NAMES.get(row.product.type, row.product.type)
                      if kind == "product" and row else ("Domain" if kind == "domain" else "Addon"),
                      "product": product, "domain": domain, "billingcycle": item.billing_cycle or "",
                      "amount": amount(item.amount + item.setup_fee - item.discount),
                      "status": row.status if row else "",
                      "dnsmanagement": flag(kind == "domain" and row and row.dns_management),
                      "emailforwarding": flag(kind == "domain" and row and row.email_forwarding),
                      "idprotection": flag(kind == "domain" and row and row.id_protection)})
    return items


def order_row(order: Order) -> dict:
    currency = order.currency
    promotion = order.promotion
    return {
        "id": order.id, "ordernum": order.order_number, "userid": order.client_id,
        "contactid": 0, "date": moment(order.created_at), "amount": amount(order.amount),
        "promocode": promotion.code if promotion else "",
        "promotype": promotion.type if promotion else "",
        "promovalue": amount(promotion.value) if promotion else "",
        "paymentmethod": order.payment_method or "", "invoiceid": order.invoice_id or 0,
        "status": order.status, "ipaddress": order.ip_address or "",
        "fraudmodule": "builtin" if order.fraud_output else "",
        "fraudoutput": order.fraud_output or "", "frauddata": str(order.fraud_score or 0),
        "notes": order.notes or "", "paymentstatus": _payment_status(order),
        "name": order.client.full_name, "currencyprefix": currency.prefix,
        "currencysuffix": currency.suffix,
        "lineitems": {"lineitem": _line_items(order)},
    }


@action("GetOrders", "OrderApi", "can_get")
def get_orders(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    query = select(Order)
    if params.id("id") is not None:
        query = query.where(Order.id == params.id("id"))
    if params.id("userid") is not None:
        query = query.where(Order.client_id == params.id("userid"))
    status = params.text("status")
    if status:
        if status not in {s.value for s in OrderStatus}:
            raise ApiError(f"Invalid status {status}: one of {', '.join(s.value for s in OrderStatus)}")
        query = query.where(Order.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    orders = db.session.scalars(query.options(*_order_row_loads()).order_by(Order.id.desc())
                                .offset(start).limit(limit)).all()
    addons = _load_addons(orders)  # noqa: F841 (held so the session's map keeps them for order_row)
    return listing("orders", "order", [order_row(order) for order in orders], total, start)


def _order_row_loads() -> tuple:
    """What order_row reads, loaded with the page of orders rather than one query per
    row. Built per call: loader options configure the mappers, which must not happen
    at import time (FAB's User model is not mapped yet then)."""
    return (
        selectinload(Order.client), selectinload(Order.currency), selectinload(Order.promotion),
        selectinload(Order.invoice),
        selectinload(Order.items).selectinload(OrderItem.service).selectinload(Service.product),
        selectinload(Order.items).selectinload(OrderItem.domain),
    )


def _load_addons(orders) -> list[ServiceAddon]:
    """The addons the orders' lines made, with their services, in one query: _line_items
    then finds each one in the session instead of asking the database."""
    ids = [item.service_addon_id for order in orders for item in order.items if item.service_addon_id]
    if not ids:
        return []
    return db.session.scalars(select(ServiceAddon).options(selectinload(ServiceAddon.service))
                              .where(ServiceAddon.id.in_(ids))).all()


STATUS_COLOURS = {OrderStatus.PENDING: "#cc0000", OrderStatus.ACTIVE: "#779500",
                  OrderStatus.FRAUD: "#000000", OrderStatus.CANCELLED: "#888888"}


@action("GetOrderStatuses", "OrderApi", "can_get")
def get_order_statuses(params: Params, actor: Actor) -> dict:
    counts = dict(db.session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
    rows = [{"title": status.value, "color": colour, "count": counts.get(status.value, 0)}
            for status, colour in STATUS_COLOURS.items()]
    return {"totalresults": len(rows), "statuses": {"status": rows}}
