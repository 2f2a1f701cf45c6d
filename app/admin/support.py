"""Staff screens of the Support menu: tickets, departments, knowledge base and
announcements.

Staff open tickets for clients (the first message becomes the staff member's
first reply), triage them (status, priority, department, assignee), keep internal
notes and run the knowledge base. Opening, replying (which emails the client), notes
and closing go through the ticket engine (app.support.tickets), from the buttons of
a ticket's page (app.admin.ticket_actions); the reply list only reads and removes."""
from __future__ import annotations

import re

from flask import g
from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import TextAreaField
from wtforms.validators import Length, StopValidation, ValidationError

from app.admin.clients import (
    EMAIL_FORMAT, AuditedModelView, UniqueIgnoringCase, choice_field, current_user_id,
    required, status_label, strip_lower, text_field, when, yes_no,
)
from app.extensions import db
from app.admin.ticket_actions import TicketActions
from app.support import tickets as ticket_engine
from app.models.base import utcnow
from app.models.support import (
    Announcement, KbArticle, KbCategory, SupportDepartment, Ticket, TicketAttachment,
    TicketNote, TicketPriority, TicketReply, TicketStatus,
)

TIMES = {"created_at": when, "updated_at": when, "last_reply_at": when,
         "first_response_at": when, "closed_at": when, "published_at": when}


