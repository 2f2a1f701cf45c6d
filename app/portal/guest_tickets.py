"""Tickets of visitors without an account, as WHMCS has them: anybody may open one
with a name and an email address; the ticket's number and access code (tid and c,
sent in the emailed link) then open its page, where the guest reads the answers,
replies and downloads the files, without signing in.

A wrong number or code, or a client's ticket (read in the account), answers 404.
The page lives in the tickets area of the portal (app.portal.access), so a signed-in
login without the tickets permission is refused there as on the account's tickets.
The forms are CSRF-checked (app-wide) and rate-limited like the sign-in forms
(app.portal._RATE_LIMITED_ENDPOINTS); attachments pass the checks of
app.support.attachments."""
from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from app.activity import current_actor
from app.extensions import db
from app.models.support import TicketAttachment
from app.portal import portal
from app.portal.access import is_client_user
from app.portal.forms import GuestTicketForm, ReplyForm
from app.portal.support import (
    DepartmentQuestions, _save_with_files, _upload_rules, ticket_page,
)
from app.support.attachments import download
from app.support import tickets as ticket_engine
from app.support.tickets import TicketError, guest_author, visible_departments


def _guest_ticket_or_404():
    try:
        return ticket_engine.guest_ticket(request.args.get("tid"), request.args.get("c"))
    except TicketError:
        abort(404)


def _page_url(ticket) -> str:
    return url_for("portal.guest_ticket", tid=ticket.tid, c=ticket.access_code)


def _private(response):
    # The address carries the access code: keep it out of Referer headers and caches.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@portal.route("/tickets/submit", methods=["GET", "POST"])
def guest_new_ticket():
    if current_user.is_authenticated and is_client_user(current_user):
        return redirect(url_for("portal.new_ticket"))
    form = GuestTicketForm()
    form.department.choices = [SelectChoice(d.id, d.name)
                               for d in visible_departments(guest=True)]
    questions = DepartmentQuestions(form.department.choices)
    if form.validate_on_submit():
        ticket = _save_with_files(form, questions.opener(form, lambda stored, answers: ticket_engine.open_ticket(
            form.department.data, form.subject.data, form.message.data,
            guest_author(form.name.data, form.email.data), priority=form.priority.data,
            files=stored, visible_only=True, field_answers=answers, actor=current_actor())))
        if ticket is not None:
            flash(_("Ticket #%(tid)s has been opened. We have emailed you a link to follow it.",
                    tid=ticket.tid), "success")
            return redirect(_page_url(ticket))
    return render_template("portal/new_ticket.html", guest=True, form=form, rules=_upload_rules(),
                           **questions.context())


@portal.route("/tickets/view")
def guest_ticket():
    row = _guest_ticket_or_404()
    return _private(make_response(ticket_page(row, guest_code=row.access_code)))


@portal.route("/tickets/view/reply", methods=["POST"])
def guest_ticket_reply():
    row = _guest_ticket_or_404()
    form = ReplyForm()
    if form.validate_on_submit():
        reply = _save_with_files(form, lambda stored: ticket_engine.add_reply(
            row, form.message.data, guest_author(row.name, row.email), files=stored))
        if reply is not None:
            flash(_("Your reply has been sent."), "success")
            return redirect(_page_url(row) + "#latest")
    for errors in form.errors.values():
        for message in errors:
            flash(message, "danger")
    return redirect(_page_url(row))


@portal.route("/tickets/view/attachments/<int:attachment_id>")
def guest_ticket_attachment(attachment_id: int):
    row = _guest_ticket_or_404()
    attachment = db.session.scalar(select(TicketAttachment).where(
        TicketAttachment.id == attachment_id, TicketAttachment.ticket_id == row.id))
    if attachment is None:
        abort(404)
    return _private(download(attachment))
