"""Engine actions on the staff's ticket page: reply (emails the client), add an
internal note, close. Each goes through the ticket engine (app.support.tickets), the
one the portal and the WHMCS API use, so the status rules and the log are the same."""
from __future__ import annotations

from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField

from app.activity import current_actor
from app.admin.actions import EngineActions, text_box
from app.models.support import TicketStatus
from app.support import tickets as ticket_engine

MAX_MESSAGE = ticket_engine.MAX_MESSAGE_LENGTH
# After a staff reply: Answered by default, or another status chosen on the form.
REPLY_STATUSES = [(status.value, status.value) for status in TicketStatus
                  if status not in (TicketStatus.OPEN, TicketStatus.CUSTOMER_REPLY)]


class ReplyForm(FlaskForm):
    message = text_box("Reply", "Write the reply.", max_length=MAX_MESSAGE, textarea=True,
                       description="Emailed to the client; shown in the portal.")
    status = SelectField("Status after the reply", choices=REPLY_STATUSES,
                         default=TicketStatus.ANSWERED.value)


class NoteForm(FlaskForm):
    message = text_box("Internal note", "Write the note.", max_length=MAX_MESSAGE, textarea=True,
                       description="Staff only: never shown to the client.")


class TicketActions(EngineActions):
    action_permissions = ("reply", "add_note", "close_ticket")
    refusals = (ticket_engine.TicketError,)
    conflict_message = "Nothing was changed: the ticket changed meanwhile. Reload and try again."

    def record_title(self, ticket) -> str:
        return f"Ticket #{ticket.tid}: {ticket.subject}"

    def buttons(self, ticket):
        closed = ticket.status == TicketStatus.CLOSED
        return [
            self.button("reply", "Reply", ticket, icon="fa-reply", style="primary"),
            self.button("add_note", "Add note", ticket, icon="fa-sticky-note-o"),
            None if closed else self.button("close_ticket", "Close", ticket, icon="fa-check",
                                            post=True, confirm="Close this ticket?"),
        ]

    @expose("/reply/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("reply")
    def reply(self, pk):
        ticket = self.record_or_404(pk)
        form = ReplyForm()
        if self.form_done(ticket, form, lambda: ticket_engine.add_reply(
                ticket, form.message.data, ticket_engine.staff_author(current_user),
                status=form.status.data, actor=current_actor()),
                lambda reply: f"Reply sent: the ticket is {reply.ticket.status}."):
            return self.back_to(ticket)
        return self.form_page(ticket, form, f"Reply to ticket #{ticket.tid}", "Send the reply",
                              facts=[("Subject", ticket.subject), ("From", ticket.name),
                                     ("Status", ticket.status)])

    @expose("/add_note/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("add_note")
    def add_note(self, pk):
        ticket = self.record_or_404(pk)
        form = NoteForm()
        if self.form_done(ticket, form, lambda: ticket_engine.add_note(
                ticket, form.message.data, ticket_engine.staff_author(current_user),
                actor=current_actor()),
                lambda note: "Note added."):
            return self.back_to(ticket)
        return self.form_page(ticket, form, f"Internal note on ticket #{ticket.tid}", "Add note",
                              facts=[("Subject", ticket.subject)])

    @expose("/close_ticket/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("close_ticket")
    def close_ticket(self, pk):
        return self.one_click(
            pk, lambda ticket: ticket_engine.close_ticket(ticket, actor=current_actor()),
            lambda ticket: f"Ticket #{ticket.tid} closed.")
