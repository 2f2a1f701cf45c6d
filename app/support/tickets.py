"""The ticket engine: one way to open a ticket, reply, add a staff note, change its
status, priority or department, close, delete, and rate a staff answer. The portal,
the WHMCS-compatible API, the admin and the provisioning to-dos all call it.

Who writes is an Author: a staff member, a client user (portal), the client or one
of its contacts (API, on their behalf), or a guest with a name and an email address.
Status semantics follow WHMCS: a new ticket is Open, a staff reply makes it
Answered, a client or guest reply Customer-Reply (reopening a closed one), unless
the caller names another status.

Transactions: these functions flush and never commit; the caller commits. A refused
call raises TicketError before anything is written. Attachments arrive already
stored (see app.support.attachments) and are recorded in the same transaction as their
message.

Guests: every ticket has an access code (WHMCS's "c"); a ticket without a client
account is opened, read and answered by whoever holds its number and that code
(guest_ticket), which its emails carry in their link (ticket_link).
"""
from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy import func, select

from app import custom_fields, settings

from app.activity import Actor, change_and_log, log
from app.client_accounts import EMAIL_PATTERN
from app.events import emit
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client, Contact
from app.models.orders import Service
from app.models.support import (
    ACCESS_CODE_LENGTH, SupportDepartment, Ticket, TicketAttachment, TicketNote, TicketPriority,
    TicketReply, TicketStatus,
)
from app.notifications.queue import EmailTemplateMissing, queue_email
from app.support.numbers import new_ticket_number

OPENED_TEMPLATE = "Support Ticket Opened"
REPLY_TEMPLATE = "Support Ticket Reply"
PRIORITIES = tuple(priority.value for priority in TicketPriority)
STATUSES = tuple(status.value for status in TicketStatus)
MAX_SUBJECT_LENGTH = 255
MAX_MESSAGE_LENGTH = 20000
RATINGS = range(1, 6)


class TicketError(ValueError):
    """A refused ticket operation; the message is fit to show. Nothing was changed."""


@dataclass(frozen=True)
class StoredFile:
    """An upload already written to the attachment store under stored_name."""

    original_name: str
    stored_name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Author:
    """Who writes a message. Build it with one of the constructors below."""

    name: str
    email: str | None
    staff_id: int | None = None     # a staff member (ab_user)
    user_id: int | None = None      # a client user signed in to the portal
    client_id: int | None = None    # the client account written for (None: a guest)
    contact_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.staff_id is not None


def _user_name(user) -> str:
    return f"{user.first_name or ''} {user.last_name or ''}".strip() or user.username


def staff_author(user) -> Author:
    return Author(name=_user_name(user), email=user.email, staff_id=user.id)


def _is_staff_user(user) -> bool:
    """A login with a role besides Client (a client login is no staff member)."""
    return bool({role.name for role in user.roles} - {"Client"})


def staff_author_named(username: str) -> Author:
    """The staff member with this login name (a client login is no staff member)."""
    user = current_app.appbuilder.sm.find_user(username=username)
    if user is None or not _is_staff_user(user):
        raise TicketError(f"Admin user {username!r} not found")
    return staff_author(user)


def client_user_author(client_id: int, user) -> Author:
    """A portal user writing for one of its client accounts."""
    return Author(name=_user_name(user), email=user.email, user_id=user.id, client_id=client_id)


def client_author(client_id: int, contact_id: int | None = None) -> Author:
    """The client (or one of its contacts), written for by an integration."""
    client = db.session.get(Client, client_id)
    if client is None:
        raise TicketError("Client ID Not Found")
    if contact_id is None:
        return Author(name=client.full_name, email=client.email, client_id=client.id)
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.client_id != client.id:
        raise TicketError("Contact ID Not Found")
    return Author(name=f"{contact.first_name} {contact.last_name}", email=contact.email,
                  client_id=client.id, contact_id=contact.id)


def guest_author(name, email) -> Author:
    name = name.strip() if isinstance(name, str) else ""
    email = email.strip() if isinstance(email, str) else ""
    if not name or not email:
        raise TicketError("Name and email address are required if not a client")
    if not EMAIL_PATTERN.match(email):
        raise TicketError("Email Address Invalid")
    return Author(name=name[:200], email=email[:255])


def _text(value, what: str, limit: int) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        raise TicketError(f"{what} is required")
    if len(value) > limit:
        raise TicketError(f"{what} is at most {limit} characters")
    return value


def _department(department_id, visible_only: bool) -> SupportDepartment:
    department = db.session.get(SupportDepartment, department_id) if department_id else None
    if department is None or (visible_only and department.hidden):
        raise TicketError("Department ID not found" if not visible_only
                          else "Choose one of the listed departments")
    return department


