"""WHMCS API actions of the Billing area. Every change of money goes through the
billing engine (app.billing): these functions only read parameters and shape answers."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from app.activity import Actor, log
from app.api.whmcs.clients import find_client
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import amount, day, flag, listing, moment, rate
from app.billing import credit, generation, invoicing, payments
from app.billing.automation import business_today
from app.billing.billable_items import Recurrence, add_billable_item
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine
from app.billing.money import parse_amount
from app.extensions import db
from app.models.billing import (
    CreditEntry, Invoice, InvoiceItem, InvoiceStatus, ItemType, Transaction,
)
from app.models.clients import Client

INVOICE_ORDER = {"id": Invoice.id, "invoicenumber": Invoice.number, "date": Invoice.date,
                 "duedate": Invoice.due_date, "total": Invoice.total, "status": Invoice.status}
# WHMCS's invoice actions of a billable item -> the engine's.
BILLABLE_ACTIONS = {"noinvoice": "none", "nextcron": "next_cron", "nextinvoice": "next_invoice",
                    "duedate": "due_date", "recur": "recurring"}


def find_invoice(params: Params) -> Invoice:
    invoice_id = params.id("invoiceid", required=True)
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        raise ApiError("Invoice ID Not Found")
    return invoice


def _refuse(params: Params, names: tuple[str, ...], why: str) -> None:
    given = [name for name in names if params.text(name) is not None]
    if given:
        raise ApiError(f"{', '.join(given)}: {why}")


def _new_lines(params: Params, description: str, amount_name: str, taxed_name: str) -> list[InvoiceLine]:
    """Lines from indexed parameters (itemdescription1/itemamount1/itemtaxed1 or
    newitemdescription[0]...): a description needs its amount and the other way round."""
    descriptions = params.indexed(description)
    amounts = params.indexed(amount_name)
    taxed = params.indexed(taxed_name)
    lines = []
    for index in sorted(set(descriptions) | set(amounts)):
        text = (descriptions.get(index) or "").strip()
        if not text:
            raise ApiError(f"{description}{index} is required with {amount_name}{index}")
        if not (amounts.get(index) or "").strip():
            raise ApiError(f"{amount_name}{index} is required with {description}{index}")
        key = f"{amount_name}{index}" if f"{amount_name}{index}" in params.form else f"{amount_name}[{index}]"
        taxed_key = f"{taxed_name}{index}" if f"{taxed_name}{index}" in params.form else f"{taxed_name}[{index}]"
        lines.append(InvoiceLine(type=ItemType.MANUAL, rel_id=None, description=text,
                                 amount=params.money(key, allow_negative=True),
                                 taxed=bool(params.bool(taxed_key)) if index in taxed else False))
    return lines


@action("CreateInvoice", "InvoiceApi", "can_post")
def create_invoice(params: Params, actor: Actor) -> dict:
    client = find_client(params, id_parameter="userid")
    draft = bool(params.bool("draft"))
    status = params.text("status") or (InvoiceStatus.DRAFT.value if draft else InvoiceStatus.UNPAID.value)
    if draft and params.bool("sendinvoice"):
        raise ApiError("Cannot create and send a draft invoice in a single API request. "
                       "Please create and send separately.")
    if draft and status != InvoiceStatus.DRAFT:
        raise ApiError(f"Invalid status {status}: a draft invoice is created as Draft")
    if status not in (InvoiceStatus.UNPAID, InvoiceStatus.DRAFT):
        raise ApiError(f"Invalid status {status}: a new invoice is Unpaid or Draft "
                       "(a payment makes it Paid)")
    _refuse(params, ("taxrate", "taxrate2"), "taxes follow the tax rules and cannot be overridden")
    issue_date = params.date("date") or business_today()
    invoice = invoicing.create_invoice(
        client.id, _new_lines(params, "itemdescription", "itemamount", "itemtaxed"),
        issue_date=issue_date, due_date=params.date("duedate"), actor=actor,
        notes=params.text("notes"), apply_credit=params.bool("autoapplycredit"), status=status,
        payment_method=params.text("paymentmethod", max_length=50))
    return {"invoiceid": invoice.id, "status": invoice.status}


def item_row(item: InvoiceItem) -> dict:
    return {"id": item.id, "type": item.type, "relid": item.rel_id or 0,
            "description": item.description, "amount": amount(item.amount),
            "taxed": flag(item.taxed)}


def transaction_row(transaction: Transaction) -> dict:
    return {"id": transaction.id, "userid": transaction.client_id,
            "currency": transaction.currency_id, "gateway": transaction.gateway,
            "date": moment(transaction.date), "description": transaction.description,
            "amountin": amount(transaction.amount_in), "fees": amount(transaction.fees),
            "amountout": amount(transaction.amount_out), "rate": rate(transaction.exchange_rate, 5),
            "transid": transaction.gateway_transaction_id or "",
            "invoiceid": transaction.invoice_id or 0, "refundid": transaction.refund_of_id or 0}


def invoice_fields(invoice: Invoice) -> dict:
    return {
        "invoicenum": invoice.number or "", "userid": invoice.client_id,
        "date": day(invoice.date), "duedate": day(invoice.due_date),
        "datepaid": moment(invoice.paid_at), "subtotal": amount(invoice.subtotal),
        "credit": amount(invoice.credit_applied), "tax": amount(invoice.tax1),
        "tax2": amount(invoice.tax2), "total": amount(invoice.total),
        "balance": amount(invoice.balance), "taxrate": rate(invoice.tax1_rate),
        "taxrate2": rate(invoice.tax2_rate), "status": invoice.status,
        "paymentmethod": invoice.payment_method or "", "notes": invoice.notes or "",
    }


@action("GetInvoice", "InvoiceApi", "can_get")
def get_invoice(params: Params, actor: Actor) -> dict:
    invoice = find_invoice(params)
    transactions = db.session.scalars(select(Transaction).where(Transaction.invoice_id == invoice.id)
                                      .order_by(Transaction.id)).all()
    return {"invoiceid": invoice.id, **invoice_fields(invoice), "ccgateway": False,
            "currencycode": invoice.currency.code,
            "items": {"item": [item_row(item) for item in invoice.items]},
            "transactions": {"transaction": [transaction_row(row) for row in transactions]}}


@action("GetInvoices", "InvoiceApi", "can_get")
def get_invoices(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    query = select(Invoice)
    client_id = params.id("userid")
    if client_id is not None:
        query = query.where(Invoice.client_id == client_id)
    status = params.text("status")
    if status == "Overdue":
        query = query.where(Invoice.status == InvoiceStatus.UNPAID.value,
                            Invoice.due_date < business_today())
    elif status:
        if status not in {value.value for value in InvoiceStatus}:
            raise ApiError(f"Invalid status {status}")
        query = query.where(Invoice.status == status)
    order_by = (params.text("orderby") or "id").lower()
    if order_by not in INVOICE_ORDER:
        raise ApiError(f"Invalid orderby {order_by}: one of {', '.join(INVOICE_ORDER)}")
    descending = (params.text("order") or "asc").lower() == "desc"
    column = INVOICE_ORDER[order_by]
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(column.desc() if descending else column, Invoice.id)
                              .offset(start).limit(limit)).all()
    clients = {client.id: client for client in db.session.scalars(
        select(Client).where(Client.id.in_({row.client_id for row in rows})))}
    invoices = []
    for invoice in rows:
        client = clients[invoice.client_id]
        invoices.append({"id": invoice.id, "firstname": client.first_name,
                         "lastname": client.last_name, "companyname": client.company_name or "",
                         **invoice_fields(invoice), "currencycode": invoice.currency.code,
                         "currencyprefix": invoice.currency.prefix,
                         "currencysuffix": invoice.currency.suffix})
    return listing("invoices", "invoice", invoices, total, start)


@action("AddInvoicePayment", "InvoiceApi", "can_payment")
def add_invoice_payment(params: Params, actor: Actor) -> dict:
    invoice = find_invoice(params)
    transaction_id = params.text("transid", required=True, max_length=255)
    gateway = params.text("gateway", required=True, max_length=50)
    if invoice.status == InvoiceStatus.CANCELLED:
        raise ApiError("It is not possible to add a payment to an invoice that is Cancelled")
    paid = params.money("amount")
    payments.apply_payment(
        invoice.id, paid if paid is not None else invoice.balance, invoice.currency.code,
        gateway, transaction_id, fees=params.money("fees") or 0, paid_at=params.datetime("date"),
        actor=actor)
    return {}


@action("UpdateInvoice", "InvoiceApi", "can_put")
def update_invoice(params: Params, actor: Actor) -> dict:
    """What the engine allows: notes, payment method and due date; line changes while
    nothing is paid; and the status moves the engine knows (publish a draft, cancel,
    mark unpaid)."""
    invoice = find_invoice(params)
    _refuse(params, ("credit", "taxrate", "taxrate2", "datepaid"),
            "use ApplyCredit or AddInvoicePayment; taxes follow the tax rules")
    _plain_changes(invoice, params, actor)
    for item_id in params.array("deletelineids"):
        if not item_id.isdigit() or not _belongs(invoice, int(item_id)):
            raise ApiError(f"Invoice item {item_id} is not on invoice {invoice.id}")
        invoicing.remove_invoice_item(int(item_id), actor=actor)
    _change_items(invoice, params, actor)
    for line in _new_lines(params, "newitemdescription", "newitemamount", "newitemtaxed"):
        invoicing.add_invoice_item(invoice.id, line, actor=actor)
    if params.bool("publish") or params.bool("publishandsendemail"):
        if invoice.status != InvoiceStatus.DRAFT:
            raise ApiError("Invoice must be in Draft status to be published")
        invoicing.publish_draft(invoice.id, actor=actor)
    status = params.text("status")
    if status and status != invoice.status:
        _change_status(invoice, status, actor)
    return {"invoiceid": invoice.id}


def _belongs(invoice: Invoice, item_id: int) -> bool:
    return db.session.scalar(select(InvoiceItem.id).where(
        InvoiceItem.id == item_id, InvoiceItem.invoice_id == invoice.id)) is not None


def _plain_changes(invoice: Invoice, params: Params, actor: Actor) -> None:
    """Notes, payment method and dates: no money changes with them."""
    before, after = {}, {}
    if params.has("notes"):
        before["notes"], after["notes"] = invoice.notes, params.text("notes")
    method = params.text("paymentmethod", max_length=50)
    if method:
        before["payment_method"], after["payment_method"] = invoice.payment_method, method
    new_date, new_due = params.date("date"), params.date("duedate")
    if new_date or new_due:
        if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.UNPAID):
            raise ApiError(f"The dates of a {invoice.status} invoice cannot change")
        if new_date and invoice.status != InvoiceStatus.DRAFT:
            raise ApiError("The date of an issued invoice cannot change (only its due date)")
        if (new_due or invoice.due_date) < (new_date or invoice.date):
            raise ApiError("The due date cannot be before the invoice date")
        if new_date:
            before["date"], after["date"] = invoice.date, new_date
        if new_due:
            before["due_date"], after["due_date"] = invoice.due_date, new_due
    changed = {name: value for name, value in after.items() if before[name] != value}
    if not changed:
        return
    for name, value in changed.items():
        setattr(invoice, name, value)
    if "due_date" in changed:
        for item in invoice.items:
            item.due_date = changed["due_date"]
    db.session.flush()
    log("invoice_updated", f"Invoice {invoicing.invoice_label(invoice)}: "
        f"{', '.join(sorted(changed))} changed", invoice,
        before={name: before[name] for name in changed}, after=changed, actor=actor)


def _change_items(invoice: Invoice, params: Params, actor: Actor) -> None:
    """itemdescription[id] / itemamount[id] / itemtaxed[id]: a changed line is added
    anew and the old one removed, both through the engine (so it gets a new id)."""
    descriptions = params.indexed("itemdescription")
    amounts = params.indexed("itemamount")
    taxed = params.indexed("itemtaxed")
    for item_id in sorted(set(descriptions) | set(amounts) | set(taxed)):
        if item_id not in descriptions or item_id not in amounts or item_id not in taxed:
            raise ApiError("Missing Variables: itemdescription, itemamount and itemtaxed are "
                           "required for each item being changed")
        item = db.session.get(InvoiceItem, item_id)
        if item is None or item.invoice_id != invoice.id:
            raise ApiError(f"Invoice item {item_id} is not on invoice {invoice.id}")
        line = InvoiceLine(type=item.type, rel_id=item.rel_id, description=descriptions[item_id],
                           amount=params.money(f"itemamount[{item_id}]", required=True,
                                               allow_negative=True),
                           taxed=bool(params.bool(f"itemtaxed[{item_id}]")),
                           period_start=item.period_start, period_end=item.period_end)
        if item.rel_id is not None and item.period_start is not None:
            # The (type, rel_id, period) key is the old line's until it is removed.
            invoicing.remove_invoice_item(item.id, actor=actor)
            invoicing.add_invoice_item(invoice.id, line, actor=actor)
        else:
            invoicing.add_invoice_item(invoice.id, line, actor=actor)
            invoicing.remove_invoice_item(item.id, actor=actor)


def _change_status(invoice: Invoice, status: str, actor: Actor) -> None:
    if status == InvoiceStatus.CANCELLED:
        invoicing.cancel_invoice(invoice.id, actor=actor, reason="UpdateInvoice API call")
    elif status == InvoiceStatus.UNPAID and invoice.status == InvoiceStatus.DRAFT:
        invoicing.publish_draft(invoice.id, actor=actor)
    elif status == InvoiceStatus.UNPAID:
        invoicing.mark_unpaid(invoice.id, actor=actor, reason="UpdateInvoice API call")
    elif status == InvoiceStatus.PAID:
        raise ApiError("Invalid status Paid: record the payment with AddInvoicePayment")
    elif status in {value.value for value in InvoiceStatus}:
        raise ApiError(f"Invalid status {status}: an invoice cannot be moved to it from {invoice.status}")
    else:
        raise ApiError(f"Invalid status {status}")


@action("AddCredit", "CreditEntryApi", "can_post")
def add_credit(params: Params, actor: Actor) -> dict:
    client = find_client(params)
    description = params.text("description", required=True, max_length=255)
    value = params.money("amount")
    if value is None:
        raise ApiError("No Amount Provided")
    kind = (params.text("type") or "add").lower()
    if kind == "add":
        entry = credit.add_credit(client.id, value, description, actor=actor)
    elif kind == "remove":
        entry = credit.remove_credit(client.id, value, description, actor=actor)
    else:
        raise ApiError("Parameter type must be add or remove")
    return {"newbalance": amount(entry.balance_after)}


@action("GetCredits", "CreditEntryApi", "can_get")
def get_credits(params: Params, actor: Actor) -> dict:
    client = find_client(params)
    entries = db.session.scalars(select(CreditEntry).where(CreditEntry.client_id == client.id)
                                 .order_by(CreditEntry.id)).all()
    rows = [{"id": entry.id, "date": day(entry.date.date()), "description": entry.description,
             "amount": amount(entry.amount), "relid": entry.invoice_id or 0} for entry in entries]
    return {"clientid": client.id, **listing("credits", "credit", rows, len(rows))}


@action("ApplyCredit", "InvoiceApi", "can_apply_credit")
def apply_credit(params: Params, actor: Actor) -> dict:
    invoice = find_invoice(params)
    if invoice.status != InvoiceStatus.UNPAID:
        raise ApiError("Invoice Not in Unpaid Status")
    asked = params.text("amount")
    if asked is None or asked.lower() == "full":
        value = min(invoice.client.credit_balance, invoice.balance)
    else:
        value = params.money("amount")
    if value <= 0:
        raise ApiError("Credit Amount to apply must be greater than zero")
    if value > invoice.client.credit_balance:
        raise ApiError("Amount exceeds customer credit balance")
    if value > invoice.balance:
        raise ApiError("Amount Exceeds Invoice Balance")
    entry = credit.apply_credit_to_invoice(invoice.id, value, actor=actor)
    # Less than asked when an unpaid gateway surcharge was dropped (credit owes none).
    applied = -entry.amount if entry is not None else Decimal("0.00")
    return {"invoiceid": invoice.id, "amount": amount(applied),
            "invoicepaid": "true" if invoice.status == InvoiceStatus.PAID else "false"}


@action("GetTransactions", "TransactionApi", "can_get")
def get_transactions(params: Params, actor: Actor) -> dict:
    query = select(Transaction)
    invoice_id, client_id, transid = params.id("invoiceid"), params.id("clientid"), params.text("transid")
    if invoice_id is not None:
        query = query.where(Transaction.invoice_id == invoice_id)
    if client_id is not None:
        query = query.where(Transaction.client_id == client_id)
    if transid:
        query = query.where(Transaction.gateway_transaction_id == transid)
    start = params.int("limitstart", minimum=0) or 0
    limit = params.int("limitnum", minimum=1)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    query = query.order_by(Transaction.id).offset(start)
    rows = db.session.scalars(query.limit(limit) if limit else query).all()
    return listing("transactions", "transaction", [transaction_row(row) for row in rows], total, start)


@action("AddBillableItem", "BillableItemApi", "can_post")
def add_billable(params: Params, actor: Actor) -> dict:
    client = find_client(params)
    chosen = (params.text("invoiceaction") or "noinvoice").lower()
    if chosen not in BILLABLE_ACTIONS:
        raise ApiError("Invalid Invoice Action")
    recurrence = None
    if chosen == "recur":
        every, unit, times = params.int("recur", minimum=1), params.text("recurcycle"), params.int("recurfor", minimum=0)
        if every is None or not unit or times is None:
            raise ApiError("Recurring must have a unit, cycle and limit")
        recurrence = Recurrence(every, unit.lower(), times)
    item = add_billable_item(
        client.id, params.raw("description") or "", params.money("amount", required=True),
        invoice_action=BILLABLE_ACTIONS[chosen], due_date=params.date("duedate"),
        hours=params.text("hours") or "0", recurrence=recurrence, actor=actor)
    return {"billableid": item.id}


@action("GenInvoices", "InvoiceApi", "can_generate")
def gen_invoices(params: Params, actor: Actor) -> dict:
    if any(params.text(name) or params.array(name) for name in ("serviceids", "domainids", "addonids")):
        raise ApiError("serviceids, domainids and addonids are not supported: invoices are "
                       "generated per client (pass clientid)")
    client = find_client(params, required=False)
    client_range = (client.id, client.id) if client else None
    counts = generation.generate_due_invoices(business_today(), client_range, actor=actor)
    if counts.get("errors"):
        raise ApiError("; ".join(counts["errors"])[:500])
    payload = {"numcreated": counts.get("invoices", 0)}
    if client is not None:
        payload["latestinvoiceid"] = db.session.scalar(
            select(func.max(Invoice.id)).where(Invoice.client_id == client.id)) or 0
    return payload



def _is_rate_one(text: str | None) -> bool:
    """No rate, or WHMCS's default of 1 however it is written (1, 1.00, 1.00000)."""
    if text is None:
        return True
    try:
        return parse_amount(text, places=5) == 1
    except BillingError:
        return False


