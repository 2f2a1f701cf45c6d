"""What happens to an order after it is placed (WHMCS semantics): accept (services set
up through their provisioning module, domains sent to the registrar, welcome email),
set back to pending, cancel, mark as fraud, delete; and auto-accept once its invoice
is paid (setting AutoAcceptPaidOrders and each product's auto_setup).

Every function locks the order row first, so two calls for one order run one after
the other and the second sees what the first did: accepting or paying twice never
sets anything up twice. Each state change is logged. Transactions: flush, never
commit; the caller commits.
"""
from __future__ import annotations

import importlib

from sqlalchemy import func, select

from app import settings
from app.activity import Actor, change_and_log, log
from app.billing import invoicing
from app.billing.errors import BillingError
from app.billing.numbering_counter import lock_row
from app.events import emit
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import Invoice, InvoiceItem, InvoiceStatus, ItemType
from app.models.catalog import Server
from app.models.domains import Domain, DomainStatus
from app.models.orders import (
    CancellationRequest, Order, OrderStatus, Service, ServiceAddon, ServiceStatus, Upgrade,
)
from app.notifications.merge_fields import service_email_context
from app.notifications.queue import EmailTemplateMissing, queue_email
from app.orders.cart import OrderError
from app.orders.pricing import full_recurring_price
from app.provisioning.service_commands import ServiceCommandError, create_service, record_amount_change

# Product.auto_setup values (WHMCS: on order, on first payment, on manual accept, never).
ON_ORDER, ON_PAYMENT, ON_ACCEPT, NEVER = "order", "payment", "accept", "never"
# Rows of an order that are not live yet, and so may be cancelled, held or deleted.
NOT_LIVE = (ServiceStatus.PENDING.value, ServiceStatus.FRAUD.value, ServiceStatus.CANCELLED.value)


def _order(order_id) -> Order:
    valid = isinstance(order_id, int) and not isinstance(order_id, bool)
    order = lock_row(Order, order_id) if valid else None
    if order is None:
        raise OrderError("Order ID Not Found")
    return order


def _services(order: Order) -> list[Service]:
    return list(db.session.scalars(select(Service).where(Service.order_id == order.id).order_by(Service.id)))


def _addons(order: Order) -> list[ServiceAddon]:
    service_ids = select(Service.id).where(Service.order_id == order.id)
    return list(db.session.scalars(select(ServiceAddon).where(ServiceAddon.service_id.in_(service_ids))
                                   .order_by(ServiceAddon.id)))


def _domains(order: Order) -> list[Domain]:
    return list(db.session.scalars(select(Domain).where(Domain.order_id == order.id).order_by(Domain.id)))


def _set_status(row, status: str, actor: Actor, why: str) -> None:
    kind, label = type(row).__name__, getattr(row, "name", None) or f"#{row.id}"
    change_and_log(row, {"status": status}, f"{kind.lower()}_status", f"{kind} {label}", actor,
                   description=f"{kind} {label}: {row.status} -> {status} ({why})")


def _order_status(order: Order, status: str, actor: Actor, why: str) -> None:
    before = order.status
    order.status = status
    db.session.flush()
    log(f"order_{status.lower()}", f"Order {order.order_number}: {before} -> {status}"
        + (f" ({why})" if why else ""), order, before={"status": before}, after={"status": status},
        actor=actor)


# Accepting

def sets_up_on_order(order: Order) -> bool:
    services = _services(order)
    return bool(services) and all(service.product.auto_setup == ON_ORDER for service in services)


def _welcome_email(service: Service) -> None:
    template = service.product.welcome_email
    if not template:
        return
    try:
        queue_email(template, service.client_id, service_email_context(service),
                    related=("service", service.id), dedupe_key=f"welcome:{service.id}")
    except EmailTemplateMissing:
        log("welcome_email_missing", f"Service #{service.id}: no email template named {template!r}; "
            "no welcome email sent", service)


def _activate_service(service: Service, run_module: bool, send_email: bool, actor: Actor) -> None:
    if run_module:
        create_service(service.id, actor=actor)  # ServiceCommandError when the module refuses
    else:
        _set_status(service, ServiceStatus.ACTIVE.value, actor, "order accepted without the module")
    if send_email:
        _welcome_email(service)


def registrar_call(action: str):
    """app.registrars.domains.register_domain / transfer_domain, when installed."""
    try:
        module = importlib.import_module("app.registrars.domains")
    except ImportError:
        return None
    return getattr(module, f"{action}_domain", None)