def visible_departments(guest: bool = False) -> list[SupportDepartment]:
    """The departments clients may pick; for a guest, not those kept for clients."""
    query = select(SupportDepartment).where(SupportDepartment.hidden.is_(False))
    if guest:
        query = query.where(SupportDepartment.clients_only.is_(False))
    return list(db.session.scalars(query.order_by(SupportDepartment.sort_order,
                                                  SupportDepartment.name)))


def _attach(ticket: Ticket, reply: TicketReply, files: Iterable[StoredFile]) -> int:
    count = 0
    for stored in files:
        ticket.attachments.append(TicketAttachment(
            reply_id=reply.id, original_name=stored.original_name[:255],
            stored_name=stored.stored_name, content_type=stored.content_type, size=stored.size))
        count += 1
    return count


GUEST_PATH = "/portal/tickets/view"  # the portal's guest page (app.portal.guest_tickets)


def ticket_link(ticket: Ticket) -> str:
    """Where the ticket's emails send their reader: a guest ticket's page with its
    access code, or the client's ticket in the portal."""
    base = settings.get("Domain").rstrip("/")
    if ticket.client_id is None:
        return f"{base}{GUEST_PATH}?" + urlencode({"tid": ticket.tid, "c": ticket.access_code})
    return f"{base}/portal/tickets/{ticket.id}"


def guest_ticket(tid, code) -> Ticket:
    """The guest ticket with this number, if `code` is its access code. A wrong
    number, a wrong code and a client's ticket (read in the account) are refused
    alike, and the code is compared in constant time."""
    tid = tid.strip() if isinstance(tid, str) else ""
    code = code.strip() if isinstance(code, str) else ""
    ticket = db.session.scalar(select(Ticket).where(Ticket.tid == tid[:20],
                                                    Ticket.client_id.is_(None))) if tid else None
    expected = ticket.access_code if ticket is not None else "-" * ACCESS_CODE_LENGTH
    if not hmac.compare_digest(expected.encode(), code.encode()) or ticket is None:
        raise TicketError("Ticket not found")
    return ticket


def open_flagged_counts(staff_ids: Iterable[int]) -> dict[int, int]:
    """How many tickets that are not closed are flagged to (assigned to) each staff
    member: one query for all of them; a member with none is left out."""
    staff_ids = list(staff_ids)
    if not staff_ids:
        return {}
    return dict(db.session.execute(
        select(Ticket.assigned_to_id, func.count())
        .where(Ticket.assigned_to_id.in_(staff_ids),
               Ticket.status != TicketStatus.CLOSED.value)
        .group_by(Ticket.assigned_to_id)).all())


def _notify(template: str, ticket: Ticket, message: str) -> None:
    context = {"ticket_id": ticket.tid, "ticket_subject": ticket.subject,
               "ticket_department": ticket.department.name if ticket.department else "",
               "ticket_priority": ticket.priority, "ticket_status": ticket.status,
               "ticket_message": message, "ticket_link": ticket_link(ticket)}
    if ticket.client_id is None:
        context["client_name"] = ticket.name  # a guest has no client record to name them
    try:
        queue_email(template, ticket.client_id, context, related=("ticket", ticket.id),
                    to_address=None if ticket.client_id else ticket.email)
    except EmailTemplateMissing:
        pass  # no template, no email: the ticket stands


