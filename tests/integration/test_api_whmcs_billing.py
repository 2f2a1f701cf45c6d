"""The WHMCS-compatible API's billing actions over HTTP: every money change goes
through the billing engine, bad input changes nothing."""
from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.api.credentials import create_credential
from app.models.billing import BillableItem, CreditEntry, Invoice, InvoiceItem, Transaction
from app.models.clients import Client
from app.models.system import ActivityLog
from tests import factories

_names = itertools.count(1)


def make_credential(db, role: str = "Admin") -> dict:
    created = create_credential(f"{role} billing {next(_names)}", role, ["127.0.0.1"])
    db.session.commit()
    return {"identifier": created.credential.identifier, "secret": created.secret}


def call(client, credential: dict, action: str, **params) -> dict:
    response = client.post("/includes/api.php",
                           data={**credential, "action": action, "responsetype": "json", **params})
    return response.get_json()


@pytest.fixture
def key(db):
    return make_credential(db, "Finance")


@pytest.fixture
def customer(db):
    row = factories.client()
    db.session.commit()
    return row


def invoice_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(Invoice))


def test_the_story_add_client_create_invoice_pay_it_and_read_it_paid(client, db, key):
    factories.currency()
    db.session.commit()
    added = call(client, key, "AddClient", firstname="Linus", lastname="Torvalds",
                 email="linus@example.test", address1="1 Kernel Rd", city="Portland", state="OR",
                 postcode="97201", country="US", phonenumber="555-0199", password2="Penguin-2024")
    client_id = added["clientid"]

    created = call(client, key, "CreateInvoice", userid=client_id, date="2030-01-01",
                   duedate="2030-01-08", paymentmethod="banktransfer", notes="Thanks!",
                   itemdescription1="Sample Invoice Item", itemamount1="15.95", itemtaxed1="0",
                   itemdescription2="Sample Second Invoice Item", itemamount2="1.00", itemtaxed2="1")
    assert created["result"] == "success" and created["status"] == "Unpaid"
    invoice_id = created["invoiceid"]

    unpaid = call(client, key, "GetInvoice", invoiceid=invoice_id)
    assert (unpaid["status"], unpaid["total"], unpaid["balance"], unpaid["subtotal"]) == (
        "Unpaid", "16.95", "16.95", "16.95")
    assert unpaid["datepaid"] == "0000-00-00 00:00:00"

    partly = call(client, key, "AddInvoicePayment", invoiceid=invoice_id, transid="TX-1001",
                  gateway="banktransfer", amount="10.00", date="2030-01-02 10:00:00")
    assert partly == {"result": "success"}
    assert call(client, key, "GetInvoice", invoiceid=invoice_id)["balance"] == "6.95"
    assert call(client, key, "AddInvoicePayment", invoiceid=invoice_id, transid="TX-1002",
                gateway="banktransfer") == {"result": "success"}  # no amount: the balance

    paid = call(client, key, "GetInvoice", invoiceid=invoice_id)
    assert paid["result"] == "success"
    assert paid["status"] == "Paid"
    assert (paid["invoiceid"], paid["userid"], paid["date"], paid["duedate"]) == (
        invoice_id, client_id, "2030-01-01", "2030-01-08")
    assert paid["invoicenum"] and paid["datepaid"] != "0000-00-00 00:00:00"
    assert (paid["total"], paid["balance"], paid["credit"], paid["tax"]) == ("16.95", "0.00", "0.00", "0.00")
    assert paid["paymentmethod"] == "banktransfer" and paid["notes"] == "Thanks!"
    assert [(item["description"], item["amount"], item["taxed"]) for item in paid["items"]["item"]] == [
        ("Sample Invoice Item", "15.95", 0), ("Sample Second Invoice Item", "1.00", 1)]
    assert [(row["transid"], row["amountin"], row["gateway"]) for row in
            paid["transactions"]["transaction"]] == [
        ("TX-1001", "10.00", "banktransfer"), ("TX-1002", "6.95", "banktransfer")]

    listed = call(client, key, "GetInvoices", userid=client_id, status="Paid")
    assert listed["totalresults"] == 1 and listed["numreturned"] == 1
    row = listed["invoices"]["invoice"][0]
    assert (row["id"], row["total"], row["firstname"], row["currencycode"]) == (
        invoice_id, "16.95", "Linus", "USD")
    entries = db.session.scalars(select(ActivityLog.action).where(ActivityLog.object_type == "Invoice",
                                                                  ActivityLog.object_id == invoice_id))
    assert {"invoice_created", "payment_applied", "invoice_paid"} <= set(entries)


