"""Suspend, unsuspend and terminate one service on request (staff, API), through its
provisioning module. (The daily run's automatic versions live in
app.billing.lifecycle.)

The module acts first, inside a savepoint (payments.run_module_action); the service
row changes only when it succeeded, with its activity-log entry. A module failure
raises ServiceCommandError with the module's message and changes nothing.

Transactions: these functions flush and never commit; the caller commits.
"""
from __future__ import annotations

from datetime import date

from app.activity import Actor, log
from app.events import emit
from app.billing import payments
from app.billing.numbering_counter import lock_row
from app.extensions import db
from app.models.orders import Service, ServiceAddon, ServiceAmountChange, ServiceStatus
from app.provisioning.base import ModuleResult


class ServiceCommandError(ValueError):
    """The service cannot take this command, or its module refused it."""


def _service(service_id: int) -> Service:
    """The service, locked: two commands for one service run one after the other, and
    the second sees the status the first left."""
    valid = isinstance(service_id, int) and not isinstance(service_id, bool)
    service = lock_row(Service, service_id) if valid else None
    if service is None:
        raise ServiceCommandError("Service ID Not Found")
    return service


def _run(service: Service, call, verb: str) -> ModuleResult:
    result = payments.run_module_action(call, service)
    if not result.success:
        raise ServiceCommandError(f"The module could not {verb} service #{service.id}: {result.message}")
    return result


def suspend_service(service_id: int, reason: str | None = None,
                    actor: Actor | None = None) -> ModuleResult:
    actor = actor or Actor.system()
    service = _service(service_id)
    if service.status != ServiceStatus.ACTIVE:
        raise ServiceCommandError(f"Service #{service.id} is {service.status}: only Active "
                                  "services can be suspended")
    reason = (reason or "").strip()[:255] or None
    result = _run(service, lambda module: module.suspend_account(service, reason or ""), "suspend")
    before = {"status": service.status, "suspension_reason": service.suspension_reason}
    service.status = ServiceStatus.SUSPENDED.value
    service.suspension_reason = reason
    db.session.flush()
    log("service_suspended", f"Service #{service.id} suspended"
        + (f": {reason}" if reason else "") + f" ({result.message})", service, before=before,
        after={"status": service.status, "suspension_reason": reason}, actor=actor)
    emit("AfterModuleSuspend", {"service_id": service.id, "client_id": service.client_id})
    return result


def unsuspend_service(service_id: int, actor: Actor | None = None) -> ModuleResult:
    actor = actor or Actor.system()
    service = _service(service_id)
    if service.status != ServiceStatus.SUSPENDED:
        raise ServiceCommandError(f"Service #{service.id} is {service.status}: only Suspended "
                                  "services can be unsuspended")
    result = _run(service, lambda module: module.unsuspend_account(service), "unsuspend")
    before = {"status": service.status, "suspension_reason": service.suspension_reason}
    service.status = ServiceStatus.ACTIVE.value
    service.suspension_reason = None
    db.session.flush()
    log("service_unsuspended", f"Service #{service.id} unsuspended ({result.message})", service,
        before=before, after={"status": service.status, "suspension_reason": None}, actor=actor)
    emit("AfterModuleUnsuspend", {"service_id": service.id, "client_id": service.client_id})
    return result


def terminate_service(service_id: int, actor: Actor | None = None,
                      today: date | None = None) -> ModuleResult:
    actor = actor or Actor.system()
    service = _service(service_id)
    if service.status not in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED):
        raise ServiceCommandError(f"Service #{service.id} is {service.status}: only Active or "
                                  "Suspended services can be terminated")
    result = _run(service, lambda module: module.terminate_account(service), "terminate")
    today = today or date.today()
    before = {"status": service.status, "termination_date": service.termination_date}
    service.status = ServiceStatus.TERMINATED.value
    service.termination_date = today
    for addon in db.session.query(ServiceAddon).filter(
            ServiceAddon.service_id == service.id,
            ServiceAddon.status.in_((ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value))):
        addon.status = ServiceStatus.TERMINATED.value
        addon.termination_date = today
    db.session.flush()
    log("service_terminated", f"Service #{service.id} terminated ({result.message})", service,
        before=before, after={"status": service.status, "termination_date": today}, actor=actor)
    emit("AfterModuleTerminate", {"service_id": service.id, "client_id": service.client_id})
    return result


