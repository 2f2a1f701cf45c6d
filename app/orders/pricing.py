"""Prices of a cart, WHMCS semantics: product prices per cycle and currency, setup fees,
configurable options, addons, domain prices, one promotion code, taxes, prorata.

Everything is Decimal, each amount rounded half-up to the currency's minor unit once
(app.billing.money), then summed. Taxes come from the billing engine's tax rules
(taxes_db + tax.compute_invoice_taxes) over exactly the lines checkout puts on the
invoice, so the quote's total is the invoice's total.

Reads only: nothing here writes, flushes or commits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import func, select

from app import settings
from app.billing.cycles import add_cycle, add_months, is_recurring, parse_cycle
from app.billing.errors import BillingError
from app.billing.money import MAX_AMOUNT, to_money
from app.billing.proration import prorata_first_period
from app.billing.tax import compute_invoice_taxes
from app.billing.taxes_db import taxes_for_client
from app.extensions import db
from app.models.billing import ItemType
from app.models.catalog import (
    Addon, BillingCycle, ConfigOption, Currency, PaymentType, Product, ProductPricing,
)
from app.models.clients import Client
from app.models.domains import DomainAddon, DomainAddonPricing, Tld, TldPricing
from app.models.orders import Order, OrderStatus, Promotion, PromotionType, Service, ServiceStatus
from app.orders.cart import DOMAIN, PRODUCT, REGISTER, TRANSFER, Cart, CartLine, OrderError
from app.registrars.availability import DomainNameError, split_domain
from app.registrars.availability import normalise_domain as registrar_normalise

ZERO = Decimal("0.00")
# The invoice line type of each domain addon (WHMCS's tblinvoiceitems types).
DOMAIN_ADDON_ITEM_TYPES = {
    DomainAddon.DNS_MANAGEMENT: ItemType.DOMAIN_ADDON_DNS,
    DomainAddon.EMAIL_FORWARDING: ItemType.DOMAIN_ADDON_EMF,
    DomainAddon.ID_PROTECTION: ItemType.DOMAIN_ADDON_IDP,
}
HUNDRED = Decimal(100)
DOMAIN_ACTIONS = (REGISTER, TRANSFER)
MAX_QUANTITY = 100


@dataclass(frozen=True)
class TaxLine:
    name: str
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True)
class OptionChoice:
    """A configurable option chosen for a service, priced for its cycle."""

    option_id: int
    value_id: int | None
    quantity: int
    label: str
    price: Decimal
    setup_fee: Decimal


@dataclass
class QuoteLine:
    """One thing that will be one service, service addon or domain.

    recurring_amount: what each renewal costs (after a recurring promotion);
    first_amount: the first period (prorated for prorata products), before discount;
    due_today = first_amount + setup_fee - discount.
    """

    kind: str                       # "product" | "addon" | "domain"
    cart_index: int                 # the cart line it comes from
    description: str
    cycle: str | None
    recurring_amount: Decimal
    setup_fee: Decimal
    discount: Decimal
    first_amount: Decimal
    taxed: bool
    period_start: date
    period_end: date | None
    next_due_date: date | None      # the service's next due date once the first invoice is paid
    product_id: int | None = None
    addon_id: int | None = None
    parent: int | None = None       # for an addon: the index in quote.lines of its product
    domain: str | None = None
    domain_action: str | None = None
    years: int = 1
    options: list[OptionChoice] = field(default_factory=list)
    # domain lines: (addon, its price for the whole period), included in first_amount
    # and recurring_amount, billed on lines of their own
    domain_addons: list[tuple[DomainAddon, Decimal]] = field(default_factory=list)

    @property
    def due_today(self) -> Decimal:
        return self.first_amount + self.setup_fee - self.discount

    def invoice_amounts(self) -> list[tuple[str, Decimal]]:
        """(item type, amount) of the invoice lines this makes: the first period, the
        setup fee (products) and the promotion (negative). Addons carry their setup fee
        in their one line (a Setup line points at a service, not an addon)."""
        if self.kind == "addon":
            return [(ItemType.ADDON.value, self.first_amount + self.setup_fee - self.discount)]
        if self.kind == "domain":
            item = ItemType.DOMAIN_TRANSFER if self.domain_action == TRANSFER else ItemType.DOMAIN_REGISTER
            addons = sum((amount for _, amount in self.domain_addons), ZERO)
            return [(item.value, self.first_amount - addons)] + [
                (DOMAIN_ADDON_ITEM_TYPES[addon].value, amount) for addon, amount in self.domain_addons
                if amount]  # a free addon needs no invoice line
        amounts = [(ItemType.HOSTING.value, self.first_amount)]
        if self.setup_fee:
            amounts.append((ItemType.SETUP.value, self.setup_fee))
        if self.discount:
            amounts.append((ItemType.PROMO.value, -self.discount))
        return amounts


@dataclass
class CartQuote:
    currency_code: str
    lines: list[QuoteLine]
    subtotal: Decimal               # first periods and setup fees, before discount
    discount: Decimal
    taxes: list[TaxLine]
    total_due_today: Decimal
    recurring: dict[str, Decimal]   # cycle -> what renews each cycle (before tax)
    promotion: tuple[str, str] | None = None   # (code, description)
    promotion_error: str | None = None
    promotion_id: int | None = None
    tax_inclusive: bool = False

    @property
    def tax_total(self) -> Decimal:
        return sum((line.amount for line in self.taxes), ZERO)

    def to_dict(self) -> dict:
        """JSON-safe (amounts as strings), for templates and APIs."""
        return {
            "currency_code": self.currency_code,
            "lines": [{"kind": line.kind, "description": line.description, "cycle": line.cycle,
                       "recurring_amount": str(line.recurring_amount),
                       "setup_fee": str(line.setup_fee), "discount": str(line.discount),
                       "due_today": str(line.due_today),
                       "domain_addons": {addon.value: str(amount) for addon, amount in line.domain_addons}}
                      for line in self.lines],
            "subtotal": str(self.subtotal), "discount": str(self.discount),
            "taxes": [{"name": t.name, "rate": str(t.rate), "amount": str(t.amount)} for t in self.taxes],
            "total_due_today": str(self.total_due_today),
            "recurring": {cycle: str(amount) for cycle, amount in self.recurring.items()},
            "promotion": list(self.promotion) if self.promotion else None,
            "promotion_error": self.promotion_error,
            "tax_inclusive": self.tax_inclusive,
        }


# Lookups

def currency_by_code(code: str) -> Currency:
    currency = db.session.scalar(select(Currency).where(Currency.code == (code or "").upper()))
    if currency is None:
        raise OrderError(f"The currency {code!r} is not offered.")
    return currency


def places_of(currency: Currency) -> int:
    # Money columns keep two decimals (invoicing.currency_places decides the same).
    return 2 if currency.decimal_places is None else min(currency.decimal_places, 2)


def _sold_product(product_id) -> Product:
    product = db.session.get(Product, product_id) if isinstance(product_id, int) else None
    if product is None or product.retired:
        raise OrderError("That product is not available.")
    return product


def product_prices(product_id: int, currency_code: str) -> dict[str, tuple[Decimal, Decimal]]:
    """cycle -> (price, setup fee) of every cycle the product is sold in, in that currency."""
    product = _sold_product(product_id)
    if product.payment_type == PaymentType.FREE:
        return {BillingCycle.FREE.value: (ZERO, ZERO)}
    currency = currency_by_code(currency_code)
    rows = db.session.scalars(select(ProductPricing).where(
        ProductPricing.product_id == product.id, ProductPricing.currency_id == currency.id))
    order = {cycle.value: index for index, cycle in enumerate(BillingCycle)}
    prices = {row.cycle: (to_money(row.price), to_money(row.setup_fee)) for row in rows}
    if product.payment_type == PaymentType.ONE_TIME:
        prices = {cycle: value for cycle, value in prices.items() if cycle == BillingCycle.ONE_TIME}
    else:
        prices = {cycle: value for cycle, value in prices.items() if is_recurring(cycle)}
    return dict(sorted(prices.items(), key=lambda item: order.get(item[0], 99)))


def group_start_prices(currency_code: str) -> dict[int, tuple[Decimal, str]]:
    """group id -> (price, cycle) a group of plans starts at in the currency: each
    product on sale leads with its shortest cycle sold (product_prices' order and
    rules), and the group starts at the lowest of those leads (the store's "from"
    figure). Two queries however many groups and products."""
    currency = currency_by_code(currency_code)
    rows = db.session.execute(
        select(Product.id, Product.group_id, Product.payment_type, ProductPricing.cycle,
               ProductPricing.price)
        .outerjoin(ProductPricing, (ProductPricing.product_id == Product.id)
                   & (ProductPricing.currency_id == currency.id))
        .where(Product.hidden.is_(False), Product.retired.is_(False)))
    order = {cycle.value: index for index, cycle in enumerate(BillingCycle)}
    leads: dict[int, tuple[int, Decimal, str]] = {}
    for product_id, group_id, payment_type, cycle, price in rows:
        if payment_type == PaymentType.FREE:
            cycle, price = BillingCycle.FREE.value, ZERO
        elif cycle is None or not (cycle == BillingCycle.ONE_TIME
                                   if payment_type == PaymentType.ONE_TIME
                                   else is_recurring(cycle)):
            continue
        if product_id not in leads or order[cycle] < order[leads[product_id][2]]:
            leads[product_id] = (group_id, to_money(price), cycle)
    start: dict[int, tuple[Decimal, str]] = {}
    for group_id, price, cycle in leads.values():
        if group_id not in start or (price, order[cycle]) < (start[group_id][0],
                                                              order[start[group_id][1]]):
            start[group_id] = (price, cycle)
    return start


def tld_of(name: str) -> str:
    """The TLD of a normalised domain name by the registrars' rule
    (availability.split_domain: the longest TLD the business sells), so the store
    prices the TLD the registrar registers; OrderError with the reason when the
    business sells none that fits."""
    try:
        return split_domain(name)[1]
    except DomainNameError as error:
        raise OrderError(str(error)) from None


def find_tld(tld: str) -> Tld | None:
    extension = "." + tld.lower().lstrip(".")
    return db.session.scalar(select(Tld).where(Tld.extension == extension))


def domain_price(tld: str, currency_code: str, action: str, years: int) -> Decimal | None:
    """The price to register or transfer (or renew) a domain for `years`; None when not sold."""
    return domain_prices(tld, currency_code, action, years).get(years)


def domain_prices(tld: str, currency_code: str, action: str,
                  years: int | None = None) -> dict[int, Decimal]:
    """years -> price to register, transfer or renew a domain, for every period sold
    in the currency (or only `years`), read in one query."""
    if action not in (*DOMAIN_ACTIONS, "renew"):
        raise OrderError(f"Unknown domain action {action!r}.")
    found = find_tld(tld)
    if found is None:
        return {}
    currency = currency_by_code(currency_code)
    query = select(TldPricing).where(TldPricing.tld_id == found.id,
                                     TldPricing.currency_id == currency.id)
    if years is not None:
        query = query.where(TldPricing.years == years)
    column = {REGISTER: "register_price", TRANSFER: "transfer_price", "renew": "renew_price"}[action]
    # WHMCS marks a price of -1 (or here: nothing) as not offered; zero is a free domain.
    return {row.years: to_money(getattr(row, column))
            for row in db.session.scalars(query.order_by(TldPricing.years))}


@dataclass(frozen=True)
class TldPrices:
    """A TLD and its prices in one currency: years -> price of each action (the same
    figures domain_prices gives for that TLD and action)."""

    tld: Tld
    register: dict[int, Decimal]
    transfer: dict[int, Decimal]
    renew: dict[int, Decimal]


def tld_price_list(currency_code: str, tlds: set[str] | None = None) -> dict[str, TldPrices]:
    """extension (no dot) -> TldPrices of every TLD (or of those named), in the TLDs'
    sort order: three queries however many TLDs (the currency, the TLDs, their prices),
    for pages that show many TLDs at once."""
    currency = currency_by_code(currency_code)
    query = select(Tld).order_by(Tld.sort_order, Tld.extension)
    if tlds is not None:
        query = query.where(Tld.extension.in_(["." + tld.lower().lstrip(".") for tld in tlds]))
    found = {row.id: TldPrices(row, {}, {}, {}) for row in db.session.scalars(query)}
    if not found:
        return {}
    for row in db.session.scalars(select(TldPricing).where(
            TldPricing.tld_id.in_(found), TldPricing.currency_id == currency.id)
            .order_by(TldPricing.years)):
        prices = found[row.tld_id]
        prices.register[row.years] = to_money(row.register_price)
        prices.transfer[row.years] = to_money(row.transfer_price)
        prices.renew[row.years] = to_money(row.renew_price)
    return {prices.tld.extension.lstrip("."): prices for prices in found.values()}


def domain_addon_prices(currency_code: str) -> dict[DomainAddon, Decimal]:
    """The yearly price of each domain addon in the currency; no row means free."""
    currency = currency_by_code(currency_code)
    rows = db.session.scalars(select(DomainAddonPricing).where(
        DomainAddonPricing.currency_id == currency.id))
    prices = {addon: ZERO for addon in DomainAddon}
    prices.update({DomainAddon(row.addon): to_money(row.price) for row in rows})
    return prices


def offered_domain_addons(tld: Tld | None) -> list[DomainAddon]:
    """The addons a TLD offers (its flags, set by staff on the TLD)."""
    return [addon for addon in DomainAddon if tld is not None and getattr(tld, addon.value)]


def price_domain_addons(tld: Tld | None, wanted, currency_code: str,
                        years: int) -> list[tuple[DomainAddon, Decimal]]:
    """(addon, price for `years`) of each wanted addon; `wanted` is anything with the
    three flags (a cart line, a domain). An addon the TLD does not offer is refused
    (OrderError), never dropped: the client would pay for a domain without it."""
    offered = offered_domain_addons(tld)
    chosen = [addon for addon in DomainAddon if getattr(wanted, addon.value, False)]
    for addon in chosen:
        if addon not in offered:
            raise OrderError(f"{addon.label} is not offered for "
                             f"{tld.extension if tld is not None else 'this'} domains.")
    if not chosen:
        return []
    prices = domain_addon_prices(currency_code)
    return [(addon, prices[addon] * years) for addon in chosen]


def normalise_domain(text: str | None) -> str:
    """A lower-case, IDNA domain name (the registrars' normaliser, so the store and the
    order engine agree on names), or OrderError."""
    try:
        return registrar_normalise((text or "").strip())
    except DomainNameError as error:
        raise OrderError(f"{text!r} is not a valid domain name.") from error


# Promotions

def find_promotion(code: str | None) -> Promotion | None:
    if not code or not code.strip():
        return None
    return db.session.scalar(select(Promotion).where(func.lower(Promotion.code) == code.strip().lower()))


def promotion_cycles(promotion: Promotion) -> set[str]:
    return {part.strip() for part in (promotion.cycles or "").split(",") if part.strip()}


def promotion_applies_to(promotion: Promotion, product_id: int, cycle: str) -> bool:
    products = {product.id for product in promotion.products}
    cycles = promotion_cycles(promotion)
    return (not products or product_id in products) and (not cycles or cycle in cycles)


def _client_orders(client_id: int, promotion_id: int | None = None) -> int:
    query = select(func.count()).select_from(Order).where(
        Order.client_id == client_id, Order.status != OrderStatus.CANCELLED.value)
    if promotion_id is not None:
        query = query.where(Order.promotion_id == promotion_id)
    return db.session.scalar(query)


def _has_active_service(client_id: int) -> bool:
    return db.session.scalar(select(func.count()).select_from(Service).where(
        Service.client_id == client_id, Service.status == ServiceStatus.ACTIVE.value)) > 0


def promotion_refusal(promotion: Promotion, client_id: int | None, today: date,
                      product_lines: list[tuple[int, str]]) -> str | None:
    """Why the promotion does not apply to this client and cart, or None when it does.
    product_lines: (product id, cycle) of each product in the cart."""
    code = promotion.code
    if promotion.start_date and today < promotion.start_date:
        return f"The promotion code {code} is not valid until {promotion.start_date.isoformat()}."
    if promotion.expiration_date and today > promotion.expiration_date:
        return f"The promotion code {code} expired on {promotion.expiration_date.isoformat()}."
    if promotion.max_uses and promotion.uses >= promotion.max_uses:
        return f"The promotion code {code} has been used the maximum number of times."
    if client_id is not None and promotion.once_per_client and _client_orders(client_id, promotion.id):
        return f"The promotion code {code} can be used once per client and you have used it already."
    if promotion.new_clients_only and client_id is not None and _client_orders(client_id):
        return f"The promotion code {code} is for new clients only."
    if promotion.existing_clients_only and (client_id is None or not _has_active_service(client_id)):
        return f"The promotion code {code} is for existing clients with an active service only."
    if not any(promotion_applies_to(promotion, pid, cycle) for pid, cycle in product_lines):
        return (f"The promotion code {code} does not apply to the products or billing cycles "
                "in your cart.")
    return None


def describe_promotion(promotion: Promotion, currency: Currency) -> str:
    value = to_money(promotion.value)
    kind = promotion.type
    if kind == PromotionType.PERCENTAGE:
        text = f"{value.normalize():f}% off"
    elif kind == PromotionType.FIXED:
        text = f"{currency.format(value)} off"
    elif kind == PromotionType.PRICE_OVERRIDE:
        text = f"price {currency.format(value)}"
    else:
        return "Free setup"
    if promotion.recurring:
        times = f" for {promotion.recur_for} renewals" if promotion.recur_for else ""
        return f"{text}, recurring{times}"
    return f"{text}, first payment only"


def _percent(amount: Decimal, rate: Decimal, places: int) -> Decimal:
    return to_money(amount * rate / HUNDRED, places)


def apply_promotion(line: QuoteLine, promotion: Promotion, places: int) -> None:
    """Set the line's discount (first payment) and, for recurring promotions, its
    recurring amount. A discount never takes an amount below zero."""
    value = to_money(promotion.value, places)
    kind = promotion.type
    price = line.recurring_amount
    if kind == PromotionType.PERCENTAGE:
        rate = min(value, HUNDRED)
        line.discount = _percent(line.first_amount, rate, places) + _percent(line.setup_fee, rate, places)
        renewal = price - _percent(price, rate, places)
    elif kind == PromotionType.FIXED:
        line.discount = min(value, line.first_amount)
        renewal = max(price - value, ZERO)
    elif kind == PromotionType.PRICE_OVERRIDE:
        line.discount = max(line.first_amount - value, ZERO)
        renewal = min(value, price)
    else:  # free setup: the setup fee only, never the renewals
        line.discount = line.setup_fee
        renewal = price
    if promotion.recurring and line.cycle and is_recurring(line.cycle):
        line.recurring_amount = renewal


# Pricing the parts

def _cycle_price(rows, currency_id: int, cycle: str) -> tuple[Decimal, Decimal] | None:
    for row in rows:
        if row.currency_id == currency_id and row.cycle == cycle:
            return to_money(row.price), to_money(row.setup_fee)
    return None


def _product_options(product: Product) -> dict[int, ConfigOption]:
    return {option.id: option for group in product.config_groups for option in group.options
            if not option.hidden}


def _price_options(product: Product, cart_line: CartLine, currency: Currency,
                   cycle: str) -> list[OptionChoice]:
    """The chosen options, priced; OrderError for an option of another product, a value
    of another option, or a quantity out of bounds."""
    options = _product_options(product)
    wanted = dict(cart_line.config_options)
    for option in sorted(options.values(), key=lambda o: (o.sort_order, o.id)):
        # A dropdown or radio always has a choice: its first value unless one is chosen.
        visible = sorted((v for v in option.values if not v.hidden), key=lambda v: (v.sort_order, v.id))
        if option.option_type in ("dropdown", "radio") and option.id not in wanted and visible:
            wanted[option.id] = visible[0].id
    choices = []
    for option_id, chosen in sorted(wanted.items()):
        option = options.get(option_id)
        if option is None:
            raise OrderError("A configurable option in your cart does not belong to the product.")
        values = sorted((v for v in option.values if not v.hidden), key=lambda v: (v.sort_order, v.id))
        if option.option_type == "quantity":
            quantity = int(chosen)
            upper = option.quantity_max or None
            if quantity < (option.quantity_min or 0) or (upper is not None and quantity > upper):
                raise OrderError(f"{option.name}: choose a quantity from {option.quantity_min} "
                                 f"to {option.quantity_max}.")
            if quantity == 0 or not values:
                continue
            value = values[0]
        elif option.option_type == "yesno":
            # 1/0 as WHMCS sends it, or the id of the option's single value.
            value = values[0] if values and chosen in (1, values[0].id) else None
            if chosen not in (0, 1) and (not values or chosen != values[0].id):
                raise OrderError(f"{option.name}: answer yes or no.")
            if value is None:
                continue
            quantity = 1
        else:
            value = next((v for v in values if v.id == chosen), None)
            if value is None:
                raise OrderError(f"{option.name}: that choice is not available.")
            quantity = 1
        found = _cycle_price(value.pricing, currency.id, cycle) or (ZERO, ZERO)
        label = f"{option.name}: {quantity} x {value.name}" if option.option_type == "quantity" \
            else f"{option.name}: {value.name}"
        choices.append(OptionChoice(option.id, value.id, quantity, label,
                                    found[0] * quantity, found[1] * quantity))
    return choices


def full_recurring_price(service) -> Decimal | None:
    """What a service's product and chosen options cost per cycle now, in the client's
    currency, without any promotion; None when the cycle is no longer sold."""
    currency = service.client.currency
    prices = product_prices(service.product_id, currency.code)
    if service.billing_cycle not in prices:
        return None
    total = prices[service.billing_cycle][0]
    for choice in service.config_options:
        if choice.value is None:
            continue
        found = _cycle_price(choice.value.pricing, currency.id, service.billing_cycle)
        quantity = choice.quantity if choice.option.option_type == "quantity" else 1
        total += (found[0] if found else ZERO) * quantity
    return total


def _first_period(product: Product, cycle: str, price: Decimal, today: date,
                  places: int) -> tuple[Decimal, date | None, date | None]:
    """(first amount, period end, next due date after the first payment)."""
    if not is_recurring(cycle):
        return price, None, None
    if product.prorata_billing and product.prorata_day:
        quote = prorata_first_period(today, product.prorata_day,
                                     product.prorata_charge_next_month_day, cycle, price, places)
        return quote.amount_due, quote.period_end, quote.first_due_date
    following = add_cycle(today, cycle)
    return price, following - timedelta(days=1), following


def _check_cycle(product: Product, cart_line: CartLine, currency: Currency) -> tuple[str, Decimal, Decimal]:
    prices = product_prices(product.id, currency.code)
    wanted = cart_line.billing_cycle or (next(iter(prices)) if len(prices) == 1 else None)
    if not wanted:
        raise OrderError(f"Choose a billing cycle for {product.name}.")
    try:
        cycle = parse_cycle(wanted)
    except BillingError:
        raise OrderError(f"{wanted!r} is not a billing cycle.") from None
    if cycle not in prices:
        raise OrderError(f"{product.name} is not sold {cycle.lower()} in {currency.code}.")
    price, setup = prices[cycle]
    return cycle, price, setup


def _price_product(index: int, cart_line: CartLine, currency: Currency, today: date,
                   places: int, stock_used: dict[int, int]) -> list[QuoteLine]:
    product = _sold_product(cart_line.product_id)
    quantity = cart_line.quantity
    if not 1 <= quantity <= MAX_QUANTITY:
        raise OrderError(f"The quantity of {product.name} must be from 1 to {MAX_QUANTITY}.")
    if product.stock_control:
        stock_used[product.id] = stock_used.get(product.id, 0) + quantity
        if stock_used[product.id] > product.stock_quantity:
            raise OrderError(f"Only {max(product.stock_quantity, 0)} of {product.name} left in stock.")
    cycle, price, setup = _check_cycle(product, cart_line, currency)
    domain = normalise_domain(cart_line.domain) if cart_line.domain else None
    if product.require_domain and not domain:
        raise OrderError(f"{product.name} needs a domain name.")
    options = _price_options(product, cart_line, currency, cycle)
    recurring = price + sum((o.price for o in options), ZERO)
    setup_total = setup + sum((o.setup_fee for o in options), ZERO)
    first, period_end, next_due = _first_period(product, cycle, recurring, today, places)
    if cart_line.price_override is not None:
        first = _checked_override(cart_line.price_override, product)
    label = f"{product.group.name} - {product.name}" if product.group else product.name
    description = f"{label} - {domain}" if domain else label
    addons = _addons_for(product, cart_line)

    lines = []
    for _ in range(quantity):
        parent = QuoteLine(PRODUCT, index, description, cycle, recurring, setup_total, ZERO, first,
                           bool(product.taxed), today, period_end, next_due, product_id=product.id,
                           domain=domain, options=list(options))
        lines.append(parent)
        for addon in addons:
            lines.append(_price_addon(index, addon, currency, cycle, today, domain))
    return lines


def _checked_override(value, product: Product) -> Decimal:
    """Staff's first-payment price (setup fee and renewals unchanged)."""
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
        raise OrderError(f"The price override of {product.name} must be an amount of 0 or more.")
    return to_money(value)


