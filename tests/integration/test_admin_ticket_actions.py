"""The staff's ticket page works through the ticket engine: a reply (status as
chosen, first response time, the client emailed), a note, closing; bad input
changes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models.support import SupportDepartment, Ticket, TicketNote, TicketReply
from app.models.system import ActivityLog, EmailMessage, EmailTemplate
from app.support import tickets as ticket_engine
from tests import factories


def open_ticket(db) -> Ticket:
    customer = factories.client()
    department = SupportDepartment(name="Technical", email="tech@example.test")
    db.session.add(department)
    db.session.add(EmailTemplate(name="Support Ticket Reply", type="support",
                                 subject="[Ticket ID: {{ ticket_id }}] {{ ticket_subject }}",
                                 body_html="<p>{{ ticket_message }}</p>"))
    db.session.flush()
    ticket = ticket_engine.open_ticket(department.id, "Mail down", "No mail since 9:00",
                                       ticket_engine.client_author(customer.id))
    db.session.commit()
    return ticket


def test_staff_reply_note_and_close(db, admin_client):
    ticket = open_ticket(db)
    page = admin_client.get(f"/ticketview/show/{ticket.id}").get_data(as_text=True)
    assert f"/ticketview/reply/{ticket.id}" in page

    response = admin_client.post(f"/ticketview/reply/{ticket.id}",
                                 data={"message": "Fixed the MX record.", "status": "On Hold"})
    assert response.status_code == 302
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    staff_reply = ticket.replies[-1]
    assert (ticket.status, staff_reply.message, staff_reply.is_staff) == (
        "On Hold", "Fixed the MX record.", True)
    assert ticket.first_response_at is not None
    email = db.session.scalar(select(EmailMessage).where(EmailMessage.related_type == "ticket"))
    assert email.subject == f"[Ticket ID: {ticket.tid}] Mail down"

    empty = admin_client.post(f"/ticketview/reply/{ticket.id}", data={"message": " ", "status": "Answered"})
    assert empty.status_code == 200 and "Write the reply." in empty.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(TicketReply)) == 2

    admin_client.post(f"/ticketview/add_note/{ticket.id}", data={"message": "Check DNS TTL"})
    assert db.session.scalar(select(TicketNote.message)) == "Check DNS TTL"

    admin_client.post(f"/ticketview/close_ticket/{ticket.id}")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "Closed"
    again = admin_client.post(f"/ticketview/close_ticket/{ticket.id}", follow_redirects=True)
    assert "is closed already" in again.get_data(as_text=True)
    actions = db.session.scalars(select(ActivityLog.action).where(
        ActivityLog.object_type == "Ticket").order_by(ActivityLog.id)).all()
    assert actions == ["ticket_opened", "ticket_reply", "ticket_note", "ticket_closed"]


@pytest.mark.parametrize("role,allowed", [("Support", True), ("Manager", False)])
def test_support_replies_and_manager_only_reads(db, app, staff, role, allowed):
    from tests.conftest import login

    ticket = open_ticket(db)
    http = app.test_client()
    login(http, *staff(role))
    http.post(f"/ticketview/reply/{ticket.id}", data={"message": f"From {role}",
                                                      "status": "Answered"})
    db.session.expire_all()
    messages = [reply.message for reply in db.session.get(Ticket, ticket.id).replies]
    assert (f"From {role}" in messages) is allowed
