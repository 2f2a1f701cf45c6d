"""Placing orders (app.orders.checkout.create_order) and their lifecycle
(app.orders.lifecycle): rows made, the invoice, promotions counted, fraud holds,
accept / pay / cancel / fraud / delete, each once."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from app import settings
from app.activity import Actor
from app.billing import credit, payments
from app.events import hook, unhook
from app.models.billing import Invoice, InvoiceItem, InvoiceStatus
from app.models.domains import Domain
from app.models.orders import Order, OrderItem, Promotion, Service, ServiceAddon, ServiceConfigOption
from app.models.support import Ticket
from app.models.system import ActivityLog, EmailMessage
from app.orders import lifecycle
from app.orders.cart import Cart, CartLine, OrderError
from app.orders.checkout import create_order
from tests import factories, orders_catalog

D = Decimal
TODAY = date(2026, 12, 5)
STAFF = Actor("staff", "tester")


@pytest.fixture
def shop(db):
    return orders_catalog.build()


def cart_for(shop, promo=None, transfer=False, epp="AUTH-123") -> Cart:
    return Cart("USD", [
        CartLine("product", shop.product.id, "Monthly",
                 config_options={shop.size.id: shop.large.id, shop.ips.id: 2, shop.backups.id: 1},
                 addon_ids=[shop.ssl.id], domain="example.com"),
        CartLine("domain", domain="example.com", domain_action="transfer" if transfer else "register",
                 years=1, epp_code=epp if transfer else None),
    ], promo_code=promo)


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def events():
    heard = []
    listeners = []
    for name in ("OrderPaid", "AcceptOrder", "AfterModuleCreate"):
        def listen(payload, name=name):
            heard.append((name, payload))
        hook(name)(listen)
        listeners.append(listen)
    yield heard
    for listen in listeners:
        unhook(listen)


def test_create_order_makes_every_row_and_the_invoice(db, shop):
    orders_catalog.vat("20", "US")
    customer = factories.client()
    order = create_order(cart_for(shop), customer.id, "banktransfer", "203.0.113.5", today=TODAY)
    db.session.commit()

    assert len(order.order_number) == 10 and order.order_number.isdigit()
    assert (order.status, order.amount, order.payment_method) == ("Pending", D("48.60"), "banktransfer")
    assert order.fraud_score == 0
    service = db.session.scalar(select(Service))
    assert (service.status, service.recurring_amount, service.first_payment_amount) == (
        "Pending", D("18.50"), D("24.50"))
    assert (service.next_due_date, service.next_invoice_date, service.domain) == (
        TODAY, date(2027, 1, 5), "example.com")
    assert service.username and service.password
    assert sorted((o.option_id, o.value_id is not None, o.quantity)
                  for o in db.session.scalars(select(ServiceConfigOption))) == sorted(
        [(shop.size.id, True, 1), (shop.ips.id, True, 2), (shop.backups.id, True, 1)])
    addon = db.session.scalar(select(ServiceAddon))
    assert (addon.service_id, addon.status, addon.recurring_amount, addon.name) == (
        service.id, "Pending", D("4.00"), "SSL Certificate")
    domain = db.session.scalar(select(Domain))
    assert (domain.name, domain.type, domain.status, domain.recurring_amount, domain.next_invoice_date) == (
        "example.com", "Register", "Pending", D("13.00"), date(2027, 12, 5))
    assert [i.kind for i in db.session.scalars(select(OrderItem).order_by(OrderItem.id))] == [
        "product", "addon", "domain"]

    invoice = db.session.get(Invoice, order.invoice_id)
    assert (invoice.status, invoice.subtotal, invoice.tax1, invoice.total) == (
        "Unpaid", D("40.50"), D("8.10"), D("48.60"))
    assert invoice.number
    items = [(i.type, i.rel_id, i.amount) for i in sorted(invoice.items, key=lambda i: i.id)]
    assert items == [("Hosting", service.id, D("18.50")), ("Setup", service.id, D("6.00")),
                     ("Addon", addon.id, D("4.00")), ("DomainRegister", domain.id, D("12.00"))]
    hosting = sorted(invoice.items, key=lambda i: i.id)[0]
    assert hosting.description.startswith("Shared Hosting - Plan") and "(2026-12-05 - 2027-01-04)" in hosting.description
    assert "Size: Large" in hosting.description
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.action == "order_created")) is not None


def test_promotion_is_recorded_and_recurring_amount_discounted(db, shop):
    promo = orders_catalog.promotion("TENOFF", "Percentage", "10", recurring=True, max_uses=1)
    customer = factories.client()
    order = create_order(cart_for(shop, "tenoff"), customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    service = db.session.scalar(select(Service))
    assert (service.recurring_amount, service.promotion_id) == (D("16.65"), promo.id)
    assert db.session.get(Promotion, promo.id).uses == 1
    invoice = db.session.get(Invoice, order.invoice_id)
    promo_line = next(i for i in invoice.items if i.type == "PromoHosting")
    assert promo_line.amount == D("-2.45") and "TENOFF" in promo_line.description
    assert invoice.total == D("38.05") and order.promotion_id == promo.id

    # Used up: the next order is refused and nothing changes.
    other = factories.client()
    db.session.commit()
    with pytest.raises(OrderError, match="maximum number of times"):
        create_order(Cart("USD", [CartLine("domain", domain="second.com", domain_action="register")],
                          promo_code="TENOFF"), other.id, "banktransfer", None, today=TODAY)


@pytest.mark.parametrize("breakage, message", [
    (dict(payment_method="nosuchgateway"), "is not a payment method"),
    (dict(client_id=999999), "Unknown client"),
    (dict(domain="taken.com"), "already in our system"),
    (dict(promo="EXPIRED"), "expired on"),
    (dict(transfer_without_epp=True), "needs its EPP"),
])
def test_bad_input_changes_nothing(db, shop, breakage, message):
    customer = factories.client()
    factories.domain(customer, "taken.com")
    orders_catalog.promotion("EXPIRED", expiration_date=date(2026, 1, 1))
    db.session.commit()
    cart = cart_for(shop, breakage.get("promo"), transfer=breakage.get("transfer_without_epp", False), epp=None)
    if "domain" in breakage:
        cart.lines[1].domain = breakage["domain"]
    before = [count(db, model) for model in (Order, Service, Domain, Invoice, ActivityLog)]
    with pytest.raises(OrderError, match=message):
        create_order(cart, breakage.get("client_id", customer.id),
                     breakage.get("payment_method", "banktransfer"), None, today=TODAY)
    db.session.rollback()
    assert [count(db, model) for model in (Order, Service, Domain, Invoice, ActivityLog)] == before


def test_transfer_keeps_the_epp_code_encrypted(db, shop):
    customer = factories.client()
    create_order(cart_for(shop, transfer=True, epp="S3cret-EPP"), customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    domain = db.session.scalar(select(Domain))
    assert (domain.type, domain.epp_code) == ("Transfer", "S3cret-EPP")
    stored = db.session.execute(text("SELECT epp_code FROM domains")).scalar()
    assert "S3cret-EPP" not in stored
    invoice_item = db.session.scalar(select(InvoiceItem).where(InvoiceItem.type == "DomainTransfer"))
    assert invoice_item.amount == D("9.00")


def test_accept_provisions_once(db, shop, events):
    customer = factories.client()
    order = create_order(cart_for(shop), customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    lifecycle.accept_order(order.id, actor=STAFF)
    db.session.commit()
    service = db.session.scalar(select(Service))
    assert (order.status, service.status, db.session.scalar(select(ServiceAddon)).status) == (
        "Active", "Active", "Active")
    assert order.accepted_at is not None
    assert count(db, Ticket) == 1  # the manual module's to-do
    welcome = db.session.scalars(select(EmailMessage).where(EmailMessage.related_type == "service")).all()
    assert len(welcome) == 1 and service.domain in welcome[0].subject
    # The domain waits for the registrar integration (or is sent to it).
    domain = db.session.scalar(select(Domain))
    assert domain.status in ("Pending", "Active", "Pending Registration")

    lifecycle.accept_order(order.id, actor=STAFF)
    db.session.commit()
    assert count(db, Ticket) == 1
    assert len(db.session.scalars(select(EmailMessage).where(EmailMessage.related_type == "service")).all()) == 1
    assert [name for name, _ in events].count("AcceptOrder") == 1
    assert [name for name, _ in events].count("AfterModuleCreate") == 1


def pay(db, invoice_id, amount, reference):
    payments.apply_payment(invoice_id, amount, "USD", "banktransfer", reference,
                           paid_at=datetime(2026, 12, 5, 12, 0))
    db.session.commit()


def test_paying_the_invoice_accepts_the_order_once(db, shop, events):
    customer = factories.client()
    order = create_order(cart_for(shop), customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    invoice = db.session.get(Invoice, order.invoice_id)
    pay(db, invoice.id, invoice.total, "T-1")
    service = db.session.scalar(select(Service))
    assert (order.status, service.status, invoice.status) == ("Active", "Active", "Paid")
    assert service.next_due_date == date(2027, 1, 5)   # the first period is paid
    assert count(db, Ticket) == 1
    pay(db, invoice.id, D("5.00"), "T-2")              # paid again: credit, nothing set up twice
    assert count(db, Ticket) == 1 and customer.credit_balance == D("5.00")
    names = [name for name, _ in events]
    assert names.count("OrderPaid") == 1 and names.count("AcceptOrder") == 1
    assert names.count("AfterModuleCreate") == 1


def test_paid_order_waits_when_the_product_is_accepted_by_hand_or_the_setting_is_off(db, shop):
    customer = factories.client()
    shop.product.auto_setup = "accept"
    order = create_order(cart_for(shop), customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    pay(db, order.invoice_id, db.session.get(Invoice, order.invoice_id).total, "T-1")
    assert order.status == "Pending" and db.session.scalar(select(Service)).status == "Pending"

    shop.product.auto_setup = "payment"
    settings.set_value("AutoAcceptPaidOrders", "off")
    second = create_order(Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="two.com")]),
                          customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    pay(db, second.invoice_id, D("15.00"), "T-2")
    assert second.status == "Pending"


def test_zero_total_order_is_paid_and_accepted_at_once(db, shop):
    orders_catalog.promotion("FREE", "Percentage", "100")
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="free.com")], promo_code="FREE")
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    invoice = db.session.get(Invoice, order.invoice_id)
    assert (invoice.total, invoice.status, order.status) == (D("0.00"), "Paid", "Active")
    assert db.session.scalar(select(Service)).status == "Active"


def test_credit_is_applied_when_asked(db, shop):
    customer = factories.client()
    credit.add_credit(customer.id, D("20.00"), "goodwill")
    db.session.commit()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="credit.com")])
    order = create_order(cart, customer.id, "banktransfer", None, apply_credit=True, today=TODAY)
    db.session.commit()
    invoice = db.session.get(Invoice, order.invoice_id)
    assert (invoice.credit_applied, invoice.status, order.status) == (D("15.00"), "Paid", "Active")
    assert customer.credit_balance == D("5.00")


def test_fraud_rules_hold_the_order(db, shop):
    settings.set_value("FraudHighRiskCountries", "XX, YY")
    risky = factories.client(email="someone@mailinator.com", country="XX")
    order = create_order(cart_for(shop), risky.id, "banktransfer", "198.51.100.7", today=TODAY)
    db.session.commit()
    assert (order.status, order.fraud_score) == ("Fraud", 70)
    assert "disposable email domain mailinator.com" in order.fraud_output
    pay(db, order.invoice_id, order.amount, "T-F")
    assert order.status == "Fraud" and db.session.scalar(select(Service)).status == "Pending"
    assert count(db, Ticket) == 0
    # Reviewed and released: accepted by staff.
    lifecycle.set_pending(order.id, actor=STAFF)
    lifecycle.accept_order(order.id, actor=STAFF)
    db.session.commit()
    assert order.status == "Active"


def test_too_many_orders_from_one_ip(db, shop):
    settings.set_value("FraudMaxOrdersPerIp", "2")
    customer = factories.client()
    placed = []
    for n in range(3):
        cart = Cart("USD", [CartLine("domain", domain=f"ip{n}.com", domain_action="register")])
        placed.append(create_order(cart, customer.id, "banktransfer", "192.0.2.1", today=TODAY))
        db.session.commit()
    assert [o.status for o in placed] == ["Pending", "Pending", "Fraud"]
    assert placed[2].fraud_score == 50


def test_country_change_adds_to_the_score(db, shop):
    customer = factories.client(country="US")
    cart = lambda n: Cart("USD", [CartLine("domain", domain=f"c{n}.com", domain_action="register")])
    create_order(cart(1), customer.id, "banktransfer", None, today=TODAY)
    customer.country = "FR"
    second = create_order(cart(2), customer.id, "banktransfer", None, today=TODAY)
    assert second.fraud_score == 20 and second.status == "Pending"


def test_cancel_pending_fraud_and_delete(db, shop):
    customer = factories.client()
    order = create_order(cart_for(shop), customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    invoice = db.session.get(Invoice, order.invoice_id)

    lifecycle.cancel_order(order.id, actor=STAFF, reason="client asked")
    db.session.commit()
    assert (order.status, invoice.status) == ("Cancelled", "Cancelled")
    assert {s.status for s in db.session.scalars(select(Service))} == {"Cancelled"}
    assert db.session.scalar(select(Domain)).status == "Cancelled"
    with pytest.raises(OrderError, match="set it to Pending"):
        lifecycle.accept_order(order.id)
    db.session.rollback()

    lifecycle.set_pending(order.id, actor=STAFF)
    db.session.commit()
    assert (order.status, invoice.status, db.session.scalar(select(Service)).status) == (
        "Pending", "Unpaid", "Pending")

    lifecycle.mark_fraud(order.id, actor=STAFF)
    db.session.commit()
    assert (order.status, invoice.status, db.session.scalar(select(Service)).status,
            db.session.scalar(select(Domain)).status) == ("Fraud", "Cancelled", "Fraud", "Fraud")

    lifecycle.delete_order(order.id, actor=STAFF)
    db.session.commit()
    assert [count(db, m) for m in (Order, OrderItem, Service, ServiceAddon, Domain)] == [0, 0, 0, 0, 0]
    assert db.session.get(Invoice, invoice.id).status == InvoiceStatus.CANCELLED
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.action == "order_deleted")) is not None


def test_an_active_order_cannot_be_deleted_or_cancelled(db, shop):
    customer = factories.client()
    order = create_order(cart_for(shop), customer.id, "banktransfer", None, today=TODAY)
    lifecycle.accept_order(order.id, actor=STAFF)
    db.session.commit()
    with pytest.raises(OrderError, match="only Cancelled or Fraud"):
        lifecycle.delete_order(order.id)
    with pytest.raises(OrderError, match="live services"):
        lifecycle.cancel_order(order.id)


def test_prorata_service_is_due_on_the_prorata_day_once_paid(db):
    shop = orders_catalog.build(prorata_billing=True, prorata_day=1)
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="pro.com")])
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    invoice = db.session.get(Invoice, order.invoice_id)
    assert invoice.total == D("13.71")   # 8.71 for Dec 5-31, plus the 5.00 setup fee
    pay(db, invoice.id, invoice.total, "T-P")
    service = db.session.scalar(select(Service))
    assert (service.next_due_date, service.next_invoice_date) == (date(2027, 1, 1), date(2027, 1, 1))


def test_recurring_promotion_ends_after_its_renewals(db, shop):
    from app.billing.generation import generate_due_invoices

    orders_catalog.promotion("TWICE", "Percentage", "10", recurring=True, recur_for=1)
    customer = factories.client()
    order = create_order(cart_for(shop, "TWICE"), customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    pay(db, order.invoice_id, db.session.get(Invoice, order.invoice_id).total, "T-1")
    service = db.session.scalar(select(Service))
    assert (service.status, service.recurring_amount) == ("Active", D("16.65"))

    generate_due_invoices(date(2027, 1, 1), (customer.id, customer.id))
    renewal = db.session.scalar(select(Invoice).where(Invoice.id != order.invoice_id,
                                                      Invoice.client_id == customer.id)
                                .order_by(Invoice.id.desc()))
    hosting = next(i for i in renewal.items if i.type == "Hosting")
    assert (hosting.amount, hosting.period_start) == (D("16.65"), date(2027, 1, 5))
    pay(db, renewal.id, renewal.total, "T-2")
    db.session.expire_all()
    service = db.session.scalar(select(Service))
    assert (service.recurring_amount, service.promotion_id) == (D("18.50"), None)
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.action == "service_promotion_ended"))
    # Kept in the amount history, so the MRR reports price the past at the promoted amount.
    from app.models.orders import ServiceAmountChange
    change = db.session.scalar(select(ServiceAmountChange).where(ServiceAmountChange.service_id == service.id))
    assert (change.old_amount, change.new_amount) == (D("16.65"), D("18.50"))


def test_paid_order_registers_and_transfers_domains_through_the_registrar(db, shop):
    from app.models.domains import Tld

    db.session.scalar(select(Tld)).registrar_module = "local"
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="reg.com"),
                        CartLine("domain", domain="reg.com", domain_action="register", years=2),
                        CartLine("domain", domain="moving.com", domain_action="transfer", epp_code="EPP-9")])
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    pay(db, order.invoice_id, db.session.get(Invoice, order.invoice_id).total, "T-R")
    registered, moving = db.session.scalars(select(Domain).order_by(Domain.id)).all()
    assert (registered.status, registered.registrar, registered.next_due_date) == (
        "Active", "local", date(2028, 12, 5))
    assert moving.status in ("Active", "Pending Transfer") and moving.epp_code == "EPP-9"
    lifecycle.accept_order(order.id, actor=STAFF)      # again: nothing sent twice
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(ActivityLog).where(
        ActivityLog.action == "domain_registered")) == 1


def test_domains_without_a_registrar_module_stay_pending_with_a_log_line(db, shop):
    customer = factories.client()
    cart = Cart("USD", [CartLine("domain", domain="manual.com", domain_action="register")])
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    lifecycle.accept_order(order.id, actor=STAFF)
    db.session.commit()
    assert db.session.scalar(select(Domain)).status == "Pending"
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "domain_registrar_failed"))
    assert "has no registrar module" in entry.description


def test_accepting_a_fraud_order_releases_its_rows_and_invoice(db, shop):
    customer = factories.client()
    order = create_order(cart_for(shop), customer.id, "banktransfer", None, today=TODAY)
    lifecycle.mark_fraud(order.id, actor=STAFF, reason="check")
    lifecycle.accept_order(order.id, actor=STAFF)
    db.session.commit()
    assert order.status == "Active" and db.session.scalar(select(Service)).status == "Active"
    assert db.session.get(Invoice, order.invoice_id).status == "Unpaid"


def test_free_product_needs_no_invoice_and_is_accepted(db):
    shop = orders_catalog.build(payment_type="free")
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, domain="free.example")])
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    service = db.session.scalar(select(Service))
    assert (order.invoice_id, order.amount, order.status) == (None, D("0.00"), "Active")
    assert (service.billing_cycle, service.status, service.next_due_date) == ("Free Account", "Active", None)


def test_stock_is_taken_by_the_order(db):
    shop = orders_catalog.build(stock_control=True, stock_quantity=3)
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", quantity=2, domain="s.example")])
    create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    assert shop.product.stock_quantity == 1 and db.session.scalar(select(func.count()).select_from(Service)) == 2
    with pytest.raises(OrderError, match="Only 1 of"):
        create_order(cart, customer.id, "banktransfer", None, today=TODAY)


def test_products_set_up_on_order_are_active_before_payment(db, shop):
    shop.product.auto_setup = "order"
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="now.example"),
                        CartLine("domain", domain="now.com", domain_action="register")])
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    assert order.status == "Active" and db.session.scalar(select(Service)).status == "Active"
    assert db.session.get(Invoice, order.invoice_id).status == "Unpaid"
    assert db.session.scalar(select(Domain)).status == "Pending"   # domains wait for the payment


def test_a_module_failure_on_order_leaves_the_order_pending(db, shop):
    shop.product.auto_setup = "order"
    shop.product.module = "nosuchpanel"   # the module cannot be found: the create step fails
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="later.example")])
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    assert order.status == "Pending" and db.session.scalar(select(Service)).status == "Pending"
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "order_accept_failed"))
    assert "nosuchpanel" in entry.description


def test_a_module_failure_on_payment_keeps_the_payment_and_the_order_pending(db, shop):
    shop.product.module = "nosuchpanel"
    customer = factories.client()
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="paid.example")])
    order = create_order(cart, customer.id, "banktransfer", None, today=TODAY)
    db.session.commit()
    pay(db, order.invoice_id, D("15.00"), "T-M")
    assert db.session.get(Invoice, order.invoice_id).status == "Paid"
    assert order.status == "Pending" and db.session.scalar(select(Service)).status == "Pending"
    assert db.session.scalar(select(ActivityLog).where(ActivityLog.action == "order_accept_failed"))