def _send_domain(domain: Domain, actor: Actor) -> None:
    action = "transfer" if domain.type == "Transfer" else "register"
    call = registrar_call(action)
    if call is None:
        log("domain_awaits_registrar", f"Domain {domain.name}: stays Pending, no registrar "
            f"integration installed to {action} it; do it by hand", domain, actor=actor)
        return
    try:
        with db.session.begin_nested():
            call(domain.id, actor)
    except Exception as error:  # a registrar failure must not undo the accepted order
        log("domain_registrar_failed", f"Domain {domain.name}: the registrar could not {action} it "
            f"({error}); it stays {domain.status}", domain, actor=actor)


def _set_up_details(order: Order, server_id: int | None, username: str | None,
                    password: str | None, actor: Actor) -> None:
    if server_id is None and not username and not password:
        return
    if server_id is not None and db.session.get(Server, server_id) is None:
        raise OrderError("Server ID Not Found")
    if username is not None and not 1 <= len(username.strip()) <= 100:
        raise OrderError("The service username is 1 to 100 characters.")
    for service in _services(order):
        if service.status != ServiceStatus.PENDING:
            continue
        changed = {}
        if server_id is not None:
            service.server_id = changed["server_id"] = server_id
        if username:
            service.username = changed["username"] = username.strip()
        if password:
            service.password = password  # encrypted at rest; never logged
            changed["password"] = "(changed)"
        log("service_setup_details", f"Service #{service.id}: {', '.join(sorted(changed))} set on "
            "accepting its order", service, after=changed, actor=actor)


def accept_order(order_id: int, actor: Actor | None = None, run_module: bool = True,
                 send_email: bool = True, *, register_domains: bool = True, reason: str = "",
                 module_for=None, server_id: int | None = None, username: str | None = None,
                 password: str | None = None) -> Order:
    """Accept a Pending (or Fraud, after review) order: its Pending services are set up
    (through the module's create step when run_module, else simply made Active), addons
    become Active, domains go to the registrar, welcome emails are queued.

    module_for(service) -> bool narrows which services are set up now (auto-accept on
    payment: only products whose auto_setup says so; the others stay Pending for staff).
    Accepting an Active order again does nothing. A module that refuses raises
    OrderError and nothing changes. server_id, username and password (WHMCS's
    AcceptOrder serverid, serviceusername, servicepassword) are given to the Pending
    services before they are set up.
    """
    actor = actor or Actor.system()
    order = _order(order_id)
    if order.status == OrderStatus.ACTIVE:
        return order
    if order.status == OrderStatus.CANCELLED:
        raise OrderError(f"Order {order.order_number} is Cancelled: set it to Pending before accepting it.")
    if order.status == OrderStatus.FRAUD:
        _release(order, actor, f"order {order.order_number} accepted after review")
    _set_up_details(order, server_id, username, password, actor)
    try:
        for service in _services(order):
            if service.status != ServiceStatus.PENDING:
                continue
            if module_for is not None and not module_for(service):
                log("service_awaits_setup", f"Service #{service.id}: {service.product.name} is set up "
                    f"{'by hand' if service.product.auto_setup == NEVER else 'when staff accept it'}",
                    service, actor=actor)
                continue
            _activate_service(service, run_module, send_email, actor)
    except ServiceCommandError as error:
        raise OrderError(str(error)) from error
    for addon in _addons(order):
        if addon.status == ServiceStatus.PENDING and addon.service.status == ServiceStatus.ACTIVE:
            _set_status(addon, ServiceStatus.ACTIVE.value, actor, f"order {order.order_number} accepted")
    if register_domains:
        for domain in _domains(order):
            if domain.status == DomainStatus.PENDING:
                _send_domain(domain, actor)
    order.accepted_at = utcnow()
    order.accepted_by_id = actor.user_id if actor.type == "staff" else None
    _order_status(order, OrderStatus.ACTIVE.value, actor, reason or "accepted")
    emit("AcceptOrder", {"order_id": order.id, "client_id": order.client_id})
    return order


# Paid orders

