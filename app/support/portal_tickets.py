"""Tickets from the client side: open one, reply, close.

Plain functions (no Flask request): they flush and never commit; the caller
commits. Every check names the client the caller acts for, so a ticket, a service
or a department the client may not use is refused here too, not only in the
portal. Status semantics follow WHMCS: a new ticket is Open, a client's reply makes
it Customer-Reply (reopening a closed one), closing makes it Closed.

Attachments arrive already stored (see app.portal.uploads) and are recorded here,
in the same transaction as the message they belong to."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from app.activity import Actor, log
from app.events import emit
from app.extensions import db
from app.models.base import utcnow
from app.models.orders import Service
from app.models.support import (
    SupportDepartment, Ticket, TicketAttachment, TicketPriority, TicketReply, TicketStatus,
)
from app.notifications.queue import EmailTemplateMissing, queue_email
from app.support.numbers import new_ticket_number
# One error type and one set of limits for every way a ticket is opened or answered.
from app.support.api_tickets import (  # noqa: F401  (re-exported for the portal)
    MAX_MESSAGE_LENGTH, MAX_SUBJECT_LENGTH, OPENED_TEMPLATE, PRIORITIES, TicketError,
)


@dataclass(frozen=True)
class StoredFile:
    """An upload already written to the attachment store under stored_name."""

    original_name: str
    stored_name: str
    content_type: str
    size: int


def visible_departments() -> list[SupportDepartment]:
    return list(db.session.scalars(select(SupportDepartment)
                                   .where(SupportDepartment.hidden.is_(False))
                                   .order_by(SupportDepartment.sort_order, SupportDepartment.name)))


def _text(value: str, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise TicketError(f"the {what} is empty")
    if len(value) > limit:
        raise TicketError(f"the {what} is at most {limit} characters")
    return value


def _user_name(user) -> str:
    return f"{user.first_name} {user.last_name}".strip() or user.username


def _attach(ticket: Ticket, reply: TicketReply, files: Iterable[StoredFile]) -> int:
    count = 0
    for stored in files:
        ticket.attachments.append(TicketAttachment(
            reply_id=reply.id, original_name=stored.original_name[:255],
            stored_name=stored.stored_name, content_type=stored.content_type, size=stored.size))
        count += 1
    return count


def client_ticket(ticket_id: int, client_id: int) -> Ticket:
    ticket = db.session.scalar(select(Ticket).where(Ticket.id == ticket_id,
                                                    Ticket.client_id == client_id))
    if ticket is None:
        raise TicketError(f"ticket {ticket_id} does not exist")
    return ticket


def open_ticket(client_id: int, user, *, department_id: int, subject: str, message: str,
                priority: str = TicketPriority.MEDIUM.value, service_id: int | None = None,
                files: Iterable[StoredFile] = (), link_for=None) -> Ticket:
    """A new ticket of a client, its first message written by `user` (a client user
    of that client). link_for(ticket) gives the portal address for the email."""
    from app.models.clients import Client

    client = db.session.get(Client, client_id)
    if client is None:
        raise TicketError(f"client {client_id} does not exist")
    department = db.session.get(SupportDepartment, department_id) if department_id else None
    if department is None or department.hidden:
        raise TicketError("choose one of the listed departments")
    if priority not in PRIORITIES:
        raise TicketError(f"priority must be one of {', '.join(PRIORITIES)}")
    if service_id is not None:
        owned = db.session.scalar(select(Service.id).where(Service.id == service_id,
                                                           Service.client_id == client_id))
        if owned is None:
            raise TicketError("the related service is not one of this account's services")
    subject = _text(subject, "subject", MAX_SUBJECT_LENGTH)
    message = _text(message, "message", MAX_MESSAGE_LENGTH)
    now = utcnow()
    ticket = Ticket(tid=new_ticket_number(), department_id=department.id, client_id=client.id,
                    service_id=service_id, name=client.full_name, email=user.email or client.email,
                    subject=subject, status=TicketStatus.OPEN.value, priority=priority,
                    last_reply_at=now, created_at=now, updated_at=now)
    reply = TicketReply(user_id=user.id, name=_user_name(user), email=user.email, message=message,
                        created_at=now)
    ticket.replies.append(reply)
    db.session.add(ticket)
    db.session.flush()
    attached = _attach(ticket, reply, files)
    db.session.flush()
    actor = Actor("client", user.username, user.id)
    log("ticket_opened", f"Ticket #{ticket.tid} opened: {subject}", ticket,
        after={"department": department.name, "priority": priority, "attachments": attached},
        actor=actor)
    emit("TicketOpen", {"ticket_id": ticket.id, "tid": ticket.tid, "client_id": client.id})
    try:
        queue_email(OPENED_TEMPLATE, client.id, {
            "ticket_id": ticket.tid, "ticket_subject": subject,
            "ticket_department": department.name, "ticket_priority": priority,
            "ticket_link": link_for(ticket) if link_for else "",
        }, related=("ticket", ticket.id))
    except EmailTemplateMissing:
        pass  # no template, no confirmation email: the ticket stands
    return ticket


def add_client_reply(ticket_id: int, client_id: int, user, message: str,
                     files: Iterable[StoredFile] = ()) -> TicketReply:
    """The client's answer; the ticket becomes Customer-Reply (a closed one reopens)."""
    ticket = client_ticket(ticket_id, client_id)
    message = _text(message, "message", MAX_MESSAGE_LENGTH)
    now = utcnow()
    before = {"status": ticket.status}
    reply = TicketReply(user_id=user.id, name=_user_name(user), email=user.email,
                        message=message, created_at=now)
    ticket.replies.append(reply)
    ticket.status = TicketStatus.CUSTOMER_REPLY.value
    ticket.last_reply_at = now
    ticket.closed_at = None
    db.session.flush()
    attached = _attach(ticket, reply, files)
    db.session.flush()
    log("ticket_reply", f"Client replied to ticket #{ticket.tid}", ticket, before=before,
        after={"status": ticket.status, "attachments": attached},
        actor=Actor("client", user.username, user.id))
    emit("TicketUserReply", {"ticket_id": ticket.id, "tid": ticket.tid, "reply_id": reply.id})
    return reply


def close_ticket(ticket_id: int, client_id: int, user) -> Ticket:
    ticket = client_ticket(ticket_id, client_id)
    if ticket.status == TicketStatus.CLOSED.value:
        raise TicketError(f"ticket #{ticket.tid} is closed already")
    before = {"status": ticket.status}
    ticket.status = TicketStatus.CLOSED.value
    ticket.closed_at = utcnow()
    db.session.flush()
    log("ticket_closed", f"Ticket #{ticket.tid} closed by the client", ticket, before=before,
        after={"status": ticket.status}, actor=Actor("client", user.username, user.id))
    return ticket
