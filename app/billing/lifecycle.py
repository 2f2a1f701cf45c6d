"""Service lifecycle of the daily run: auto-suspension, unsuspension, termination and
cancellation requests (WHMCS settings AutoSuspension(Days), AutoUnsuspend,
AutoTermination(Days), AutoCancellationRequests).

Candidates are found with one set-based query per chunk; each service is then acted
on through its provisioning module (module_for(service)) and committed on its own,
because a module acts on a remote system: a crash after one service never loses the
record of what was done to it. The service row changes only if the module succeeded;
a failure is written to the activity log, counted as an error, and tried again on
the next run (the service still matches). Reruns change nothing: a Suspended service
is no candidate for suspension, a processed request is not processed again.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import joinedload

from app.activity import Actor, log
from app.billing import invoicing, payments
from app.billing.automation import (
    ClientRange, SettingsSnapshot, automation_actor, in_client_chunks,
)
from app.billing.errors import BillingError
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import SERVICE_ITEM_TYPES, Invoice, InvoiceItem, InvoiceStatus, ItemType
from app.models.clients import Client, ClientGroup
from app.models.orders import CancellationRequest, Service, ServiceAddon, ServiceStatus
from app.notifications.merge_fields import service_email_context
from app.notifications.queue import EmailTemplateMissing, queue_email

OVERDUE_REASON = payments.OVERDUE_SUSPENSION_REASON  # "Overdue on Payment"
# Invoice lines that bill a service itself (rel_id = the service id).
SUSPENSION_TEMPLATE = "Service Suspension Notification"
UNSUSPENSION_TEMPLATE = "Service Unsuspension Notification"
IMMEDIATE = "Immediate"
END_OF_PERIOD = "End of Billing Period"


def _check_date(as_of) -> date:
    if not isinstance(as_of, date):
        raise BillingError(f"as_of must be a date, not {as_of!r}")
    return as_of


def _overdue_since(cutoff: date):
    """An unpaid invoice due on or before cutoff still bills this service."""
    return exists(
        select(InvoiceItem.id).join(Invoice, Invoice.id == InvoiceItem.invoice_id)
        .where(InvoiceItem.rel_id == Service.id, InvoiceItem.type.in_(SERVICE_ITEM_TYPES),
               Invoice.status == InvoiceStatus.UNPAID.value, Invoice.due_date <= cutoff)
    )


def _not_exempt():
    """Neither the client nor its group is exempt from automatic suspension."""
    group_exempt = exists().where(ClientGroup.id == Client.group_id,
                                  ClientGroup.exempt_from_auto_suspend.is_(True))
    return and_(Client.auto_suspend_exempt.is_(False), ~group_exempt)


def _candidates(low: int, high: int, *conditions) -> list[int]:
    return db.session.scalars(
        select(Service.id).join(Client, Client.id == Service.client_id)
        .where(Service.client_id.between(low, high), *conditions).order_by(Service.id)
    ).all()


def _load_service(service_id: int) -> Service:
    return db.session.scalars(
        select(Service).options(joinedload(Service.product), joinedload(Service.client))
        .where(Service.id == service_id)
    ).one()


def _notify(template: str, service: Service, dedupe_key: str, **extra) -> None:
    try:
        queue_email(template, service.client_id, {**service_email_context(service), **extra},
                    related=("service", service.id), dedupe_key=dedupe_key)
    except EmailTemplateMissing:
        return  # no such template: no email


def _each_service(service_ids: list[int], act, counts: dict, counter: str) -> dict:
    """act(service) -> True if done; each service committed (or rolled back) alone."""
    for service_id in service_ids:
        try:
            if act(_load_service(service_id)):
                counts[counter] += 1
            db.session.commit()
        except Exception as error:
            db.session.rollback()
            counts["errors"].append(f"service {service_id}: {type(error).__name__}: {error}")
    return counts


def _module_failed(service: Service, verb: str, message: str, counts: dict, actor: Actor) -> bool:
    log(f"service_{verb}_failed", f"Service #{service.id} not {verb}ed automatically: the module "
        f"failed ({message})", service, actor=actor)
    counts["errors"].append(f"service {service.id}: {verb} failed: {message}")
    return False


def _set_addons(service: Service, statuses: tuple[str, ...], new_status: str, as_of: date) -> None:
    table = ServiceAddon.__table__
    db.session.execute(update(table).where(table.c.service_id == service.id,
                                           table.c.status.in_(statuses))
                       .values(status=new_status, termination_date=as_of, updated_at=utcnow()))


# Suspension

def suspend_overdue(as_of: date, client_id_range: ClientRange | None = None,
                    actor: Actor | None = None) -> dict:
    """Suspend Active services with an unpaid invoice AutoSuspensionDays overdue.

    Skipped: services with override_auto_suspend (until suspend_until has passed),
    clients and client groups exempt from auto-suspension. Reason "Overdue on
    Payment" (only those suspensions lift on payment); "Service Suspension
    Notification" is queued once."""
    as_of = _check_date(as_of)
    snapshot = SettingsSnapshot()
    if not snapshot.get_bool("AutoSuspension"):
        return {"disabled": True}
    cutoff = as_of - timedelta(days=snapshot.get_int("AutoSuspensionDays"))
    actor = actor or automation_actor()

    def chunk(low: int, high: int) -> dict:
        ids = _candidates(
            low, high, Service.status == ServiceStatus.ACTIVE.value, _overdue_since(cutoff),
            or_(Service.override_auto_suspend.is_(False),
                and_(Service.suspend_until.is_not(None), Service.suspend_until < as_of)),
            _not_exempt())
        counts = {"suspended": 0, "errors": []}
        return _each_service(ids, lambda service: _suspend(service, as_of, actor, counts),
                             counts, "suspended")

    return in_client_chunks(chunk, client_id_range)


