"""Support in the portal: the account's tickets (open, read, reply, close, download
an attachment), and the public knowledge base and announcements.

Ticket messages are text written by users: the templates print them escaped, never
as HTML. Knowledge-base articles and announcements are HTML written by staff: they
are shown through a small allow-list (app.portal.html.safe_html)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select, update
from wtforms import SelectChoice

from app import custom_fields
from app.activity import current_actor
from app.extensions import db
from app.models.base import utcnow
from app.models.orders import Service
from app.models.support import (
    Announcement, KbArticle, KbCategory, Ticket, TicketAttachment, TicketStatus,
)
from app.portal import portal
from app.portal.access import client_login_required, current_client, is_client_user, owned_or_404
from app.portal.custom_field_forms import (
    first_problem, posted_again, posted_values, translated_problems,
)
from app.portal.forms import ReplyForm, TicketForm
from app.support.attachments import (
    MAX_FILES, UploadError, allowed_extensions, download, human_size, max_bytes, remove_stored,
    store_uploads,
)
from app.support import tickets as ticket_engine
from app.support.tickets import TicketError, client_user_author, visible_departments

SEARCH_MIN_LENGTH = 2
SEARCH_MAX_LENGTH = 100


def _upload_rules() -> dict:
    return {"types": ", ".join(allowed_extensions()), "max_files": MAX_FILES,
            "max_size": human_size(max_bytes())}


def _save_with_files(form, action):
    """Store the uploads, then run the engine action with them in one transaction;
    if the database refuses, the stored files are removed again. Returns the
    action's result, or None after flashing why nothing was saved."""
    try:
        stored = store_uploads(form.attachments.data or [])
    except UploadError as error:
        form.attachments.errors = [str(error)]
        return None
    try:
        result = action(stored)
        db.session.commit()
    except Exception as error:
        db.session.rollback()
        remove_stored(stored)
        if not isinstance(error, TicketError):
            raise
        flash(_("Nothing was sent: %(reason)s", reason=str(error)), "danger")
        return None
    return result


class DepartmentQuestions:
    """The custom fields of each department a ticket form offers: the page shows
    those of the chosen department, and the ticket opens only when they are answered
    as they must be (saved with it, in its transaction)."""

    def __init__(self, department_choices):
        by_department = custom_fields.fields_of_departments(
            choice.value for choice in department_choices)
        self.fields = {department_id: custom_fields.visible(fields, staff=False)
                       for department_id, fields in by_department.items()}
        self.problems: dict[int, str] = {}

    def opener(self, form, open_ticket):
        """open_ticket(stored files, answers) wrapped: the answers posted to the chosen
        department's fields go to the engine, and its refusal shows beside them."""
        def open_with_fields(stored):
            fields = self.fields.get(form.department.data, [])
            answers = posted_values(fields, request.form)
            try:
                return open_ticket(stored, answers)
            except custom_fields.CustomFieldError as error:
                self.problems = translated_problems(error, fields)
                raise TicketError(first_problem(error, fields)) from None
        return open_with_fields

    def context(self) -> dict:
        asked = [field for fields in self.fields.values() for field in fields]
        return {"department_fields": self.fields, "custom_problems": self.problems,
                "custom_values": posted_again(asked, request.form)
                if request.method == "POST" else {}}


@portal.route("/tickets")
@client_login_required
def tickets():
    client = current_client()
    rows = list(db.session.scalars(
        select(Ticket).where(Ticket.client_id == client.id)
        .order_by(Ticket.status == TicketStatus.CLOSED.value, Ticket.last_reply_at.desc())))
    return render_template("portal/tickets.html", tickets=rows)