@action("AddTransaction", "TransactionApi", "can_post")
def add_transaction(params: Params, actor: Actor) -> dict:
    from app.billing.transactions import record_transaction

    gateway = params.text("paymentmethod", required=True, max_length=50)
    if params.id("currencyid") is not None:
        raise ApiError("currencyid cannot be chosen: a transaction is in its client's currency")
    if not _is_rate_one(params.text("rate")):
        raise ApiError("rate cannot be set: exchange rates come from the currency settings")
    transaction = record_transaction(
        gateway=gateway, client_id=params.id("userid"), invoice_id=params.id("invoiceid"),
        amount_in=params.money("amountin") or 0, amount_out=params.money("amountout") or 0,
        fees=params.money("fees") or 0, transaction_id=params.text("transid", max_length=255),
        description=params.text("description", max_length=255) or "",
        when=params.datetime("date"), to_credit=bool(params.bool("credit")), actor=actor)
    return {"transactionid": transaction.id}


@action("UpdateTransaction", "TransactionApi", "can_put")
def update_transaction(params: Params, actor: Actor) -> dict:
    from app.billing.transactions import update_transaction as change

    transaction_id = params.id("transactionid", required=True)
    _refuse(params, ("amountin", "amountout", "fees", "rate", "userid", "invoiceid", "currencyid",
                     "credit"),
            "the amounts and owner of a recorded transaction cannot change")
    values: dict = {}
    if params.has("description"):
        values["description"] = (params.text("description", max_length=255) or "")
    if params.has("transid"):
        values["gateway_transaction_id"] = params.text("transid", max_length=255)
    if params.has("paymentmethod"):
        values["gateway"] = params.text("paymentmethod", max_length=50) or ""
    if params.has("date"):
        values["date"] = params.datetime("date")
        if values["date"] is None:
            raise ApiError("Parameter date cannot be empty")
    change(transaction_id, values, actor=actor)
    return {"transactionid": transaction_id}


