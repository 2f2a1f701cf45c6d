"""Custom fields end to end: the engine's one check and its all-or-nothing save, the
store (a product's fields on the configure page, carried in the cart, saved on the
service), sign-up, the portal profile, the ticket form, invoices, the admin's value
screen and the WHMCS API over HTTP. Staff-only fields stay hidden from clients and a
password is never shown back."""
from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy import func, select, text

from app import custom_fields
from app.activity import Actor
from app.extensions import db
from app.models.base import mask_secret
from app.models.clients import Client
from app.models.orders import Order, Service
from app.models.support import Ticket
from app.models.system import ActivityLog, CustomField, CustomFieldValue
from tests import factories
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.integration.test_api_whmcs import call, make_credential
from tests.integration.test_portal_store import (  # noqa: F401  (shop is a fixture)
    add_plan, checkout_as_new, page_messages, session_cart, shop,
)
from tests.integration.test_portal_world import department, text_of, world  # noqa: F401

SECRET = "hunter2-very-secret"


def field(applies_to: str, name: str, rel_id: int | None = None, **values) -> int:
    row = CustomField(applies_to=applies_to, rel_id=rel_id, name=name, **values)
    db.session.add(row)
    db.session.flush()
    return row.id


def stored(field_id: int, rel_id: int) -> str | None:
    return db.session.scalar(select(CustomFieldValue.value).where(
        CustomFieldValue.field_id == field_id, CustomFieldValue.rel_id == rel_id))


def php_array(values: dict) -> str:
    """base64 of PHP's serialize() of a flat array of field id => string."""
    body = "".join(f'i:{key};s:{len(str(value).encode())}:"{value}";' for key, value in values.items())
    return base64.b64encode(f"a:{len(values)}:{{{body}}}".encode()).decode()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# The engine

def test_save_values_checks_everything_first_and_logs_the_change(db):
    client = factories.client()
    vat = field("client", "VAT number", regex=r"[A-Z]{2}\d{8}", required=True)
    source = field("client", "Heard of us", field_type="dropdown", options="Search, Friend")
    site = field("client", "Website", field_type="link")
    agree = field("client", "Newsletter", field_type="tickbox")
    db.session.commit()

    with pytest.raises(custom_fields.CustomFieldError) as refused:
        custom_fields.save_values("client", client.id, {vat: "DE12345678", source: "Radio",
                                                        site: "javascript:alert(1)", agree: "maybe"},
                                  Actor.system())
    assert set(refused.value.problems) == {source, site, agree}
    assert refused.value.problems[source][1] == "Choose one of: Search, Friend."
    with pytest.raises(custom_fields.CustomFieldError) as missing:
        custom_fields.save_values("client", client.id, {source: "Friend"}, Actor.system())
    assert str(missing.value) == "VAT number is required."
    assert count(CustomFieldValue) == 0  # nothing of either call was written

    changed = custom_fields.save_values(
        "client", client.id, {vat: "DE12345678", source: "Friend", site: "https://ada.example",
                              agree: "1"}, Actor("staff", "admin"), staff=True)
    db.session.commit()
    assert changed == {vat: "DE12345678", source: "Friend", site: "https://ada.example", agree: "on"}
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "custom_fields_changed"))
    assert entry.client_id == client.id and entry.after["VAT number"] == "DE12345678"
    # A field not given keeps its value; the required one is satisfied by the stored value.
    custom_fields.save_values("client", client.id, {source: "Search"}, Actor.system())
    assert stored(vat, client.id) == "DE12345678" and stored(source, client.id) == "Search"


