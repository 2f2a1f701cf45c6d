"""The "manual" module: nothing remote. Each action succeeds at once, is written to
the activity log, and becomes a to-do for staff, who do the work by hand.

There is no to-do table: a to-do is a support ticket in the hidden internal department
"Provisioning To-Do". It is linked to the service but not to the client, so it never
appears in the client's portal. One open to-do per service and action: asking again
while one is open points at the existing ticket instead of opening a second."""
from __future__ import annotations


from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.activity import log
from app.extensions import db
from app.support.numbers import new_ticket_number
from app.models.catalog import Product
from app.models.orders import Service
from app.models.support import (
    SupportDepartment, Ticket, TicketPriority, TicketReply, TicketStatus,
)
from app.provisioning.base import ModuleResult, ProvisioningError, ProvisioningModule

TODO_DEPARTMENT_NAME = "Provisioning To-Do"
TODO_DEPARTMENT_EMAIL = "provisioning-todo@localhost"
TODO_AUTHOR = "Provisioning (manual module)"

# Action -> how its to-do is titled; the title (before the colon) identifies the action.
TODO_TITLES = {
    "create": "Create hosting account",
    "suspend": "Suspend hosting account",
    "unsuspend": "Unsuspend hosting account",
    "terminate": "Terminate hosting account",
    "change_package": "Change package of hosting account",
    "change_password": "Change password of hosting account",
}
_URGENT = {"suspend", "terminate"}


class ManualModule(ProvisioningModule):
    name = "manual"
    display_name = "Manual (staff to-do)"

    def create_account(self, service: Service) -> ModuleResult:
        package = service.product.module_package or service.product.name
        return self._todo(service, "create",
                          f"Create the hosting account with package {package!r}.")

    def suspend_account(self, service: Service, reason: str) -> ModuleResult:
        return self._todo(service, "suspend", "Suspend the hosting account.",
                          reason=reason or "no reason given")

    def unsuspend_account(self, service: Service) -> ModuleResult:
        return self._todo(service, "unsuspend", "Lift the suspension of the hosting account.")

    def terminate_account(self, service: Service) -> ModuleResult:
        return self._todo(service, "terminate",
                          "Terminate the hosting account and remove its data.")

    def change_package(self, service: Service, product: Product) -> ModuleResult:
        package = product.module_package or product.name
        return self._todo(service, "change_package",
                          f"Move the hosting account to package {package!r} "
                          f"(product {product.name!r}).")

    def change_password(self, service: Service, new_password: str) -> ModuleResult:
        if not new_password:
            raise ValueError("a new password is required")
        # The password itself never goes into a ticket or the log.
        return self._todo(service, "change_password",
                          "Set the new password the client chose on the hosting account; "
                          "it is stored, encrypted, on the service record.")

    def _todo(self, service: Service, verb: str, instruction: str,
              reason: str | None = None) -> ModuleResult:
        # Serialise concurrent calls for one service, so two never both open a to-do.
        db.session.execute(select(Service.id).where(Service.id == service.id).with_for_update())
        department = todo_department()
        title = TODO_TITLES[verb]
        ticket = open_todo(service, verb)
        created = ticket is None
        if created:
            ticket = _open_ticket(department, service, verb, instruction, reason)
        where = f"to-do ticket #{ticket.tid}" + ("" if created else " (already open)")
        log(f"module_{verb}",
            f"Manual module: {title.lower()} for service #{service.id} "
            f"({service.domain or 'no domain'}): {where}"
            + (f"; reason: {reason}" if reason else ""),
            service,
            after={"module": self.name, "todo_ticket": ticket.tid, "todo_created": created,
                   **({"reason": reason} if reason else {})})
        return ModuleResult.ok(
            f"{title}: nothing is done automatically; staff {where}.",
            todo_ticket_id=ticket.id, todo_tid=ticket.tid, todo_created=created,
        )


def todo_department() -> SupportDepartment:
    """The internal to-do department, created on first use."""
    department = db.session.scalar(
        select(SupportDepartment).where(SupportDepartment.name == TODO_DEPARTMENT_NAME))
    if department is not None:
        return department
    try:
        with db.session.begin_nested():
            department = SupportDepartment(
                name=TODO_DEPARTMENT_NAME, email=TODO_DEPARTMENT_EMAIL,
                description="Work the manual provisioning module leaves for staff",
                hidden=True, clients_only=False, auto_respond=False, sort_order=999)
            db.session.add(department)
    except IntegrityError:
        # Created meanwhile by another worker, or the address is another department's.
        department = db.session.scalar(
            select(SupportDepartment).where(SupportDepartment.name == TODO_DEPARTMENT_NAME))
        if department is None:
            raise ProvisioningError(
                f"cannot create the {TODO_DEPARTMENT_NAME!r} department: the address "
                f"{TODO_DEPARTMENT_EMAIL} belongs to another department") from None
    return department


def open_todo(service: Service, verb: str) -> Ticket | None:
    """The to-do still open for this service and action, if any."""
    prefix = TODO_TITLES[verb] + ":"
    return db.session.scalar(
        select(Ticket)
        .join(SupportDepartment, Ticket.department_id == SupportDepartment.id)
        .where(SupportDepartment.name == TODO_DEPARTMENT_NAME,
               Ticket.service_id == service.id,
               Ticket.subject.startswith(prefix, autoescape=True),
               Ticket.status != TicketStatus.CLOSED.value)
        .order_by(Ticket.id)
        .limit(1))


def _open_ticket(department: SupportDepartment, service: Service, verb: str,
                 instruction: str, reason: str | None) -> Ticket:
    subject = f"{TODO_TITLES[verb]}: {service.domain or 'no domain'} (service #{service.id})"
    ticket = Ticket(
        tid=new_ticket_number(), department_id=department.id,
        client_id=None,  # internal: kept out of the client's ticket list
        service_id=service.id, name=TODO_AUTHOR, email=department.email,
        subject=subject[:255], status=TicketStatus.OPEN.value,
        priority=(TicketPriority.HIGH if verb in _URGENT else TicketPriority.MEDIUM).value,
    )
    db.session.add(ticket)
    db.session.flush()
    db.session.add(TicketReply(ticket_id=ticket.id, name=TODO_AUTHOR, email=department.email,
                               message=_details(service, instruction, reason)))
    db.session.flush()
    return ticket


def _details(service: Service, instruction: str, reason: str | None) -> str:
    client = service.client
    server = service.server
    lines = [
        instruction,
        "",
        f"Service: #{service.id} ({service.product.name})",
        f"Client: #{client.id} {client.display_name} <{client.email}>",
        f"Domain: {service.domain or '-'}",
        f"Username: {service.username or '-'}",
        f"Server: {server.name + ' (' + server.hostname + ')' if server else '-'}",
        f"Current status: {service.status}",
    ]
    if reason:
        lines.append(f"Reason: {reason}")
    lines += ["", "Close this ticket when the work is done."]
    return "\n".join(lines)