@action("GetPaymentMethods", "PaymentGatewayApi", "can_get")
def get_payment_methods(params: Params, actor: Actor) -> dict:
    from app.models.billing import PaymentGateway

    rows = [{"module": gateway.module, "displayname": gateway.display_name}
            for gateway in db.session.scalars(select(PaymentGateway).where(
                PaymentGateway.enabled.is_(True)).order_by(PaymentGateway.sort_order,
                                                           PaymentGateway.id))]
    return listing("paymentmethods", "paymentmethod", rows, len(rows))


@action("GetPayMethods", "PayMethodApi", "can_get")
def get_pay_methods(params: Params, actor: Actor) -> dict:
    """A client's stored payment methods: what identifies them, never their tokens."""
    from app.models.billing import PayMethod

    client = find_client(params)
    query = select(PayMethod).where(PayMethod.client_id == client.id)
    method_id = params.id("paymethodid")
    if method_id is not None:
        query = query.where(PayMethod.id == method_id)
    kind = (params.text("type") or "").lower()
    if kind:
        if kind not in ("bankaccount", "creditcard"):
            raise ApiError("Parameter type must be BankAccount or CreditCard")
        query = query.where(PayMethod.kind == ("bank" if kind == "bankaccount" else "card"))
    methods = db.session.scalars(query.order_by(PayMethod.is_default.desc(), PayMethod.id)).all()
    rows = [{"id": method.id,
             "type": "BankAccount" if method.kind == "bank" else (
                 "RemoteCreditCard" if method.kind == "card" else "RemoteBankAccount"),
             "description": method.description or "", "gateway_name": method.gateway,
             "contact_type": "Client", "contact_id": client.id,
             "card_last_four": method.last4 or "",
             "expiry_date": (f"{method.expiry_month:02d}/{method.expiry_year % 100:02d}"
                             if method.expiry_month and method.expiry_year else ""),
             "start_date": "", "issue_number": "", "card_type": method.brand or "",
             "is_default": bool(method.is_default),
             "last_updated": moment(method.updated_at)} for method in methods]
    return {"clientid": client.id, "paymethods": rows}


@action("CapturePayment", "InvoiceApi", "can_payment")
def capture_payment(params: Params, actor: Actor) -> dict:
    """Charge the client's stored payment method for an Unpaid invoice now (once per
    invoice and day, as the daily run's charge)."""
    from app.gateways.autocharge import charge_invoice_now

    invoice = find_invoice(params)
    if params.text("cvv"):
        raise ApiError("cvv is not accepted: card data never reaches this system")
    if invoice.status != InvoiceStatus.UNPAID or invoice.balance <= 0:
        raise ApiError("Invoice Not in Unpaid Status")
    outcome, error = charge_invoice_now(invoice.id, business_today(), actor)
    if outcome != "charged":
        raise ApiError(f"Payment Attempt Failed{': ' + error if error else ''}")
    return {}