def test_staff_only_fields_and_passwords(db):
    client = factories.client()
    note = field("client", "Risk note", admin_only=True)
    pin = field("client", "Phone PIN", field_type="password")
    db.session.commit()
    with pytest.raises(custom_fields.CustomFieldError):
        custom_fields.save_values("client", client.id, {note: "trusted"}, Actor("client", "c"))
    custom_fields.save_values("client", client.id, {note: "trusted", pin: SECRET},
                              Actor("staff", "admin"), staff=True)
    db.session.commit()
    # A client sees that a password is set, and none of its characters.
    assert [(shown.name, shown.value) for shown in custom_fields.values_for("client", client.id)] \
        == [("Phone PIN", "•" * 8)]
    shown = {item.name: item.value for item in custom_fields.values_for("client", client.id, staff=True)}
    assert shown["Risk note"] == "trusted"
    assert SECRET not in shown["Phone PIN"] and shown["Phone PIN"].endswith("cret")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "custom_fields_changed"))
    assert SECRET not in str(entry.after)
    # Nor in the database: values are stored encrypted.
    raw = db.session.execute(text("SELECT value FROM custom_field_values")).scalars().all()
    assert len(raw) == 2 and not any(SECRET in value or "trusted" in value for value in raw)


def test_the_ticket_engine_checks_department_fields_before_opening(db):
    from app.models.support import SupportDepartment
    from app.support.tickets import guest_author, open_ticket

    desk = SupportDepartment(name="Sales", email="sales@x.test")
    db.session.add(desk)
    db.session.flush()
    domain = field("support", "Domain name", desk.id, required=True)
    note = field("support", "Staff note", desk.id, admin_only=True)
    db.session.commit()
    author = guest_author("Ann Lee", "ann@example.test")
    with pytest.raises(custom_fields.CustomFieldError):
        open_ticket(desk.id, "Hello", "A question", author, field_answers={})
    with pytest.raises(custom_fields.CustomFieldError):  # a client may not set a staff-only field
        open_ticket(desk.id, "Hello", "A question", author,
                    field_answers={domain: "ann.example", note: "vip"})
    db.session.rollback()
    assert count(Ticket) == 0 and count(CustomFieldValue) == 0

    ticket = open_ticket(desk.id, "Hello", "A question", author, field_answers={domain: "ann.example"})
    db.session.commit()
    assert stored(domain, ticket.id) == "ann.example" and stored(note, ticket.id) is None


# The store, sign-up and checkout

@pytest.fixture
def shop_fields(app, shop):
    with app.app_context():
        ids = {"hostname": field("product", "Server hostname", shop["product"], required=True,
                                 show_on_order=True, regex=r"[a-z0-9.-]+"),
               "internal": field("product", "Rack", shop["product"], admin_only=True),
               "referral": field("client", "How did you find us", field_type="dropdown",
                                 options="Search,Friend", required=True, show_on_order=True)}
        db.session.commit()
        return ids


def test_store_order_with_product_and_sign_up_fields(client, shop, shop_fields, fake_rdap, app):
    hostname = f"customfield_{shop_fields['hostname']}"
    page = text_of(client.get(f"/portal/store/product/{shop['product']}"))
    assert "Server hostname" in page and "Rack" not in page

    missing = add_plan(client, shop, domain="fields.com")
    assert missing.status_code == 200
    assert "Server hostname is required." in " ".join(page_messages(missing))
    assert session_cart(client) is None  # the cart was not changed

    added = add_plan(client, shop, domain="fields.com", **{hostname: "web1.fields.com"})
    assert added.status_code == 302
    assert session_cart(client)["lines"][0]["custom_fields"] == {
        str(shop_fields["hostname"]): "web1.fields.com"}
    assert "Server hostname: web1.fields.com" in text_of(client.get("/portal/cart"))

    checkout_page = text_of(client.get("/portal/checkout"))
    assert "How did you find us" in checkout_page
    referral = f"customfield_{shop_fields['referral']}"
    refused = checkout_as_new(client, **{referral: "Billboard"})
    assert refused.status_code == 200
    assert "choose one of Search, Friend" in " ".join(page_messages(refused))
    with app.app_context():
        assert count(Order) == 0 and count(Client) == 0

    placed = checkout_as_new(client, **{referral: "Friend"})
    assert placed.status_code == 302, page_messages(placed)
    with app.app_context():
        order = db.session.scalar(select(Order))
        service = db.session.scalar(select(Service).where(Service.order_id == order.id))
        assert stored(shop_fields["hostname"], service.id) == "web1.fields.com"
        assert stored(shop_fields["referral"], order.client_id) == "Friend"