def _suspend(service: Service, as_of: date, actor: Actor, counts: dict) -> bool:
    result = payments.run_module_action(
        lambda module: module.suspend_account(service, OVERDUE_REASON), service)
    if not result.success:
        return _module_failed(service, "suspend", result.message, counts, actor)
    before = {"status": service.status, "suspension_reason": service.suspension_reason}
    service.status = ServiceStatus.SUSPENDED.value
    service.suspension_reason = OVERDUE_REASON
    db.session.flush()
    log("service_suspended", f"Service #{service.id} suspended: {OVERDUE_REASON} ({result.message})",
        service, before=before, after={"status": service.status, "suspension_reason": OVERDUE_REASON},
        actor=actor)
    # suspension_reason: the name templates used before service_suspension_reason (WHMCS's)
    _notify(SUSPENSION_TEMPLATE, service, f"service-suspended:{service.id}:{as_of.isoformat()}",
            suspension_reason=OVERDUE_REASON)
    return True


def unsuspend_paid(as_of: date, client_id_range: ClientRange | None = None,
                   actor: Actor | None = None) -> dict:
    """AutoUnsuspend: services suspended for "Overdue on Payment" with no overdue
    unpaid invoice left are unsuspended. The payment engine does the same at once
    when an invoice is paid; this sweep catches what was settled otherwise (an
    invoice cancelled, a credit applied, a module that failed on payment)."""
    as_of = _check_date(as_of)
    if not SettingsSnapshot().get_bool("AutoUnsuspend"):
        return {"disabled": True}
    actor = actor or automation_actor()

    def chunk(low: int, high: int) -> dict:
        ids = _candidates(low, high, Service.status == ServiceStatus.SUSPENDED.value,
                          Service.suspension_reason == OVERDUE_REASON,
                          ~_overdue_since(as_of - timedelta(days=1)))
        counts = {"unsuspended": 0, "errors": []}
        return _each_service(ids, lambda service: _unsuspend(service, as_of, actor, counts),
                             counts, "unsuspended")

    return in_client_chunks(chunk, client_id_range)


