"""Placing an order: a priced cart becomes an Order with its items, Pending services,
addons and domains, and its first invoice (through the billing engine).

Transactions: create_order flushes and never commits. The caller (store checkout,
admin, API) commits once it returned, or rolls back on OrderError/BillingError:
nothing is left behind, not even a promotion use or an invoice number.
"""
from __future__ import annotations

import re
import secrets
import string
from datetime import date

from sqlalchemy import select

from app import custom_fields, settings
from app.activity import Actor, log
from app.billing import invoicing
from app.billing.automation import business_today
from app.billing.cycles import add_months, is_recurring, months_in_cycle
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine
from app.billing.numbering_counter import lock_row
from app.extensions import db
from app.gateways.base import UnknownGatewayError
from app.gateways.registry import gateway_class, order_gateways
from app.models.billing import InvoiceStatus, ItemType
from app.models.catalog import Addon, Product
from app.models.clients import Client, ClientStatus
from app.models.domains import Domain, DomainStatus
from app.models.orders import (
    Order, OrderItem, OrderStatus, Promotion, Service, ServiceAddon, ServiceConfigOption, ServiceStatus,
)
from app.notifications.queue import EmailTemplateMissing, queue_email
from app.orders import fraud
from app.orders.cart import DOMAIN, PRODUCT, TRANSFER, Cart, OrderError
from app.registrars.domain_settings import DomainSettingsError, normalise_nameservers
from app.orders.pricing import DOMAIN_ADDON_ITEM_TYPES, CartQuote, QuoteLine, find_tld, price_cart, tld_of

ORDER_NUMBER_DIGITS = 10


def new_order_number() -> str:
    """A random 10-digit number no other order has (WHMCS's order number); the unique
    key on orders.order_number guards the rare race."""
    for _ in range(20):
        number = str(secrets.randbelow(9 * 10 ** (ORDER_NUMBER_DIGITS - 1)) + 10 ** (ORDER_NUMBER_DIGITS - 1))
        if db.session.scalar(select(Order.id).where(Order.order_number == number)) is None:
            return number
    raise OrderError("No free order number could be found; please try again.")


def _client(client_id) -> Client:
    if isinstance(client_id, bool) or not isinstance(client_id, int):
        raise OrderError("Unknown client.")
    client = lock_row(Client, client_id)
    if client is None:
        raise OrderError("Unknown client.")
    if client.status == ClientStatus.CLOSED:
        raise OrderError("This client account is closed: it cannot place orders.")
    return client


def _payment_method(name, currency_code: str) -> str:
    """The order's gateway: one the store offers now (registry.order_gateways); an
    unknown, disabled or unset-up gateway is refused as WHMCS refuses it."""
    text = name.strip().lower() if isinstance(name, str) else ""
    if not text:
        raise OrderError("Choose a payment method.")
    offered = [gateway.name for gateway in order_gateways(currency_code)]
    if text in offered:
        return text
    try:
        gateway_class(text)
        why = (f"{name!r} pays invoices, not orders (apply credit to the order's invoice)"
               if text == "credit" else f"{name!r} is not enabled for payments in {currency_code}")
    except UnknownGatewayError:
        why = f"{name!r} is not a payment method"
    raise OrderError(f"Invalid Payment Method: {why}. Valid options include "
                     f"{', '.join(offered) or 'none (no gateway is enabled)'}.")


def _use_promotion(quote: CartQuote) -> Promotion | None:
    """Count the use under a row lock; a code used up by a concurrent order is refused."""
    if quote.promotion_id is None:
        return None
    promotion = lock_row(Promotion, quote.promotion_id)
    if promotion.max_uses and promotion.uses >= promotion.max_uses:
        raise OrderError(f"The promotion code {promotion.code} has been used the maximum number of times.")
    promotion.uses += 1
    return promotion


def _take_stock(quote: CartQuote) -> None:
    wanted: dict[int, int] = {}
    for line in quote.lines:
        if line.kind == PRODUCT:
            wanted[line.product_id] = wanted.get(line.product_id, 0) + 1
    for product_id, count in sorted(wanted.items()):
        product = lock_row(Product, product_id)
        if not product.stock_control:
            continue
        if count > product.stock_quantity:
            raise OrderError(f"Only {max(product.stock_quantity, 0)} of {product.name} left in stock.")
        product.stock_quantity -= count