def test_a_cart_missing_a_required_field_places_no_order(client, shop, fake_rdap, app):
    assert add_plan(client, shop, domain="later.com").status_code == 302
    with app.app_context():  # the field is made required after the plan was put in the cart
        field("product", "Server hostname", shop["product"], required=True, show_on_order=True)
        db.session.commit()
    response = checkout_as_new(client)
    assert response.status_code == 200
    assert any("Server hostname is required." in message for message in page_messages(response))
    with app.app_context():
        assert count(Order) == 0 and count(Client) == 0


def test_register_page_asks_the_client_fields(client, shop, shop_fields, app):
    referral = f"customfield_{shop_fields['referral']}"
    assert "How did you find us" in text_of(client.get("/portal/register"))
    form = {"first_name": "Rita", "last_name": "Reg", "email": "rita@reg-shop.com",
            "phone": "+1 555 0101", "address1": "2 Main St", "city": "Springfield", "state": "IL",
            "postcode": "62701", "country": "US", "password": "Secret-Pass-9",
            "confirm": "Secret-Pass-9", "accept_tos": "y"}
    refused = client.post("/portal/register", data=form)
    assert "How did you find us is required." in text_of(refused)
    with app.app_context():
        assert count(Client) == 0
    assert client.post("/portal/register", data={**form, referral: "Search"}).status_code == 302
    with app.app_context():
        rita = db.session.scalar(select(Client))
        assert stored(shop_fields["referral"], rita.id) == "Search"


# The portal: profile, tickets, invoices

@pytest.fixture
def portal_fields(app, world):
    with app.app_context():
        ids = {"vat": field("client", "VAT number", regex=r"[A-Z]{2}\d{8}", show_on_invoice=True),
               "note": field("client", "Risk note", admin_only=True),
               "pin": field("client", "Phone PIN", field_type="password"),
               "os": field("support", "Operating system", department().id,
                           field_type="dropdown", options="Linux,Windows", required=True)}
        custom_fields.save_values("client", world["a"]["client"], {ids["note"]: "watch payments"},
                                  Actor("staff", "admin"), staff=True)
        db.session.commit()
        return ids


@pytest.fixture
def signed_in(app, world):
    from tests.integration.test_portal_world import portal_login

    http = app.test_client()
    assert portal_login(http, world["user_a"]).status_code == 302
    return http


PROFILE = {"first_name": "Alpha", "last_name": "Owner", "country": "US"}


def test_profile_edits_client_fields_but_not_staff_ones(signed_in, world, portal_fields, app):
    vat, note, pin = (f"customfield_{portal_fields[name]}" for name in ("vat", "note", "pin"))
    page = text_of(signed_in.get("/portal/account"))
    assert "VAT number" in page and "Phone PIN" in page
    assert "Risk note" not in page and "watch payments" not in page

    bad = signed_in.post("/portal/account", data={**PROFILE, vat: "12", pin: SECRET})
    assert "This value does not have the format VAT number needs." in text_of(bad)
    assert 'value="12"' in text_of(bad) and SECRET not in text_of(bad)  # a password is not put back
    client_id = world["a"]["client"]
    with app.app_context():
        assert stored(portal_fields["vat"], client_id) is None
        assert stored(portal_fields["pin"], client_id) is None

    saved = signed_in.post("/portal/account", data={**PROFILE, vat: "DE12345678", pin: SECRET,
                                                    note: "a client wrote this"})
    assert saved.status_code == 302
    with app.app_context():
        assert stored(portal_fields["vat"], client_id) == "DE12345678"
        assert stored(portal_fields["pin"], client_id) == SECRET
        assert stored(portal_fields["note"], client_id) == "watch payments"  # not the client's to set
    page = text_of(signed_in.get("/portal/account"))
    assert "DE12345678" in page and SECRET not in page
    # Saving again with the password left empty keeps it.
    signed_in.post("/portal/account", data={**PROFILE, vat: "DE12345678", pin: ""})
    with app.app_context():
        assert stored(portal_fields["pin"], client_id) == SECRET
    # The field shown on invoices is on the invoice page.
    invoice = text_of(signed_in.get(f"/portal/invoices/{world['a']['invoice']}"))
    assert "VAT number: DE12345678" in invoice and "Phone PIN" not in invoice
    with app.app_context(), app.test_request_context():
        from app.billing.pdf import document_html

        document = document_html("invoice", world["a"]["invoice"]).html
    assert re.search(r'<td class="label">VAT number</td><td>DE12345678</td>', document)
    assert "Phone PIN" not in document and "Risk note" not in document


