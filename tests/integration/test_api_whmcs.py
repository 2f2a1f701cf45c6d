"""The WHMCS-compatible API over HTTP, called as a WHMCS client calls it: form posts
to /includes/api.php. Authentication, access control, clients, catalog, services,
support and system actions. (Billing actions: test_api_whmcs_billing.py.)"""
from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select

from app.api.credentials import create_credential
from app.models.api import ApiCallLog
from app.models.billing import Invoice, InvoiceStatus
from app.models.catalog import ProductPricing
from app.models.clients import Client, ClientGroup, ClientNote, ClientUser, Contact
from app.models.domains import Tld, TldPricing
from app.models.orders import Service
from app.models.support import SupportDepartment, Ticket
from app.models.system import ActivityLog, Setting
from tests import factories

_names = itertools.count(1)
ENDPOINT = "/includes/api.php"


def make_credential(db, role: str = "Admin", ips=("127.0.0.1",), access_key=None) -> dict:
    created = create_credential(f"{role} integration {next(_names)}", role, list(ips), access_key)
    db.session.commit()
    return {"identifier": created.credential.identifier, "secret": created.secret}


def call(client, credential: dict, action: str, ip: str = "127.0.0.1", **params):
    data = {**credential, "action": action, "responsetype": "json", **params}
    response = client.post(ENDPOINT, data=data, environ_overrides={"REMOTE_ADDR": ip})
    return response.status_code, response.get_json()


@pytest.fixture
def admin_key(db):
    return make_credential(db, "Admin")


NEW_CLIENT = dict(firstname="Grace", lastname="Hopper", companyname="Cobol Ltd",
                  email="grace@example.test", address1="1 Navy Way", city="Arlington",
                  state="VA", postcode="22202", country="US", phonenumber="555-0100",
                  password2="Sup3r-Secret!")


# Authentication and access control

def test_bad_secret_is_refused_and_nothing_changes(client, db, admin_key):
    factories.currency()
    db.session.commit()
    status, body = call(client, {**admin_key, "secret": "wrong"}, "AddClient", **NEW_CLIENT)
    assert status == 403
    assert body == {"result": "error", "message": "Authentication Failed"}
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0
    logged = db.session.scalar(select(ApiCallLog).order_by(ApiCallLog.id.desc()))
    assert (logged.api, logged.endpoint, logged.outcome, logged.credential_id) == (
        "whmcs", "AddClient", "denied", None)


def test_a_call_from_an_ip_not_allowed_is_refused_unless_it_brings_the_access_key(client, db):
    factories.currency()
    key = make_credential(db, "Admin", ips=("192.0.2.10",), access_key="Open-Sesame-2024")
    status, body = call(client, key, "AddClient", ip="198.51.100.23", **NEW_CLIENT)
    assert (status, body) == (403, {"result": "error", "message": "Invalid IP 198.51.100.23"})
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0

    status, body = call(client, key, "AddClient", ip="198.51.100.23", accesskey="Open-Sesame-2024",
                        **NEW_CLIENT)
    assert status == 200 and body["result"] == "success"
    status, body = call(client, key, "GetClients", ip="192.0.2.10")
    assert body["totalresults"] == 1


def test_unknown_action_and_missing_action(client, db, admin_key):
    assert call(client, admin_key, "DoSomethingOdd")[1] == {"result": "error",
                                                           "message": "Command Not Found"}
    status, body = call(client, admin_key, "")
    assert body == {"result": "error", "message": "Parameter action is required"}


def test_a_role_without_api_access_gets_no_action(client, app, db):
    app.appbuilder.sm.add_role("Auditor")  # a role made in the admin, with no permission yet
    db.session.commit()
    key = make_credential(db, "Auditor")
    status, body = call(client, key, "GetClients")
    assert status == 403
    assert body == {"result": "error", "message": 'Invalid Permissions: API action "getclients" is not allowed'}


