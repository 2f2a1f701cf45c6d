"""The staff screens of the Clients menu, and the activity log they write, through
HTTP as a logged-in Admin."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.auth.bootstrap import create_staff_user
from app.models.clients import Client, ClientGroup, ClientNote, ClientUser, Contact
from app.models.system import ActivityLog
from tests import factories


def form_errors(response) -> list[str]:
    """The messages FAB shows under the fields of a form that was refused."""
    html = response.get_data(as_text=True)
    found = re.findall(r'(?s)class="alert alert-danger">(.*?)</div>', html)
    return [" ".join(message.split()) for message in found]


def count(db, model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def client_form(**overrides) -> dict:
    data = {
        "first_name": "Grace", "last_name": "Hopper", "company_name": "Navy Computing",
        "email": "grace@example.com", "phone": "+1 555 0100", "address1": "1 Harbor Way",
        "city": "Arlington", "state": "VA", "postcode": "22201", "country": "us",
        "currency": str(factories.currency().id), "status": "Active", "language": "en",
        "tax_exempt": "y",
    }
    data.update(overrides)
    return data


@pytest.fixture
def client_row(db):
    group = ClientGroup(name="Resellers")
    db.session.add(group)
    db.session.flush()
    row = factories.client(first_name="Ada", last_name="Lovelace", company_name="Engines Ltd",
                           email="ada@example.com", country="GB", group_id=group.id,
                           credit_balance=Decimal("12.50"))
    db.session.commit()
    return row


def test_client_list_shows_the_columns_finance_needs(admin_client, client_row):
    response = admin_client.get("/clientview/list/")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for text in ("Ada Lovelace", "Engines Ltd", "ada@example.com", "GB", "Resellers"):
        assert text in html
    assert "12.50 USD" in html  # credit balance with its currency
    assert '<span class="label label-success">Active</span>' in html


def test_client_show_page_lists_services_contacts_and_notes(admin_client, db, client_row):
    plan = factories.product(name="Starter Plan")
    factories.service(client_row, plan, domain="lovelace.example")
    db.session.add(Contact(client_id=client_row.id, first_name="Charles", last_name="Babbage",
                           email="charles@example.com"))
    db.session.add(ClientNote(client_id=client_row.id, body="Prefers phone calls"))
    other = factories.client(email="other@example.com")
    factories.service(other, plan, domain="not-hers.example")
    db.session.commit()

    response = admin_client.get(f"/clientview/show/{client_row.id}")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "lovelace.example" in html
    assert "charles@example.com" in html
    assert "Prefers phone calls" in html
    assert "not-hers.example" not in html
    for fieldset in ("Identity", "Address", "Billing settings", "Flags"):
        assert fieldset in html


def test_adding_a_client_saves_it_and_writes_the_activity_log(admin_client, db, staff):
    response = admin_client.post("/clientview/add", data=client_form(
        email="  Grace@Example.COM ", credit_balance="999.00"))

    assert response.status_code == 302
    client = db.session.execute(select(Client).where(Client.last_name == "Hopper")).scalar_one()
    assert client.email == "grace@example.com"
    assert client.country == "US"
    assert client.tax_exempt is True
    assert client.late_fee_exempt is False
    # The credit balance is the credit engine's: a posted value is ignored.
    assert client.credit_balance == Decimal("0.00")
    entry = db.session.execute(select(ActivityLog)).scalar_one()
    assert entry.action == "client.created"
    assert entry.object_type == "Client"
    assert entry.object_id == client.id
    assert entry.client_id == client.id
    assert entry.actor_type == "staff"
    assert entry.actor_name == "admin1"
    assert entry.after["email"] == "grace@example.com"
    assert entry.before is None


@pytest.mark.parametrize("overrides, message", [
    ({"email": ""}, "Email is required."),
    ({"email": "grace-at-example.com"}, "Enter a valid email address"),
    ({"email": "ADA@example.com"}, "A client with this email address already exists."),
    ({"country": "USA"}, "Country must be a two-letter ISO 3166 code"),
    ({"country": "XX"}, "Country must be a two-letter ISO 3166 code"),
    ({"first_name": "  "}, "First name is required."),
    ({"currency": "__None"}, "Choose the client's currency."),
])
def test_bad_client_input_is_refused_on_the_form_and_saves_nothing(
        admin_client, db, client_row, overrides, message):
    clients_before, log_before = count(db, Client), count(db, ActivityLog)

    response = admin_client.post("/clientview/add", data=client_form(**overrides))

    assert response.status_code == 200  # the form again, with its errors
    assert any(message in error for error in form_errors(response)), form_errors(response)
    assert count(db, Client) == clients_before
    assert count(db, ActivityLog) == log_before


def test_duplicate_email_shows_one_clear_message(admin_client, client_row):
    response = admin_client.post("/clientview/add", data=client_form(email="ada@example.com"))

    assert form_errors(response) == ["A client with this email address already exists."]


def test_editing_a_client_logs_what_changed(admin_client, db, client_row):
    response = admin_client.post(f"/clientview/edit/{client_row.id}", data=client_form(
        first_name="Ada", last_name="Lovelace", company_name="Engines Ltd",
        email="ada@engines.example.com", country="de", group=str(client_row.group_id)))

    assert response.status_code == 302
    db.session.expire_all()
    assert client_row.email == "ada@engines.example.com"
    assert client_row.country == "DE"
    entry = db.session.execute(select(ActivityLog)).scalar_one()
    assert entry.action == "client.updated"
    assert entry.client_id == client_row.id
    assert entry.before["email"] == "ada@example.com"
    assert entry.after["email"] == "ada@engines.example.com"
    assert entry.before["country"] == "GB" and entry.after["country"] == "DE"
    assert "credit_balance" not in entry.after
    assert "Email: ada@example.com → ada@engines.example.com" in entry.description


def test_editing_a_client_keeps_its_own_email_and_credit(admin_client, db, client_row):
    response = admin_client.post(f"/clientview/edit/{client_row.id}", data=client_form(
        first_name="Ada", last_name="Lovelace", email="ada@example.com", country="GB",
        credit_balance="0.00"))

    assert response.status_code == 302
    db.session.expire_all()
    assert client_row.credit_balance == Decimal("12.50")
    assert client_row.last_name == "Lovelace"


def test_edit_form_has_no_credit_balance_or_timestamp_field(admin_client, client_row):
    html = admin_client.get(f"/clientview/edit/{client_row.id}").get_data(as_text=True)

    assert 'name="email"' in html
    assert 'name="credit_balance"' not in html
    assert 'name="created_at"' not in html


def test_clients_are_closed_not_deleted(admin_client, db, client_row):
    response = admin_client.post(f"/clientview/delete/{client_row.id}")

    assert response.status_code == 403
    assert db.session.get(Client, client_row.id) is not None


def test_contact_with_bad_email_is_refused(admin_client, db, client_row):
    response = admin_client.post("/contactview/add", data={
        "client": str(client_row.id), "first_name": "Charles", "last_name": "Babbage",
        "email": "charles.example.com"})

    assert "Enter a valid email address, such as name@example.com." in form_errors(response)
    assert count(db, Contact) == 0


def test_contact_added_from_form_is_logged_against_its_client(admin_client, db, client_row):
    response = admin_client.post("/contactview/add", data={
        "client": str(client_row.id), "first_name": "Charles", "last_name": "Babbage",
        "email": "Charles@Example.com", "country": "gb", "receives_invoices": "y"})

    assert response.status_code == 302
    contact = db.session.execute(select(Contact)).scalar_one()
    assert (contact.email, contact.country, contact.receives_invoices) == (
        "charles@example.com", "GB", True)
    entry = db.session.execute(select(ActivityLog)).scalar_one()
    assert (entry.action, entry.client_id, entry.object_id) == (
        "contact.created", client_row.id, contact.id)


def test_note_records_its_author(admin_client, db, client_row):
    response = admin_client.post("/clientnoteview/add", data={
        "client": str(client_row.id), "body": "Called about renewal"})

    assert response.status_code == 302
    note = db.session.execute(select(ClientNote)).scalar_one()
    assert note.author.username == "admin1"
    assert note.body == "Called about renewal"


def test_deleting_a_note_is_logged_with_what_it_said(admin_client, db, client_row):
    note = ClientNote(client_id=client_row.id, body="Old remark")
    db.session.add(note)
    db.session.commit()

    response = admin_client.post(f"/clientnoteview/delete/{note.id}")

    assert response.status_code == 302
    assert count(db, ClientNote) == 0
    entry = db.session.execute(select(ActivityLog)).scalar_one()
    assert entry.action == "client_note.deleted"
    assert entry.before["body"] == "Old remark"
    assert entry.client_id == client_row.id


def test_client_group_discount_must_be_a_percentage(admin_client, db):
    response = admin_client.post("/clientgroupview/add", data={
        "name": "VIP", "colour": "#112233", "discount_percent": "120"})

    assert "Give a percentage from 0 to 100." in form_errors(response)
    assert count(db, ClientGroup) == 0


def test_only_client_logins_can_be_linked_to_a_client(admin_client, app, db, client_row):
    staff_user = create_staff_user("finance9", "finance9@staff.test", "Correct-Horse-9", "Finance")
    sm = app.appbuilder.sm
    portal_user = sm.add_user("ada.portal", "Ada", "Lovelace", "ada.portal@example.com",
                              sm.find_role("Client"), "Correct-Horse-9")
    db.session.commit()

    refused = admin_client.post("/clientuserview/add", data={
        "user": str(staff_user.id), "client": str(client_row.id), "permissions": ["invoices"]})
    accepted = admin_client.post("/clientuserview/add", data={
        "user": str(portal_user.id), "client": str(client_row.id),
        "permissions": ["invoices", "tickets"]})

    assert any("Only a client login" in e for e in form_errors(refused))
    assert accepted.status_code == 302
    membership = db.session.execute(select(ClientUser)).scalar_one()
    assert membership.user_id == portal_user.id
    assert membership.permissions == "invoices,tickets"
    assert membership.can("tickets") and not membership.can("domains")


@pytest.mark.parametrize("url, expected", [
    ("/contactview/list/", "charles@example.com"),
    ("/clientgroupview/list/", "Resellers"),
    ("/clientnoteview/list/", "Prefers phone calls"),
    ("/clientuserview/list/", "invoices,tickets"),
])
def test_every_clients_menu_list_shows_its_rows(admin_client, app, db, client_row, url, expected):
    db.session.add(Contact(client_id=client_row.id, first_name="Charles", last_name="Babbage",
                           email="charles@example.com"))
    db.session.add(ClientNote(client_id=client_row.id, body="Prefers phone calls"))
    sm = app.appbuilder.sm
    login = sm.add_user("ada.portal", "Ada", "Lovelace", "ada.portal@example.com",
                        sm.find_role("Client"), "Correct-Horse-9")
    db.session.add(ClientUser(user_id=login.id, client_id=client_row.id,
                              permissions="invoices,tickets"))
    db.session.commit()

    response = admin_client.get(url)

    assert response.status_code == 200
    assert expected in response.get_data(as_text=True)


# -- the activity log screen -------------------------------------------------------

def test_activity_log_lists_newest_first(admin_client, db, client_row):
    admin_client.post("/clientnoteview/add", data={"client": str(client_row.id), "body": "First"})
    admin_client.post("/clientnoteview/add", data={"client": str(client_row.id), "body": "Second"})

    html = admin_client.get("/activitylogview/list/").get_data(as_text=True)

    first = html.index("Client Note First created")
    second = html.index("Client Note Second created")
    assert second < first


def test_client_show_page_includes_its_activity(admin_client, db, client_row):
    admin_client.post("/clientnoteview/add", data={"client": str(client_row.id), "body": "Hello"})

    html = admin_client.get(f"/clientview/show/{client_row.id}").get_data(as_text=True)

    assert "Client Note Hello created" in html


def test_activity_log_cannot_be_added_edited_or_deleted(admin_client, db, client_row):
    admin_client.post("/clientnoteview/add", data={"client": str(client_row.id), "body": "Kept"})
    entry = db.session.execute(select(ActivityLog)).scalar_one()

    add = admin_client.post("/activitylogview/add", data={"description": "forged"})
    edit = admin_client.post(f"/activitylogview/edit/{entry.id}", data={"description": "forged"})
    delete = admin_client.post(f"/activitylogview/delete/{entry.id}")

    for response in (add, edit, delete):
        assert response.status_code in (302, 403, 404, 405)
    db.session.expire_all()
    assert count(db, ActivityLog) == 1
    assert db.session.get(ActivityLog, entry.id).description == "Client Note Kept created"
    assert admin_client.get(f"/activitylogview/show/{entry.id}").status_code == 200
