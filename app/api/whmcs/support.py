"""WHMCS API actions of the Support area."""
from __future__ import annotations

import base64
import binascii
import io
import json

from sqlalchemy import case, func, select
from werkzeug.datastructures import FileStorage

from app import custom_fields
from app.activity import Actor
from app.api.whmcs.clients import checked_custom_fields, custom_field_rows, custom_field_values
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import flag, listing, moment
from app.extensions import db
from app.models.support import SupportDepartment, Ticket, TicketStatus
from app.support.attachments import UploadError, remove_stored, store_uploads
from app.support import tickets as ticket_engine
from app.support.tickets import StoredFile, client_author, guest_author, staff_author_named

AWAITING_REPLY = (TicketStatus.OPEN.value, TicketStatus.CUSTOMER_REPLY.value)
ATTACHMENTS_FORMAT = ("Parameter attachments must be a base64-encoded JSON array of "
                      "{name, data} items, data base64-encoded")


def _decoded_attachments(params: Params) -> list[FileStorage]:
    """WHMCS's attachments parameter: base64 of a JSON array of {"name", "data"}, data
    itself base64. Read as uploads, so the portal's checks judge them."""
    value = params.text("attachments")
    if value is None:
        return []
    try:
        items = json.loads(base64.b64decode(value, validate=True))
        if not isinstance(items, list) or not all(
                isinstance(item, dict) and isinstance(item.get("name"), str)
                and isinstance(item.get("data"), str) for item in items):
            raise ValueError
        files = [(item["name"], base64.b64decode(item["data"], validate=True)) for item in items]
    except (binascii.Error, ValueError):  # json.JSONDecodeError and UnicodeDecodeError too
        raise ApiError(ATTACHMENTS_FORMAT) from None
    # A blank name would be skipped as "no file chosen": refuse it instead.
    if any(not name.strip() for name, _ in files):
        raise ApiError("Every attachment needs a name")
    return [FileStorage(stream=io.BytesIO(data), filename=name) for name, data in files]


def _with_attachments(params: Params, engine_call):
    """Check and store the call's attachments, then run the engine with them; if
    anything refuses, the stored files are removed again and nothing is left."""
    try:
        stored: list[StoredFile] = store_uploads(_decoded_attachments(params))
    except UploadError as error:
        raise ApiError(f"Attachment refused: {error}") from None
    try:
        return engine_call(stored)
    except BaseException:
        remove_stored(stored)
        raise


@action("OpenTicket", "TicketApi", "can_post")
def open_ticket(params: Params, actor: Actor) -> dict:
    if params.text("domainid"):
        raise ApiError("domainid is not supported yet: tickets link to services only")
    department_id = params.id("deptid", required=True)
    author, service_id = _author(params), params.id("serviceid")
    created_at, send_email = params.datetime("created"), not params.bool("noemail")
    answers = custom_field_values(params.raw("customfields"))
    # Checked first, as WHMCS does: a bad answer refuses the call before any file is stored.
    checked_custom_fields(custom_fields.department_fields(department_id), answers)
    ticket = _with_attachments(params, lambda stored: ticket_engine.open_ticket(
        department_id, params.raw("subject") or "", params.raw("message") or "", author,
        priority=params.text("priority") or "Medium", service_id=service_id,
        created_at=created_at, files=stored, send_email=send_email, field_answers=answers,
        staff=True, actor=actor))
    # "c": the access code that opens a guest's ticket page with its number.
    return {"id": ticket.id, "tid": ticket.tid, "c": ticket.access_code}


@action("AddTicketReply", "TicketReplyApi", "can_post")
def add_ticket_reply(params: Params, actor: Actor) -> dict:
    ticket = _ticket(params)
    admin_username = params.text("adminusername")
    author = staff_author_named(admin_username) if admin_username else _author(params)
    status, send_email = params.text("status"), not params.bool("noemail")
    _with_attachments(params, lambda stored: ticket_engine.add_reply(
        ticket, params.raw("message") or "", author, status=status, files=stored,
        send_email=send_email, actor=actor))
    return {}


def _author(params: Params):
    """The client (or its contact) by id, else a guest by name and email."""
    client_id = params.id("clientid")
    if client_id is not None:
        return client_author(client_id, params.id("contactid"))
    return guest_author(params.raw("name"), params.raw("email"))


def _service_ref(ticket: Ticket) -> str:
    return f"S{ticket.service_id}" if ticket.service_id else ""


def _admin_name(user) -> str:
    return f"{user.first_name} {user.last_name}".strip() if user else ""