def test_support_may_read_clients_but_not_add_credit(client, db):
    customer = factories.client()
    db.session.commit()
    key = make_credential(db, "Support")
    assert call(client, key, "GetClientsDetails", clientid=customer.id)[1]["result"] == "success"
    status, body = call(client, key, "AddCredit", clientid=customer.id, description="Goodwill",
                        amount="5.00")
    assert status == 403 and body["message"] == 'Invalid Permissions: API action "addcredit" is not allowed'
    db.session.refresh(customer)
    assert customer.credit_balance == Decimal("0.00")


def test_xml_response(client, db, admin_key):
    customer = factories.client(first_name="Ada", last_name="Lovelace")
    db.session.commit()
    response = client.post(ENDPOINT, data={**admin_key, "action": "GetClients", "responsetype": "xml"})
    assert response.mimetype == "text/xml"
    root = ElementTree.fromstring(response.data)
    assert root.tag == "whmcsapi"
    assert root.findtext("result") == "success"
    assert root.findtext("totalresults") == "1"
    assert root.findtext("clients/client/id") == str(customer.id)
    assert root.findtext("clients/client/lastname") == "Lovelace"


def test_every_call_is_logged_with_its_credential_and_outcome(client, db, admin_key):
    call(client, admin_key, "WhmcsDetails")
    call(client, admin_key, "GetClientsDetails", clientid="999")
    rows = db.session.scalars(select(ApiCallLog).order_by(ApiCallLog.id)).all()
    assert [(row.endpoint, row.outcome, row.message) for row in rows] == [
        ("WhmcsDetails", "success", None), ("GetClientsDetails", "error", "Client ID Not Found")]
    assert rows[0].credential_id is not None and rows[0].ip_address == "127.0.0.1"


# Clients

def test_add_client_then_read_it_back(client, db, admin_key, app):
    usd = factories.currency()
    group = ClientGroup(name="Resellers")
    db.session.add(group)
    db.session.commit()
    status, body = call(client, admin_key, "AddClient", groupid=group.id, marketingoptin="true",
                        notes="Met at a conference", **NEW_CLIENT)
    assert status == 200 and body["result"] == "success"
    client_id = body["clientid"]

    details = call(client, admin_key, "GetClientsDetails", clientid=client_id, stats="true")[1]
    assert details["client"]["email"] == "grace@example.test"
    assert details["client"]["companyname"] == "Cobol Ltd"
    assert details["client"]["groupid"] == group.id
    assert details["client"]["currency_code"] == usd.code
    assert details["client"]["credit"] == "0.00"
    assert details["email"] == "grace@example.test"  # the flat legacy copy
    assert "password" not in details["client"]
    assert details["stats"]["numunpaidinvoices"] == 0
    assert details["stats"]["creditbalance"] == "$0.00"
    # The password made a portal login owning the account.
    membership = db.session.scalar(select(ClientUser).where(ClientUser.client_id == client_id))
    assert membership.is_owner and membership.user.email == "grace@example.test"
    assert [role.name for role in membership.user.roles] == ["Client"]
    assert db.session.scalar(select(ClientNote.body).where(ClientNote.client_id == client_id)) == \
        "Met at a conference"
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "client_created"))
    assert entry.actor_type == "api" and entry.client_id == client_id


@pytest.mark.parametrize("change, message", [
    ({"lastname": ""}, "You did not enter your last name"),
    ({"email": "not-an-email"}, "The email address you entered was not valid"),
    ({"city": ""}, "You did not enter your city"),
    ({"country": "XX"}, "'XX' is not a two-letter ISO country code"),
    ({"password2": ""}, "You did not enter a password"),
    ({"currency": "99"}, "Currency ID 99 Not Found"),
])
def test_add_client_refuses_bad_input(client, db, admin_key, change, message):
    factories.currency()
    db.session.commit()
    status, body = call(client, admin_key, "AddClient", **{**NEW_CLIENT, **change})
    assert body == {"result": "error", "message": message}
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0


def test_add_client_twice_with_one_email_is_refused(client, db, admin_key):
    factories.currency()
    db.session.commit()
    assert call(client, admin_key, "AddClient", **NEW_CLIENT)[1]["result"] == "success"
    body = call(client, admin_key, "AddClient", **{**NEW_CLIENT, "email": "GRACE@example.test"})[1]
    assert body["message"] == "A client already exists with that email address"