@portal.route("/tickets/new", methods=["GET", "POST"])
@client_login_required
def new_ticket():
    client = current_client()
    form = TicketForm()
    form.department.choices = [SelectChoice(d.id, d.name) for d in visible_departments()]
    services = db.session.scalars(select(Service).where(Service.client_id == client.id)
                                  .order_by(Service.id.desc()))
    form.service.choices = [SelectChoice(0, _("None"))] + [SelectChoice(s.id, str(s))
                                                           for s in services]
    questions = DepartmentQuestions(form.department.choices)
    open_with_fields = questions.opener(form, lambda stored, answers: ticket_engine.open_ticket(
        form.department.data, form.subject.data, form.message.data,
        client_user_author(client.id, current_user), priority=form.priority.data,
        service_id=form.service.data or None, files=stored, visible_only=True,
        field_answers=answers, actor=current_actor()))
    if form.validate_on_submit():
        ticket = _save_with_files(form, open_with_fields)
        if ticket is not None:
            flash(_("Ticket #%(tid)s has been opened. We will reply as soon as we can.",
                    tid=ticket.tid), "success")
            return redirect(url_for("portal.ticket", ticket_id=ticket.id))
    return render_template("portal/new_ticket.html", form=form, rules=_upload_rules(),
                           **questions.context())


@portal.route("/tickets/<int:ticket_id>")
@client_login_required
def ticket(ticket_id: int):
    return ticket_page(owned_or_404(Ticket, ticket_id))


def ticket_page(row: Ticket, **extra) -> str:
    """A ticket's page, for the client in the account or for a guest (extra: guest_code)."""
    attachments_by_reply: dict[int | None, list[TicketAttachment]] = {}
    for attachment in row.attachments:
        attachments_by_reply.setdefault(attachment.reply_id, []).append(attachment)
    return render_template("portal/ticket.html", ticket=row, form=ReplyForm(),
                           custom_values=custom_fields.values_for(custom_fields.SUPPORT, row.id),
                           attachments=attachments_by_reply, rules=_upload_rules(),
                           human_size=human_size, **extra)


@portal.route("/tickets/<int:ticket_id>/reply", methods=["POST"])
@client_login_required
def ticket_reply(ticket_id: int):
    row = owned_or_404(Ticket, ticket_id)
    form = ReplyForm()
    if form.validate_on_submit():
        reply = _save_with_files(form, lambda stored: ticket_engine.add_reply(
            row, form.message.data, client_user_author(current_client().id, current_user),
            files=stored))
        if reply is not None:
            flash(_("Your reply has been sent."), "success")
            return redirect(url_for("portal.ticket", ticket_id=row.id) + "#latest")
    for errors in form.errors.values():
        for message in errors:
            flash(message, "danger")
    return redirect(url_for("portal.ticket", ticket_id=row.id))


@portal.route("/tickets/<int:ticket_id>/close", methods=["POST"])
@client_login_required
def ticket_close(ticket_id: int):
    row = owned_or_404(Ticket, ticket_id)
    try:
        ticket_engine.close_ticket(row)
        db.session.commit()
    except TicketError as error:
        db.session.rollback()
        flash(_("The ticket was not closed: %(reason)s", reason=str(error)), "danger")
    else:
        flash(_("The ticket has been closed."), "success")
    return redirect(url_for("portal.ticket", ticket_id=row.id))


@portal.route("/tickets/<int:ticket_id>/replies/<int:reply_id>/rate", methods=["POST"])
@client_login_required
def ticket_rate(ticket_id: int, reply_id: int):
    """The client rates a staff answer from 1 to 5 (CSRF-checked by the app-wide guard)."""
    row = owned_or_404(Ticket, ticket_id)
    if not any(reply.id == reply_id for reply in row.replies):
        abort(404)
    try:
        rating = int(request.form.get("rating", ""))
        ticket_engine.rate_reply(reply_id, current_client().id, rating)
        db.session.commit()
    except (ValueError, TicketError) as error:
        db.session.rollback()
        reason = str(error) if isinstance(error, TicketError) else _("choose from 1 to 5")
        flash(_("The rating was not saved: %(reason)s", reason=reason), "danger")
    else:
        flash(_("Thank you for rating our answer."), "success")
    return redirect(url_for("portal.ticket", ticket_id=row.id) + f"#reply-{reply_id}")


@portal.route("/tickets/<int:ticket_id>/attachments/<int:attachment_id>")
@client_login_required
def ticket_attachment(ticket_id: int, attachment_id: int):
    row = owned_or_404(Ticket, ticket_id)
    attachment = db.session.scalar(select(TicketAttachment).where(
        TicketAttachment.id == attachment_id, TicketAttachment.ticket_id == row.id))
    if attachment is None:
        abort(404)
    return download(attachment)