@action("GetTickets", "TicketApi", "can_get")
def get_tickets(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    query = select(Ticket)
    department_id, client_id = params.id("deptid"), params.id("clientid")
    if department_id is not None:
        query = query.where(Ticket.department_id == department_id)
    if client_id is not None:
        query = query.where(Ticket.client_id == client_id)
    email = params.text("email")
    if email:
        query = query.where(func.lower(Ticket.email) == email.lower())
    status = params.text("status")
    if status == "Awaiting Reply":
        query = query.where(Ticket.status.in_(AWAITING_REPLY))
    elif status == "All Active Tickets":
        query = query.where(Ticket.status != TicketStatus.CLOSED.value)
    elif status == "My Flagged Tickets":
        query = query.where(Ticket.id.is_(None))  # an API credential has no flagged tickets
    elif status:
        if status not in {value.value for value in TicketStatus}:
            raise ApiError(f"Invalid status {status}")
        query = query.where(Ticket.status == status)
    subject = params.text("subject")
    if subject:
        pattern = "%" + subject.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(func.lower(Ticket.subject).like(pattern, escape="\\"))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Ticket.last_reply_at.desc(), Ticket.id.desc())
                              .offset(start).limit(limit)).all()
    tickets = [{"id": ticket.id, "tid": ticket.tid, "deptid": ticket.department_id,
                "userid": ticket.client_id or 0, "name": ticket.name, "email": ticket.email,
                "cc": "", "c": ticket.access_code, "date": moment(ticket.created_at),
                "subject": ticket.subject,
                "status": ticket.status, "priority": ticket.priority,
                "admin": "", "attachment": "", "lastreply": moment(ticket.last_reply_at),
                "flag": ticket.assigned_to_id or 0, "service": _service_ref(ticket)}
               for ticket in rows]
    return listing("tickets", "ticket", tickets, total, start)