def test_update_client(client, db, admin_key):
    first = factories.client(email="one@example.test")
    factories.client(email="two@example.test")
    db.session.commit()
    body = call(client, admin_key, "UpdateClient", clientid=first.id, city="Lyon", country="FR",
                status="Inactive")[1]
    assert body == {"result": "success", "clientid": first.id}
    db.session.refresh(first)
    assert (first.city, first.country, first.status) == ("Lyon", "FR", "Inactive")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "client_updated"))
    assert entry.after == {"city": "Lyon", "country": "FR", "status": "Inactive"}

    body = call(client, admin_key, "UpdateClient", clientemail="one@example.test",
                email="two@example.test")[1]
    assert body == {"result": "error", "message": "Duplicate Email Address"}
    body = call(client, admin_key, "UpdateClient", clientid="4242", city="Paris")[1]
    assert body["message"] == "Client ID Not Found"


def test_get_clients_searches_pages_and_nests(client, db, admin_key):
    for last in ("Adams", "Baker", "Bates", "Clark"):
        factories.client(last_name=last, email=f"{last.lower()}@example.test")
    db.session.commit()
    body = call(client, admin_key, "GetClients", search="ba")[1]
    assert body["totalresults"] == 2 and body["numreturned"] == 2 and body["startnumber"] == 0
    assert [row["lastname"] for row in body["clients"]["client"]] == ["Baker", "Bates"]
    page = call(client, admin_key, "GetClients", limitstart="1", limitnum="2", sorting="DESC")[1]
    assert page["totalresults"] == 4 and page["startnumber"] == 1
    assert [row["lastname"] for row in page["clients"]["client"]] == ["Bates", "Baker"]


def test_close_client_cancels_invoices_and_ends_services(client, db, admin_key):
    customer = factories.client()
    plan = factories.product()
    active = factories.service(customer, plan, next_due=date.today())
    pending = factories.service(customer, plan, status="Pending")
    db.session.commit()
    created = call(client, admin_key, "CreateInvoice", userid=customer.id,
                   itemdescription1="Hosting", itemamount1="10.00")[1]
    body = call(client, admin_key, "CloseClient", clientid=customer.id)[1]
    assert body == {"result": "success", "clientid": customer.id}
    db.session.expire_all()
    assert db.session.get(Client, customer.id).status == "Closed"
    assert db.session.get(Invoice, created["invoiceid"]).status == InvoiceStatus.CANCELLED
    assert db.session.get(Service, active.id).status == "Terminated"
    assert db.session.get(Service, pending.id).status == "Cancelled"
    # The manual module left staff a to-do for the account to remove.
    assert db.session.scalar(select(Ticket.subject).where(Ticket.service_id == active.id)).startswith(
        "Terminate hosting account")
    assert call(client, admin_key, "CloseClient", clientid=customer.id)[1]["message"] == \
        f"Client #{customer.id} is closed already"


def test_close_client_refuses_when_an_invoice_is_partly_paid(client, db, admin_key):
    customer = factories.client()
    db.session.commit()
    invoice_id = call(client, admin_key, "CreateInvoice", userid=customer.id,
                      itemdescription1="Design work", itemamount1="100.00")[1]["invoiceid"]
    call(client, admin_key, "AddInvoicePayment", invoiceid=invoice_id, transid="PART-1",
         gateway="banktransfer", amount="40.00")
    body = call(client, admin_key, "CloseClient", clientid=customer.id)[1]
    assert body["result"] == "error" and "refund the payments" in body["message"]
    db.session.expire_all()
    assert db.session.get(Client, customer.id).status == "Active"