def open_ticket(department_id: int, subject: str, message: str, author: Author, *,
                priority: str = TicketPriority.MEDIUM.value, service_id: int | None = None,
                created_at: datetime | None = None, files: Iterable[StoredFile] = (),
                visible_only: bool = False, send_email: bool = True,
                field_answers: dict | None = None, staff: bool = False,
                actor: Actor | None = None) -> Ticket:
    """A new Open ticket whose first message is the author's. visible_only: the
    department must be one clients may pick (the portal). field_answers: the answers
    (field id -> value) to the department's custom fields a form or API call asked
    (staff: the staff-only ones too); checked before anything is written
    (CustomFieldError) and saved with the ticket. None: none were asked."""
    department = _department(department_id, visible_only)
    fields = None
    if field_answers is not None:
        fields = custom_fields.visible(custom_fields.department_fields(department.id), staff)
        custom_fields.check_values(fields, field_answers, staff=staff)
    if visible_only and author.client_id is None and department.clients_only:
        raise TicketError("Only clients can open tickets in this department: please sign in")
    subject = _text(subject, "Subject", MAX_SUBJECT_LENGTH)
    message = _text(message, "Message", MAX_MESSAGE_LENGTH)
    if priority not in PRIORITIES:
        raise TicketError(f"Invalid priority {priority!r}: one of {', '.join(PRIORITIES)}")
    if service_id is not None:
        owner = db.session.scalar(select(Service.client_id).where(Service.id == service_id))
        if owner is None or author.client_id is None or owner != author.client_id:
            raise TicketError("Service ID Not Found")
    now = utcnow()
    if created_at is not None and created_at > now:
        raise TicketError("Ticket creation date cannot be in the future")
    opened = created_at or now
    client = db.session.get(Client, author.client_id) if author.client_id else None
    ticket = Ticket(tid=new_ticket_number(), department_id=department.id,
                    client_id=author.client_id, contact_id=author.contact_id,
                    service_id=service_id,
                    name=client.full_name if client else author.name,
                    email=author.email or (client.email if client else ""),
                    subject=subject, status=TicketStatus.OPEN.value, priority=priority,
                    last_reply_at=opened, created_at=opened, updated_at=now)
    reply = _reply_row(author, message, opened)
    ticket.replies.append(reply)
    db.session.add(ticket)
    db.session.flush()
    attached = _attach(ticket, reply, files)
    db.session.flush()
    if fields:
        custom_fields.save_values(custom_fields.SUPPORT, ticket.id, field_answers, actor,
                                  staff=staff, fields=fields)
    log("ticket_opened", f"Ticket #{ticket.tid} opened in {department.name}: {subject}", ticket,
        after={"department": department.name, "priority": priority, "from": ticket.email,
               "attachments": attached}, actor=actor)
    emit("TicketOpen", {"ticket_id": ticket.id, "tid": ticket.tid, "client_id": ticket.client_id})
    if send_email:
        _notify(OPENED_TEMPLATE, ticket, message)
    return ticket


def begin_ticket(ticket: Ticket, message: str, author: Author) -> TicketReply:
    """Complete a ticket built by a form (the admin's add screen) before it is saved:
    its number, who it is from, and the author's first message."""
    message = _text(message, "Message", MAX_MESSAGE_LENGTH)
    if ticket.client is not None:
        ticket.name = ticket.name or ticket.client.full_name
        ticket.email = ticket.email or ticket.client.email
    ticket.tid = new_ticket_number()
    now = utcnow()
    ticket.last_reply_at = now
    reply = _reply_row(author, message, now)
    ticket.replies.append(reply)
    return reply


def _reply_row(author: Author, message: str, when: datetime) -> TicketReply:
    return TicketReply(admin_id=author.staff_id, user_id=author.user_id, name=author.name,
                       email=author.email, message=message, created_at=when)


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


def client_ticket(ticket_id: int, client_id: int) -> Ticket:
    """The client's own ticket; another client's is refused like a missing one."""
    ticket = db.session.scalar(select(Ticket).where(Ticket.id == ticket_id,
                                                    Ticket.client_id == client_id))
    if ticket is None:
        raise TicketError("Ticket ID not found")
    return ticket


def add_reply(ticket: Ticket, message: str, author: Author, *, status: str | None = None,
              files: Iterable[StoredFile] = (), send_email: bool = True,
              actor: Actor | None = None) -> TicketReply:
    """A reply by staff, the client (or its contact, or one of its portal users) or a
    guest. The ticket's status follows WHMCS unless `status` names another; staff
    replies email the client."""
    message = _text(message, "Message", MAX_MESSAGE_LENGTH)
    if status is not None and status not in STATUSES:
        raise TicketError(f"Invalid status {status!r}: one of {', '.join(STATUSES)}")
    if not author.is_staff and author.client_id is not None and ticket.client_id != author.client_id:
        raise TicketError(f"Ticket #{ticket.tid} does not belong to client #{author.client_id}")
    now = utcnow()
    reply = _reply_row(author, message, now)
    before = {"status": ticket.status}
    ticket.replies.append(reply)
    ticket.status = status or (TicketStatus.ANSWERED.value if author.is_staff
                               else TicketStatus.CUSTOMER_REPLY.value)
    ticket.last_reply_at = now
    if author.is_staff and ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.closed_at = now if ticket.status == TicketStatus.CLOSED else None
    db.session.flush()
    attached = _attach(ticket, reply, files)
    db.session.flush()
    log("ticket_reply", f"Reply by {reply.name} on ticket #{ticket.tid}", ticket, before=before,
        after={"status": ticket.status, "attachments": attached}, actor=actor)
    emit("TicketAdminReply" if author.is_staff else "TicketUserReply",
         {"ticket_id": ticket.id, "tid": ticket.tid, "reply_id": reply.id})
    if send_email and author.is_staff:
        _notify(REPLY_TEMPLATE, ticket, message)
    return reply