@action("GetTicket", "TicketApi", "can_get")
def get_ticket(params: Params, actor: Actor) -> dict:
    if params.id("ticketid") is None and not params.text("ticketnum"):
        raise ApiError("Ticket ID Required")
    ticket = _ticket(params)
    order = (params.text("repliessort") or "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise ApiError("Parameter repliessort must be ASC or DESC")
    replies = sorted(ticket.replies, key=lambda reply: (reply.created_at, reply.id),
                     reverse=order == "DESC")
    staff = {user.id: user for user in _staff_of(ticket)}
    files: dict[int | None, list[str]] = {}
    for attachment in sorted(ticket.attachments, key=lambda row: row.id):
        files.setdefault(attachment.reply_id, []).append(attachment.original_name)
    return {
        "ticketid": ticket.id, "tid": ticket.tid, "c": ticket.access_code,
        "deptid": ticket.department_id,
        "deptname": ticket.department.name, "userid": ticket.client_id or 0,
        "contactid": ticket.contact_id or 0, "name": ticket.name, "email": ticket.email,
        "cc": "", "date": moment(ticket.created_at), "subject": ticket.subject,
        "status": ticket.status, "priority": ticket.priority, "admin": "",
        "lastreply": moment(ticket.last_reply_at), "flag": ticket.assigned_to_id or 0,
        "service": _service_ref(ticket),
        "customfields": {"customfield": custom_field_rows(custom_fields.SUPPORT, ticket.id)},
        "replies": {"reply": [
            {"replyid": reply.id, "userid": 0 if reply.admin_id else (ticket.client_id or 0),
             "contactid": 0, "name": reply.name, "email": reply.email or "",
             "date": moment(reply.created_at), "message": reply.message,
             **_attachment_fields(files.get(reply.id, [])),
             "admin": _admin_name(staff.get(reply.admin_id)) if reply.admin_id else "",
             "rating": reply.rating or 0}
            for reply in replies]},
        "notes": {"note": [
            {"noteid": note.id, "date": moment(note.created_at), "message": note.message,
             "admin": _admin_name(note.admin)} for note in ticket.notes]},
    }


def _attachment_fields(names: list[str]) -> dict:
    """A message's files as WHMCS lists them: the names joined by "|", and each name
    with the index GetTicketAttachment would take."""
    return {"attachment": "|".join(names),
            "attachments": [{"filename": name, "index": index} for index, name in enumerate(names)],
            "attachments_removed": False}


def _staff_of(ticket: Ticket) -> list:
    from flask import current_app

    ids = {reply.admin_id for reply in ticket.replies if reply.admin_id}
    if not ids:
        return []
    user_model = current_app.appbuilder.sm.user_model
    return list(db.session.scalars(select(user_model).where(user_model.id.in_(ids))))


@action("GetSupportDepartments", "SupportDepartmentApi", "can_get")
def get_support_departments(params: Params, actor: Actor) -> dict:
    awaiting = func.sum(case((Ticket.status.in_(AWAITING_REPLY), 1), else_=0))
    counts = {department_id: (waiting or 0, open_count) for department_id, waiting, open_count in
              db.session.execute(
                  select(Ticket.department_id, awaiting, func.count())
                  .where(Ticket.status != TicketStatus.CLOSED.value)
                  .group_by(Ticket.department_id))}
    departments = db.session.scalars(select(SupportDepartment).order_by(
        SupportDepartment.sort_order, SupportDepartment.id)).all()
    rows = [{"id": department.id, "name": department.name,
             "awaitingreply": int(counts.get(department.id, (0, 0))[0]),
             "opentickets": counts.get(department.id, (0, 0))[1]} for department in departments]
    return listing("departments", "department", rows, len(rows))


def _ticket(params: Params) -> Ticket:
    return ticket_engine.find_ticket(params.id("ticketid"), params.text("ticketnum"))


@action("AddTicketNote", "TicketNoteApi", "can_post")
def add_ticket_note(params: Params, actor: Actor) -> dict:
    if params.text("attachments"):
        raise ApiError("attachments are not supported by the API yet")
    ticket = _ticket(params)
    username = params.text("adminusername")
    # Without a staff login named, the note is the integration's (the log names it).
    author = staff_author_named(username) if username else None
    note = ticket_engine.add_note(ticket, params.raw("message") or "", author, actor=actor)
    return {"noteid": note.id}


@action("UpdateTicket", "TicketApi", "can_put")
def update_ticket(params: Params, actor: Actor) -> dict:
    ticket_id = params.id("ticketid", required=True)
    ticket = ticket_engine.find_ticket(ticket_id)
    refused = [name for name in ("userid", "name", "email", "cc", "created", "message",
                                 "customfields") if params.has(name)]
    if refused:
        raise ApiError(f"{', '.join(refused)} cannot be changed: a ticket's author and "
                       "messages stay as written")
    flag_id = params.int("flag", minimum=0)
    ticket_engine.update_ticket(
        ticket, status=params.text("status"), priority=params.text("priority"),
        department_id=params.id("deptid"), subject=params.raw("subject") if params.has("subject") else None,
        assigned_to_id=flag_id or None, unassign=bool(params.bool("removeFlag")) or flag_id == 0,
        actor=actor)
    return {"ticketid": ticket.id}


@action("DeleteTicket", "TicketApi", "can_delete")
def delete_ticket(params: Params, actor: Actor) -> dict:
    ticket = ticket_engine.find_ticket(params.id("ticketid", required=True))
    ticket_engine.delete_ticket(ticket, actor=actor)
    return {}


STATUS_COLOURS = {TicketStatus.OPEN.value: "#779500", TicketStatus.ANSWERED.value: "#000000",
                  TicketStatus.CUSTOMER_REPLY.value: "#ff6600",
                  TicketStatus.ON_HOLD.value: "#224488", TicketStatus.IN_PROGRESS.value: "#cc0000",
                  TicketStatus.CLOSED.value: "#888888"}


def _status_counts(department_id: int | None) -> dict[str, int]:
    query = select(Ticket.status, func.count()).group_by(Ticket.status)
    if department_id is not None:
        query = query.where(Ticket.department_id == department_id)
    return dict(db.session.execute(query).all())


@action("GetSupportStatuses", "TicketApi", "can_get")
def get_support_statuses(params: Params, actor: Actor) -> dict:
    counts = _status_counts(params.id("deptid"))
    rows = [{"title": status.value, "count": counts.get(status.value, 0),
             "color": STATUS_COLOURS[status.value]} for status in TicketStatus]
    return listing("statuses", "status", rows, len(rows))


@action("GetTicketCounts", "TicketApi", "can_get")
def get_ticket_counts(params: Params, actor: Actor) -> dict:
    counts = _status_counts(None)
    departments = db.session.scalars(select(SupportDepartment.id).order_by(SupportDepartment.id)).all()
    payload = {
        "filteredDepartments": list(departments),
        "allActive": sum(n for status, n in counts.items() if status != TicketStatus.CLOSED),
        "awaitingReply": sum(counts.get(status, 0) for status in AWAITING_REPLY),
        "flaggedTickets": 0,
    }
    if params.bool("includeCountsByStatus"):
        payload["status"] = {status.value.lower().replace("-", "").replace(" ", ""):
                             {"title": status.value, "count": counts.get(status.value, 0)}
                             for status in TicketStatus}
    return payload


@action("AddAnnouncement", "AnnouncementApi", "can_post")
def add_announcement(params: Params, actor: Actor) -> dict:
    from app.support.announcements import add_announcement as add

    published_at = params.datetime("date")
    if published_at is None:
        raise ApiError("Parameter date is required")
    row = add(params.text("title", required=True, max_length=255),
              params.raw("announcement") or "", published_at,
              published=bool(params.bool("published")), actor=actor)
    return {"announcementid": row.id}


@action("GetAnnouncements", "AnnouncementApi", "can_get")
def get_announcements(params: Params, actor: Actor) -> dict:
    from app.models.support import Announcement

    start, limit = params.paging()
    query = select(Announcement)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Announcement.published_at.desc(), Announcement.id.desc())
                              .offset(start).limit(limit)).all()
    announcements = [{"id": row.id, "date": moment(row.published_at), "title": row.title,
                      "announcement": row.body, "published": flag(row.published),
                      "parentid": 0, "language": "", "created_at": moment(row.created_at),
                      "updated_at": moment(row.updated_at)} for row in rows]
    return listing("announcements", "announcement", announcements, total, start)