@pytest.mark.parametrize("params, message", [
    ({"userid": "999"}, "Client ID Not Found"),
    ({"draft": "1", "sendinvoice": "1"},
     "Cannot create and send a draft invoice in a single API request. Please create and send separately."),
    ({"itemdescription1": "Hosting"}, "itemamount1 is required with itemdescription1"),
    ({"itemamount1": "5.00"}, "itemdescription1 is required with itemamount1"),
    ({"itemdescription1": "Hosting", "itemamount1": "5.001"},
     "Parameter itemamount1: '5.001' has more than 2 decimal places"),
    ({"itemdescription1": "Hosting", "itemamount1": "ten"},
     "Parameter itemamount1: 'ten' is not an amount (expected e.g. 12.50)"),
    ({"itemdescription1": "Hosting", "itemamount1": "5.00", "taxrate": "10"},
     "taxrate: taxes follow the tax rules and cannot be overridden"),
    ({"itemdescription1": "Hosting", "itemamount1": "5.00", "status": "Paid"},
     "Invalid status Paid: a new invoice is Unpaid or Draft (a payment makes it Paid)"),
    ({"itemdescription1": "Refund", "itemamount1": "-5.00"},
     "an invoice total cannot be negative (the lines add up to -5.00)"),
    ({}, "an invoice needs at least one line (or create it as a Draft)"),
])
def test_create_invoice_refuses_bad_input_and_creates_nothing(client, db, key, customer, params, message):
    body = call(client, key, "CreateInvoice", **{"userid": customer.id, **params})
    assert body == {"result": "error", "message": message}
    assert invoice_count(db) == 0


def test_create_a_draft_then_publish_it(client, db, key, customer):
    draft = call(client, key, "CreateInvoice", userid=customer.id, draft="1")
    assert draft["status"] == "Draft"
    invoice = db.session.get(Invoice, draft["invoiceid"])
    assert invoice.number is None
    updated = call(client, key, "UpdateInvoice", invoiceid=invoice.id,
                   **{"newitemdescription[0]": "Consulting", "newitemamount[0]": "80.00",
                      "newitemtaxed[0]": "0", "publish": "1"})
    assert updated == {"result": "success", "invoiceid": invoice.id}
    db.session.refresh(invoice)
    assert (invoice.status, invoice.total) == ("Unpaid", Decimal("80.00"))
    assert invoice.number
    again = call(client, key, "UpdateInvoice", invoiceid=invoice.id, publish="1")
    assert again["message"] == "Invoice must be in Draft status to be published"


def test_update_invoice_changes_lines_through_the_engine(client, db, key, customer):
    invoice_id = call(client, key, "CreateInvoice", userid=customer.id,
                      itemdescription1="Domain", itemamount1="12.00",
                      itemdescription2="Hosting", itemamount2="10.00")["invoiceid"]
    first, second = db.session.scalars(select(InvoiceItem.id).where(InvoiceItem.invoice_id == invoice_id)
                                       .order_by(InvoiceItem.id)).all()
    body = call(client, key, "UpdateInvoice", invoiceid=invoice_id, notes="Revised",
                **{f"itemdescription[{second}]": "Hosting (discounted)", f"itemamount[{second}]": "8.00",
                   f"itemtaxed[{second}]": "0", "deletelineids[0]": str(first),
                   "newitemdescription[0]": "SSL", "newitemamount[0]": "5.50", "newitemtaxed[0]": "0"})
    assert body["result"] == "success"
    shown = call(client, key, "GetInvoice", invoiceid=invoice_id)
    assert sorted((item["description"], item["amount"]) for item in shown["items"]["item"]) == [
        ("Hosting (discounted)", "8.00"), ("SSL", "5.50")]
    assert (shown["total"], shown["notes"]) == ("13.50", "Revised")

    missing = call(client, key, "UpdateInvoice", invoiceid=invoice_id,
                   **{f"itemdescription[{second}]": "x"})
    assert missing["message"] == ("Missing Variables: itemdescription, itemamount and itemtaxed are "
                                  "required for each item being changed")
    assert call(client, key, "UpdateInvoice", invoiceid=invoice_id, credit="5.00")["message"] == \
        "credit: use ApplyCredit or AddInvoicePayment; taxes follow the tax rules"
    assert call(client, key, "UpdateInvoice", invoiceid=invoice_id, status="Paid")["message"] == \
        "Invalid status Paid: record the payment with AddInvoicePayment"
    assert call(client, key, "GetInvoice", invoiceid=invoice_id)["total"] == "13.50"

    assert call(client, key, "UpdateInvoice", invoiceid=invoice_id, status="Cancelled")["result"] == "success"
    cancelled = db.session.get(Invoice, invoice_id)
    db.session.refresh(cancelled)
    assert cancelled.status == "Cancelled" and cancelled.number  # it keeps its number
    refused = call(client, key, "AddInvoicePayment", invoiceid=invoice_id, transid="T-9",
                   gateway="banktransfer", amount="1.00")
    assert refused["message"] == "It is not possible to add a payment to an invoice that is Cancelled"
    assert call(client, key, "UpdateInvoice", invoiceid=invoice_id, status="Unpaid")["result"] == "success"
    db.session.refresh(cancelled)
    assert cancelled.status == "Unpaid"


