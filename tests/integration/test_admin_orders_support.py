"""The staff screens of the Orders, Support and System menus through HTTP."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.base import mask_secret
from app.models.orders import (
    CancellationRequest, Order, OrderItem, Promotion, Service, ServiceAddon, Upgrade,
)
from app.models.support import (
    Announcement, KbArticle, KbCategory, SupportDepartment, Ticket, TicketAttachment, TicketNote,
    TicketReply,
)
from app.models.system import (
    ActivityLog, AutomationRun, CustomField, CustomFieldValue, EmailMessage, EmailTemplate,
    Setting,
)
from tests import factories
from tests.conftest import login


def form_errors(response) -> list[str]:
    html = response.get_data(as_text=True)
    found = re.findall(r'(?s)class="alert alert-danger">(.*?)</div>', html)
    return [" ".join(message.split()) for message in found]


def count(db, model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def log_entries(db, action: str) -> list[ActivityLog]:
    return list(db.session.execute(
        select(ActivityLog).where(ActivityLog.action == action)).scalars())


@dataclass
class Seeded:
    client: object
    order: Order
    service: Service
    addon: ServiceAddon
    ticket: Ticket
    department: SupportDepartment
    template: EmailTemplate


@pytest.fixture
def seeded(db) -> Seeded:
    """One row of every model these screens show, with values the tests look for."""
    client = factories.client(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    plan = factories.product(name="Business Hosting")
    order = Order(order_number="ORD-1001", client_id=client.id, currency_id=client.currency_id,
                  amount=Decimal("119.40"), status="Active", payment_method="stripe")
    db.session.add(order)
    db.session.flush()
    service = factories.service(client, plan, amount="19.90", domain="lovelace.example",
                                next_due=date(2025, 3, 1), order_id=order.id,
                                username="lovelace", password="s3cret-Pa55word")
    db.session.add(OrderItem(order_id=order.id, kind="product", service_id=service.id,
                             description="Business Hosting - lovelace.example",
                             billing_cycle="Monthly", amount=Decimal("19.90")))
    addon = ServiceAddon(service_id=service.id, client_id=client.id, name="Daily Backups",
                         billing_cycle="Monthly", recurring_amount=Decimal("4.00"),
                         status="Active", next_due_date=date(2025, 3, 1),
                         next_invoice_date=date(2025, 3, 1))
    db.session.add(addon)
    db.session.add(CancellationRequest(service_id=service.id, type="End of Billing Period",
                                       reason="Moving to a dedicated server"))
    db.session.add(Upgrade(service_id=service.id, kind="product", old_value="Starter",
                           new_value="Business Hosting", amount=Decimal("7.35")))
    db.session.add(Promotion(code="SPRING25", value=Decimal("25.00"), type="Percentage"))
    department = SupportDepartment(name="Billing Desk", email="billing@example.com")
    db.session.add(department)
    db.session.flush()
    ticket = Ticket(tid="482913", department_id=department.id, client_id=client.id,
                    name="Ada Lovelace", email="ada@example.com", subject="Invoice question",
                    status="Open", priority="High")
    db.session.add(ticket)
    db.session.flush()
    db.session.add(TicketReply(ticket_id=ticket.id, name="Ada Lovelace",
                               message="Why was I charged twice?\nThanks"))
    db.session.add(TicketNote(ticket_id=ticket.id, message="Check the gateway log"))
    db.session.add(TicketAttachment(ticket_id=ticket.id, original_name="statement.pdf",
                                    stored_name="f3a9c2", content_type="application/pdf",
                                    size=2048))
    category = KbCategory(name="Getting Started")
    db.session.add(category)
    db.session.flush()
    db.session.add(KbArticle(category_id=category.id, title="Pointing your domain",
                             slug="pointing-your-domain", body="Set the nameservers."))
    db.session.add(Announcement(title="Maintenance window", body="Sunday 02:00 UTC"))
    db.session.add(Setting(key="InvoiceDaysBeforeDue", value="14"))
    template = EmailTemplate(name="Invoice Created", type="invoice",
                             subject="Invoice {{ invoice_number }}", body_html="<p>Hello</p>")
    db.session.add(template)
    db.session.add(EmailMessage(to_address="ada@example.com", subject="Your invoice is ready",
                                body_html="<p>Ready</p>", status="sent", client_id=client.id))
    db.session.add(AutomationRun(run_date=date(2025, 2, 15), step="generate_invoices",
                                 status="done", counts={"invoices": 42}))
    field = CustomField(applies_to="client", name="Referral source", field_type="dropdown",
                        options="Search,Friend,Advert")
    db.session.add(field)
    db.session.flush()
    db.session.add(CustomFieldValue(field_id=field.id, rel_id=client.id, value="Friend"))
    db.session.commit()
    return Seeded(client, order, service, addon, ticket, department, template)


@pytest.mark.parametrize("url, expected", [
    ("/orderview/list/", "ORD-1001"),
    ("/orderitemview/list/", "Business Hosting - lovelace.example"),
    ("/serviceview/list/", "lovelace.example"),
    ("/serviceaddonview/list/", "Daily Backups"),
    ("/cancellationrequestview/list/", "Moving to a dedicated server"),
    ("/upgradeview/list/", "7.35 USD"),
    ("/promotionview/list/", "SPRING25"),
    ("/ticketview/list/", "Invoice question"),
    ("/ticketreplyview/list/", "Why was I charged twice?"),
    ("/ticketnoteview/list/", "Check the gateway log"),
    ("/ticketattachmentview/list/", "statement.pdf"),
    ("/supportdepartmentview/list/", "Billing Desk"),
    ("/kbcategoryview/list/", "Getting Started"),
    ("/kbarticleview/list/", "Pointing your domain"),
    ("/announcementview/list/", "Maintenance window"),
    ("/settingview/list/", "InvoiceDaysBeforeDue"),
    ("/emailtemplateview/list/", "Invoice Created"),
    ("/emaillogview/list/", "Your invoice is ready"),
    ("/automationrunview/list/", "generate_invoices"),
    ("/customfieldview/list/", "Referral source"),
    ("/customfieldvalueview/list/", "Friend"),
])
def test_every_list_page_shows_its_rows(admin_client, seeded, url, expected):
    response = admin_client.get(url)

    assert response.status_code == 200
    assert expected in response.get_data(as_text=True)


def test_lists_format_money_and_statuses(admin_client, seeded):
    orders = admin_client.get("/orderview/list/").get_data(as_text=True)
    services = admin_client.get("/serviceview/list/").get_data(as_text=True)
    promotions = admin_client.get("/promotionview/list/").get_data(as_text=True)
    tickets = admin_client.get("/ticketview/list/").get_data(as_text=True)

    assert "119.40 USD" in orders
    assert '<span class="label label-success">Active</span>' in orders
    assert "19.90 USD" in services
    assert "25.00%" in promotions
    assert '<span class="label label-danger">High</span>' in tickets


def test_order_show_lists_its_items(admin_client, seeded):
    html = admin_client.get(f"/orderview/show/{seeded.order.id}").get_data(as_text=True)

    assert "Business Hosting - lovelace.example" in html
    assert "19.90 USD" in html


def test_service_show_masks_the_password_and_lists_addons_and_cancellations(admin_client, seeded):
    html = admin_client.get(f"/serviceview/show/{seeded.service.id}").get_data(as_text=True)

    assert "s3cret-Pa55word" not in html
    assert mask_secret("s3cret-Pa55word") in html
    assert "Daily Backups" in html
    assert "Moving to a dedicated server" in html


def test_ticket_show_lists_replies_notes_and_attachments(admin_client, seeded):
    html = admin_client.get(f"/ticketview/show/{seeded.ticket.id}").get_data(as_text=True)

    assert "Why was I charged twice?<br>Thanks" in html
    assert "Check the gateway log" in html
    assert "statement.pdf" in html
    assert "2.0 KB" in html


# -- orders and services are read-mostly --------------------------------------------

def service_form(service: Service, **overrides) -> dict:
    data = {"domain": service.domain, "server": "__None", "dedicated_ip": "",
            "username": service.username or "", "password": "",
            "next_due_date": service.next_due_date.isoformat(), "suspend_until": "",
            "notes": ""}
    data.update(overrides)
    return data


def test_service_edit_form_never_sends_the_password_back(admin_client, seeded):
    html = admin_client.get(f"/serviceview/edit/{seeded.service.id}").get_data(as_text=True)

    assert 'name="password"' in html
    assert "s3cret-Pa55word" not in html
    for engine_owned in ("status", "recurring_amount", "next_invoice_date", "billing_cycle"):
        assert f'name="{engine_owned}"' not in html


def test_moving_the_next_due_date_moves_the_invoice_date_and_is_logged(admin_client, db, seeded):
    response = admin_client.post(f"/serviceview/edit/{seeded.service.id}", data=service_form(
        seeded.service, next_due_date="2025-04-01", status="Terminated",
        recurring_amount="0.01", notes="Extended a month as a goodwill gesture"))

    assert response.status_code == 302
    db.session.expire_all()
    service = db.session.get(Service, seeded.service.id)
    assert service.next_due_date == date(2025, 4, 1)
    assert service.next_invoice_date == date(2025, 4, 1)
    # Posted engine-owned values are ignored.
    assert service.status == "Active"
    assert service.recurring_amount == Decimal("19.90")
    assert service.password == "s3cret-Pa55word"  # left empty: kept
    [entry] = log_entries(db, "service.updated")
    assert entry.before["next_due_date"] == "2025-03-01"
    assert entry.after["next_due_date"] == "2025-04-01"
    assert entry.client_id == seeded.client.id
    assert "password" not in entry.after
    assert "Next due date: 2025-03-01 → 2025-04-01" in entry.description


def test_a_new_service_password_is_stored_and_logged_masked(admin_client, db, seeded):
    admin_client.post(f"/serviceview/edit/{seeded.service.id}",
                      data=service_form(seeded.service, password="N3w-Secret-2025"))

    db.session.expire_all()
    assert db.session.get(Service, seeded.service.id).password == "N3w-Secret-2025"
    [entry] = log_entries(db, "service.updated")
    assert entry.after == {"password": mask_secret("N3w-Secret-2025")}
    assert "N3w-Secret-2025" not in entry.description


def test_a_recurring_service_keeps_a_next_due_date(admin_client, db, seeded):
    response = admin_client.post(f"/serviceview/edit/{seeded.service.id}",
                                 data=service_form(seeded.service, next_due_date=""),
                                 follow_redirects=True)

    assert "A recurring service needs a next due date." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Service, seeded.service.id).next_due_date == date(2025, 3, 1)
    assert log_entries(db, "service.updated") == []


def test_addon_next_due_date_moves_its_invoice_date(admin_client, db, seeded):
    response = admin_client.post(f"/serviceaddonview/edit/{seeded.addon.id}", data={
        "name": "Daily Backups", "next_due_date": "2025-05-01", "recurring_amount": "0.00"})

    assert response.status_code == 302
    db.session.expire_all()
    addon = db.session.get(ServiceAddon, seeded.addon.id)
    assert (addon.next_due_date, addon.next_invoice_date) == (date(2025, 5, 1), date(2025, 5, 1))
    assert addon.recurring_amount == Decimal("4.00")


@pytest.mark.parametrize("url", ["/orderview/add", "/serviceview/add", "/serviceaddonview/add",
                                 "/upgradeview/add", "/orderitemview/add"])
def test_engine_owned_records_cannot_be_created_by_hand(admin_client, seeded, url):
    assert admin_client.post(url, data={}).status_code == 403


def test_order_edit_changes_only_its_notes(admin_client, db, seeded):
    response = admin_client.post(f"/orderview/edit/{seeded.order.id}", data={
        "notes": "Customer asked for a call", "status": "Cancelled", "amount": "0.00"})

    assert response.status_code == 302
    db.session.expire_all()
    order = db.session.get(Order, seeded.order.id)
    assert order.notes == "Customer asked for a call"
    assert (order.status, order.amount) == ("Active", Decimal("119.40"))
    [entry] = log_entries(db, "order.updated")
    assert entry.after == {"notes": "Customer asked for a call"}


def test_an_active_order_cannot_be_deleted(admin_client, db, seeded):
    response = admin_client.post(f"/orderview/delete/{seeded.order.id}", follow_redirects=True)

    assert "only cancelled or fraud orders can be deleted" in response.get_data(as_text=True)
    assert db.session.get(Order, seeded.order.id) is not None
    assert log_entries(db, "order.deleted") == []


def test_a_cancelled_order_without_services_is_deleted_and_logged(admin_client, db, seeded):
    stray = Order(order_number="ORD-1002", client_id=seeded.client.id,
                  currency_id=seeded.client.currency_id, amount=Decimal("5.00"),
                  status="Cancelled")
    db.session.add(stray)
    db.session.commit()
    stray_id = stray.id

    response = admin_client.post(f"/orderview/delete/{stray_id}")

    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Order, stray_id) is None
    [entry] = log_entries(db, "order.deleted")
    assert (entry.object_id, entry.client_id) == (stray_id, seeded.client.id)
    assert entry.before["order_number"] == "ORD-1002"


def test_a_service_has_one_open_cancellation_request_at_a_time(admin_client, db, seeded):
    response = admin_client.post("/cancellationrequestview/add", data={
        "service": str(seeded.service.id), "type": "Immediate", "reason": "Again"})

    assert "This service has an open cancellation request already." in form_errors(response)
    assert count(db, CancellationRequest) == 1


# -- promotions -----------------------------------------------------------------------

def promotion_form(**overrides) -> dict:
    data = {"code": "WELCOME10", "type": "Fixed Amount", "value": "10.00", "recur_for": "0",
            "max_uses": "100", "start_date": "2025-01-01", "expiration_date": "2025-12-31",
            "notes": ""}
    data.update(overrides)
    return data


@pytest.mark.parametrize("overrides, message", [
    ({"value": "-5.00"}, "This cannot be negative."),
    ({"type": "Percentage", "value": "150"}, "A percentage discount cannot be more than 100."),
    ({"code": "spring25"}, "A promotion with this code already exists."),
    ({"expiration_date": "2024-12-31"}, "The expiry date cannot be before the start date."),
    ({"max_uses": "-1"}, "This cannot be negative."),
    ({"new_clients_only": "y", "existing_clients_only": "y"}, "cannot be for new clients only"),
])
def test_bad_promotions_are_refused(admin_client, db, seeded, overrides, message):
    before = count(db, Promotion), count(db, ActivityLog)

    response = admin_client.post("/promotionview/add", data=promotion_form(**overrides))

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)), form_errors(response)
    assert (count(db, Promotion), count(db, ActivityLog)) == before


def test_a_promotion_is_added_with_its_cycles_and_logged(admin_client, db, seeded):
    product_id = seeded.service.product_id

    response = admin_client.post("/promotionview/add", data=promotion_form(
        cycles=["Monthly", "Annually"], products=[str(product_id)], recurring="y"))

    assert response.status_code == 302
    promotion = db.session.execute(
        select(Promotion).where(Promotion.code == "WELCOME10")).scalar_one()
    assert promotion.value == Decimal("10.00")
    assert promotion.cycles == "Monthly,Annually"
    assert [p.id for p in promotion.products] == [product_id]
    assert promotion.recurring is True
    assert promotion.uses == 0
    [entry] = log_entries(db, "promotion.created")
    assert entry.after["products"] == "Business Hosting"
    assert entry.after["value"] == "10.00"


# -- support ---------------------------------------------------------------------------

def test_closing_a_ticket_stamps_it_and_reopening_clears_it(admin_client, db, seeded):
    form = {"subject": "Invoice question", "department": str(seeded.department.id),
            "status": "Closed", "priority": "High", "assigned_to": "__None"}

    admin_client.post(f"/ticketview/edit/{seeded.ticket.id}", data=form)
    db.session.expire_all()
    closed_at = db.session.get(Ticket, seeded.ticket.id).closed_at
    admin_client.post(f"/ticketview/edit/{seeded.ticket.id}", data={**form, "status": "Open"})
    db.session.expire_all()

    assert isinstance(closed_at, datetime)
    assert db.session.get(Ticket, seeded.ticket.id).closed_at is None
    first, second = log_entries(db, "ticket.updated")
    assert (first.before["status"], first.after["status"]) == ("Open", "Closed")
    assert (second.before["status"], second.after["status"]) == ("Closed", "Open")
    assert first.client_id == seeded.client.id


def test_ticket_status_must_be_a_known_one(admin_client, db, seeded):
    response = admin_client.post(f"/ticketview/edit/{seeded.ticket.id}", data={
        "subject": "Invoice question", "department": str(seeded.department.id),
        "status": "Resolved", "priority": "High", "assigned_to": "__None"})

    assert response.status_code == 200
    assert form_errors(response)
    db.session.expire_all()
    assert db.session.get(Ticket, seeded.ticket.id).status == "Open"


def test_internal_note_records_its_author_and_ticket_client(admin_client, db, seeded):
    response = admin_client.post("/ticketnoteview/add", data={
        "ticket": str(seeded.ticket.id), "message": "Refund approved"})

    assert response.status_code == 302
    note = db.session.execute(
        select(TicketNote).where(TicketNote.message == "Refund approved")).scalar_one()
    assert note.admin.username == "admin1"
    [entry] = log_entries(db, "ticket_note.created")
    assert entry.client_id == seeded.client.id


def test_replies_are_not_written_through_the_crud_screen(admin_client, seeded):
    response = admin_client.post("/ticketreplyview/add", data={
        "ticket": str(seeded.ticket.id), "message": "Hi"})

    assert response.status_code == 403


def test_department_email_is_checked(admin_client, db, seeded):
    response = admin_client.post("/supportdepartmentview/add", data={
        "name": "Sales", "email": "BILLING@example.com", "sort_order": "1"})

    assert "Another department uses this email address." in form_errors(response)
    assert count(db, SupportDepartment) == 1


def test_department_with_tickets_is_not_deleted(admin_client, db, seeded):
    response = admin_client.post(f"/supportdepartmentview/delete/{seeded.department.id}",
                                 follow_redirects=True)

    assert "has tickets: hide it instead" in response.get_data(as_text=True)
    assert count(db, SupportDepartment) == 1


def test_knowledge_base_slug_format(admin_client, db, seeded):
    category_id = db.session.execute(select(KbCategory.id)).scalar_one()

    response = admin_client.post("/kbarticleview/add", data={
        "title": "Email setup", "slug": "Email Setup!", "category": str(category_id),
        "body": "Use port 587.", "tags": "", "published": "y"})

    assert "Use lower-case letters, digits and single dashes only." in form_errors(response)
    assert count(db, KbArticle) == 1


# -- system ----------------------------------------------------------------------------

def test_email_template_with_a_jinja_error_is_refused(admin_client, db, seeded):
    response = admin_client.post("/emailtemplateview/add", data={
        "name": "Welcome", "type": "general", "language": "en",
        "subject": "Welcome {{ client_name }", "body_html": "<p>Hi</p>"})

    assert any(e.startswith("Template error on line 1") for e in form_errors(response))
    assert count(db, EmailTemplate) == 1


def test_email_template_name_is_unique_per_language(admin_client, db, seeded):
    duplicate = admin_client.post("/emailtemplateview/add", data={
        "name": "Invoice Created", "type": "invoice", "language": "en",
        "subject": "Invoice", "body_html": "<p>Hi</p>"})
    translation = admin_client.post("/emailtemplateview/add", data={
        "name": "Invoice Created", "type": "invoice", "language": "de",
        "subject": "Rechnung", "body_html": "<p>Hallo</p>"})

    assert "A template with this name exists already in this language." in form_errors(duplicate)
    assert translation.status_code == 302
    german = db.session.execute(
        select(EmailTemplate).where(EmailTemplate.language == "de")).scalar_one()
    assert german.custom is True


def test_built_in_email_template_is_not_deleted(admin_client, db, seeded):
    response = admin_client.post(f"/emailtemplateview/delete/{seeded.template.id}",
                                 follow_redirects=True)

    assert "is a built-in template: disable it instead" in response.get_data(as_text=True)
    assert count(db, EmailTemplate) == 1


def test_custom_field_value_must_be_one_of_the_choices(admin_client, db, seeded):
    field_id = db.session.execute(select(CustomField.id)).scalar_one()
    other_client = factories.client(email="other@example.com")
    db.session.commit()

    refused = admin_client.post("/customfieldvalueview/add", data={
        "field": str(field_id), "rel_id": str(other_client.id), "value": "Billboard"})
    accepted = admin_client.post("/customfieldvalueview/add", data={
        "field": str(field_id), "rel_id": str(other_client.id), "value": "Search"})

    assert "Choose one of: Search, Friend, Advert." in form_errors(refused)
    assert accepted.status_code == 302
    assert count(db, CustomFieldValue) == 2


@pytest.mark.parametrize("url", ["/emaillogview/add", "/automationrunview/add",
                                 "/emaillogview/edit/1", "/automationrunview/delete/1"])
def test_system_logs_are_read_only(admin_client, db, seeded, url):
    before = count(db, EmailMessage), count(db, AutomationRun)

    response = admin_client.post(url, data={"subject": "forged", "status": "failed"})

    assert response.status_code == 403
    assert (count(db, EmailMessage), count(db, AutomationRun)) == before


def test_support_staff_triage_tickets_but_cannot_edit_services(app, staff, seeded):
    support = app.test_client()
    assert login(support, *staff("Support")).status_code == 302

    assert support.get(f"/ticketview/edit/{seeded.ticket.id}").status_code == 200
    assert support.get(f"/serviceview/show/{seeded.service.id}").status_code == 200
    assert support.get(f"/serviceview/edit/{seeded.service.id}").status_code == 403
    assert support.get("/promotionview/list/").status_code == 200
    assert support.post("/promotionview/add", data={"code": "FREE"}).status_code == 403
    assert support.get("/settingview/list/").status_code == 403


def test_staff_open_a_ticket_for_a_client_with_a_first_message(admin_client, db, seeded):
    response = admin_client.post("/ticketview/add", data={
        "client": str(seeded.client.id), "name": "", "email": "",
        "service": str(seeded.service.id), "department": str(seeded.department.id),
        "subject": "Your renewal", "priority": "Medium", "status": "Answered",
        "assigned_to": "__None", "message": "Your plan renews next week.\nAny questions?"})

    assert response.status_code == 302
    ticket = db.session.execute(
        select(Ticket).where(Ticket.subject == "Your renewal")).scalar_one()
    assert re.fullmatch(r"[A-Z]{3}-\d{6}", ticket.tid)
    assert (ticket.name, ticket.email) == ("Ada Lovelace", "ada@example.com")
    assert ticket.status == "Answered"
    [reply] = ticket.replies
    assert reply.message == "Your plan renews next week.\nAny questions?"
    assert reply.is_staff and reply.name == "Staff User"
    [entry] = log_entries(db, "ticket.created")
    assert (entry.object_id, entry.client_id) == (ticket.id, seeded.client.id)


@pytest.mark.parametrize("overrides, message", [
    ({"client": "__None", "email": ""}, "Choose the client, or give the email address"),
    ({"client": "__None", "name": ""}, "Choose the client, or give the name"),
    ({"message": ""}, "Write the first message."),
    ({"email": "not-an-email"}, "Enter a valid email address"),
])
def test_a_ticket_without_who_or_what_is_refused(admin_client, db, seeded, overrides, message):
    other = factories.client(email="someone@example.com")
    db.session.commit()
    data = {"client": str(other.id), "name": "Guest Person", "email": "guest@example.com",
            "service": "__None", "department": str(seeded.department.id), "subject": "Hello",
            "priority": "Low", "status": "Open", "assigned_to": "__None", "message": "Hi"}
    data.update(overrides)

    response = admin_client.post("/ticketview/add", data=data)

    assert any(message in error for error in form_errors(response)), form_errors(response)
    assert count(db, Ticket) == 1
    assert count(db, TicketReply) == 1


def test_a_ticket_cannot_name_another_clients_service(admin_client, db, seeded):
    other = factories.client(email="someone@example.com")
    db.session.commit()

    response = admin_client.post("/ticketview/add", data={
        "client": str(other.id), "name": "", "email": "", "service": str(seeded.service.id),
        "department": str(seeded.department.id), "subject": "Hello", "priority": "Low",
        "status": "Open", "assigned_to": "__None", "message": "Hi"})

    assert "This service belongs to another client." in form_errors(response)
    assert count(db, Ticket) == 1