def _unsuspend(service: Service, as_of: date, actor: Actor, counts: dict) -> bool:
    result = payments.run_module_action(lambda module: module.unsuspend_account(service), service)
    if not result.success:
        return _module_failed(service, "unsuspend", result.message, counts, actor)
    before = {"status": service.status, "suspension_reason": service.suspension_reason}
    service.status = ServiceStatus.ACTIVE.value
    service.suspension_reason = None
    db.session.flush()
    log("service_unsuspended", f"Service #{service.id} unsuspended: no overdue invoice left "
        f"({result.message})", service, before=before,
        after={"status": service.status, "suspension_reason": None}, actor=actor)
    _notify(UNSUSPENSION_TEMPLATE, service, f"service-unsuspended:{service.id}:{as_of.isoformat()}")
    return True


# Termination

def terminate_overdue(as_of: date, client_id_range: ClientRange | None = None,
                      actor: Actor | None = None) -> dict:
    """AutoTermination: Active or Suspended services with an unpaid invoice
    AutoTerminationDays overdue are terminated (their addons with them).

    Skipped: override_auto_terminate, and clients or groups exempt from
    auto-suspension (terminating deletes data: an exemption staff set is honoured)."""
    as_of = _check_date(as_of)
    snapshot = SettingsSnapshot()
    if not snapshot.get_bool("AutoTermination"):
        return {"disabled": True}
    cutoff = as_of - timedelta(days=snapshot.get_int("AutoTerminationDays"))
    actor = actor or automation_actor()

    def chunk(low: int, high: int) -> dict:
        ids = _candidates(
            low, high,
            Service.status.in_((ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)),
            _overdue_since(cutoff), Service.override_auto_terminate.is_(False), _not_exempt())
        counts = {"terminated": 0, "errors": []}
        return _each_service(ids, lambda service: _terminate(service, as_of, actor, counts),
                             counts, "terminated")

    return in_client_chunks(chunk, client_id_range)


def _terminate(service: Service, as_of: date, actor: Actor, counts: dict) -> bool:
    result = payments.run_module_action(lambda module: module.terminate_account(service), service)
    if not result.success:
        return _module_failed(service, "terminate", result.message, counts, actor)
    before = {"status": service.status, "termination_date": service.termination_date}
    service.status = ServiceStatus.TERMINATED.value
    service.termination_date = as_of
    _set_addons(service, (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value),
                ServiceStatus.TERMINATED.value, as_of)
    db.session.flush()
    log("service_terminated", f"Service #{service.id} terminated: unpaid for "
        f"{(as_of - _oldest_unpaid_due(service)).days} days ({result.message})", service,
        before=before, after={"status": service.status, "termination_date": as_of}, actor=actor)
    return True


def _oldest_unpaid_due(service: Service) -> date:
    return db.session.scalar(
        select(Invoice.due_date).join(InvoiceItem, InvoiceItem.invoice_id == Invoice.id)
        .where(InvoiceItem.rel_id == service.id, InvoiceItem.type.in_(SERVICE_ITEM_TYPES),
               Invoice.status == InvoiceStatus.UNPAID.value)
        .order_by(Invoice.due_date).limit(1))


# Cancellation requests