# The public knowledge base and announcements

def _signed_in_client() -> bool:
    return current_user.is_authenticated and is_client_user(current_user)


def _visible_articles():
    """Published articles of visible categories; private ones for signed-in clients only."""
    conditions = [KbArticle.published.is_(True), KbCategory.hidden.is_(False)]
    if not _signed_in_client():
        conditions.append(KbArticle.private.is_(False))
    return select(KbArticle).join(KbCategory, KbCategory.id == KbArticle.category_id) \
        .where(*conditions)


@portal.route("/knowledgebase")
def knowledgebase():
    query = (request.args.get("q") or "").strip()[:SEARCH_MAX_LENGTH]
    results = None
    if len(query) >= SEARCH_MIN_LENGTH:
        # The search words are bound parameters; the wildcards in them are escaped.
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        results = list(db.session.scalars(_visible_articles().where(or_(
            func.lower(KbArticle.title).like(pattern, escape="\\"),
            func.lower(KbArticle.tags).like(pattern, escape="\\"),
            func.lower(KbArticle.body).like(pattern, escape="\\"),
        )).order_by(KbArticle.views.desc(), KbArticle.title).limit(50)))
    categories = list(db.session.scalars(
        select(KbCategory).where(KbCategory.hidden.is_(False), KbCategory.parent_id.is_(None))
        .order_by(KbCategory.sort_order, KbCategory.name)))
    counts = _article_counts()
    popular = list(db.session.scalars(_visible_articles()
                                      .order_by(KbArticle.views.desc(), KbArticle.title).limit(5)))
    return render_template("portal/kb_index.html", categories=categories, counts=counts,
                           popular=popular, query=query, results=results,
                           too_short=bool(query) and len(query) < SEARCH_MIN_LENGTH)


def _article_counts() -> dict[int, int]:
    visible = _visible_articles().subquery()
    return dict(db.session.execute(
        select(visible.c.category_id, func.count(visible.c.id)).group_by(visible.c.category_id)
    ).all())


@portal.route("/knowledgebase/category/<int:category_id>")
def kb_category(category_id: int):
    category = db.session.scalar(select(KbCategory).where(KbCategory.id == category_id,
                                                          KbCategory.hidden.is_(False)))
    if category is None:
        abort(404)
    articles = list(db.session.scalars(_visible_articles()
                                       .where(KbArticle.category_id == category.id)
                                       .order_by(KbArticle.title)))
    children = list(db.session.scalars(
        select(KbCategory).where(KbCategory.parent_id == category.id, KbCategory.hidden.is_(False))
        .order_by(KbCategory.sort_order, KbCategory.name)))
    return render_template("portal/kb_category.html", category=category, articles=articles,
                           children=children, counts=_article_counts())


@portal.route("/knowledgebase/article/<int:article_id>")
def kb_article(article_id: int):
    article = db.session.scalar(_visible_articles().where(KbArticle.id == article_id))
    if article is None:
        abort(404)
    # A counter, not a change of anyone's records: one UPDATE, no activity entry.
    db.session.execute(update(KbArticle).where(KbArticle.id == article.id)
                       .values(views=KbArticle.views + 1))
    db.session.commit()
    return render_template("portal/kb_article.html", article=article)


def published_announcements():
    """Announcements that are published and whose date has come."""
    return select(Announcement).where(Announcement.published.is_(True),
                                      Announcement.published_at <= utcnow())


@portal.route("/announcements")
def announcements():
    rows = list(db.session.scalars(published_announcements()
                                   .order_by(Announcement.published_at.desc()).limit(50)))
    return render_template("portal/announcements.html", announcements=rows)


@portal.route("/announcements/<int:announcement_id>")
def announcement(announcement_id: int):
    row = db.session.scalar(published_announcements().where(Announcement.id == announcement_id))
    if row is None:
        abort(404)
    return render_template("portal/announcement.html", announcement=row)