def _addons_for(product: Product, cart_line: CartLine) -> list[Addon]:
    offered = {addon.id: addon for addon in product.addons if not addon.retired}
    chosen = []
    for addon_id in dict.fromkeys(cart_line.addon_ids):
        if addon_id not in offered:
            raise OrderError("An addon in your cart is not offered with the product.")
        chosen.append(offered[addon_id])
    return chosen


def _price_addon(index: int, addon: Addon, currency: Currency, cycle: str, today: date,
                 domain: str | None) -> QuoteLine:
    """An addon bills in its parent's cycle when priced for it, else in its own single cycle."""
    rows = [row for row in addon.pricing if row.currency_id == currency.id]
    row = next((r for r in rows if r.cycle == cycle), None) or (rows[0] if len(rows) == 1 else None)
    if row is None:
        raise OrderError(f"The addon {addon.name} is not sold {cycle.lower()} in {currency.code}.")
    addon_cycle = row.cycle
    price, setup = to_money(row.price), to_money(row.setup_fee)
    next_due = add_cycle(today, addon_cycle) if is_recurring(addon_cycle) else None
    description = f"Addon: {addon.name}" + (f" - {domain}" if domain else "")
    return QuoteLine("addon", index, description, addon_cycle, price, setup, ZERO, price,
                     bool(addon.taxed), today, next_due - timedelta(days=1) if next_due else None,
                     next_due, addon_id=addon.id)