def _check_domains_free(quote: CartQuote) -> None:
    names = [line.domain for line in quote.lines if line.kind == DOMAIN]
    if not names:
        return
    taken = db.session.scalar(select(Domain.name).where(Domain.name.in_(names)).limit(1))
    if taken:
        raise OrderError(f"The domain {taken} is already in our system.")


def _check_custom_fields(cart: Cart, quote: CartQuote, staff: bool) -> dict[int, list]:
    """Check every product line's custom fields before anything is written; returns
    the fields asked per product. A client answers those on the order form, staff any."""
    asked: dict[int, list] = {}
    for line in quote.lines:
        if line.kind != PRODUCT:
            continue
        if line.product_id not in asked:
            asked[line.product_id] = custom_fields.order_fields(custom_fields.PRODUCT,
                                                                line.product_id, staff)
        try:
            custom_fields.check_values(asked[line.product_id],
                                       cart.lines[line.cart_index].custom_fields, staff=staff)
        except custom_fields.CustomFieldError as error:
            raise OrderError(f"{line.description}: {error}") from None
    return asked


def _login_name(domain: str | None) -> str:
    """A control-panel user name as WHMCS makes one: letters of the domain, then random."""
    base = re.sub(r"[^a-z]", "", (domain or "").split(".")[0].lower())[:6]
    filler = "".join(secrets.choice(string.ascii_lowercase) for _ in range(8 - len(base)))
    return (base + filler)[:8] or "user" + secrets.token_hex(2)


def _first_due_dates(line: QuoteLine, product: Product | None, today: date) -> tuple[date | None, date | None]:
    """(next due date, next invoice date) of a new service, addon or domain.

    The next due date is the day the first period starts (WHMCS: the order date); paying
    the first invoice moves it one cycle on (payments.mark_invoice_paid). A prorata
    service starts on a part period, so its date is set one cycle before the first
    prorata date: the payment then moves it to that date. The next invoice date is the
    end of the first period: renewals are invoiced from there.
    """
    if line.cycle is not None and not is_recurring(line.cycle):
        return (today if line.first_amount or line.setup_fee else None), None
    if line.kind == DOMAIN or product is None or not product.prorata_billing or not product.prorata_day:
        return today, line.next_due_date
    before = add_months(line.next_due_date, -months_in_cycle(line.cycle), anchor_day=product.prorata_day)
    return before, line.next_due_date


def _make_service(order: Order, line: QuoteLine, payment_method: str, promotion: Promotion | None,
                  today: date) -> Service:
    product = db.session.get(Product, line.product_id)
    next_due, next_invoice = _first_due_dates(line, product, today)
    service = Service(
        client_id=order.client_id, order_id=order.id, product_id=product.id,
        status=ServiceStatus.PENDING.value, domain=line.domain, username=_login_name(line.domain),
        password=secrets.token_urlsafe(12), billing_cycle=line.cycle, quantity=1,
        first_payment_amount=line.due_today, recurring_amount=line.recurring_amount,
        payment_method=payment_method, promotion_id=promotion.id if promotion and line.discount else None,
        registration_date=today, next_due_date=next_due, next_invoice_date=next_invoice,
    )
    for choice in line.options:
        service.config_options.append(ServiceConfigOption(
            option_id=choice.option_id, value_id=choice.value_id, quantity=choice.quantity))
    db.session.add(service)
    db.session.flush()
    return service


def _make_addon(order: Order, line: QuoteLine, service: Service, today: date) -> ServiceAddon:
    next_due, next_invoice = _first_due_dates(line, None, today)
    addon = ServiceAddon(
        service_id=service.id, client_id=order.client_id, addon_id=line.addon_id,
        name=db.session.get(Addon, line.addon_id).name,
        status=ServiceStatus.PENDING.value, billing_cycle=line.cycle, setup_fee=line.setup_fee,
        recurring_amount=line.recurring_amount, registration_date=today,
        next_due_date=next_due, next_invoice_date=next_invoice)
    db.session.add(addon)
    db.session.flush()
    return addon


