"""Upgrades and downgrades of a service's product or billing cycle, prorated.

Transactions: these functions flush and never commit; the caller (view, task, CLI)
owns the transaction and commits or rolls back the whole operation (see
numbering_counter.unit_of_work). Each change is written to the activity log.

The flow, as in WHMCS: apply_upgrade records an Upgrade row. When money is due it
makes an invoice with one Upgrade line (rel_id = the upgrade) and the change waits
until that invoice is paid (payments.mark_invoice_paid calls complete_paid_upgrade);
cancelling the invoice cancels the upgrade. When nothing is due (a downgrade) the
change is made at once, and with CreditOnDowngrade the unused difference becomes
credit. The next due date stays, unless the cycle changes: then it is today + the
new cycle, as proration.upgrade_quote decides.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app import settings
from app.activity import Actor, log
from app.billing import credit as credit_ledger
from app.billing import invoicing, payments
from app.billing.cycles import parse_cycle
from app.billing.errors import BillingError
from app.billing.proration import UpgradeQuote, upgrade_quote
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import Invoice, InvoiceItem, ItemType
from app.models.catalog import RECURRING_CYCLES, Product, ProductPricing
from app.models.clients import Client
from app.models.orders import Service, ServiceStatus, Upgrade

PENDING, COMPLETED = "Pending", "Completed"


@dataclass(frozen=True)
class _Change:
    service: Service
    product: Product
    cycle: str
    new_amount: Decimal
    quote: UpgradeQuote


def _change(service_id: int, new_product_id: int, new_cycle: str, today: date) -> _Change:
    """Check the requested change and quote it; BillingError naming what is wrong."""
    if not isinstance(today, date):
        raise BillingError(f"today must be a date, not {today!r}")
    service = db.session.get(Service, service_id) if isinstance(service_id, int) else None
    if service is None:
        raise BillingError(f"service {service_id!r} does not exist")
    if service.status != ServiceStatus.ACTIVE:
        raise BillingError(f"service #{service.id} is {service.status}: only active services change plan")
    product = db.session.get(Product, new_product_id) if isinstance(new_product_id, int) else None
    if product is None:
        raise BillingError(f"product {new_product_id!r} does not exist")
    if product.retired:
        raise BillingError(f"product {product.name!r} is retired: no service can move to it")
    cycle = parse_cycle(new_cycle)
    if product.id == service.product_id and cycle == parse_cycle(service.billing_cycle):
        raise BillingError(f"service #{service.id} is already on {product.name} ({cycle})")
    _require_due_date(service)
    currency = service.client.currency
    pricing = db.session.scalar(select(ProductPricing).where(
        ProductPricing.product_id == product.id, ProductPricing.currency_id == currency.id,
        ProductPricing.cycle == cycle))
    if pricing is None:
        raise BillingError(f"product {product.name!r} has no {cycle} price in {currency.code}")
    return _priced_change(service, product, cycle, pricing.price, today,
                          settings.get_bool("CreditOnDowngrade"))


def _require_due_date(service: Service) -> None:
    if service.next_due_date is None:
        raise BillingError(f"service #{service.id} has no next due date to prorate against")


def _priced_change(service: Service, product: Product, cycle: str, price: Decimal,
                   today: date, credit_on_downgrade: bool) -> _Change:
    """Quote a checked change at the plan's price for one unit (no query of its own, so
    plan_choices prices every plan from what it loaded at once)."""
    new_amount = price * max(service.quantity or 1, 1)
    quote = upgrade_quote(
        service.recurring_amount, service.billing_cycle, new_amount, cycle, today,
        service.next_due_date, credit_on_downgrade=credit_on_downgrade,
        anchor_day=payments.service_anchor_day(service),
        places=invoicing.currency_places(service.client),
    )
    return _Change(service, product, cycle, new_amount, quote)


@dataclass(frozen=True)
class PlanChoice:
    """One plan and cycle a service may move to, with what it costs today."""

    product: Product
    cycle: str
    recurring_amount: Decimal
    quote: UpgradeQuote

    @property
    def key(self) -> str:
        return f"{self.product.id}:{self.cycle}"

    @property
    def is_downgrade(self) -> bool:
        return self.quote.charge < self.quote.credit


def plan_choices(service_id: int, today: date,
                 refusals: list[str] | None = None) -> list[PlanChoice]:
    """The plans of the service's product group on sale in the client's currency,
    each recurring cycle priced as quote_upgrade prices it, less the plan and cycle
    it has now. Three queries however many plans: the service (with its client,
    currency and product), the plans with their prices, the CreditOnDowngrade
    setting. Empty for a service that cannot change plan (not active, no next due
    date); the reasons a quote gives (no due date, a plan it cannot price) are added
    to `refusals` when given."""
    service = db.session.scalar(
        select(Service).where(Service.id == service_id)
        .options(joinedload(Service.client).joinedload(Client.currency),
                 joinedload(Service.product)))
    if service is None or service.status != ServiceStatus.ACTIVE.value:
        return []
    try:
        _require_due_date(service)
    except BillingError as error:
        if refusals is not None:
            refusals.append(str(error))
        return []
    rows = db.session.execute(
        select(Product, ProductPricing.cycle, ProductPricing.price)
        .join(ProductPricing, ProductPricing.product_id == Product.id)
        .where(Product.group_id == service.product.group_id, Product.retired.is_(False),
               (Product.hidden.is_(False)) | (Product.id == service.product_id),
               ProductPricing.currency_id == service.client.currency_id,
               ProductPricing.cycle.in_([cycle.value for cycle in RECURRING_CYCLES]))).all()
    credit_on_downgrade = settings.get_bool("CreditOnDowngrade")
    order = {cycle.value: n for n, cycle in enumerate(RECURRING_CYCLES)}
    current_cycle = parse_cycle(service.billing_cycle)
    choices = []
    for product, cycle, price in sorted(rows, key=lambda r: (r[0].sort_order, r[0].id,
                                                             order[r[1]])):
        if product.id == service.product_id and cycle == current_cycle:
            continue
        try:
            change = _priced_change(service, product, cycle, price, today, credit_on_downgrade)
        except BillingError as error:
            if refusals is not None and str(error) not in refusals:
                refusals.append(str(error))
            continue
        choices.append(PlanChoice(product, cycle, change.new_amount, change.quote))
    return choices


def quote_upgrade(service_id: int, new_product_id: int, new_cycle: str, today: date) -> UpgradeQuote:
    """What moving the service to the product and cycle costs today (nothing is written)."""
    return _change(service_id, new_product_id, new_cycle, today).quote


def apply_upgrade(service_id: int, new_product_id: int, new_cycle: str, today: date,
                  actor: Actor | None = None, payment_method: str | None = None) -> Upgrade:
    """Order the change: an invoice when money is due (paid by payment_method, else the
    client's default gateway), else the change (and credit) now."""
    actor = actor or Actor.system()
    change = _change(service_id, new_product_id, new_cycle, today)
    service, product, quote = change.service, change.product, change.quote
    invoicing.lock_client(service.client_id)  # one plan change of a client at a time
    pending = db.session.scalar(select(Upgrade.id).where(Upgrade.service_id == service.id,
                                                         Upgrade.status == PENDING))
    if pending is not None:
        raise BillingError(f"service #{service.id} has an upgrade waiting for payment already "
                           f"(upgrade #{pending})")
    old_label = f"{service.product.name} ({service.billing_cycle})"
    new_label = f"{product.name} ({change.cycle})"
    upgrade = Upgrade(
        service_id=service.id, kind="product" if product.id != service.product_id else "cycle",
        old_value=f"{service.product_id},{parse_cycle(service.billing_cycle)}",
        new_value=f"{product.id},{change.cycle}",
        amount=max(quote.amount_due, Decimal("0.00")),
        credit_amount=max(-quote.amount_due, Decimal("0.00")),
        new_recurring_amount=change.new_amount, status=PENDING,
    )
    db.session.add(upgrade)
    db.session.flush()
    log("upgrade_ordered", f"Service #{service.id}: {old_label} => {new_label}, due "
        f"{quote.amount_due} (credit for unused time {quote.credit})", service,
        after={"upgrade_id": upgrade.id, "amount_due": quote.amount_due}, actor=actor)

    if quote.amount_due > 0:
        period_end = quote.new_next_due_date - timedelta(days=1)
        line = invoicing.InvoiceLine(
            type=ItemType.UPGRADE, rel_id=upgrade.id,
            description=f"Upgrade: {old_label} => {new_label}, {today} to {period_end}",
            amount=quote.amount_due, taxed=product.taxed, period_start=today, period_end=period_end)
        invoicing.create_invoice(service.client_id, [line], issue_date=today, due_date=today,
                                 actor=actor, payment_method=payment_method)
        return upgrade
    _complete(upgrade, quote.new_next_due_date, actor)
    if quote.amount_due < 0:
        credit_ledger.add_credit(service.client_id, -quote.amount_due,
                                 f"Downgrade of service #{service.id} to {new_label}: unused time",
                                 actor=actor)
    return upgrade


def upgrade_invoice(upgrade_id: int) -> Invoice | None:
    """The invoice whose Upgrade line bills this upgrade (None when nothing was due)."""
    return db.session.scalar(
        select(Invoice).join(InvoiceItem, InvoiceItem.invoice_id == Invoice.id)
        .where(InvoiceItem.type == ItemType.UPGRADE.value, InvoiceItem.rel_id == upgrade_id))


def complete_paid_upgrade(item: InvoiceItem, actor: Actor | None = None) -> Upgrade | None:
    """Carry out the upgrade an Upgrade line billed, now its invoice is paid (once)."""
    actor = actor or Actor.system()
    upgrade = db.session.get(Upgrade, item.rel_id) if item.rel_id is not None else None
    if upgrade is None or upgrade.status != PENDING:
        return None
    new_next_due = item.period_end + timedelta(days=1) if item.period_end else None
    _complete(upgrade, new_next_due, actor)
    return upgrade


def _complete(upgrade: Upgrade, new_next_due_date: date | None, actor: Actor) -> None:
    service = upgrade.service
    product_id, cycle = upgrade.new_value.split(",", 1)
    product = db.session.get(Product, int(product_id))
    before = {"product_id": service.product_id, "billing_cycle": service.billing_cycle,
              "recurring_amount": service.recurring_amount, "next_due_date": service.next_due_date}
    if product.id != service.product_id and service.status == ServiceStatus.ACTIVE:
        result = payments.run_module_action(lambda module: module.change_package(service, product), service)
        if not result.success:
            # The client paid for the plan: billing follows it, staff fix the server.
            log("module_change_package_failed", f"Service #{service.id}: the module could not "
                f"change the package to {product.name} ({result.message})", service, actor=actor)
    service.product = product
    service.billing_cycle = cycle
    service.recurring_amount = upgrade.new_recurring_amount
    if new_next_due_date is not None and new_next_due_date != service.next_due_date:
        service.next_due_date = new_next_due_date
        service.next_invoice_date = new_next_due_date
    upgrade.status = COMPLETED
    upgrade.applied_at = utcnow()
    db.session.flush()
    log("upgrade_completed", f"Service #{service.id} is now {product.name} ({cycle}) at "
        f"{upgrade.new_recurring_amount}", service, before=before,
        after={"product_id": service.product_id, "billing_cycle": service.billing_cycle,
               "recurring_amount": service.recurring_amount, "next_due_date": service.next_due_date},
        actor=actor)