def test_contacts_and_notes(client, db, admin_key):
    customer = factories.client()
    db.session.commit()
    body = call(client, admin_key, "AddContact", clientid=customer.id, firstname="Jane",
                lastname="Doe", email="jane@example.test", country="GB",
                **{"email_preferences[invoice]": "1", "email_preferences[support]": "0"})[1]
    contact = db.session.get(Contact, body["contactid"])
    assert (contact.email, contact.receives_invoices, contact.receives_support) == (
        "jane@example.test", True, False)
    duplicate = call(client, admin_key, "AddContact", clientid=customer.id, firstname="J",
                     lastname="D", email="jane@example.test")[1]
    assert duplicate["message"] == "Duplicate Email Address"

    listed = call(client, admin_key, "GetContacts", userid=customer.id)[1]
    assert listed["totalresults"] == 1
    assert listed["contacts"]["contact"][0]["invoiceemails"] == 1
    assert "password" not in listed["contacts"]["contact"][0]

    note = call(client, admin_key, "AddClientNote", userid=customer.id, notes="Prefers email",
                sticky="1")[1]
    assert db.session.get(ClientNote, note["noteid"]).sticky is True
    empty = call(client, admin_key, "AddClientNote", userid=customer.id, notes="  ")[1]
    assert empty == {"result": "error", "message": "Notes can not be empty"}


# Catalog

def test_groups_currencies_products_and_tld_pricing(client, db, admin_key):
    usd = factories.currency()
    vip = ClientGroup(name="VIP", colour="#28C99B", discount_percent=Decimal("10"),
                      exempt_from_auto_suspend=True)
    db.session.add(vip)
    plan = factories.product(price="25.99", setup_fee="5.00", name="Best Plan")
    db.session.add(ProductPricing(product_id=plan.id, currency_id=usd.id, cycle="Annually",
                                  price=Decimal("259.90"), setup_fee=Decimal("0")))
    tld = Tld(extension=".com", dns_management=True, label="hot")
    db.session.add(tld)
    db.session.flush()
    db.session.add_all([
        TldPricing(tld_id=tld.id, currency_id=usd.id, years=1, register_price=Decimal("9.95"),
                   transfer_price=Decimal("8.00"), renew_price=Decimal("10.95")),
        TldPricing(tld_id=tld.id, currency_id=usd.id, years=2, register_price=Decimal("19.90"),
                   transfer_price=Decimal("16.00"), renew_price=Decimal("21.90"))])
    db.session.commit()

    groups = call(client, admin_key, "GetClientGroups")[1]
    assert groups["groups"]["group"] == [{"id": vip.id, "groupname": "VIP", "groupcolour": "#28C99B",
                                          "discountpercent": "10.00", "susptermexempt": "on",
                                          "separateinvoices": ""}]
    currencies = call(client, admin_key, "GetCurrencies")[1]
    assert currencies["currencies"]["currency"][0] == {
        "id": usd.id, "code": "USD", "prefix": "$", "suffix": "", "format": "1", "rate": "1.00000"}

    products = call(client, admin_key, "GetProducts", pid=str(plan.id))[1]
    assert products["totalresults"] == 1
    product = products["products"]["product"][0]
    assert (product["pid"], product["name"], product["type"], product["paytype"]) == (
        plan.id, "Best Plan", "hostingaccount", "recurring")
    assert product["pricing"]["USD"]["monthly"] == "25.99"
    assert product["pricing"]["USD"]["msetupfee"] == "5.00"
    assert product["pricing"]["USD"]["annually"] == "259.90"
    assert product["pricing"]["USD"]["quarterly"] == "-1.00"
    assert call(client, admin_key, "GetProducts", pid="x")[1]["result"] == "error"

    pricing = call(client, admin_key, "GetTLDPricing", currencyid=usd.id)[1]
    assert pricing["currency"]["code"] == "USD"
    assert pricing["pricing"]["com"]["register"] == {"1": "9.95", "2": "19.90"}
    assert pricing["pricing"]["com"]["renew"]["2"] == "21.90"
    assert pricing["pricing"]["com"]["addons"] == {"dns": True, "email": False, "idprotect": False}
    assert pricing["pricing"]["com"]["group"] == "hot"