def create_service(service_id: int, actor: Actor | None = None) -> ModuleResult:
    """Create the account through the module; a Pending service becomes Active."""
    actor = actor or Actor.system()
    service = _service(service_id)
    if service.status not in (ServiceStatus.PENDING, ServiceStatus.ACTIVE):
        raise ServiceCommandError(f"Service #{service.id} is {service.status}: only Pending "
                                  "services can be created")
    result = _run(service, lambda module: module.create_account(service), "create")
    before = {"status": service.status}
    service.status = ServiceStatus.ACTIVE.value
    db.session.flush()
    log("service_created", f"Service #{service.id} created on its module ({result.message})",
        service, before=before, after={"status": service.status}, actor=actor)
    emit("AfterModuleCreate", {"service_id": service.id, "client_id": service.client_id})
    return result


def change_package(service_id: int, actor: Actor | None = None) -> ModuleResult:
    """Push the service's current product (package) to its module."""
    actor = actor or Actor.system()
    service = _service(service_id)
    if service.status not in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED):
        raise ServiceCommandError(f"Service #{service.id} is {service.status}: only Active or "
                                  "Suspended services can change package")
    result = _run(service, lambda module: module.change_package(service, service.product),
                  "change the package of")
    log("service_package_changed", f"Service #{service.id}: package {service.product.name} "
        f"sent to the module ({result.message})", service, actor=actor)
    return result


def change_password(service_id: int, new_password: str | None = None,
                    actor: Actor | None = None) -> ModuleResult:
    """Set the account's password through the module, then store it (encrypted);
    without a new one, the stored password is sent again."""
    actor = actor or Actor.system()
    service = _service(service_id)
    password = new_password if new_password else service.password
    if not password:
        raise ServiceCommandError(f"Service #{service.id} has no password to set: give one")
    if len(password) < 8 or len(password) > 64:
        raise ServiceCommandError("The password is 8 to 64 characters")
    if service.status not in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED):
        raise ServiceCommandError(f"Service #{service.id} is {service.status}: only Active or "
                                  "Suspended services can change password")
    result = _run(service, lambda module: module.change_password(service, password),
                  "change the password of")
    service.password = password
    db.session.flush()
    log("service_password_changed", f"Service #{service.id}: password changed ({result.message})",
        service, actor=actor)
    return result


# The details staff may change by hand; status moves only through the module commands.
DETAIL_COLUMNS = ("domain", "username", "dedicated_ip", "notes", "payment_method",
                  "next_due_date", "recurring_amount", "first_payment_amount",
                  "override_auto_suspend", "suspend_until", "override_auto_terminate",
                  "server_id", "registration_date", "termination_date")


def update_service_details(service_id: int, values: dict, actor: Actor | None = None) -> dict:
    """Change the given detail columns of a service; returns what changed. Moving the
    next due date moves the next invoice date with it (the engine's due-date rule); a
    changed recurring amount is kept in the service's amount history (for the MRR
    reports, which would otherwise price every past month at the new amount)."""
    from app.billing.due_dates import apply_detail_changes
    from app.models.catalog import Server

    actor = actor or Actor.system()
    service = _service(service_id)
    unknown = set(values) - set(DETAIL_COLUMNS)
    if unknown:
        raise ServiceCommandError(f"{', '.join(sorted(unknown))} cannot be changed this way")
    for name in ("recurring_amount", "first_payment_amount"):
        if name in values and values[name] is not None and values[name] < 0:
            raise ServiceCommandError(f"{name.replace('_', ' ')} cannot be negative")
    if values.get("server_id") is not None and db.session.get(Server, values["server_id"]) is None:
        raise ServiceCommandError("Server ID Not Found")
    old_amount = service.recurring_amount
    changed = apply_detail_changes(service, values, "service_updated", f"Service #{service.id}",
                                   actor)
    if "recurring_amount" in changed:  # the cycle is not a detail: it stays
        record_amount_change(service, old_amount)
    return changed


def record_amount_change(service: Service, old_amount) -> None:
    """Keep a change of the service's recurring amount (made already, same cycle) in
    its amount history, for the MRR reports. Every engine path that reprices a service
    outside an upgrade calls this."""
    db.session.add(ServiceAmountChange(
        service_id=service.id, old_amount=old_amount, new_amount=service.recurring_amount,
        old_cycle=service.billing_cycle, new_cycle=service.billing_cycle))
    db.session.flush()