def _price_domain(index: int, cart_line: CartLine, currency: Currency, today: date) -> QuoteLine:
    action = (cart_line.domain_action or "").lower()
    if action not in DOMAIN_ACTIONS:
        raise OrderError("Choose whether to register or transfer the domain.")
    name = normalise_domain(cart_line.domain)
    years = cart_line.years
    if not isinstance(years, int) or not 1 <= years <= 10:
        raise OrderError("A domain is ordered for 1 to 10 years.")
    tld = tld_of(name)
    price = domain_price(tld, currency.code, action, years)
    if price is None:
        raise OrderError(f"We do not {action} .{tld} domains for {years} year(s) in {currency.code}.")
    renew = domain_price(tld, currency.code, "renew", years)
    addons = price_domain_addons(find_tld(tld), cart_line, currency.code, years)
    addons_total = sum((amount for _, amount in addons), ZERO)
    next_due = add_months(today, 12 * years)
    verb = "Registration" if action == REGISTER else "Transfer"
    return QuoteLine(DOMAIN, index, f"Domain {verb} - {name} - {years} Year(s)", None,
                     (renew if renew is not None else price) + addons_total, ZERO, ZERO,
                     price + addons_total, settings.get_bool("TaxDomains"), today,
                     next_due - timedelta(days=1), next_due,
                     domain=name, domain_action=action, years=years, domain_addons=addons)