def test_clients_products_and_domains_never_show_a_password(client, db, admin_key):
    customer = factories.client()
    plan = factories.product(name="Starter")
    service = factories.service(customer, plan, amount="12.95", next_due=date(2031, 1, 5),
                                username="grace1", password="hunter2-secret")
    factories.domain(customer, name="example-one.com", expiry_date=date(2031, 3, 1))
    db.session.commit()
    products = call(client, admin_key, "GetClientsProducts", clientid=customer.id)[1]
    row = products["products"]["product"][0]
    assert (row["id"], row["name"], row["recurringamount"], row["nextduedate"], row["username"]) == (
        service.id, "Starter", "12.95", "2031-01-05", "grace1")
    assert "password" not in row and "hunter2-secret" not in str(products)
    assert products["totalresults"] == 1 and products["clientid"] == customer.id

    domains = call(client, admin_key, "GetClientsDomains", clientid=customer.id)[1]
    assert domains["domains"]["domain"][0]["domainname"] == "example-one.com"
    assert domains["domains"]["domain"][0]["recurringamount"] == "12.00"
    assert domains["domains"]["domain"][0]["expirydate"] == "2031-03-01"


# Services

def test_module_suspend_unsuspend_terminate(client, db, admin_key):
    customer = factories.client()
    service = factories.service(customer, factories.product(), next_due=date.today())
    db.session.commit()
    assert call(client, admin_key, "ModuleSuspend", accountid=service.id,
                suspendreason="Abuse report")[1] == {"result": "success"}
    db.session.refresh(service)
    assert (service.status, service.suspension_reason) == ("Suspended", "Abuse report")
    again = call(client, admin_key, "ModuleSuspend", accountid=service.id)[1]
    assert again["result"] == "error" and "only Active services" in again["message"]
    assert call(client, admin_key, "ModuleUnsuspend", accountid=service.id)[1]["result"] == "success"
    db.session.refresh(service)
    assert (service.status, service.suspension_reason) == ("Active", None)
    assert call(client, admin_key, "ModuleTerminate", accountid=service.id)[1]["result"] == "success"
    db.session.refresh(service)
    assert service.status == "Terminated" and service.termination_date == date.today()
    missing = call(client, admin_key, "ModuleTerminate", accountid="999999")[1]
    assert missing == {"result": "error", "message": "Service ID Not Found"}
    assert call(client, admin_key, "ModuleTerminate")[1]["message"] == "Parameter accountid is required"


# Support

def test_tickets_open_reply_list_and_read(client, db, admin_key, staff, app):
    customer = factories.client(first_name="Ada", last_name="Byron")
    sales = SupportDepartment(name="Sales", email="sales@example.test")
    db.session.add(sales)
    db.session.commit()
    opened = call(client, admin_key, "OpenTicket", deptid=sales.id, clientid=customer.id,
                  subject="Upgrade question", message="Can I move to a bigger plan?",
                  priority="High")[1]
    assert opened["result"] == "success" and opened["tid"]
    ticket = db.session.get(Ticket, opened["id"])
    assert (ticket.status, ticket.priority, ticket.email, ticket.tid) == (
        "Open", "High", customer.email, opened["tid"])

    username, _ = staff("Support")
    replied = call(client, admin_key, "AddTicketReply", ticketid=ticket.id,
                   message="Yes, from your client area.", adminusername=username)[1]
    assert replied == {"result": "success"}
    db.session.refresh(ticket)
    assert ticket.status == "Answered"
    call(client, admin_key, "AddTicketReply", ticketid=ticket.id, clientid=customer.id,
         message="Thanks!")
    db.session.refresh(ticket)
    assert ticket.status == "Customer-Reply"

    guest = call(client, admin_key, "OpenTicket", deptid=sales.id, subject="Pre-sales",
                 message="Do you offer SSL?")[1]
    assert guest == {"result": "error", "message": "Name and email address are required if not a client"}

    listed = call(client, admin_key, "GetTickets", status="Awaiting Reply")[1]
    assert listed["totalresults"] == 1
    assert listed["tickets"]["ticket"][0]["tid"] == opened["tid"]

    shown = call(client, admin_key, "GetTicket", ticketnum=opened["tid"])[1]
    assert shown["subject"] == "Upgrade question" and shown["deptname"] == "Sales"
    assert [reply["message"] for reply in shown["replies"]["reply"]] == [
        "Can I move to a bigger plan?", "Yes, from your client area.", "Thanks!"]
    assert shown["replies"]["reply"][1]["admin"] == "Staff User"

    departments = call(client, admin_key, "GetSupportDepartments")[1]
    assert departments["departments"]["department"] == [
        {"id": sales.id, "name": "Sales", "awaitingreply": 1, "opentickets": 1}]
    assert call(client, admin_key, "OpenTicket", deptid="999", clientid=customer.id, subject="x",
                message="y")[1]["message"] == "Department ID not found"