def order_paid(order: Order, actor: Actor | None = None) -> None:
    """The order's invoice is paid (or there was nothing to pay): fire OrderPaid, and
    accept the order when AutoAcceptPaidOrders is on, the order is Pending (a Fraud
    order waits for review), and no product waits for a manual accept."""
    actor = actor or Actor.system()
    order = _order(order.id)
    emit("OrderPaid", {"order_id": order.id, "client_id": order.client_id,
                       "invoice_id": order.invoice_id})
    log("order_paid", f"Order {order.order_number} paid", order, actor=actor)
    if order.status != OrderStatus.PENDING or not settings.get_bool("AutoAcceptPaidOrders"):
        return
    services = _services(order)
    if any(service.product.auto_setup == ON_ACCEPT for service in services):
        log("order_awaits_accept", f"Order {order.order_number} is paid and waits for staff to accept it",
            order, actor=actor)
        return
    try:
        # A module failure leaves the order Pending for staff; it never undoes the payment.
        with db.session.begin_nested():
            accept_order(order.id, actor=actor, reason="invoice paid",
                         module_for=lambda service: service.product.auto_setup in (ON_ORDER, ON_PAYMENT))
    except OrderError as error:
        log("order_accept_failed", f"Order {order.order_number} is paid but could not be accepted: "
            f"{error}", order, actor=actor)


def invoice_paid(invoice: Invoice, actor: Actor | None = None) -> None:
    """Called by payments.mark_invoice_paid, in the payment's transaction."""
    for order in db.session.scalars(select(Order).where(Order.invoice_id == invoice.id)):
        order_paid(order, actor=actor)
    for item in invoice.items:
        if item.type == ItemType.HOSTING and item.rel_id is not None:
            end_recurring_discount(item.rel_id, actor or Actor.system())


def end_recurring_discount(service_id: int, actor: Actor) -> None:
    """A recurring promotion limited to recur_for renewals: once that many renewals are
    paid, the service goes back to the full price for the renewals after."""
    service = db.session.get(Service, service_id)
    promotion = service.promotion if service is not None else None
    if promotion is None or not promotion.recurring or not promotion.recur_for:
        return
    renewals_paid = db.session.scalar(
        select(func.count()).select_from(InvoiceItem).join(Invoice, Invoice.id == InvoiceItem.invoice_id)
        .where(InvoiceItem.type == ItemType.HOSTING.value, InvoiceItem.rel_id == service.id,
               InvoiceItem.period_start > service.registration_date,
               Invoice.status == InvoiceStatus.PAID.value))
    if renewals_paid < promotion.recur_for:
        return
    full = full_recurring_price(service)
    if full is None or full == service.recurring_amount:
        return
    before = service.recurring_amount
    service.recurring_amount = full
    service.promotion_id = None
    record_amount_change(service, before)
    log("service_promotion_ended", f"Service #{service.id}: promotion {promotion.code} applied to "
        f"{promotion.recur_for} renewal(s); the recurring amount goes from {before} to {full}", service,
        before={"recurring_amount": before, "promotion_id": promotion.id},
        after={"recurring_amount": full, "promotion_id": None}, actor=actor)


# Pending, cancel, fraud, delete

def _cancel_invoice(order: Order, actor: Actor, why: str) -> None:
    invoice = db.session.get(Invoice, order.invoice_id) if order.invoice_id else None
    if invoice is None or invoice.status not in (InvoiceStatus.UNPAID, InvoiceStatus.DRAFT):
        return
    try:
        invoicing.cancel_invoice(invoice.id, actor=actor, reason=why)
    except BillingError as error:
        raise OrderError(f"The order's invoice could not be cancelled: {error}") from error


def _hold_rows(order: Order, status: str, actor: Actor, why: str) -> None:
    """Rows not live yet take the order's new status; live services are left to staff."""
    for row in (*_services(order), *_addons(order)):
        if row.status in (ServiceStatus.PENDING, ServiceStatus.FRAUD):
            _set_status(row, status, actor, why)
    domain_status = DomainStatus.CANCELLED.value if status == ServiceStatus.CANCELLED else DomainStatus.FRAUD.value
    for domain in _domains(order):
        if domain.status in (DomainStatus.PENDING, DomainStatus.FRAUD):
            _set_status(domain, domain_status, actor, why)


def set_pending(order_id: int, actor: Actor | None = None, reason: str = "") -> Order:
    """Back to Pending (after a fraud review, or a cancellation undone): held or
    cancelled rows become Pending, a cancelled invoice is reopened."""
    actor = actor or Actor.system()
    order = _order(order_id)
    if order.status == OrderStatus.PENDING:
        return order
    if order.status == OrderStatus.ACTIVE:
        raise OrderError(f"Order {order.order_number} is Active: its services are live.")
    _release(order, actor, f"order {order.order_number} set to Pending")
    _order_status(order, OrderStatus.PENDING.value, actor, reason)
    return order