def test_a_paid_invoice_cannot_change(client, db, key, customer):
    invoice_id = call(client, key, "CreateInvoice", userid=customer.id, itemdescription1="Hosting",
                      itemamount1="10.00")["invoiceid"]
    call(client, key, "AddInvoicePayment", invoiceid=invoice_id, transid="T-1", gateway="banktransfer")
    body = call(client, key, "UpdateInvoice", invoiceid=invoice_id,
                **{"newitemdescription[0]": "Extra", "newitemamount[0]": "1.00"})
    assert body["result"] == "error" and "only Draft and Unpaid invoices can be changed" in body["message"]
    assert call(client, key, "GetInvoice", invoiceid=invoice_id)["total"] == "10.00"


def test_a_repeated_transaction_id_is_applied_once(client, db, key, customer):
    invoice_id = call(client, key, "CreateInvoice", userid=customer.id, itemdescription1="Hosting",
                      itemamount1="30.00")["invoiceid"]
    assert call(client, key, "AddInvoicePayment", invoiceid=invoice_id, transid="PP-77",
                gateway="paypal", amount="10.00")["result"] == "success"
    again = call(client, key, "AddInvoicePayment", invoiceid=invoice_id, transid="PP-77",
                 gateway="paypal", amount="10.00")
    assert again["result"] == "error" and "was applied already" in again["message"]
    assert db.session.scalar(select(func.count()).select_from(Transaction)) == 1
    assert call(client, key, "GetInvoice", invoiceid=invoice_id)["balance"] == "20.00"
    assert call(client, key, "AddInvoicePayment", invoiceid="424242", transid="X",
                gateway="paypal")["message"] == "Invoice ID Not Found"
    assert call(client, key, "AddInvoicePayment", invoiceid=invoice_id,
                gateway="paypal")["message"] == "Parameter transid is required"
    assert call(client, key, "AddInvoicePayment", invoiceid=invoice_id, transid="N-1", gateway="paypal",
                amount="-3.00")["message"] == "Parameter amount: '-3.00' must not be negative"


def test_support_cannot_take_payments(client, db, customer):
    finance, support = make_credential(db, "Finance"), make_credential(db, "Support")
    invoice_id = call(client, finance, "CreateInvoice", userid=customer.id, itemdescription1="Hosting",
                      itemamount1="10.00")["invoiceid"]
    body = call(client, support, "AddInvoicePayment", invoiceid=invoice_id, transid="S-1",
                gateway="banktransfer")
    assert body["message"] == 'Invalid Permissions: API action "addinvoicepayment" is not allowed'
    assert call(client, support, "GetTransactions", invoiceid=invoice_id)["message"] == \
        'Invalid Permissions: API action "gettransactions" is not allowed'
    assert call(client, finance, "GetInvoice", invoiceid=invoice_id)["status"] == "Unpaid"


def test_credit_add_list_and_apply(client, db, key, customer):
    assert call(client, key, "AddCredit", clientid=customer.id, description="Goodwill",
                amount="25.00") == {"result": "success", "newbalance": "25.00"}
    assert call(client, key, "AddCredit", clientid=customer.id, description="Oops",
                amount="5.00", type="remove") == {"result": "success", "newbalance": "20.00"}
    assert call(client, key, "AddCredit", clientid=customer.id, description="x")["message"] == \
        "No Amount Provided"
    too_much = call(client, key, "AddCredit", clientid=customer.id, description="x", amount="50.00",
                    type="remove")
    assert too_much["result"] == "error" and "less than the" in too_much["message"]

    invoice_id = call(client, key, "CreateInvoice", userid=customer.id, itemdescription1="Hosting",
                      itemamount1="30.00", autoapplycredit="0")["invoiceid"]
    assert call(client, key, "ApplyCredit", invoiceid=invoice_id, amount="25.00")["message"] == \
        "Amount exceeds customer credit balance"
    assert call(client, key, "ApplyCredit", invoiceid=invoice_id, amount="12.50") == {
        "result": "success", "invoiceid": invoice_id, "amount": "12.50", "invoicepaid": "false"}
    shown = call(client, key, "GetInvoice", invoiceid=invoice_id)
    assert (shown["credit"], shown["balance"]) == ("12.50", "17.50")

    credits = call(client, key, "GetCredits", clientid=customer.id)
    assert credits["totalresults"] == 3 and credits["clientid"] == customer.id
    assert [(row["description"], row["amount"]) for row in credits["credits"]["credit"]] == [
        ("Goodwill", "25.00"), ("Oops", "-5.00"),
        (f"Credit applied to invoice {shown['invoicenum']}", "-12.50")]
    db.session.refresh(customer)
    assert customer.credit_balance == Decimal("7.50")

    call(client, key, "AddCredit", clientid=customer.id, description="Top up", amount="10.00")
    full = call(client, key, "ApplyCredit", invoiceid=invoice_id, amount="full")
    assert full == {"result": "success", "invoiceid": invoice_id, "amount": "17.50", "invoicepaid": "true"}
    assert call(client, key, "GetInvoice", invoiceid=invoice_id)["status"] == "Paid"
    assert call(client, key, "ApplyCredit", invoiceid=invoice_id)["message"] == "Invoice Not in Unpaid Status"