def test_ticket_with_a_department_field(signed_in, world, portal_fields, app):
    with app.app_context():
        department_id = department().id
    os_input = f"customfield_{portal_fields['os']}"
    assert "Operating system" in text_of(signed_in.get("/portal/tickets/new"))
    form = {"department": department_id, "priority": "Medium", "service": 0,
            "subject": "Mail broken", "message": "Nothing arrives."}
    with app.app_context():
        before = count(Ticket)
    refused = signed_in.post("/portal/tickets/new", data=form)
    assert "Operating system is required." in text_of(refused)
    with app.app_context():
        assert count(Ticket) == before
    opened = signed_in.post("/portal/tickets/new", data={**form, os_input: "Linux"})
    assert opened.status_code == 302
    ticket_id = int(re.search(r"/tickets/(\d+)", opened.location).group(1))
    with app.app_context():
        assert stored(portal_fields["os"], ticket_id) == "Linux"
    page = text_of(signed_in.get(f"/portal/tickets/{ticket_id}"))
    assert re.search(r"<dt>Operating system</dt><dd>Linux</dd>", page)


def test_guest_ticket_form_asks_the_department_fields(client, app):
    from tests.integration.test_portal_guest_tickets import guest_form

    with app.app_context():
        sales = department("Sales").id
        budget = field("support", "Budget", sales, field_type="dropdown", options="Small,Large",
                       required=True)
        db.session.commit()
    assert "Budget" in text_of(client.get("/portal/tickets/submit"))
    refused = client.post("/portal/tickets/submit", data=guest_form(sales))
    assert "Budget is required." in text_of(refused)
    with app.app_context():
        assert count(Ticket) == 0
    opened = client.post("/portal/tickets/submit",
                         data=guest_form(sales, **{f"customfield_{budget}": "Large"}))
    assert opened.status_code == 302
    assert re.search(r"<dt>Budget</dt><dd>Large</dd>", text_of(client.get(opened.location)))


def test_a_guest_ticket_page_shows_none_of_a_password_field(client, app):
    """The guest page opens to whoever holds the emailed link: a password answered on
    the ticket form is shown as set, with none of its characters."""
    from tests.integration.test_portal_guest_tickets import guest_form

    with app.app_context():
        sales = department("Sales").id
        panel = field("support", "Panel password", sales, field_type="password")
        db.session.commit()
    opened = client.post("/portal/tickets/submit",
                         data=guest_form(sales, **{f"customfield_{panel}": SECRET}))
    assert opened.status_code == 302
    page = text_of(app.test_client().get(opened.location))
    assert "<dt>Panel password</dt><dd>••••••••</dd>" in page
    assert SECRET[-4:] not in page


# The admin's value screen checks through the engine