def process_cancellation_requests(as_of: date, client_id_range: ClientRange | None = None,
                                  actor: Actor | None = None) -> dict:
    """AutoCancellationRequests: carry out open cancellation requests, Immediate ones
    now, End of Billing Period ones once the service's next due date is reached.

    The module terminates the account (a Pending service has none), the service and
    its addons become Cancelled, and an unpaid invoice that bills nothing but this
    service (and its addons) is cancelled, as WHMCS does."""
    as_of = _check_date(as_of)
    if not SettingsSnapshot().get_bool("AutoCancellationRequests"):
        return {"disabled": True}
    actor = actor or automation_actor()

    def chunk(low: int, high: int) -> dict:
        counts = {"cancelled": 0, "invoices_cancelled": 0, "errors": []}
        requests = db.session.execute(
            select(CancellationRequest.id, CancellationRequest.service_id)
            .join(Service, Service.id == CancellationRequest.service_id)
            .where(Service.client_id.between(low, high), CancellationRequest.processed_at.is_(None),
                   or_(CancellationRequest.type == IMMEDIATE,
                       and_(CancellationRequest.type == END_OF_PERIOD,
                            or_(Service.next_due_date.is_(None), Service.next_due_date <= as_of))))
            .order_by(CancellationRequest.id)
        ).all()
        for request_id, service_id in requests:
            try:
                if _cancel(request_id, _load_service(service_id), as_of, actor, counts):
                    counts["cancelled"] += 1
                db.session.commit()
            except Exception as error:
                db.session.rollback()
                counts["errors"].append(f"cancellation request {request_id} (service {service_id}): "
                                        f"{type(error).__name__}: {error}")
        return counts

    return in_client_chunks(chunk, client_id_range)


def _cancel(request_id: int, service: Service, as_of: date, actor: Actor, counts: dict) -> bool:
    request = db.session.get(CancellationRequest, request_id)
    live = service.status in (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)
    if live:
        result = payments.run_module_action(lambda module: module.terminate_account(service), service)
        if not result.success:
            return _module_failed(service, "cancel", result.message, counts, actor)
        how = result.message
    else:
        how = f"the service was {service.status}: no account to remove"
    request.processed_at = utcnow()
    changed = service.status in (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value,
                                 ServiceStatus.PENDING.value)
    if changed:
        before = {"status": service.status, "termination_date": service.termination_date}
        service.status = ServiceStatus.CANCELLED.value
        service.termination_date = as_of
        _set_addons(service, (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value,
                              ServiceStatus.PENDING.value), ServiceStatus.CANCELLED.value, as_of)
        db.session.flush()
        log("service_cancelled", f"Service #{service.id} cancelled on request #{request_id} "
            f"({request.type}): {how}", service, before=before,
            after={"status": service.status, "termination_date": as_of}, actor=actor)
    else:
        log("cancellation_request_closed", f"Cancellation request #{request_id} closed: {how}",
            service, actor=actor)
    counts["invoices_cancelled"] += _cancel_invoices_of(service, request_id, actor)
    return changed


def _cancel_invoices_of(service: Service, request_id: int, actor: Actor) -> int:
    """Cancel the unpaid invoices whose every line bills this service or its addons."""
    addon_ids = db.session.scalars(select(ServiceAddon.id).where(ServiceAddon.service_id == service.id)).all()
    belongs = or_(and_(InvoiceItem.type.in_(SERVICE_ITEM_TYPES), InvoiceItem.rel_id == service.id),
                  and_(InvoiceItem.type == ItemType.ADDON.value, InvoiceItem.rel_id.in_(addon_ids)))
    invoice_ids = db.session.scalars(
        select(Invoice.id).join(InvoiceItem, InvoiceItem.invoice_id == Invoice.id)
        .where(Invoice.status == InvoiceStatus.UNPAID.value, belongs).distinct()
    ).all()
    cancelled = 0
    for invoice_id in invoice_ids:
        foreign = db.session.scalar(select(InvoiceItem.id).where(
            InvoiceItem.invoice_id == invoice_id, ~belongs).limit(1))
        if foreign is not None:
            continue  # it bills something else too: left for staff
        try:
            with db.session.begin_nested():
                invoicing.cancel_invoice(invoice_id, actor=actor,
                                         reason=f"service #{service.id} cancelled (request #{request_id})")
        except BillingError as error:
            log("invoice_not_cancelled", f"Invoice id {invoice_id} left for staff after cancelling "
                f"service #{service.id}: {error}", service, actor=actor)
            continue
        cancelled += 1
    return cancelled