def add_note(ticket: Ticket, message: str, author: Author | None, *,
             actor: Actor | None = None) -> TicketNote:
    """An internal note: staff only, never shown to the client. author None: written
    by an integration (the actor), with no staff member behind it."""
    if author is not None and not author.is_staff:
        raise TicketError("Only staff write internal notes")
    message = _text(message, "Message", MAX_MESSAGE_LENGTH)
    note = TicketNote(ticket_id=ticket.id, admin_id=author.staff_id if author else None,
                      message=message, created_at=utcnow())
    db.session.add(note)
    db.session.flush()
    writer = author.name if author else (actor.name if actor else "an integration")
    log("ticket_note", f"Note by {writer} on ticket #{ticket.tid}", ticket, actor=actor)
    return note


def update_ticket(ticket: Ticket, *, status: str | None = None, priority: str | None = None,
                  department_id: int | None = None, subject: str | None = None,
                  assigned_to_id: int | None = None, unassign: bool = False,
                  actor: Actor | None = None) -> dict:
    """Triage: status, priority, department, subject, assignee. Returns what changed."""
    wanted: dict = {}
    if status is not None:
        if status not in STATUSES:
            raise TicketError(f"Invalid status {status!r}: one of {', '.join(STATUSES)}")
        wanted["status"] = status
    if priority is not None:
        if priority not in PRIORITIES:
            raise TicketError(f"Invalid priority {priority!r}: one of {', '.join(PRIORITIES)}")
        wanted["priority"] = priority
    if department_id is not None:
        wanted["department_id"] = _department(department_id, visible_only=False).id
    if subject is not None:
        wanted["subject"] = _text(subject, "Subject", MAX_SUBJECT_LENGTH)
    if assigned_to_id is not None:
        user_model = current_app.appbuilder.sm.user_model
        staff = db.session.get(user_model, assigned_to_id)
        if staff is None or not _is_staff_user(staff):
            raise TicketError(f"Admin user {assigned_to_id} not found")
        wanted["assigned_to_id"] = staff.id
    elif unassign:
        wanted["assigned_to_id"] = None
    return change_and_log(ticket, wanted, "ticket_updated", f"Ticket #{ticket.tid}",
                          actor or Actor.system(), adjust=_closed_at_follows_status)


def _closed_at_follows_status(ticket: Ticket, changed: dict) -> None:
    if "status" in changed:
        ticket.closed_at = utcnow() if ticket.status == TicketStatus.CLOSED else None


def close_ticket(ticket: Ticket, *, actor: Actor | None = None) -> Ticket:
    if ticket.status == TicketStatus.CLOSED.value:
        raise TicketError(f"Ticket #{ticket.tid} is closed already")
    before = {"status": ticket.status}
    ticket.status = TicketStatus.CLOSED.value
    ticket.closed_at = utcnow()
    db.session.flush()
    log("ticket_closed", f"Ticket #{ticket.tid} closed", ticket, before=before,
        after={"status": ticket.status}, actor=actor)
    return ticket


def delete_ticket(ticket: Ticket, *, actor: Actor | None = None) -> None:
    """The ticket with its replies, notes and attachment records (the stored files
    are the upload store's to clean)."""
    label = f"Ticket #{ticket.tid} deleted: {ticket.subject}"
    log("ticket_deleted", label, ticket, before={"status": ticket.status,
                                                 "subject": ticket.subject},
        actor=actor or Actor.system())
    db.session.delete(ticket)
    db.session.flush()


def rate_reply(reply_id: int, client_id: int, rating: int, *,
               actor: Actor | None = None) -> TicketReply:
    """The client's satisfaction rating (1 to 5) of a staff answer on its own ticket;
    it may change its mind, the newest rating counts."""
    if not isinstance(rating, int) or rating not in RATINGS:
        raise TicketError("A rating is a whole number from 1 to 5")
    reply = db.session.scalar(select(TicketReply).join(Ticket, Ticket.id == TicketReply.ticket_id)
                              .where(TicketReply.id == reply_id, Ticket.client_id == client_id))
    if reply is None:
        raise TicketError("Reply not found")
    if not reply.is_staff:
        raise TicketError("Only staff answers can be rated")
    before = {"rating": reply.rating}
    reply.rating = rating
    db.session.flush()
    log("ticket_reply_rated", f"Answer on ticket #{reply.ticket.tid} rated {rating} of 5",
        reply.ticket, before=before, after={"rating": rating}, actor=actor or Actor.system())
    return reply
