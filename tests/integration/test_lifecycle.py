"""Suspension, unsuspension, termination and cancellation requests of the daily run,
through the provisioning modules (the manual module opens staff to-do tickets)."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.billing import invoicing, payments
from app.billing.generation import generate_due_invoices
from app.billing.lifecycle import (
    process_cancellation_requests, suspend_overdue, terminate_overdue, unsuspend_paid,
)
from app.models.billing import Invoice
from app.models.clients import ClientGroup
from app.models.orders import CancellationRequest, Service, ServiceAddon
from app.models.support import Ticket
from app.models.system import ActivityLog, EmailMessage
from app.provisioning import ModuleResult, ProvisioningModule, register
from tests import factories
from tests.integration.test_generation import add_template, count, set_settings

DUE = date(2026, 6, 1)


@register
class RefusingModule(ProvisioningModule):
    """A control panel that answers every request with an error."""

    name = "test-refusing"
    display_name = "Refusing (tests)"

    def _no(self, *args) -> ModuleResult:
        return ModuleResult.failed("the server said no")

    create_account = suspend_account = unsuspend_account = terminate_account = _no
    change_package = change_password = _no


def overdue_service(db, *, module: str = "manual", client=None, amount: str = "10.00", **fields) -> Service:
    """An Active service whose invoice, due on DUE, is unpaid."""
    client = client or factories.client()
    product = factories.product(name="Business Hosting", module=module)
    service = factories.service(client, product, amount=amount, next_due=DUE,
                                domain=f"site{client.id}-{product.id}.example", **fields)
    db.session.commit()
    generate_due_invoices(DUE, (client.id, client.id))
    return service


def status_of(db, service: Service) -> tuple[str, str | None]:
    db.session.expire_all()
    row = db.session.get(Service, service.id)
    return row.status, row.suspension_reason


def todo_subjects(db, service: Service) -> list[str]:
    return db.session.scalars(select(Ticket.subject).where(Ticket.service_id == service.id)
                              .order_by(Ticket.id)).all()


def invoice_of(db, service: Service) -> Invoice:
    return db.session.scalars(select(Invoice).where(Invoice.client_id == service.client_id)
                              .order_by(Invoice.id)).first()


def test_suspension_after_the_days_set_not_before_through_the_manual_module(db):
    add_template(db, "Service Suspension Notification", subject="Suspended: {{ service_domain }}",
                 body="Reason: {{ suspension_reason }}")
    service = overdue_service(db)

    assert suspend_overdue(DUE + timedelta(days=4))["suspended"] == 0
    assert status_of(db, service) == ("Active", None)

    counts = suspend_overdue(DUE + timedelta(days=5))
    assert (counts["suspended"], counts["errors"]) == (1, [])
    assert status_of(db, service) == ("Suspended", "Overdue on Payment")
    assert todo_subjects(db, service) == [f"Suspend hosting account: {service.domain} (service #{service.id})"]
    [email] = db.session.scalars(select(EmailMessage)).all()
    assert (email.subject, email.body_text) == (f"Suspended: {service.domain}", "Reason: Overdue on Payment")
    assert email.dedupe_key == f"service-suspended:{service.id}:{DUE + timedelta(days=5)}"

    assert suspend_overdue(DUE + timedelta(days=5))["suspended"] == 0
    assert suspend_overdue(DUE + timedelta(days=6))["suspended"] == 0
    assert count(db, EmailMessage) == 1 and len(todo_subjects(db, service)) == 1
    assert count(db, ActivityLog, ActivityLog.action == "service_suspended") == 1


def test_overrides_and_exemptions_are_honoured(db):
    group = ClientGroup(name="VIP", exempt_from_auto_suspend=True)
    db.session.add(group)
    db.session.commit()
    overridden = overdue_service(db, override_auto_suspend=True)
    until_passed = overdue_service(db, override_auto_suspend=True, suspend_until=DUE + timedelta(days=9))
    exempt_client = overdue_service(db, client=factories.client(auto_suspend_exempt=True))
    exempt_group = overdue_service(db, client=factories.client(group_id=group.id))

    suspend_overdue(DUE + timedelta(days=9))
    assert status_of(db, until_passed)[0] == "Active"  # suspend_until is that very day
    suspend_overdue(DUE + timedelta(days=10))
    assert status_of(db, until_passed)[0] == "Suspended"
    for service in (overridden, exempt_client, exempt_group):
        assert status_of(db, service)[0] == "Active"


def test_payment_unsuspends_and_the_sweep_catches_the_rest(db):
    paid = overdue_service(db)
    cancelled = overdue_service(db)
    suspend_overdue(DUE + timedelta(days=5))
    assert status_of(db, paid)[0] == status_of(db, cancelled)[0] == "Suspended"

    # Paying the invoice lifts the suspension at once (the payment engine).
    payments.apply_payment(invoice_of(db, paid).id, "10.00", "USD", "banktransfer", "T-7")
    db.session.commit()
    assert status_of(db, paid) == ("Active", None)
    assert todo_subjects(db, paid)[-1].startswith("Unsuspend hosting account:")

    # An invoice settled without a payment: the daily sweep unsuspends.
    invoicing.cancel_invoice(invoice_of(db, cancelled).id, reason="written off")
    db.session.commit()
    counts = unsuspend_paid(DUE + timedelta(days=6))
    assert counts["unsuspended"] == 1
    assert status_of(db, cancelled) == ("Active", None)
    assert unsuspend_paid(DUE + timedelta(days=6))["unsuspended"] == 0


def test_suspensions_for_other_reasons_stay(db):
    service = overdue_service(db)
    db.session.get(Service, service.id).status = "Suspended"
    db.session.get(Service, service.id).suspension_reason = "Abuse"
    db.session.commit()
    invoicing.cancel_invoice(invoice_of(db, service).id)
    db.session.commit()
    unsuspend_paid(DUE + timedelta(days=6))
    assert status_of(db, service) == ("Suspended", "Abuse")


def test_a_module_failure_changes_nothing_and_is_counted(db):
    service = overdue_service(db, module="test-refusing")
    counts = suspend_overdue(DUE + timedelta(days=5))
    assert counts["suspended"] == 0
    assert counts["errors"] == [f"service {service.id}: suspend failed: the server said no"]
    assert status_of(db, service) == ("Active", None)
    assert count(db, ActivityLog, ActivityLog.action == "service_suspend_failed") == 1
    # Tried again on the next run.
    assert len(suspend_overdue(DUE + timedelta(days=6))["errors"]) == 1


def test_termination_after_the_days_set(db):
    set_settings(db, AutoTermination="on", AutoTerminationDays="30")
    service = overdue_service(db)
    addon = ServiceAddon(service_id=service.id, client_id=service.client_id, name="SSL", status="Active",
                         billing_cycle="Annually", recurring_amount=Decimal("9.00"))
    spared = overdue_service(db, override_auto_terminate=True)
    db.session.add(addon)
    db.session.commit()
    suspend_overdue(DUE + timedelta(days=5))

    assert terminate_overdue(DUE + timedelta(days=29))["terminated"] == 0
    assert terminate_overdue(DUE + timedelta(days=30))["terminated"] == 1
    db.session.expire_all()
    terminated = db.session.get(Service, service.id)
    assert (terminated.status, terminated.termination_date) == ("Terminated", DUE + timedelta(days=30))
    assert db.session.get(ServiceAddon, addon.id).status == "Terminated"
    assert todo_subjects(db, service)[-1].startswith("Terminate hosting account:")
    assert status_of(db, spared)[0] == "Suspended"
    assert terminate_overdue(DUE + timedelta(days=31))["terminated"] == 0


def test_termination_is_off_by_default(db):
    service = overdue_service(db)
    assert terminate_overdue(DUE + timedelta(days=90)) == {"disabled": True}
    assert status_of(db, service)[0] == "Active"


def test_cancellation_requests(db):
    today = date(2026, 5, 25)
    client = factories.client()
    product = factories.product(name="Plan")
    now_service = factories.service(client, product, next_due=DUE, domain="now.example")
    later_service = factories.service(client, product, next_due=DUE, domain="later.example")
    db.session.add_all([
        CancellationRequest(service_id=now_service.id, type="Immediate", reason="Moving away"),
        CancellationRequest(service_id=later_service.id, type="End of Billing Period"),
    ])
    # An invoice holding only the immediately cancelled service is cancelled with it.
    own_invoice = invoicing.create_invoice(client.id, [invoicing.InvoiceLine(
        type="Hosting", rel_id=now_service.id, description="now.example June", amount=Decimal("10.00"),
        period_start=DUE)], issue_date=today, due_date=DUE)
    db.session.commit()

    counts = process_cancellation_requests(today)
    assert (counts["cancelled"], counts["invoices_cancelled"]) == (1, 1)
    db.session.expire_all()
    cancelled = db.session.get(Service, now_service.id)
    assert (cancelled.status, cancelled.termination_date) == ("Cancelled", today)
    assert db.session.get(Invoice, own_invoice.id).status == "Cancelled"
    assert todo_subjects(db, now_service) == [f"Terminate hosting account: now.example (service #{now_service.id})"]
    assert db.session.get(Service, later_service.id).status == "Active"

    assert process_cancellation_requests(DUE - timedelta(days=1))["cancelled"] == 0
    assert process_cancellation_requests(DUE)["cancelled"] == 1
    db.session.expire_all()
    assert db.session.get(Service, later_service.id).status == "Cancelled"
    processed = db.session.scalars(select(CancellationRequest.processed_at)).all()
    assert all(moment is not None for moment in processed)
    assert process_cancellation_requests(DUE + timedelta(days=1))["cancelled"] == 0


def test_an_invoice_billing_other_things_is_left_alone(db):
    client = factories.client()
    product = factories.product(name="Plan")
    leaving = factories.service(client, product, next_due=DUE)
    staying = factories.service(client, product, next_due=DUE)
    db.session.commit()
    generate_due_invoices(DUE - timedelta(days=10))  # one invoice for both services
    db.session.add(CancellationRequest(service_id=leaving.id, type="Immediate"))
    db.session.commit()
    assert process_cancellation_requests(DUE - timedelta(days=9))["invoices_cancelled"] == 0
    [invoice] = db.session.scalars(select(Invoice)).all()
    assert invoice.status == "Unpaid" and len(invoice.items) == 2
    assert status_of(db, staying)[0] == "Active"
    assert status_of(db, leaving)[0] == "Cancelled"