def test_get_transactions_filters(client, db, key, customer):
    other = factories.client()
    db.session.commit()
    mine = call(client, key, "CreateInvoice", userid=customer.id, itemdescription1="A",
                itemamount1="10.00")["invoiceid"]
    theirs = call(client, key, "CreateInvoice", userid=other.id, itemdescription1="B",
                  itemamount1="20.00")["invoiceid"]
    call(client, key, "AddInvoicePayment", invoiceid=mine, transid="MINE-1", gateway="stripe")
    call(client, key, "AddInvoicePayment", invoiceid=theirs, transid="THEIRS-1", gateway="stripe",
         fees="0.88")
    everything = call(client, key, "GetTransactions")
    assert everything["totalresults"] == 2
    by_client = call(client, key, "GetTransactions", clientid=other.id)
    assert [(row["transid"], row["amountin"], row["fees"], row["invoiceid"]) for row in
            by_client["transactions"]["transaction"]] == [("THEIRS-1", "20.00", "0.88", theirs)]
    assert call(client, key, "GetTransactions", transid="MINE-1")["transactions"]["transaction"][0][
        "userid"] == customer.id


def test_billable_items(client, db, key, customer):
    body = call(client, key, "AddBillableItem", clientid=customer.id, description="Support hours",
                amount="90.00", hours="1.5", invoiceaction="recur", recur="1", recurcycle="Months",
                recurfor="12", duedate="2030-02-01")
    item = db.session.get(BillableItem, body["billableid"])
    assert (item.amount, item.invoice_action, item.recur_every, item.recur_unit, item.recur_for,
            item.due_date, item.hours) == (Decimal("90.00"), "recurring", 1, "months", 12,
                                           date(2030, 2, 1), Decimal("1.5000"))
    for params, message in [
        ({"invoiceaction": "sometimes"}, "Invalid Invoice Action"),
        ({"invoiceaction": "recur", "duedate": "2030-01-01"}, "Recurring must have a unit, cycle and limit"),
        ({"invoiceaction": "duedate"}, "Due date is required"),
        ({"description": ""}, "You must provide a description"),
    ]:
        answer = call(client, key, "AddBillableItem", **{"clientid": customer.id,
                                                           "description": "Work", "amount": "1.00",
                                                           **params})
        assert answer == {"result": "error", "message": message}
    assert db.session.scalar(select(func.count()).select_from(BillableItem)) == 1


def test_gen_invoices_for_one_client(client, db, key, customer):
    today = date.today()
    service = factories.service(customer, factories.product(price="15.00"), amount="15.00",
                                next_due=today + timedelta(days=3))
    db.session.commit()
    body = call(client, key, "GenInvoices", clientid=customer.id)
    assert body["result"] == "success" and body["numcreated"] == 1
    invoice = db.session.get(Invoice, body["latestinvoiceid"])
    assert invoice.client_id == customer.id and invoice.total == Decimal("15.00")
    assert [item.rel_id for item in invoice.items] == [service.id]
    assert call(client, key, "GenInvoices", clientid=customer.id)["numcreated"] == 0
    assert call(client, key, "GenInvoices", **{"serviceids[0]": str(service.id)})["result"] == "error"
    assert call(client, key, "GenInvoices", clientid="9999")["message"] == "Client ID Not Found"


def test_money_moves_are_logged_as_api_calls(client, db, key, customer):
    call(client, key, "AddCredit", clientid=customer.id, description="Goodwill", amount="3.00")
    entry = db.session.scalar(select(CreditEntry).where(CreditEntry.client_id == customer.id))
    assert entry.amount == Decimal("3.00")
    log = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "credit_added"))
    assert log.actor_type == "api" and log.actor_name.startswith("API: Finance billing")
    assert db.session.get(Client, customer.id).credit_balance == Decimal("3.00")