def _release(order: Order, actor: Actor, why: str) -> None:
    """Held or cancelled rows become Pending again; a cancelled invoice is reopened."""
    for row in (*_services(order), *_addons(order)):
        if row.status in (ServiceStatus.FRAUD, ServiceStatus.CANCELLED):
            _set_status(row, ServiceStatus.PENDING.value, actor, why)
    for domain in _domains(order):
        if domain.status in (DomainStatus.FRAUD, DomainStatus.CANCELLED):
            _set_status(domain, DomainStatus.PENDING.value, actor, why)
    invoice = db.session.get(Invoice, order.invoice_id) if order.invoice_id else None
    if invoice is not None and invoice.status == InvoiceStatus.CANCELLED:
        invoicing.mark_unpaid(invoice.id, actor=actor, reason=why)


def cancel_order(order_id: int, actor: Actor | None = None, reason: str = "",
                 cancel_invoice: bool = True) -> Order:
    """Cancel an order not set up yet: its Pending rows are cancelled and its unpaid
    invoice is cancelled through the billing engine (a paid one is refunded instead)."""
    actor = actor or Actor.system()
    order = _order(order_id)
    if order.status == OrderStatus.CANCELLED:
        return order
    if any(service.status not in NOT_LIVE for service in _services(order)):
        raise OrderError(f"Order {order.order_number} has live services: terminate them instead.")
    why = f"order {order.order_number} cancelled" + (f": {reason}" if reason else "")
    _hold_rows(order, ServiceStatus.CANCELLED.value, actor, why)
    if cancel_invoice:
        _cancel_invoice(order, actor, why)
    _order_status(order, OrderStatus.CANCELLED.value, actor, reason)
    return order


def mark_fraud(order_id: int, actor: Actor | None = None, reason: str = "") -> Order:
    """Hold an order as Fraud: its rows not set up yet become Fraud, its unpaid
    invoice is cancelled. Set it to Pending again to release it."""
    actor = actor or Actor.system()
    order = _order(order_id)
    if order.status == OrderStatus.FRAUD and not _pending_rows(order):
        return order
    if any(service.status not in NOT_LIVE for service in _services(order)):
        raise OrderError(f"Order {order.order_number} has live services: suspend or terminate them first.")
    why = f"order {order.order_number} marked as fraud" + (f": {reason}" if reason else "")
    _hold_rows(order, ServiceStatus.FRAUD.value, actor, why)
    _cancel_invoice(order, actor, why)
    _order_status(order, OrderStatus.FRAUD.value, actor, reason)
    return order


def _pending_rows(order: Order) -> bool:
    return any(row.status == ServiceStatus.PENDING for row in (*_services(order), *_addons(order))) or \
        any(domain.status == DomainStatus.PENDING for domain in _domains(order))


def delete_order(order_id: int, actor: Actor | None = None) -> None:
    """Delete a Cancelled or Fraud order with the services, addons and domains it made
    (none of them ever went live). Its invoice stays, cancelled, with its number."""
    actor = actor or Actor.system()
    order = _order(order_id)
    if order.status not in (OrderStatus.CANCELLED, OrderStatus.FRAUD):
        raise OrderError(f"Order {order.order_number} is {order.status}: only Cancelled or Fraud "
                         "orders can be deleted.")
    services, domains = _services(order), _domains(order)
    if any(service.status not in NOT_LIVE for service in services):
        raise OrderError(f"Order {order.order_number} has live services: it cannot be deleted.")
    service_ids = [service.id for service in services]
    if service_ids and db.session.scalar(select(CancellationRequest.id).where(
            CancellationRequest.service_id.in_(service_ids)).limit(1)) is not None or \
            service_ids and db.session.scalar(select(Upgrade.id).where(
                Upgrade.service_id.in_(service_ids)).limit(1)) is not None:
        raise OrderError(f"Order {order.order_number}: its services have history; cancel it instead.")
    _cancel_invoice(order, actor, f"order {order.order_number} deleted")
    summary = {"order_number": order.order_number, "status": order.status, "amount": order.amount,
               "services": len(services), "domains": len(domains)}
    log("order_deleted", f"Order {order.order_number} deleted with {len(services)} service(s) and "
        f"{len(domains)} domain(s)", order, before=summary, actor=actor)
    order.items.clear()  # delete-orphan: the items go first, they point at the services
    db.session.flush()
    for row in (*services, *domains):
        db.session.delete(row)
    db.session.flush()
    db.session.delete(order)
    db.session.flush()
