"""The order actions of the WHMCS-compatible API over HTTP, and the WHMCS story:
AddClient, AddOrder (a product with options and an addon, and a domain), AcceptOrder,
GenInvoices, AddInvoicePayment, GetClientsProducts."""
from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.billing import Invoice
from app.models.domains import Domain
from app.models.orders import Order, Service, ServiceAddon
from app.models.support import Ticket
from tests import factories, orders_catalog
from tests.integration.test_api_whmcs import NEW_CLIENT, call, make_credential

D = Decimal


@pytest.fixture
def shop(db):
    shop = orders_catalog.build()
    db.session.commit()
    return shop


def serialized(options: dict[int, int]) -> str:
    body = "".join(f"i:{k};i:{v};" for k, v in options.items())
    return base64.b64encode(f"a:{len(options)}:{{{body}}}".encode()).decode()


def test_whmcs_order_story(client, db, key, shop):
    status, body = call(client, key, "AddClient", **NEW_CLIENT)
    assert body["result"] == "success", body
    client_id = body["clientid"]

    status, body = call(client, key, "AddOrder", clientid=client_id, paymentmethod="banktransfer",
                        **{"pid[0]": shop.product.id, "billingcycle[0]": "monthly",
                           "domain[0]": "story.com", "domaintype[0]": "register", "regperiod[0]": "1",
                           "configoptions[0]": serialized({shop.size.id: shop.large.id, shop.ips.id: 1}),
                           "addons[0]": str(shop.ssl.id), "clientip": "203.0.113.9"})
    assert body["result"] == "success", body
    service = db.session.scalar(select(Service))
    addon = db.session.scalar(select(ServiceAddon))
    domain = db.session.scalar(select(Domain))
    assert (body["serviceids"], body["productids"], body["addonids"], body["domainids"]) == (
        str(service.id), str(service.id), str(addon.id), str(domain.id))
    order = db.session.get(Order, body["orderid"])
    invoice = db.session.get(Invoice, body["invoiceid"])
    # 10 + 3 (Large) + 2 (one IP) = 15.00, setup 5 + 1 = 6.00, addon 4.00, domain 12.00
    assert (invoice.total, order.amount, order.ip_address) == (D("37.00"), D("37.00"), "203.0.113.9")
    assert service.recurring_amount == D("15.00") and service.status == "Pending"

    status, body = call(client, key, "GetOrders", id=order.id)
    row = body["orders"]["order"][0]
    assert (body["totalresults"], row["ordernum"], row["status"], row["amount"], row["paymentstatus"]) == (
        1, order.order_number, "Pending", "37.00", "Unpaid")
    assert [(i["type"], i["relid"], i["amount"]) for i in row["lineitems"]["lineitem"]] == [
        ("product", service.id, "21.00"), ("addon", addon.id, "4.00"), ("domain", domain.id, "12.00")]

    status, body = call(client, key, "AcceptOrder", orderid=order.id, serverid=99999)
    assert body == {"result": "error", "message": "Server ID Not Found"}
    status, body = call(client, key, "AcceptOrder", orderid=order.id, serviceusername="story1",
                        servicepassword="Pa55-word!")
    assert body == {"result": "success"}
    db.session.expire_all()
    service = db.session.get(Service, service.id)
    assert (service.username, service.password) == ("story1", "Pa55-word!")
    status, body = call(client, key, "GenInvoices", clientid=client_id)
    assert body["result"] == "success" and body["numcreated"] == 0   # nothing due yet
    status, body = call(client, key, "AddInvoicePayment", invoiceid=invoice.id, transid="BANK-1",
                        gateway="banktransfer")
    assert body == {"result": "success"}
    status, body = call(client, key, "GetClientsProducts", clientid=client_id)
    product = body["products"]["product"][0]
    assert (product["id"], product["status"], product["domain"]) == (service.id, "Active", "story.com")
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "Paid"
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1   # set up once

    status, body = call(client, key, "GetOrderStatuses")
    assert {s["title"]: s["count"] for s in body["statuses"]["status"]} == {
        "Pending": 0, "Active": 1, "Fraud": 0, "Cancelled": 0}


def test_add_order_refusals_change_nothing(client, db, key, shop):
    customer = factories.client()
    db.session.commit()
    cases = [
        ({"pid[0]": 99999, "billingcycle[0]": "monthly"}, "That product is not available."),
        ({"pid[0]": shop.product.id, "billingcycle[0]": "weekly", "domain[0]": "a.com"}, "'weekly' is not a billing cycle."),
        ({"domain[0]": "a.com", "domaintype[0]": "move"}, "Parameter domaintype[0] must be register or transfer"),
        ({"pid[0]": shop.product.id, "billingcycle[0]": "monthly", "domain[0]": "a.com",
          "configoptions[0]": "not base64!"}, "configoptions[0] is not base64"),
        ({}, "No items added to cart so order cannot proceed"),
        ({"domain[0]": "b.com", "domaintype[0]": "register", "promocode": "NOPE"},
         "The promotion code NOPE is not valid."),
    ]
    for params, message in cases:
        status, body = call(client, key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer", **params)
        assert body == {"result": "error", "message": message}
    status, body = call(client, key, "AddOrder", clientid=99999, paymentmethod="banktransfer",
                        **{"domain[0]": "c.com", "domaintype[0]": "register"})
    assert body["message"] == "Client ID Not Found"
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_pending_cancel_fraud_delete_over_the_api(client, db, key, shop):
    customer = factories.client()
    db.session.commit()
    status, body = call(client, key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer",
                        noemail="1", nameserver1="ns1.host.example", nameserver2="NS2.host.example.",
                        **{"domain[0]": "api.com", "domaintype[0]": "transfer", "eppcode[0]": "X-1"})
    order_id, invoice_id = body["orderid"], body["invoiceid"]
    assert db.session.scalar(select(Domain)).nameserver_list == ["ns1.host.example", "ns2.host.example"]
    refused = call(client, key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer",
                   nameserver1="ns1.host.example", **{"domain[0]": "one-ns.com", "domaintype[0]": "register"})[1]
    assert refused == {"result": "error", "message": "Nameservers: give 2 to 5 nameservers."}
    assert call(client, key, "CancelOrder", orderid=order_id)[1] == {"result": "success"}
    assert db.session.get(Invoice, invoice_id).status == "Cancelled"
    assert call(client, key, "PendingOrder", orderid=order_id)[1] == {"result": "success"}
    assert call(client, key, "FraudOrder", orderid=order_id)[1] == {"result": "success"}
    db.session.expire_all()
    assert db.session.get(Order, order_id).status == "Fraud"
    assert db.session.scalar(select(Domain)).status == "Fraud"
    assert call(client, key, "DeleteOrder", orderid=order_id)[1] == {"result": "success"}
    assert call(client, key, "DeleteOrder", orderid=order_id)[1] == {"result": "error", "message": "Order ID Not Found"}
    assert call(client, key, "GetOrders", status="Active")[1]["totalresults"] == 0


def test_support_role_may_read_orders_but_not_place_them(client, db, shop):
    support_key = make_credential(db, "Support")
    customer = factories.client()
    db.session.commit()
    status, body = call(client, support_key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer",
                        **{"domain[0]": "d.com", "domaintype[0]": "register"})
    assert status == 403
    assert call(client, support_key, "GetOrders")[1]["result"] == "success"