# System

def test_configuration_values(client, db, admin_key):
    assert call(client, admin_key, "GetConfigurationValue", setting="InvoiceDueDays")[1] == {
        "result": "success", "setting": "InvoiceDueDays", "value": "0"}
    assert call(client, admin_key, "GetConfigurationValue", setting="Nope")[1]["message"] == \
        "Invalid name for parameter setting"
    assert call(client, admin_key, "GetConfigurationValue")[1]["message"] == "Parameter setting is required"

    assert call(client, admin_key, "SetConfigurationValue", setting="InvoiceDueDays", value="7")[1] == {
        "result": "success", "value_changed": True}
    assert db.session.scalar(select(Setting.value).where(Setting.key == "InvoiceDueDays")) == "7"
    bad = call(client, admin_key, "SetConfigurationValue", setting="InvoiceDueDays", value="soon")[1]
    assert bad == {"result": "error", "message": "Setting InvoiceDueDays takes a whole number"}
    assert call(client, admin_key, "SetConfigurationValue", setting="InvoiceDueDays", value="")[1][
        "value_changed"] is True
    assert db.session.scalar(select(Setting.id).where(Setting.key == "InvoiceDueDays")) is None
    assert call(client, admin_key, "SetConfigurationValue", setting="InvoiceDueDays")[1]["message"] == \
        "Parameter value is required"


def test_configuration_changes_are_for_roles_that_may_change_settings(client, db):
    key = make_credential(db, "Manager")
    assert call(client, key, "GetConfigurationValue", setting="CompanyName")[1]["result"] == "success"
    body = call(client, key, "SetConfigurationValue", setting="CompanyName", value="Evil")[1]
    assert body["message"] == 'Invalid Permissions: API action "setconfigurationvalue" is not allowed'


def test_stats_activity_log_and_details(client, db, admin_key):
    customer = factories.client()
    db.session.commit()
    invoice_id = call(client, admin_key, "CreateInvoice", userid=customer.id,
                      itemdescription1="Setup", itemamount1="120.00")[1]["invoiceid"]
    call(client, admin_key, "AddInvoicePayment", invoiceid=invoice_id, transid="TX-STATS",
         gateway="banktransfer")
    stats = call(client, admin_key, "GetStats")[1]
    assert stats["income_today"] == "$120.00"
    assert stats["income_alltime"] == "$120.00"
    assert stats["tickets_open"] == 0 and stats["orders_pending"] == 0

    log = call(client, admin_key, "GetActivityLog", userid=customer.id, description="paid")[1]
    assert log["totalresults"] >= 1
    assert all("paid" in entry["description"].lower() for entry in log["activity"]["entry"])
    assert log["activity"]["entry"][0]["username"].startswith("API: Admin integration")

    details = call(client, admin_key, "WhmcsDetails")[1]
    assert details["whmcs"]["version"].startswith("8.")


def test_get_invoices_overdue_status(client, db, admin_key):
    customer = factories.client()
    db.session.commit()
    old = call(client, admin_key, "CreateInvoice", userid=customer.id, itemdescription1="Old",
               itemamount1="5.00", date=(date.today() - timedelta(days=40)).isoformat(),
               duedate=(date.today() - timedelta(days=30)).isoformat())[1]["invoiceid"]
    call(client, admin_key, "CreateInvoice", userid=customer.id, itemdescription1="New",
         itemamount1="6.00")
    overdue = call(client, admin_key, "GetInvoices", status="Overdue")[1]
    assert [row["id"] for row in overdue["invoices"]["invoice"]] == [old]
