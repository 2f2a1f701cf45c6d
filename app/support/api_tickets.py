"""Tickets opened and answered on behalf of anyone (an API call, an integration):
for a client, a client's contact or a guest, with replies by staff, clients or guests.
(The portal's client-only versions are in app.support.portal_tickets.)

Status semantics follow WHMCS: a new ticket is Open, a staff reply makes it Answered,
a client or guest reply Customer-Reply, unless the caller names a status.

Transactions: these functions flush and never commit; the caller commits. A refused
call raises TicketError before anything is written.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import select

from app.activity import Actor, log
from app.events import emit
from app.client_accounts import EMAIL_PATTERN
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client, Contact
from app.models.orders import Service
from app.models.support import SupportDepartment, Ticket, TicketPriority, TicketReply, TicketStatus
from app.notifications.queue import EmailTemplateMissing, queue_email
from app.support.numbers import new_ticket_number

OPENED_TEMPLATE = "Support Ticket Opened"
REPLY_TEMPLATE = "Support Ticket Reply"
PRIORITIES = tuple(priority.value for priority in TicketPriority)
STATUSES = tuple(status.value for status in TicketStatus)
MAX_SUBJECT_LENGTH = 255
MAX_MESSAGE_LENGTH = 20000


class TicketError(ValueError):
    """A refused ticket operation; the message is fit to show. Nothing was changed."""


def _required(value, message: str, limit: int) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        raise TicketError(message)
    if len(value) > limit:
        raise TicketError(f"{message.split(' is ')[0]} is at most {limit} characters")
    return value


def _client(client_id: int | None) -> Client | None:
    if client_id is None:
        return None
    client = db.session.get(Client, client_id)
    if client is None:
        raise TicketError("Client ID Not Found")
    return client


def _contact(client: Client | None, contact_id: int | None) -> Contact | None:
    if contact_id is None:
        return None
    contact = db.session.get(Contact, contact_id)
    if contact is None or client is None or contact.client_id != client.id:
        raise TicketError("Contact ID Not Found")
    return contact


def _guest(name, email) -> tuple[str, str]:
    name = name.strip() if isinstance(name, str) else ""
    email = email.strip() if isinstance(email, str) else ""
    if not name or not email:
        raise TicketError("Name and email address are required if not a client")
    if not EMAIL_PATTERN.match(email):
        raise TicketError("Email Address Invalid")
    return name[:200], email[:255]


def _notify(template: str, ticket: Ticket, message: str) -> None:
    context = {"ticket_id": ticket.tid, "ticket_subject": ticket.subject,
               "ticket_department": ticket.department.name if ticket.department else "",
               "ticket_priority": ticket.priority, "ticket_message": message}
    try:
        queue_email(template, ticket.client_id, context, related=("ticket", ticket.id),
                    to_address=None if ticket.client_id else ticket.email)
    except EmailTemplateMissing:
        pass  # no template, no email: the ticket stands


def open_ticket(department_id: int, subject: str, message: str, *,
                client_id: int | None = None, contact_id: int | None = None,
                name: str | None = None, email: str | None = None,
                priority: str = TicketPriority.MEDIUM.value, service_id: int | None = None,
                created_at: datetime | None = None, send_email: bool = True,
                actor: Actor | None = None) -> Ticket:
    """A new Open ticket whose first message comes from the client (or its contact),
    or from a guest named by name and email."""

    actor = actor or Actor.system()
    department = db.session.get(SupportDepartment, department_id) if department_id else None
    if department is None:
        raise TicketError("Department ID not found")
    subject = _required(subject, "Subject is required", MAX_SUBJECT_LENGTH)
    message = _required(message, "Message is required", MAX_MESSAGE_LENGTH)
    if priority not in PRIORITIES:
        raise TicketError(f"Invalid priority {priority!r}: one of {', '.join(PRIORITIES)}")
    client = _client(client_id)
    contact = _contact(client, contact_id)
    if client is not None:
        author = (f"{contact.first_name} {contact.last_name}", contact.email) if contact else (
            client.full_name, client.email)
    else:
        author = _guest(name, email)
    if service_id is not None:
        owner = db.session.scalar(select(Service.client_id).where(Service.id == service_id))
        if owner is None or client is None or owner != client.id:
            raise TicketError("Service ID Not Found")
    now = utcnow()
    if created_at is not None and created_at > now:
        raise TicketError("Ticket creation date cannot be in the future")
    opened = created_at or now
    ticket = Ticket(tid=new_ticket_number(), department_id=department.id,
                    client_id=client.id if client else None,
                    contact_id=contact.id if contact else None, service_id=service_id,
                    name=author[0], email=author[1], subject=subject,
                    status=TicketStatus.OPEN.value, priority=priority, last_reply_at=opened,
                    created_at=opened, updated_at=now)
    ticket.replies.append(TicketReply(name=author[0], email=author[1], message=message,
                                      created_at=opened))
    db.session.add(ticket)
    db.session.flush()
    log("ticket_opened", f"Ticket #{ticket.tid} opened in {department.name}: {subject}", ticket,
        after={"department": department.name, "priority": priority, "from": author[1]},
        actor=actor)
    emit("TicketOpen", {"ticket_id": ticket.id, "tid": ticket.tid, "client_id": ticket.client_id})
    if send_email:
        _notify(OPENED_TEMPLATE, ticket, message)
    return ticket


def find_ticket(ticket_id: int | None = None, tid: str | None = None) -> Ticket:
    if ticket_id is not None:
        ticket = db.session.get(Ticket, ticket_id)
    elif tid:
        ticket = db.session.scalar(select(Ticket).where(Ticket.tid == tid))
    else:
        raise TicketError("Ticket ID Required")
    if ticket is None:
        raise TicketError("Ticket ID not found")
    return ticket


def add_reply(ticket: Ticket, message: str, *, admin_username: str | None = None,
              client_id: int | None = None, contact_id: int | None = None,
              name: str | None = None, email: str | None = None, status: str | None = None,
              send_email: bool = True, actor: Actor | None = None) -> TicketReply:
    """A reply by a staff member (admin_username), the client (client_id, optionally its
    contact) or a guest (name and email). The ticket's status follows WHMCS unless
    `status` names another."""
    actor = actor or Actor.system()
    message = _required(message, "Message is required", MAX_MESSAGE_LENGTH)
    if status is not None and status not in STATUSES:
        raise TicketError(f"Invalid status {status!r}: one of {', '.join(STATUSES)}")
    now = utcnow()
    reply = TicketReply(message=message, created_at=now)
    if admin_username:
        staff = current_app.appbuilder.sm.find_user(username=admin_username)
        if staff is None or {role.name for role in staff.roles} <= {"Client"}:
            raise TicketError(f"Admin user {admin_username!r} not found")
        reply.admin_id = staff.id
        reply.name = f"{staff.first_name} {staff.last_name}".strip() or staff.username
        new_status = TicketStatus.ANSWERED.value
    else:
        client = _client(client_id)
        if client is not None:
            if ticket.client_id != client.id:
                raise TicketError(f"Ticket #{ticket.tid} does not belong to client #{client.id}")
            contact = _contact(client, contact_id)
            reply.name = f"{contact.first_name} {contact.last_name}" if contact else client.full_name
            reply.email = contact.email if contact else client.email
        else:
            reply.name, reply.email = _guest(name, email)
        new_status = TicketStatus.CUSTOMER_REPLY.value
    before = {"status": ticket.status}
    ticket.replies.append(reply)
    ticket.status = status or new_status
    ticket.last_reply_at = now
    if reply.admin_id and ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.closed_at = now if ticket.status == TicketStatus.CLOSED else None
    db.session.flush()
    log("ticket_reply", f"Reply by {reply.name} on ticket #{ticket.tid}", ticket, before=before,
        after={"status": ticket.status}, actor=actor)
    emit("TicketAdminReply" if reply.admin_id else "TicketUserReply",
         {"ticket_id": ticket.id, "tid": ticket.tid, "reply_id": reply.id})
    if send_email and reply.admin_id:
        _notify(REPLY_TEMPLATE, ticket, message)
    return reply