def _check_duplicates(lines: list[QuoteLine]) -> None:
    names = [line.domain for line in lines if line.kind == DOMAIN]
    if len(names) != len(set(names)):
        raise OrderError("The same domain is in your cart twice.")


# The cart

def _tax_profile(client_id: int | None, country: str | None, state: str | None):
    if client_id is not None:
        client = db.session.get(Client, client_id)
        if client is None:
            raise OrderError("Unknown client.")
        return client
    return SimpleNamespace(country=country or settings.get("BusinessCountry"), state=state,
                           tax_exempt=False, tax_id=None)


def price_lines(cart: Cart, currency: Currency, today: date) -> list[QuoteLine]:
    if not isinstance(cart, Cart):
        raise OrderError("The cart could not be read.")
    if not cart.lines:
        raise OrderError("Your cart is empty.")
    places = places_of(currency)
    stock_used: dict[int, int] = {}
    lines: list[QuoteLine] = []
    for index, cart_line in enumerate(cart.lines):
        if cart_line.kind == PRODUCT:
            start = len(lines)
            priced = _price_product(index, cart_line, currency, today, places, stock_used)
            parent = None
            for offset, line in enumerate(priced):
                if line.kind == PRODUCT:
                    parent = start + offset
                else:
                    line.parent = parent
            lines.extend(priced)
        elif cart_line.kind == DOMAIN:
            lines.append(_price_domain(index, cart_line, currency, today))
        else:
            raise OrderError(f"Unknown cart line {cart_line.kind!r}.")
    _check_duplicates(lines)
    return lines