def _make_domain(order: Order, line: QuoteLine, cart_line, payment_method: str, today: date) -> Domain:
    tld = find_tld(tld_of(line.domain))
    transfer = line.domain_action == TRANSFER
    epp_code = (cart_line.epp_code or "").strip() or None
    if transfer and tld is not None and tld.epp_required and not epp_code:
        raise OrderError(f"The transfer of {line.domain} needs its EPP (authorisation) code.")
    if epp_code and len(epp_code) > 255:
        raise OrderError("The EPP code is too long.")
    domain = Domain(
        client_id=order.client_id, order_id=order.id, name=line.domain,
        type="Transfer" if transfer else "Register", status=DomainStatus.PENDING.value,
        registrar=tld.registrar_module if tld else None, registration_date=today,
        next_due_date=today, next_invoice_date=line.next_due_date, registration_period=line.years,
        first_payment_amount=line.first_amount, recurring_amount=line.recurring_amount,
        payment_method=payment_method, epp_code=epp_code if transfer else None,
        # the addons priced on the line (wanted and offered by the TLD)
        **{addon.value: True for addon, _ in line.domain_addons})
    db.session.add(domain)
    db.session.flush()
    return domain


def _nameservers(values: list[str] | None) -> list[str]:
    if not values or not any((value or "").strip() for value in values):
        return []
    try:
        return normalise_nameservers(values)
    except DomainSettingsError as error:
        raise OrderError(f"Nameservers: {error}.") from None


def _period(line: QuoteLine) -> str:
    if line.period_end is None:
        return ""
    return f" ({line.period_start.isoformat()} - {line.period_end.isoformat()})"


_DOMAIN_ADDON_LABELS = {item.value: addon.label for addon, item in DOMAIN_ADDON_ITEM_TYPES.items()}


def _invoice_lines(line: QuoteLine, rel_id: int, promotion: Promotion | None,
                   promotion_text: str | None) -> list[InvoiceLine]:
    """The invoice lines of one quote line (their amounts are quote.invoice_amounts(),
    the ones the quote's taxes were computed on)."""
    lines = []
    for item_type, amount in line.invoice_amounts():
        if item_type == ItemType.SETUP:
            text = f"Setup Fee: {line.description}"
        elif item_type == ItemType.PROMO:
            text = f"Promotional Code: {promotion.code} - {promotion_text}"
        elif item_type == ItemType.HOSTING:
            text = line.description + _period(line) + "".join(f"\n{o.label}" for o in line.options)
        elif item_type == ItemType.ADDON and line.setup_fee:
            text = f"{line.description}{_period(line)} + setup fee"
        elif item_type in _DOMAIN_ADDON_LABELS:
            text = f"{_DOMAIN_ADDON_LABELS[item_type]} - {line.domain} - {line.years} Year(s){_period(line)}"
        else:
            text = line.description + _period(line)
        lines.append(InvoiceLine(item_type, rel_id, text, amount, line.taxed,
                                 line.period_start, line.period_end))
    return lines


def _order_email(order: Order) -> None:
    try:
        queue_email("Order Confirmation", order.client_id,
                    {"order_id": order.id, "order_number": order.order_number,
                     "order_total": order.currency.format(order.amount),
                     "order_payment_method": order.payment_method or "",
                     "invoice_link": f"{settings.get('Domain').rstrip('/')}/portal/invoices/{order.invoice_id}"
                     if order.invoice_id else ""},
                    related=("order", order.id), dedupe_key=f"order-confirmation:{order.id}")
    except EmailTemplateMissing:
        return