def test_admin_value_screen_uses_the_engine_check(admin_client, db):
    client = factories.client()
    site = field("client", "Website", field_type="link")
    db.session.commit()
    refused = admin_client.post("/customfieldvalueview/add", data={
        "field": str(site), "rel_id": str(client.id), "value": "javascript:alert(1)"})
    assert "Website must be a web address starting with http:// or https://." in \
        refused.get_data(as_text=True)
    accepted = admin_client.post("/customfieldvalueview/add", data={
        "field": str(site), "rel_id": str(client.id), "value": "https://ada.example"})
    assert accepted.status_code == 302
    assert stored(site, client.id) == "https://ada.example"


def test_admin_value_screen_logs_a_password_masked_never_in_clear(admin_client, db):
    client = factories.client()
    pin = field("client", "Phone PIN", field_type="password")
    db.session.commit()
    added = admin_client.post("/customfieldvalueview/add", data={
        "field": str(pin), "rel_id": str(client.id), "value": SECRET})
    assert added.status_code == 302 and stored(pin, client.id) == SECRET
    value_id = db.session.scalar(select(CustomFieldValue.id))
    edited = admin_client.post(f"/customfieldvalueview/edit/{value_id}",
                               data={"value": SECRET + "-2"})
    assert edited.status_code == 302
    db.session.expire_all()
    assert stored(pin, client.id) == SECRET + "-2"
    entries = db.session.scalars(select(ActivityLog).where(
        ActivityLog.action.like("custom_field_value.%")).order_by(ActivityLog.id)).all()
    assert [entry.action for entry in entries] == ["custom_field_value.created",
                                                   "custom_field_value.updated"]
    assert entries[0].after["value"] == mask_secret(SECRET)  # as the engine's own log keeps it
    for entry in entries:
        assert SECRET not in f"{entry.description} {entry.before} {entry.after}"


# The WHMCS API over HTTP

NEW_CLIENT = dict(firstname="Grace", lastname="Hopper", email="grace@example.test",
                  address1="1 Navy Way", city="Arlington", state="VA", postcode="22202",
                  country="US", phonenumber="555-0100", password2="Sup3r-Secret!")


def ok(http, key, action, **params) -> dict:
    status, body = call(http, key, action, **params)
    assert status == 200 and body["result"] == "success", body
    return body


def test_whmcs_customfields_given_as_php_numbers_keep_their_digits(client, db):
    """A PHP client may serialize a number as one (i:0;, i:1;): it is the field's text,
    a 0 as much as any other; only true/false are a tickbox's on/off."""
    key = make_credential(db, "Admin")
    customer = factories.client()
    floor = field("client", "Floor")
    rooms = field("client", "Rooms")
    box = field("client", "Newsletter", field_type="tickbox")
    db.session.commit()
    serialized = f"a:3:{{i:{floor};i:0;i:{rooms};i:1;i:{box};b:1;}}"
    ok(client, key, "UpdateClient", clientid=customer.id,
       customfields=base64.b64encode(serialized.encode()).decode())
    assert (stored(floor, customer.id), stored(rooms, customer.id), stored(box, customer.id)) \
        == ("0", "1", "on")


def test_whmcs_clients_with_custom_fields(client, db):
    key = make_credential(db, "Admin")
    factories.currency()
    vat = field("client", "VAT number", regex=r"[A-Z]{2}\d{8}", required=True)
    pin = field("client", "Phone PIN", field_type="password")
    note = field("client", "Risk note", admin_only=True)
    db.session.commit()

    status, body = call(client, key, "AddClient", **NEW_CLIENT,
                        customfields=php_array({vat: "nope"}))
    assert body == {"result": "error",
                    "message": "Invalid customfields: This value does not have the format "
                               "VAT number needs."}
    status, body = call(client, key, "AddClient", **NEW_CLIENT, customfields="not base64!")
    assert body["message"] == "customfields is not base64"
    assert count(Client) == 0

    created = ok(client, key, "AddClient", **NEW_CLIENT,
                 customfields=php_array({vat: "US12345678", pin: SECRET, note: "vip"}))
    details = ok(client, key, "GetClientsDetails", clientid=created["clientid"])
    values = {row["id"]: row for row in details["client"]["customfields"]}
    assert values[vat] == {"id": vat, "name": "VAT number", "value": "US12345678"}
    assert values[note]["value"] == "vip"
    assert SECRET not in str(details) and values[pin]["value"].endswith("cret")

    ok(client, key, "UpdateClient", clientid=created["clientid"],
       customfields=php_array({vat: "GB87654321"}))
    status, body = call(client, key, "UpdateClient", clientid=created["clientid"],
                        lastname="Changed", customfields=php_array({vat: "bad"}))
    assert body["result"] == "error"
    db.session.expire_all()
    assert stored(vat, created["clientid"]) == "GB87654321"
    assert db.session.get(Client, created["clientid"]).last_name == "Hopper"