def price_cart(cart: Cart, client_id: int | None = None, country: str | None = None,
               state: str | None = None, today: date | None = None) -> CartQuote:
    """The priced cart. Raises OrderError for what cannot be ordered; a promotion code
    that does not apply is not an error: promotion_error says why, and no discount."""
    from app.billing.automation import business_today

    today = today or business_today()
    currency = currency_by_code(cart.currency_code)
    if client_id is not None:
        client = db.session.get(Client, client_id)
        if client is None:
            raise OrderError("Unknown client.")
        if client.currency_id != currency.id:
            raise OrderError(f"Your account is billed in {client.currency.code}: order in that currency.")
    places = places_of(currency)
    lines = price_lines(cart, currency, today)

    promotion_info = promotion_error = promotion_id = None
    promotion = find_promotion(cart.promo_code)
    if cart.promo_code and cart.promo_code.strip():
        if promotion is None:
            promotion_error = f"The promotion code {cart.promo_code.strip()} is not valid."
        else:
            products = [(line.product_id, line.cycle) for line in lines if line.kind == PRODUCT]
            promotion_error = promotion_refusal(promotion, client_id, today, products)
            if promotion_error is None:
                for line in lines:
                    if line.kind == PRODUCT and promotion_applies_to(promotion, line.product_id, line.cycle):
                        apply_promotion(line, promotion, places)
                promotion_info = (promotion.code, describe_promotion(promotion, currency))
                promotion_id = promotion.id

    taxes = taxes_for_client(_tax_profile(client_id, country, state))
    amounts = [(amount, line.taxed) for line in lines for _, amount in line.invoice_amounts()]
    figures = compute_invoice_taxes(amounts, taxes.level1, taxes.level2, taxes.inclusive,
                                    taxes.compound, taxes.exempt, places)
    tax_lines = []
    for rate, amount in ((taxes.level1, figures.tax1), (taxes.level2, figures.tax2)):
        if rate is not None and not taxes.exempt:
            tax_lines.append(TaxLine(rate.name, rate.rate, amount))
    recurring: dict[str, Decimal] = {}
    for line in lines:
        cycle = line.cycle or (f"{line.years} Year(s)" if line.kind == DOMAIN else None)
        if cycle and (line.kind == DOMAIN or is_recurring(cycle)):
            recurring[cycle] = recurring.get(cycle, ZERO) + line.recurring_amount
    return CartQuote(
        currency_code=currency.code, lines=lines,
        subtotal=sum((line.first_amount + line.setup_fee for line in lines), ZERO),
        discount=sum((line.discount for line in lines), ZERO),
        taxes=tax_lines, total_due_today=figures.total, recurring=recurring,
        promotion=promotion_info, promotion_error=promotion_error, promotion_id=promotion_id,
        tax_inclusive=taxes.inclusive)