def file_size(value) -> str:
    if value is None:
        return ""
    for unit in ("bytes", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value = value / 1024
    return ""


def multiline(value) -> Markup:
    """A message with its line breaks kept (the thread is read in the list)."""
    return escape(value or "").replace("\n", Markup("<br>"))


def slug_format(form, field) -> None:
    if field.data and not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", field.data):
        raise ValidationError("Use lower-case letters, digits and single dashes only.")


class TicketReplyView(AuditedModelView):
    """The conversation of a ticket. New replies go through the support engine (it
    emails the client); here they are read, or removed when posted by mistake."""

    datamodel = SQLAInterface(TicketReply)
    list_title = "Replies"
    show_title = "Reply"
    label_columns = {"ticket": "Ticket", "name": "From", "email": "Email",
                     "message": "Message", "rating": "Client rating", "created_at": "Posted",
                     "is_staff": "Staff reply"}
    list_columns = ["created_at", "name", "is_staff", "message", "rating"]
    show_columns = ["ticket", "created_at", "name", "email", "is_staff", "message", "rating"]
    search_columns = ["name", "email", "message", "created_at"]
    base_order = ("created_at", "asc")
    formatters_columns = {"message": multiline, "is_staff": yes_no, **TIMES}
    client_path = "ticket.client_id"
    base_permissions = ["can_list", "can_show", "can_delete"]


class TicketNoteView(AuditedModelView):
    """Internal notes: staff only, never shown to the client."""

    datamodel = SQLAInterface(TicketNote)
    list_title = "Internal notes"
    show_title = "Internal note"
    add_title = "Add internal note"
    edit_title = "Edit internal note"
    label_columns = {"ticket": "Ticket", "admin": "Written by", "message": "Note",
                     "created_at": "Written"}
    list_columns = ["created_at", "admin", "message"]
    show_columns = ["ticket", "created_at", "admin", "message"]
    add_columns = ["ticket", "message"]
    edit_columns = ["message"]
    search_columns = ["message", "created_at"]
    base_order = ("created_at", "asc")
    formatters_columns = TIMES
    client_path = "ticket.client_id"
    validators_columns = {"ticket": [required("Choose the ticket.")],
                          "message": [required("The note is empty.")]}

    def before_save(self, item, is_created):
        if is_created:
            item.admin_id = current_user_id()


class TicketAttachmentView(AuditedModelView):
    """Files clients and staff attached; stored under random names by the support
    engine, so rows are only listed here."""

    datamodel = SQLAInterface(TicketAttachment)
    list_title = "Attachments"
    show_title = "Attachment"
    label_columns = {"ticket": "Ticket", "reply_id": "Reply ID", "original_name": "File name",
                     "content_type": "Type", "size": "Size", "created_at": "Uploaded",
                     "stored_name": "Stored as"}
    list_columns = ["original_name", "content_type", "size", "created_at"]
    show_columns = ["ticket", "reply_id", "original_name", "content_type", "size",
                    "created_at"]
    search_columns = ["original_name", "content_type"]
    base_order = ("created_at", "asc")
    formatters_columns = {"size": file_size, **TIMES}
    client_path = "ticket.client_id"
    base_permissions = ["can_list", "can_show"]


def email_or_client(form, field) -> None:
    """Empty is fine when a client is chosen (its email is used); then the format
    checks that follow are skipped."""
    if not field.data:
        if form.client.data is None:
            raise StopValidation("Choose the client, or give the email address of the "
                                 "person who asked.")
        raise StopValidation()


def name_or_client(form, field) -> None:
    if not (field.data or "").strip() and form.client.data is None:
        raise ValidationError("Choose the client, or give the name of the person who asked.")


def service_of_client(form, field) -> None:
    client = form.client.data
    if field.data is not None and client is not None and field.data.client_id != client.id:
        raise ValidationError("This service belongs to another client.")


class FormOnlyTextArea(TextAreaField):
    """A text box the view reads itself: it is not a column of the row."""

    def populate_obj(self, obj, name) -> None:
        pass


class TicketView(TicketActions, AuditedModelView):
    datamodel = SQLAInterface(Ticket)
    list_title = "Tickets"
    show_title = "Ticket"
    edit_title = "Edit ticket"
    label_columns = {"tid": "Ticket #", "department": "Department", "client": "Client",
                     "client_id": "Client ID", "contact_id": "Contact ID",
                     "service": "Related service", "name": "Name", "email": "Email",
                     "subject": "Subject", "status": "Status", "priority": "Priority",
                     "assigned_to": "Assigned to", "last_reply_at": "Last reply",
                     "first_response_at": "First response", "closed_at": "Closed",
                     "created_at": "Opened", "updated_at": "Last changed"}
    list_columns = ["tid", "subject", "client", "department", "status", "priority",
                    "assigned_to", "last_reply_at"]
    search_columns = ["tid", "subject", "name", "email", "client_id", "department", "status",
                      "priority", "assigned_to", "last_reply_at"]
    base_order = ("last_reply_at", "desc")
    formatters_columns = {"status": status_label, "priority": status_label, **TIMES}
    show_fieldsets = [
        ("Ticket", {"fields": ["tid", "subject", "department", "status", "priority",
                               "assigned_to"]}),
        ("From", {"fields": ["client", "name", "email", "service"]}),
        ("Times", {"fields": ["created_at", "first_response_at", "last_reply_at",
                              "closed_at"]}),
    ]
    add_fieldsets = [
        ("From", {"fields": ["client", "name", "email", "service"]}),
        ("Ticket", {"fields": ["department", "subject", "priority", "status", "assigned_to",
                               "message"]}),
    ]
    edit_fieldsets = [
        ("Ticket", {"fields": ["subject", "department", "status", "priority",
                               "assigned_to"]}),
    ]
    description_columns = {"name": "Filled in from the client when left empty.",
                           "email": "Filled in from the client when left empty."}
    validators_columns = {"subject": [required("The subject is empty.")],
                          "department": [required("Choose a department.")],
                          "service": [service_of_client]}
    _status = choice_field("Status", TicketStatus, required_message="Choose a status.")
    _priority = choice_field("Priority", TicketPriority, required_message="Choose a priority.")
    edit_form_extra_fields = {"status": _status, "priority": _priority}
    add_form_extra_fields = {
        **edit_form_extra_fields,
        "name": text_field("Name", name_or_client, Length(max=200)),
        "email": text_field("Email", email_or_client, EMAIL_FORMAT, Length(max=255),
                            filters=[strip_lower]),
        "message": FormOnlyTextArea("Message", validators=[required("Write the first message.")],
                                    description="Saved as your first reply on the ticket.",
                                    widget=BS3TextAreaFieldWidget()),
    }
    related_views = [TicketReplyView, TicketNoteView, TicketAttachmentView]

    def process_form(self, form, is_created):
        super().process_form(form, is_created)
        if is_created:
            g.first_message = form.message.data

    def before_save(self, item, is_created):
        if is_created:
            self._open(item, g.pop("first_message", ""))
        # The auto-close job and the reports read closed_at.
        if item.status == TicketStatus.CLOSED.value:
            item.closed_at = item.closed_at or utcnow()
        else:
            item.closed_at = None

    @staticmethod
    def _open(item, message: str) -> None:
        ticket_engine.begin_ticket(item, message, ticket_engine.staff_author(current_user))


class SupportDepartmentView(AuditedModelView):
    datamodel = SQLAInterface(SupportDepartment)
    list_title = "Support departments"
    show_title = "Support department"
    add_title = "Add department"
    edit_title = "Edit department"
    label_columns = {"name": "Name", "description": "Description",
                     "email": "Email (piped to tickets)", "clients_only": "Clients only",
                     "hidden": "Hidden", "auto_respond": "Send auto-response",
                     "sort_order": "Sort order"}
    list_columns = ["name", "email", "clients_only", "hidden", "sort_order"]
    search_columns = ["name", "email", "hidden"]
    base_order = ("sort_order", "asc")
    add_columns = ["name", "description", "email", "clients_only", "hidden", "auto_respond",
                   "sort_order"]
    edit_columns = add_columns
    show_columns = add_columns
    client_path = None
    formatters_columns = {"clients_only": yes_no, "hidden": yes_no, "auto_respond": yes_no}
    validators_columns = {"name": [required("Name is required.")]}
    _email = text_field(
        "Email (piped to tickets)", required("Email is required."), EMAIL_FORMAT,
        Length(max=255),
        UniqueIgnoringCase(SupportDepartment, "email",
                           "Another department uses this email address."),
        filters=[strip_lower])
    add_form_extra_fields = {"email": _email}
    edit_form_extra_fields = add_form_extra_fields

    def before_delete(self, item):
        in_use = db.session.execute(
            select(Ticket.id).where(Ticket.department_id == item.id).limit(1)).first()
        if in_use:
            raise ValueError(f"Department {item.name} has tickets: hide it instead of "
                             "deleting it.")


def not_own_parent(form, field) -> None:
    """A category cannot sit inside itself or inside one of its own subcategories."""
    own_id = getattr(form, "_id", None)
    parent = field.data
    while parent is not None and own_id is not None:
        if parent.id == own_id:
            raise ValidationError("A category cannot be placed inside itself or one of its "
                                  "subcategories.")
        parent = parent.parent


class KbCategoryView(AuditedModelView):
    datamodel = SQLAInterface(KbCategory)
    list_title = "Knowledge base categories"
    show_title = "Knowledge base category"
    add_title = "Add category"
    edit_title = "Edit category"
    label_columns = {"parent": "Parent category", "name": "Name", "description": "Description",
                     "hidden": "Hidden", "sort_order": "Sort order"}
    list_columns = ["name", "parent", "hidden", "sort_order"]
    search_columns = ["name", "parent", "hidden"]
    base_order = ("sort_order", "asc")
    add_columns = ["name", "parent", "description", "hidden", "sort_order"]
    edit_columns = add_columns
    show_columns = add_columns
    client_path = None
    formatters_columns = {"hidden": yes_no}
    validators_columns = {"name": [required("Name is required.")], "parent": [not_own_parent]}

    def before_delete(self, item):
        if item.articles:
            raise ValueError(f"Category {item.name} has articles: move them first.")
        has_children = db.session.execute(
            select(KbCategory.id).where(KbCategory.parent_id == item.id).limit(1)).first()
        if has_children:
            raise ValueError(f"Category {item.name} has subcategories: move them first.")


class KbArticleView(AuditedModelView):
    datamodel = SQLAInterface(KbArticle)
    list_title = "Knowledge base articles"
    show_title = "Knowledge base article"
    add_title = "Add article"
    edit_title = "Edit article"
    label_columns = {"category": "Category", "title": "Title", "slug": "Address (slug)",
                     "body": "Article", "tags": "Tags", "views": "Views",
                     "votes_useful": "Found it useful", "votes_total": "Votes",
                     "private": "Clients only", "published": "Published",
                     "created_at": "Written", "updated_at": "Last changed"}
    list_columns = ["title", "category", "published", "private", "views", "updated_at"]
    search_columns = ["title", "slug", "body", "tags", "category", "published", "private"]
    base_order = ("updated_at", "desc")
    show_fieldsets = [
        ("Article", {"fields": ["title", "slug", "category", "tags", "body"]}),
        ("Visibility", {"fields": ["published", "private"]}),
        ("Readers", {"fields": ["views", "votes_useful", "votes_total"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "expanded": False}),
    ]
    # Views and votes are counted by the portal.
    add_fieldsets = [
        ("Article", {"fields": ["title", "slug", "category", "tags", "body"]}),
        ("Visibility", {"fields": ["published", "private"]}),
    ]
    edit_fieldsets = add_fieldsets
    client_path = None
    formatters_columns = {"published": yes_no, "private": yes_no, **TIMES}
    description_columns = {"slug": "Lower-case letters, digits and dashes; part of the "
                                   "article's address in the portal.",
                           "tags": "Comma separated."}

    validators_columns = {"title": [required("The title is empty.")],
                          "slug": [required("The slug is empty."), slug_format],
                          "body": [required("The article is empty.")],
                          "category": [required("Choose a category.")]}


class AnnouncementView(AuditedModelView):
    datamodel = SQLAInterface(Announcement)
    list_title = "Announcements"
    show_title = "Announcement"
    add_title = "Add announcement"
    edit_title = "Edit announcement"
    label_columns = {"title": "Title", "body": "Text", "published": "Published",
                     "published_at": "Publication date", "created_at": "Written",
                     "updated_at": "Last changed"}
    list_columns = ["title", "published", "published_at"]
    search_columns = ["title", "body", "published", "published_at"]
    base_order = ("published_at", "desc")
    add_columns = ["title", "body", "published", "published_at"]
    edit_columns = add_columns
    show_columns = add_columns + ["created_at", "updated_at"]
    client_path = None
    formatters_columns = {"published": yes_no, **TIMES}
    validators_columns = {"title": [required("The title is empty.")],
                          "body": [required("The text is empty.")],
                          "published_at": [required("Give the publication date.")]}


def register(appbuilder) -> None:
    category = dict(category="Support", category_icon="fa-life-ring")
    appbuilder.add_view(TicketView, "Tickets", icon="fa-ticket", **category)
    appbuilder.add_view_no_menu(TicketReplyView)
    appbuilder.add_view_no_menu(TicketNoteView)
    appbuilder.add_view_no_menu(TicketAttachmentView)
    appbuilder.add_view(SupportDepartmentView, "Departments", icon="fa-building", **category)
    appbuilder.add_view(KbCategoryView, "Knowledge base categories", icon="fa-folder",
                        **category)
    appbuilder.add_view(KbArticleView, "Knowledge base articles", icon="fa-book", **category)
    appbuilder.add_view(AnnouncementView, "Announcements", icon="fa-bullhorn", **category)