def test_whmcs_orders_and_tickets_with_custom_fields(client, db, fake_rdap):
    from tests import orders_catalog

    key = make_credential(db, "Admin")
    catalog = orders_catalog.build(name="Starter", slug="starter")
    buyer = factories.client(email="buyer@example.test", address1="1 St", city="Town",
                             state="ST", postcode="12345")
    hostname = field("product", "Server hostname", catalog.product.id, required=True,
                     show_on_order=True)
    os_field = field("support", "Operating system", department().id, field_type="dropdown",
                     options="Linux,Windows", required=True)
    db.session.commit()
    order = dict(clientid=buyer.id, paymentmethod="banktransfer", **{"pid[0]": catalog.product.id,
                                                                   "billingcycle[0]": "Monthly",
                                                                   "domain[0]": "buyer-site.com"})

    status, body = call(client, key, "AddOrder", **order)
    assert body["result"] == "error" and "Server hostname is required." in body["message"]
    assert count(Order) == 0 and count(Service) == 0

    placed = ok(client, key, "AddOrder", **order,
                **{"customfields[0]": php_array({hostname: "web1.example"})})
    other_plan = factories.product(name="Other plan", slug="other-plan")
    factories.service(buyer, other_plan)
    ssh_key = field("product", "SSH key", other_plan.id, field_type="textarea")
    db.session.commit()
    products = ok(client, key, "GetClientsProducts", clientid=buyer.id)["products"]["product"]
    assert [row["customfields"]["customfield"] for row in products] == [
        [{"id": hostname, "name": "Server hostname", "translated_name": "Server hostname",
          "value": "web1.example"}],
        [{"id": ssh_key, "name": "SSH key", "translated_name": "SSH key", "value": ""}]]

    ticket = dict(deptid=department().id, clientid=buyer.id, subject="Help", message="Please")
    status, body = call(client, key, "OpenTicket", **ticket,
                        customfields=php_array({os_field: "BeOS"}))
    assert body == {"result": "error",
                    "message": "Invalid customfields: Choose one of: Linux, Windows."}
    assert count(Ticket) == 0
    opened = ok(client, key, "OpenTicket", **ticket, customfields=php_array({os_field: "Linux"}))
    got = ok(client, key, "GetTicket", ticketid=opened["id"])
    assert got["customfields"]["customfield"][0]["value"] == "Linux"


def test_a_ticket_form_reads_its_departments_fields_in_one_query(client, app):
    """The guest form (as the client's) lists every department with its fields: one
    query for the fields however many departments there are."""
    from sqlalchemy import event

    from app.models.support import SupportDepartment

    with app.app_context():
        names = ["Sales", "Billing", "Abuse", "Network"]
        rows = [SupportDepartment(name=name, email=f"{name.lower()}@example.test") for name in names]
        db.session.add_all(rows)
        db.session.flush()
        for row in rows:
            field("support", f"{row.name} question", row.id)
        db.session.commit()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        page = text_of(client.get("/portal/tickets/submit"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert all(f"{name} question" in page for name in names)
    assert sum("FROM custom_fields" in statement for statement in statements) == 1
