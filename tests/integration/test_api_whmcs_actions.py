"""The WHMCS-compatible API's newer actions over HTTP, called as a WHMCS client calls
them (form posts), with the JSON they answer and what they change; refusals change
nothing. (Authentication and the first actions: test_api_whmcs.py.)"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.billing import Invoice, Quote, Transaction
from app.models.catalog import Product, ProductGroup, Server
from app.models.clients import Client, Contact
from app.models.orders import CancellationRequest, Promotion, Service
from app.models.support import Announcement, SupportDepartment, Ticket, TicketNote
from app.models.system import ActivityLog, EmailMessage, EmailTemplate, TwoFactor
from tests import factories
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)
from tests.integration.test_api_whmcs import call, make_credential


def ok(client, key, action, **params) -> dict:
    status, body = call(client, key, action, **params)
    assert status == 200 and body["result"] == "success", body
    return body


def refused(client, key, action, **params) -> str:
    status, body = call(client, key, action, **params)
    assert body["result"] == "error", body
    return body["message"]


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# Clients

def test_update_contact_and_delete_client(client, db, key):
    customer = factories.client()
    db.session.commit()
    contact_id = ok(client, key, "AddContact", clientid=customer.id, firstname="Ann",
                    lastname="Lee", email="ann@example.test")["contactid"]
    assert ok(client, key, "UpdateContact", contactid=contact_id, lastname="Smith",
              phonenumber="555-0101", invoiceemails="1") == {"result": "success",
                                                               "contactid": contact_id}
    contact = db.session.get(Contact, contact_id)
    assert (contact.first_name, contact.last_name, contact.phone, contact.receives_invoices) == (
        "Ann", "Smith", "555-0101", True)
    assert refused(client, key, "UpdateContact", contactid=contact_id, email="nope") != ""
    assert refused(client, key, "UpdateContact", contactid=999999, lastname="X") == \
        "Contact ID Not Found"
    assert refused(client, key, "UpdateContact") == "Parameter contactid is required"

    # A client that did business is kept; one that did not is deleted with its contacts.
    busy = factories.client()
    db.session.commit()
    ok(client, key, "CreateInvoice", userid=busy.id, itemdescription1="Setup", itemamount1="5.00")
    message = refused(client, key, "DeleteClient", clientid=busy.id)
    assert message == f"Client #{busy.id} has invoices: close the client instead of deleting it"
    assert ok(client, key, "DeleteClient", clientid=customer.id)["clientid"] == customer.id
    db.session.expire_all()
    assert db.session.get(Client, customer.id) is None
    assert db.session.get(Contact, contact_id) is None
    assert db.session.get(Client, busy.id) is not None
    assert db.session.scalar(select(ActivityLog.id).where(ActivityLog.action == "client_deleted"))


def test_validate_login(client, db, key):
    factories.currency()
    db.session.commit()
    created = ok(client, key, "AddClient", firstname="Val", lastname="Id", email="val@example.test",
                 address1="1 Road", city="Town", state="ST", postcode="12345", country="US",
                 phonenumber="555-0100", password2="Right-Pass-1")
    body = ok(client, key, "ValidateLogin", email="val@example.test", password2="Right-Pass-1")
    assert body == {"result": "success", "userid": created["clientid"], "passwordhash": "",
                    "twoFactorEnabled": False}
    assert refused(client, key, "ValidateLogin", email="val@example.test",
                   password2="Wrong-Pass-1") == "Email or Password Invalid"
    # Checked as the sign-in form checks it: the wrong guess is counted on the login.
    user = client.application.appbuilder.sm.find_user(email="val@example.test")
    db.session.refresh(user)
    assert user.fail_login_count == 1
    db.session.get(Client, created["clientid"]).status = "Closed"
    db.session.commit()
    assert refused(client, key, "ValidateLogin", email="val@example.test",
                   password2="Right-Pass-1") == "Email or Password Invalid"
    assert refused(client, key, "ValidateLogin", email="nobody@example.test",
                   password2="Right-Pass-1") == "Email or Password Invalid"
    assert refused(client, key, "ValidateLogin", email="val@example.test") == \
        "Parameter password2 is required"


# Catalog

def test_add_product_with_prices_and_get_promotions(client, db, key):
    usd = factories.currency()
    group = ProductGroup(name="Shared", slug="shared")
    db.session.add(group)
    db.session.add(Promotion(code="SAVE10", type="Percentage", value=Decimal("10.00"),
                             recurring=True, max_uses=5, uses=2))
    db.session.commit()
    pid = ok(client, key, "AddProduct", gid=group.id, name="Starter Plan", type="hostingaccount",
             paytype="recurring", tax="1", **{f"pricing[{usd.id}][monthly]": "4.99",
                                             f"pricing[{usd.id}][msetupfee]": "1.50",
                                             f"pricing[{usd.id}][annually]": "49.00",
                                             f"pricing[{usd.id}][quarterly]": "-1"})["pid"]
    product = db.session.get(Product, pid)
    assert (product.name, product.type, product.taxed, product.slug) == (
        "Starter Plan", "hosting", True, "starter-plan")
    assert sorted((row.cycle, row.price, row.setup_fee) for row in product.pricing) == [
        ("Annually", Decimal("49.00"), Decimal("0.00")),
        ("Monthly", Decimal("4.99"), Decimal("1.50"))]
    listed = ok(client, key, "GetProducts", pid=str(pid))["products"]["product"][0]
    assert listed["pricing"]["USD"]["monthly"] == "4.99"
    assert listed["pricing"]["USD"]["quarterly"] == "-1.00"

    before = count(db, Product)
    assert refused(client, key, "AddProduct", gid=group.id, name="Again",
                   slug="starter-plan") == "The slug 'starter-plan' is taken"
    assert refused(client, key, "AddProduct", gid=group.id) == "Parameter name is required"
    assert refused(client, key, "AddProduct", gid=99999, name="X") == \
        "You must supply a valid Product Group ID"
    assert count(db, Product) == before

    promotions = ok(client, key, "GetPromotions")
    assert promotions["totalresults"] == 1
    row = promotions["promotions"]["promotion"][0]
    assert (row["code"], row["type"], row["value"], row["recurring"], row["maxuses"], row["uses"]) == (
        "SAVE10", "Percentage", "10.00", 1, 5, 2)
    assert ok(client, key, "GetPromotions", code="nope")["totalresults"] == 0


# Services

def test_update_client_product_cancel_request_and_module_commands(client, db, key):
    customer = factories.client()
    product = factories.product(price="10.00")
    pending = factories.service(customer, product, status="Pending",
                                next_due=date.today() + timedelta(days=20))
    server = Server(name="web1", hostname="web1.example.test", ip_address="192.0.2.5",
                    module="manual", password="do-not-leak")
    db.session.add(server)
    db.session.commit()

    new_due = (date.today() + timedelta(days=40)).isoformat()
    ok(client, key, "UpdateClientProduct", serviceid=pending.id, domain="new.example",
       nextduedate=new_due, recurringamount="12.50", serverid=server.id, notes="moved")
    db.session.refresh(pending)
    assert (pending.domain, pending.next_due_date.isoformat(), pending.next_invoice_date.isoformat(),
            pending.recurring_amount, pending.server_id) == (
        "new.example", new_due, new_due, Decimal("12.50"), server.id)
    assert refused(client, key, "UpdateClientProduct", serviceid=pending.id, status="Active") \
        .startswith("status: use the module commands")
    assert refused(client, key, "UpdateClientProduct", serviceid=pending.id,
                   recurringamount="-1.00") != ""

    ok(client, key, "ModuleCreate", accountid=pending.id)
    db.session.refresh(pending)
    assert pending.status == "Active"
    assert refused(client, key, "ModuleCreate", accountid=999999) == "Service ID Not Found"
    ok(client, key, "ModuleChangePackage", accountid=pending.id)
    ok(client, key, "ModuleChangePw", serviceid=pending.id, servicepassword="N3w-Passw0rd")
    db.session.refresh(pending)
    assert pending.password == "N3w-Passw0rd"
    assert refused(client, key, "ModuleChangePw", serviceid=pending.id, servicepassword="short") == \
        "The password is 8 to 64 characters"

    servers = ok(client, key, "GetServers")["servers"]
    assert servers == [{"id": server.id, "name": "web1", "hostname": "web1.example.test",
                        "ipaddress": "192.0.2.5", "active": True, "activeServices": 1,
                        "maxAccounts": 200, "percentUsed": 0, "module": "manual"}]

    body = ok(client, key, "AddCancelRequest", serviceid=pending.id, type="Immediate",
              reason="Moving away")
    request = db.session.get(CancellationRequest, body["id"])
    assert (request.service_id, request.type, request.reason) == (pending.id, "Immediate", "Moving away")
    assert refused(client, key, "AddCancelRequest", serviceid=pending.id, type="Immediate") == \
        f"a cancellation of service #{pending.id} has been requested already"
    assert refused(client, key, "AddCancelRequest", serviceid=pending.id, type="Later") == \
        "Parameter type must be Immediate or End of Billing Period"


def test_upgrade_product_calculates_then_invoices(client, db, key):
    customer = factories.client()
    small = factories.product(price="10.00")
    big = factories.product(price="20.00")
    service = factories.service(customer, small, amount="10.00",
                                next_due=date.today() + timedelta(days=15))
    db.session.commit()
    quote = ok(client, key, "UpgradeProduct", serviceid=service.id, type="product",
               newproductid=big.id, newproductbillingcycle="monthly", calconly="1")
    assert quote["oldproductid"] == small.id and quote["newproductid"] == big.id
    assert Decimal(quote["price"]) > 0 and len(quote["price"].split(".")[1]) == 2
    assert count(db, Invoice) == 0
    assert quote["upgradeinprogress"] is False and quote["newproductname"] == big.name
    assert refused(client, key, "UpgradeProduct", serviceid=service.id, type="product",
                   newproductid=big.id) == "Parameter paymentmethod is required"
    done = ok(client, key, "UpgradeProduct", serviceid=service.id, type="product",
              newproductid=big.id, newproductbillingcycle="monthly", paymentmethod="paypal")
    invoice = db.session.get(Invoice, done["invoiceid"])
    assert (invoice.total, invoice.payment_method) == (Decimal(quote["price"]), "paypal")
    again = ok(client, key, "UpgradeProduct", serviceid=service.id, type="product",
               newproductid=big.id, calconly="1")
    assert again["upgradeinprogress"] is True
    assert refused(client, key, "UpgradeProduct", serviceid=service.id, type="product",
                   newproductid=99999, calconly="1") == "Invalid New Product ID"


# Billing

def test_transactions_add_and_update(client, db, key):
    customer = factories.client()
    db.session.commit()
    invoice_id = ok(client, key, "CreateInvoice", userid=customer.id, itemdescription1="Hosting",
                    itemamount1="30.00")["invoiceid"]
    paid = ok(client, key, "AddTransaction", paymentmethod="banktransfer", invoiceid=invoice_id,
              amountin="30.00", transid="BANK-1", description="Wire")
    assert db.session.get(Invoice, invoice_id).status == "Paid"
    assert db.session.get(Transaction, paid["transactionid"]).description == "Wire"

    assert refused(client, key, "AddTransaction", paymentmethod="banktransfer", userid=customer.id,
                   amountin="15.00", rate="1.2") == \
        "rate cannot be set: exchange rates come from the currency settings"
    credit = ok(client, key, "AddTransaction", paymentmethod="banktransfer", userid=customer.id,
                amountin="15.00", transid="BANK-2", credit="1", description="Prepayment",
                rate="1.0000")
    db.session.refresh(customer)
    assert customer.credit_balance == Decimal("15.00")
    assert refused(client, key, "AddTransaction", paymentmethod="banktransfer", userid=customer.id,
                   amountin="15.00", transid="BANK-2") == \
        "Transaction ID BANK-2 of banktransfer was recorded already"
    assert refused(client, key, "AddTransaction", userid=customer.id, amountin="1.00") == \
        "Parameter paymentmethod is required"
    # The gateway's fee is the business's cost: the client is credited all it paid.
    ok(client, key, "AddTransaction", paymentmethod="banktransfer", userid=customer.id,
       amountin="10.00", fees="0.50", transid="BANK-3", credit="1")
    db.session.refresh(customer)
    assert customer.credit_balance == Decimal("25.00")
    assert refused(client, key, "AddTransaction", paymentmethod="banktransfer", userid=customer.id,
                   amountin="10.00", fees="10.01", transid="BANK-4", credit="1") == \
        "fees must be from 0 to the amount in 10.00 (got 10.01)"
    db.session.refresh(customer)
    assert customer.credit_balance == Decimal("25.00")
    # Money out (a refund sent by hand) may carry the gateway's fee for it.
    ok(client, key, "AddTransaction", paymentmethod="banktransfer", userid=customer.id,
       amountout="5.00", fees="0.30", transid="BANK-5")
    assert count(db, Transaction) == 4

    ok(client, key, "UpdateTransaction", transactionid=credit["transactionid"],
       description="Prepayment for 2027", transid="BANK-2b")
    row = db.session.get(Transaction, credit["transactionid"])
    db.session.refresh(row)
    assert (row.description, row.gateway_transaction_id, row.amount_in) == (
        "Prepayment for 2027", "BANK-2b", Decimal("15.00"))
    assert refused(client, key, "UpdateTransaction", transactionid=row.id, amountin="99.00") == \
        "amountin: the amounts and owner of a recorded transaction cannot change"
    listed = ok(client, key, "GetTransactions", clientid=customer.id)
    assert [t["amountin"] for t in listed["transactions"]["transaction"]] == ["30.00", "15.00", "10.00", "0.00"]


def test_payment_methods_and_pay_methods_never_show_tokens(client, db, key):
    from app.models.billing import PaymentGateway, PayMethod

    customer = factories.client()
    db.session.add(PaymentGateway(module="banktransfer", display_name="Bank Transfer", enabled=True))
    db.session.add(PaymentGateway(module="paypal", display_name="PayPal", enabled=False))
    db.session.add(PayMethod(client_id=customer.id, gateway="stripe", token="pm_secret_token",
                             kind="card", brand="Visa", last4="4242", expiry_month=3,
                             expiry_year=2030, is_default=True))
    db.session.commit()
    methods = ok(client, key, "GetPaymentMethods")
    assert methods["paymentmethods"]["paymentmethod"] == [
        {"module": "banktransfer", "displayname": "Bank Transfer"}]
    body = ok(client, key, "GetPayMethods", clientid=customer.id)
    assert "pm_secret_token" not in str(body)
    card = body["paymethods"][0]
    assert (card["card_last_four"], card["expiry_date"], card["card_type"], card["gateway_name"]) == (
        "4242", "03/30", "Visa", "stripe")

    invoice_id = ok(client, key, "CreateInvoice", userid=customer.id, itemdescription1="X",
                    itemamount1="5.00")["invoiceid"]
    # No enabled gateway stores cards here: the capture is refused and nothing is paid.
    assert refused(client, key, "CapturePayment", invoiceid=invoice_id).startswith(
        "Payment Attempt Failed")
    assert db.session.get(Invoice, invoice_id).status == "Unpaid"
    assert refused(client, key, "CapturePayment", invoiceid=invoice_id, cvv="123") == \
        "cvv is not accepted: card data never reaches this system"


def test_quotes_create_list_accept_once(client, db, key):
    customer = factories.client()
    db.session.commit()
    valid = (date.today() + timedelta(days=30)).isoformat()
    created = ok(client, key, "CreateQuote", userid=customer.id, subject="Web project",
                 stage="Delivered", validuntil=valid,
                 **{"lineitems[0][desc]": "Design", "lineitems[0][qty]": "3",
                    "lineitems[0][up]": "100.00", "lineitems[0][discount]": "10",
                    "lineitems[0][taxable]": "0",
                    "lineitems[1][desc]": "Hosting setup", "lineitems[1][qty]": "1",
                    "lineitems[1][up]": "25.50"})
    quote = db.session.get(Quote, created["quoteid"])
    assert (quote.subtotal, quote.total, quote.stage) == (Decimal("295.50"), Decimal("295.50"),
                                                          "Delivered")
    listed = ok(client, key, "GetQuotes", userid=customer.id)
    assert (listed["totalresults"], listed["startnumber"], listed["numreturned"]) == (1, 0, 1)
    row = listed["quotes"]["quote"][0]
    assert (row["subtotal"], row["total"], row["stage"], row["validuntil"]) == (
        "295.50", "295.50", "Delivered", valid)
    assert [(item["description"], item["quantity"], item["unitprice"], item["total"])
            for item in row["items"]["item"]] == [("Design", "3", "100.00", "270.00"),
                                                  ("Hosting setup", "1", "25.50", "25.50")]

    accepted = ok(client, key, "AcceptQuote", quoteid=quote.id)
    invoice = db.session.get(Invoice, accepted["invoiceid"])
    assert (invoice.client_id, invoice.total, invoice.status) == (customer.id, Decimal("295.50"),
                                                                  "Unpaid")
    assert [item.description for item in invoice.items] == [
        "3 x Design (10% discount)", "Hosting setup"]
    db.session.refresh(quote)
    assert (quote.stage, quote.invoice_id) == ("Accepted", invoice.id)
    assert refused(client, key, "AcceptQuote", quoteid=quote.id) == \
        f"Quote #{quote.id} has been accepted already"
    assert count(db, Invoice) == 1

    assert refused(client, key, "CreateQuote", userid=customer.id, stage="Draft",
                   validuntil=valid) == "Parameter subject is required"
    assert refused(client, key, "CreateQuote", userid=customer.id, subject="X", stage="Won",
                   validuntil=valid).startswith("Invalid stage 'Won'")
    assert count(db, Quote) == 1


# Support

def test_ticket_note_update_statuses_counts_delete(client, db, key, staff):
    customer = factories.client()
    sales = SupportDepartment(name="Sales", email="sales@example.test")
    billing = SupportDepartment(name="Billing", email="billing@example.test")
    db.session.add_all([sales, billing])
    db.session.commit()
    opened = ok(client, key, "OpenTicket", deptid=sales.id, clientid=customer.id,
                subject="Invoice question", message="Why two invoices?")
    username, _ = staff("Support")
    note = ok(client, key, "AddTicketNote", ticketid=opened["id"], message="Check the run log",
              adminusername=username)
    stored = db.session.get(TicketNote, note["noteid"])
    assert (stored.message, stored.admin_id is not None) == ("Check the run log", True)
    assert refused(client, key, "AddTicketNote", ticketid=opened["id"]) == "Message is required"

    ok(client, key, "UpdateTicket", ticketid=opened["id"], deptid=billing.id, priority="High",
       status="In Progress")
    ticket = db.session.get(Ticket, opened["id"])
    db.session.refresh(ticket)
    assert (ticket.department_id, ticket.priority, ticket.status) == (billing.id, "High", "In Progress")
    assert refused(client, key, "UpdateTicket", ticketid=opened["id"], status="Solved") \
        .startswith("Invalid status 'Solved'")
    assert refused(client, key, "UpdateTicket", ticketid=opened["id"], message="rewrite") \
        .startswith("message cannot be changed")

    statuses = ok(client, key, "GetSupportStatuses")
    by_title = {row["title"]: row["count"] for row in statuses["statuses"]["status"]}
    assert by_title["In Progress"] == 1 and by_title["Open"] == 0
    assert statuses["totalresults"] == 6
    counts = ok(client, key, "GetTicketCounts", includeCountsByStatus="1")
    assert (counts["allActive"], counts["awaitingReply"]) == (1, 0)
    assert counts["status"]["inprogress"] == {"title": "In Progress", "count": 1}

    ok(client, key, "DeleteTicket", ticketid=opened["id"])
    assert count(db, Ticket) == 0 and count(db, TicketNote) == 0
    assert refused(client, key, "DeleteTicket", ticketid=opened["id"]) == "Ticket ID not found"


def test_announcements(client, db, key):
    body = ok(client, key, "AddAnnouncement", date="2030-01-02 10:00:00", title="New DC",
              announcement="<p>We moved.</p>", published="1")
    row = db.session.get(Announcement, body["announcementid"])
    assert (row.title, row.published, row.published_at.isoformat(" ")) == (
        "New DC", True, "2030-01-02 10:00:00")
    listed = ok(client, key, "GetAnnouncements")
    assert (listed["totalresults"], listed["numreturned"]) == (1, 1)
    assert listed["announcements"]["announcement"][0]["title"] == "New DC"
    assert refused(client, key, "AddAnnouncement", title="X", announcement="Y") == \
        "Parameter date is required"
    assert count(db, Announcement) == 1


# System

def test_log_activity_emails_templates_admin_users_automation_log(client, db, key, staff):
    customer = factories.client()
    db.session.add(EmailTemplate(name="Client Notice", type="general", subject="Hi {{ client_first_name }}",
                                 body_html="<p>Hello {{ client_name }}</p>"))
    db.session.commit()
    ok(client, key, "LogActivity", clientid=customer.id, description="Synced with CRM")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.description == "Synced with CRM"))
    assert entry.client_id == customer.id and entry.actor_name.startswith("API: ")
    assert refused(client, key, "LogActivity") == "Parameter description is required"

    ok(client, key, "SendEmail", messagename="Client Notice", id=customer.id)
    ok(client, key, "SendEmail", customtype="general", id=customer.id, customsubject="Custom",
       custommessage="<b>{{ client_first_name }}</b>")
    emails = ok(client, key, "GetEmails", clientid=customer.id)
    assert emails["totalresults"] == 2
    assert sorted(email["subject"] for email in emails["emails"]["email"]) == [
        "Custom", f"Hi {customer.first_name}"]
    assert refused(client, key, "SendEmail", messagename="Nope", id=customer.id) == \
        "Email Template not found"

    username, _ = staff("Admin")
    before = count(db, EmailMessage)
    ok(client, key, "SendAdminEmail", customsubject="Disk full", custommessage="Server web1")
    assert count(db, EmailMessage) == before + 1
    assert refused(client, key, "SendAdminEmail", type="system") == \
        "A messagename, or a customsubject and custommessage, are required"

    templates = ok(client, key, "GetEmailTemplates", type="general")
    assert [row["name"] for row in templates["emailtemplates"]["emailtemplate"]] == ["Client Notice"]

    from app.auth import twofactor

    twofactor.start_enrolment(client.application.appbuilder.sm.find_user(username=username))
    db.session.scalar(select(TwoFactor)).confirmed_at = datetime(2026, 1, 1)
    db.session.commit()
    admins = ok(client, key, "GetAdminUsers")
    assert username in [user["username"] for user in admins["admin_users"]]
    assert {user["username"]: user["twoFactorAuthModule"]
            for user in admins["admin_users"]}[username] == "totp"
    assert all("password" not in user for user in admins["admin_users"])

    automation = ok(client, key, "GetAutomationLog", startdate="2030-01-01", enddate="2030-01-02")
    assert automation["statistics"] == {} and automation["startdate"] == "2030-01-01"


def test_new_actions_follow_role_rules(client, db):
    customer = factories.client()
    db.session.commit()
    support = make_credential(db, "Support")
    status, body = call(client, support, "AddTransaction", paymentmethod="banktransfer",
                        userid=customer.id, amountin="10.00")
    assert status == 403 and body["message"] == \
        'Invalid Permissions: API action "addtransaction" is not allowed'
    status, body = call(client, support, "GetAdminUsers")
    assert status == 403
    manager = make_credential(db, "Manager")
    status, body = call(client, manager, "CreateQuote", userid=customer.id, subject="X",
                        stage="Draft", validuntil="2030-01-01")
    assert status == 403
    assert count(db, Transaction) == 0 and count(db, Quote) == 0


# Refusals of every new action that changes something: nothing changes.

WRITES = [
    ("DeleteClient", {"clientid": "{client}"}),
    ("UpdateContact", {"contactid": "{contact}", "lastname": "Changed"}),
    ("AddProduct", {"gid": "{group}", "name": "Sneaky"}),
    ("UpdateClientProduct", {"serviceid": "{service}", "domain": "evil.example"}),
    ("UpgradeProduct", {"serviceid": "{service}", "type": "product", "newproductid": "{product}",
                        "paymentmethod": "paypal"}),
    ("AddCancelRequest", {"serviceid": "{service}", "type": "Immediate"}),
    ("ModuleCreate", {"accountid": "{service}"}),
    ("ModuleChangePackage", {"accountid": "{service}"}),
    ("ModuleChangePw", {"serviceid": "{service}", "servicepassword": "Another-Pass-1"}),
    ("AddTransaction", {"paymentmethod": "banktransfer", "userid": "{client}", "amountin": "9.00"}),
    ("CreateQuote", {"userid": "{client}", "subject": "X", "stage": "Draft",
                     "validuntil": "2031-01-01"}),
    ("AddTicketNote", {"ticketid": "{ticket}", "message": "note"}),
    ("UpdateTicket", {"ticketid": "{ticket}", "status": "Closed"}),
    ("DeleteTicket", {"ticketid": "{ticket}"}),
    ("AddAnnouncement", {"date": "2030-01-01 00:00:00", "title": "T", "announcement": "A"}),
    ("LogActivity", {"description": "sneaky"}),
    ("SendEmail", {"customtype": "general", "id": "{client}", "customsubject": "S",
                   "custommessage": "M"}),
]

MISSING = [
    ("DeleteClient", {}, "Parameter clientid is required"),
    ("AddProduct", {"name": "X"}, "Parameter gid is required"),
    ("UpdateClientProduct", {}, "Parameter serviceid is required"),
    ("UpgradeProduct", {"type": "product"}, "Parameter serviceid is required"),
    ("AddCancelRequest", {}, "Parameter serviceid is required"),
    ("ModuleChangePackage", {}, "Parameter accountid is required"),
    ("ModuleChangePw", {}, "Parameter serviceid is required"),
    ("UpdateTransaction", {}, "Parameter transactionid is required"),
    ("CreateQuote", {"subject": "X", "stage": "Draft", "validuntil": "2031-01-01"},
     "Parameter userid is required"),
    ("CreateQuote", {"subject": "X", "stage": "Draft"}, "Parameter validuntil is required"),
    ("AcceptQuote", {}, "Parameter quoteid is required"),
    ("GetPayMethods", {}, "Parameter clientid is required"),
    ("CapturePayment", {}, "Parameter invoiceid is required"),
    ("UpdateTicket", {}, "Parameter ticketid is required"),
    ("DeleteTicket", {}, "Parameter ticketid is required"),
    ("AddTicketNote", {"message": "x"}, "Ticket ID Required"),
    ("AddAnnouncement", {"date": "2030-01-01"}, "Parameter title is required"),
    ("SendEmail", {"messagename": "X"}, "Parameter id is required"),
    ("GetEmails", {}, "Parameter clientid is required"),
]


@pytest.fixture
def records(db):
    customer = factories.client()
    product = factories.product()
    service = factories.service(customer, product, status="Pending")
    contact = Contact(client_id=customer.id, first_name="C", last_name="D", email="cd@example.test")
    group = ProductGroup(name="G", slug="g")
    department = SupportDepartment(name="S", email="s@example.test")
    db.session.add_all([contact, group, department])
    db.session.flush()
    from app.support.tickets import client_author, open_ticket
    ticket = open_ticket(department.id, "Subject", "Message", client_author(customer.id))
    db.session.commit()
    return {"client": customer.id, "product": product.id, "service": service.id,
            "contact": contact.id, "group": group.id, "ticket": ticket.id}


def snapshot(db) -> tuple:
    models = (Client, Contact, Product, Service, Transaction, Quote, Ticket, TicketNote,
              Announcement, ActivityLog, EmailMessage, CancellationRequest, Invoice)
    service = db.session.scalar(select(Service))
    return tuple(count(db, model) for model in models) + (service.status, service.domain)


def filled(params: dict, records: dict) -> dict:
    return {name: value.format(**records) for name, value in params.items()}


@pytest.mark.parametrize("action,params", WRITES, ids=[name for name, _ in WRITES])
def test_refused_calls_change_nothing(client, app, db, records, action, params):
    app.appbuilder.sm.add_role("Auditor")  # a role made in the admin, with no permission
    db.session.commit()
    params = filled(params, records)
    admin = make_credential(db, "Admin", ips=("192.0.2.1",))
    auditor = make_credential(db, "Auditor")
    before = snapshot(db)

    status, body = call(client, {**admin, "secret": "wrong"}, action, ip="192.0.2.1", **params)
    assert (status, body) == (403, {"result": "error", "message": "Authentication Failed"})
    status, body = call(client, admin, action, ip="198.51.100.7", **params)
    assert (status, body) == (403, {"result": "error", "message": "Invalid IP 198.51.100.7"})
    status, body = call(client, auditor, action, **params)
    assert status == 403 and body["message"] == \
        f'Invalid Permissions: API action "{action.lower()}" is not allowed'

    db.session.expire_all()
    assert snapshot(db) == before


@pytest.mark.parametrize("action,params,message", MISSING,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(MISSING)])
def test_missing_parameters_are_named_and_change_nothing(client, db, key, records, action,
                                                         params, message):
    before = snapshot(db)
    status, body = call(client, key, action, **params)
    assert (status, body) == (200, {"result": "error", "message": message})
    db.session.expire_all()
    assert snapshot(db) == before


def test_xml_answers_of_a_new_action(client, db, key, records):
    from xml.etree import ElementTree

    response = client.post("/includes/api.php", data={**key, "action": "GetSupportStatuses",
                                                      "responsetype": "xml"})
    root = ElementTree.fromstring(response.data)
    assert root.findtext("result") == "success"
    titles = [node.findtext("title") for node in root.findall("statuses/status")]
    assert titles[:2] == ["Open", "Answered"]


def test_capture_payment_charges_the_stored_card_once(client, db, key, fake_stripe):
    """CapturePayment through the real Stripe module against the fake Stripe server."""
    from tests.integration.test_gateway_stripe_charges import save_card

    add_stripe_gateway(fake_stripe)
    customer = factories.client()
    save_card(db, fake_stripe, customer)
    db.session.commit()
    invoice_id = ok(client, key, "CreateInvoice", userid=customer.id, itemdescription1="Hosting",
                    itemamount1="40.00")["invoiceid"]
    assert ok(client, key, "CapturePayment", invoiceid=invoice_id) == {"result": "success"}
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice_id)
    assert (invoice.status, invoice.amount_paid) == ("Paid", Decimal("40.00"))
    payment = db.session.scalars(select(Transaction)).one()
    assert (payment.gateway, payment.amount_in) == ("stripe", Decimal("40.00"))
    assert refused(client, key, "CapturePayment", invoiceid=invoice_id) == "Invoice Not in Unpaid Status"
    assert fake_stripe.count("POST", r"/v1/payment_intents/pi_\w+/confirm") == 1