def create_order(cart: Cart, client_id: int, payment_method: str, ip_address: str | None,
                 apply_credit: bool = False, actor: Actor | None = None, notes: str | None = None,
                 *, create_invoice: bool = True, send_email: bool = True,
                 setup_on_order: bool = True, nameservers: list[str] | None = None,
                 today: date | None = None) -> Order:
    """Validate the cart (OrderError), then create the order, its items, the Pending
    services/addons/domains, the invoice (unless create_invoice is False), count the
    promotion use, run the fraud check, and log. setup_on_order False leaves products
    set to "set up on order" for an explicit accept (WHMCS's AddOrder does so).
    nameservers (2 to 5) go to every domain of the order. Flushes; the caller commits."""
    actor = actor or Actor.system()
    today = today or business_today()
    client = _client(client_id)
    method = _payment_method(payment_method, client.currency.code)
    if ip_address is not None and len(ip_address) > 45:
        raise OrderError("The IP address is not valid.")
    if notes is not None and not isinstance(notes, str):
        raise OrderError("Order notes must be text.")
    hosts = _nameservers(nameservers)
    quote = price_cart(cart, client.id, today=today)
    if quote.promotion_error:
        raise OrderError(quote.promotion_error)
    asked = _check_custom_fields(cart, quote, staff=actor.type in ("staff", "api"))
    promotion = _use_promotion(quote)
    _take_stock(quote)
    _check_domains_free(quote)

    order = Order(order_number=new_order_number(), client_id=client.id, currency_id=client.currency_id,
                  status=OrderStatus.PENDING.value, amount=quote.total_due_today,
                  promotion_id=promotion.id if promotion else None, payment_method=method,
                  ip_address=ip_address, notes=(notes or "").strip() or None)
    db.session.add(order)
    db.session.flush()

    invoice_lines: list[InvoiceLine] = []
    made: list[Service | None] = []
    for line in quote.lines:
        cart_line = cart.lines[line.cart_index]
        if line.kind == PRODUCT:
            row = _make_service(order, line, method, promotion, today)
            custom_fields.save_values(custom_fields.PRODUCT, row.id, cart_line.custom_fields, actor,
                                      staff=actor.type in ("staff", "api"),
                                      fields=asked[line.product_id])
            item = OrderItem(kind="product", description=line.description, service_id=row.id)
        elif line.kind == "addon":
            row = _make_addon(order, line, made[line.parent], today)
            item = OrderItem(kind="addon", description=line.description, service_addon_id=row.id,
                             service_id=row.service_id)
        else:
            row = _make_domain(order, line, cart_line, method, today)
            row.nameservers = "\n".join(hosts)
            item = OrderItem(kind="domain", description=line.description, domain_id=row.id)
        made.append(row)
        item.billing_cycle = line.cycle or f"{line.years} Year(s)"
        item.amount, item.setup_fee, item.discount = line.first_amount, line.setup_fee, line.discount
        order.items.append(item)
        invoice_lines += _invoice_lines(line, row.id, promotion, quote.promotion and quote.promotion[1])
    db.session.flush()

    checked = fraud.check_order(order)
    if checked is not None and checked.held:
        order.status = OrderStatus.FRAUD.value
    log("order_created", f"Order {order.order_number} placed: {len(quote.lines)} item(s), "
        f"{client.currency.format(quote.total_due_today)} due"
        + (f", promotion {promotion.code}" if promotion else "")
        + (f"; held for review: fraud score {checked.score} ({'; '.join(checked.reasons)})"
           if checked is not None and checked.held else ""),
        order, after={"status": order.status, "amount": order.amount,
                      "fraud_score": order.fraud_score}, actor=actor)

    nothing_to_pay = all(line.amount == 0 for line in invoice_lines)
    if create_invoice and not nothing_to_pay:
        _invoice(order, invoice_lines, method, apply_credit, actor, today)
    if send_email:
        _order_email(order)
    _after_checkout(order, paid=nothing_to_pay, setup_on_order=setup_on_order, actor=actor)
    return order


def _invoice(order: Order, lines: list[InvoiceLine], method: str, apply_credit: bool, actor: Actor,
             today: date) -> None:
    """A draft first, tied to the order, then published: publishing applies credit and
    marks a zero total Paid, which must find the order to accept it."""
    try:
        invoice = invoicing.create_invoice(order.client_id, lines, issue_date=today, due_date=today,
                                           actor=actor, status=InvoiceStatus.DRAFT, payment_method=method,
                                           notes=f"Order {order.order_number}")
        order.invoice_id = invoice.id
        db.session.flush()
        invoicing.publish_draft(invoice.id, actor=actor, apply_credit=apply_credit)
    except BillingError as error:
        raise OrderError(f"The invoice could not be created: {error}") from error
    order.amount = invoice.total


def _after_checkout(order: Order, paid: bool, setup_on_order: bool, actor: Actor) -> None:
    """A free order counts as paid at once; products set to set up on order are set
    up now (domains wait for the payment)."""
    from app.orders import lifecycle

    if paid:
        lifecycle.order_paid(order, actor=actor)
    elif setup_on_order and order.status == OrderStatus.PENDING and lifecycle.sets_up_on_order(order):
        try:
            # A module failure leaves the order Pending for staff; the order itself stands.
            with db.session.begin_nested():
                lifecycle.accept_order(order.id, actor=actor, register_domains=False,
                                       reason="set up on order")
        except OrderError as error:
            log("order_accept_failed", f"Order {order.order_number} could not be set up on order: "
                f"{error}", order, actor=actor)
