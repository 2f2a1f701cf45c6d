"""WHMCS API actions of the Clients area."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select

from app import client_accounts, custom_fields
from app.activity import Actor
from app.api.whmcs.php_serialized import decode_base64, php_unserialize_flat
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import amount, day, flag, listing, moment
from app.extensions import db
from app.models.billing import Invoice, InvoiceStatus, Transaction
from app.models.catalog import ProductType
from app.models.base import money
from app.models.clients import Client, ClientGroup, Contact
from app.models.domains import Domain, DomainStatus
from app.models.orders import Service, ServiceStatus
from app.models.support import Ticket, TicketStatus

# WHMCS parameter -> Client column, for the plain text fields.
CLIENT_FIELDS = {
    "firstname": "first_name", "lastname": "last_name", "companyname": "company_name",
    "email": "email", "address1": "address1", "address2": "address2", "city": "city",
    "state": "state", "postcode": "postcode", "country": "country", "phonenumber": "phone",
    "tax_id": "tax_id", "language": "language", "clientip": "signup_ip",
    "paymentmethod": "default_gateway", "status": "status",
}
CLIENT_FLAGS = {"marketingoptin": "marketing_opt_in", "taxexempt": "tax_exempt",
                "latefeeoveride": "late_fee_exempt", "overideduenotices": "overdue_notices_disabled",
                "separateinvoices": "separate_invoices", "disableautocc": "auto_charge_disabled"}
EMAIL_PREFERENCES = {"general": "receives_general", "invoice": "receives_invoices",
                     "support": "receives_support", "product": "receives_product",
                     "domain": "receives_domain"}


def _client_values(params: Params, only_given: bool) -> dict:
    values: dict = {}
    for parameter, column in CLIENT_FIELDS.items():
        if only_given and not params.has(parameter):
            continue
        values[column] = params.raw(parameter)
    for parameter, column in CLIENT_FLAGS.items():
        chosen = params.bool(parameter)
        if chosen is not None:
            values[column] = chosen
    if params.has("currency"):
        values["currency_id"] = params.id("currency")
    if params.has("groupid"):
        values["group_id"] = params.int("groupid", minimum=0) or None
    return values


def custom_field_values(raw: str | None, name: str = "customfields") -> dict:
    """WHMCS's customfields: base64 of a PHP-serialized array of field id => value
    (a tickbox may come as true/false)."""
    if not raw or not raw.strip():
        return {}
    found = php_unserialize_flat(decode_base64(raw, name), name)
    # By identity: 0 == False in Python, and a 0 is a value like any other.
    return {key: ("on" if value is True else "" if value is False or value is None else str(value))
            for key, value in found.items()}


def checked_custom_fields(fields: list, values: dict, name: str = "customfields") -> None:
    """Refuse bad custom field values (as WHMCS does, naming the field) before
    anything is written. The API is staff: it may set staff-only fields."""
    try:
        custom_fields.check_values(fields, values, staff=True)
    except custom_fields.CustomFieldError as error:
        raise ApiError(f"Invalid {name}: {error}") from None


def custom_field_rows(applies_to: str, rel_id: int, shown: list | None = None) -> list[dict]:
    """A record's custom fields as WHMCS lists them (a password masked); shown: the
    values when fetched already (custom_fields.values_for_records)."""
    if shown is None:
        shown = custom_fields.values_for(applies_to, rel_id, staff=True)
    return [{"id": item.id, "name": item.name, "translated_name": item.name, "value": item.value}
            for item in shown]


def find_client(params: Params, id_parameter: str = "clientid", email_parameter: str | None = None,
                required: bool = True) -> Client | None:
    client_id = params.id(id_parameter)
    if client_id is not None:
        client = db.session.get(Client, client_id)
    elif email_parameter and params.text(email_parameter):
        client = db.session.scalar(select(Client).where(
            func.lower(Client.email) == params.text(email_parameter).lower()))
    elif required:
        raise ApiError(f"Parameter {id_parameter} is required")
    else:
        return None
    if client is None:
        raise ApiError("Client ID Not Found")
    return client


@action("AddClient", "ClientApi", "can_post")
def add_client(params: Params, actor: Actor) -> dict:
    skip_validation = bool(params.bool("skipvalidation"))
    values = _client_values(params, only_given=False)
    values.pop("status", None)
    values.pop("default_gateway", None)
    password = params.raw("password2")
    if not password and not skip_validation:
        raise ApiError("You did not enter a password")
    answers = custom_field_values(params.raw("customfields"))
    fields = custom_fields.client_fields()
    checked_custom_fields(fields, answers)
    client = client_accounts.create_client(
        values, password=password or None, require_address=not skip_validation,
        notes=params.text("notes"), send_welcome=not params.bool("noemail"), actor=actor)
    custom_fields.save_values(custom_fields.CLIENT, client.id, answers, actor, staff=True,
                              fields=fields)
    return {"clientid": client.id}


@action("UpdateClient", "ClientApi", "can_put")
def update_client(params: Params, actor: Actor) -> dict:
    client = find_client(params, email_parameter="clientemail", required=False)
    if client is None:
        raise ApiError("Either clientid or clientemail is required")
    values = _client_values(params, only_given=True)
    answers = custom_field_values(params.raw("customfields"))
    if answers:  # the fields given change; the others keep their values
        try:
            custom_fields.save_values(custom_fields.CLIENT, client.id, answers, actor, staff=True)
        except custom_fields.CustomFieldError as error:
            raise ApiError(f"Invalid customfields: {error}") from None
    client_accounts.update_client(client.id, values, password=params.raw("password2") or None,
                                  actor=actor)
    return {"clientid": client.id}


@action("CloseClient", "ClientApi", "can_put")
def close_client(params: Params, actor: Actor) -> dict:
    client = find_client(params)
    client_accounts.close_client(client.id, actor=actor)
    return {"clientid": client.id}


def client_row(client: Client) -> dict:
    return {"id": client.id, "firstname": client.first_name, "lastname": client.last_name,
            "companyname": client.company_name or "", "email": client.email,
            "datecreated": day(client.created_at.date() if client.created_at else None),
            "groupid": client.group_id or 0, "status": client.status}


@action("GetClients", "ClientApi", "can_get")
def get_clients(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    sorting = (params.text("sorting") or "ASC").upper()
    if sorting not in ("ASC", "DESC"):
        raise ApiError("Parameter sorting must be ASC or DESC")
    query = select(Client)
    search = params.text("search")
    if search:
        prefix = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        full_name = func.lower(Client.first_name + " " + Client.last_name)
        query = query.where(or_(*(func.lower(column).like(prefix, escape="\\") for column in
                                  (Client.email, Client.first_name, Client.last_name,
                                   Client.company_name)),
                                full_name.like(prefix, escape="\\")))
    status = params.text("status")
    if status:
        query = query.where(Client.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    order = Client.id.desc() if sorting == "DESC" else Client.id
    rows = db.session.scalars(query.order_by(order).offset(start).limit(limit)).all()
    return listing("clients", "client", [client_row(client) for client in rows], total, start)


def client_details(client: Client) -> dict:
    """A client's record as GetClientsDetails gives it (never a password)."""
    owner_login = next((member.user for member in client.memberships if member.is_owner), None)
    return {
        "userid": client.id, "id": client.id, "firstname": client.first_name,
        "lastname": client.last_name, "fullname": client.full_name,
        "companyname": client.company_name or "", "email": client.email,
        "address1": client.address1 or "", "address2": client.address2 or "",
        "city": client.city or "", "fullstate": client.state or "", "state": client.state or "",
        "postcode": client.postcode or "", "countrycode": client.country,
        "country": client.country, "phonenumber": client.phone or "",
        "tax_id": client.tax_id or "", "groupid": client.group_id or 0,
        "status": client.status, "currency": client.currency_id,
        "currency_code": client.currency.code, "defaultgateway": client.default_gateway or "",
        "credit": amount(client.credit_balance), "language": client.language or "",
        "taxexempt": bool(client.tax_exempt), "latefeeoveride": bool(client.late_fee_exempt),
        "overideduenotices": bool(client.overdue_notices_disabled),
        "separateinvoices": bool(client.separate_invoices),
        "disableautocc": bool(client.auto_charge_disabled),
        "marketing_emails_opt_in": bool(client.marketing_opt_in),
        "email_verified": bool(client.email_verified),
        "lastlogin": moment(client.last_login_at) if client.last_login_at else "No Login Logged",
        "datecreated": day(client.created_at.date() if client.created_at else None),
        "has_login": owner_login is not None,
        "customfields": [{"id": row["id"], "name": row["name"], "value": row["value"]}
                         for row in custom_field_rows(custom_fields.CLIENT, client.id)],
    }


def client_stats(client: Client, today: date) -> dict:
    """GetClientsDetails' stats: invoice counts and sums by status, products, domains
    and tickets (sums in SQL, formatted in the client's currency)."""
    fmt = client.currency.format
    balance = func.coalesce(func.sum(Invoice.total - Invoice.amount_paid), 0)
    totals = func.coalesce(func.sum(Invoice.total), 0)
    by_status = {status: (count, due, whole) for status, count, due, whole in db.session.execute(
        select(Invoice.status, func.count(), balance, totals)
        .where(Invoice.client_id == client.id).group_by(Invoice.status))}
    overdue_count, overdue_balance = db.session.execute(
        select(func.count(), balance).where(Invoice.client_id == client.id,
                                            Invoice.status == InvoiceStatus.UNPAID.value,
                                            Invoice.due_date < today)).one()
    income = db.session.scalar(select(func.coalesce(
        func.sum(Transaction.amount_in - Transaction.fees - Transaction.amount_out), 0))
        .where(Transaction.client_id == client.id))

    def of(status: InvoiceStatus) -> tuple:
        return by_status.get(status.value, (0, 0, 0))

    services = db.session.execute(
        select(Service.status, func.count()).where(Service.client_id == client.id)
        .group_by(Service.status)).all()
    domains = db.session.execute(
        select(Domain.status, func.count()).where(Domain.client_id == client.id)
        .group_by(Domain.status)).all()
    tickets = db.session.execute(
        select(Ticket.status, func.count()).where(Ticket.client_id == client.id)
        .group_by(Ticket.status)).all()

    def money_text(value) -> str:
        return fmt(money(value))

    return {
        "numdueinvoices": of(InvoiceStatus.UNPAID)[0],
        "dueinvoicesbalance": money_text(of(InvoiceStatus.UNPAID)[1]),
        "income": money_text(income), "incredit": client.credit_balance > 0,
        "creditbalance": money_text(client.credit_balance),
        "numoverdueinvoices": overdue_count, "overdueinvoicesbalance": money_text(overdue_balance),
        "numDraftInvoices": of(InvoiceStatus.DRAFT)[0],
        "draftInvoicesBalance": money_text(of(InvoiceStatus.DRAFT)[2]),
        "numpaidinvoices": of(InvoiceStatus.PAID)[0],
        "paidinvoicesamount": money_text(of(InvoiceStatus.PAID)[2]),
        "numunpaidinvoices": of(InvoiceStatus.UNPAID)[0],
        "unpaidinvoicesamount": money_text(of(InvoiceStatus.UNPAID)[1]),
        "numcancelledinvoices": of(InvoiceStatus.CANCELLED)[0],
        "cancelledinvoicesamount": money_text(of(InvoiceStatus.CANCELLED)[2]),
        "numrefundedinvoices": of(InvoiceStatus.REFUNDED)[0],
        "refundedinvoicesamount": money_text(of(InvoiceStatus.REFUNDED)[2]),
        "numcollectionsinvoices": of(InvoiceStatus.COLLECTIONS)[0],
        "collectionsinvoicesamount": money_text(of(InvoiceStatus.COLLECTIONS)[1]),
        "productsnumactive": sum(n for status, n in services if status == ServiceStatus.ACTIVE),
        "productsnumtotal": sum(n for _, n in services),
        "numactivedomains": sum(n for status, n in domains if status == DomainStatus.ACTIVE),
        "numdomains": sum(n for _, n in domains),
        "numtickets": sum(n for _, n in tickets),
        "numactivetickets": sum(n for status, n in tickets if status != TicketStatus.CLOSED),
    }


@action("GetClientsDetails", "ClientApi", "can_get")
def get_clients_details(params: Params, actor: Actor) -> dict:
    if params.id("clientid") is None and not params.text("email"):
        raise ApiError("Either clientid Or email Is Required")
    client = find_client(params, email_parameter="email")
    details = client_details(client)
    # WHMCS answers with the fields at the top level too, for older integrations.
    payload = {**details, "client": details}
    if params.bool("stats"):
        payload["stats"] = client_stats(client, date.today())
    return payload


@action("AddContact", "ContactApi", "can_post")
def add_contact(params: Params, actor: Actor) -> dict:
    client = find_client(params)
    values = {column: params.raw(parameter) for parameter, column in CLIENT_FIELDS.items()
              if parameter in ("firstname", "lastname", "companyname", "email", "address1",
                               "city", "state", "postcode", "country", "phonenumber")}
    for name, column in EMAIL_PREFERENCES.items():
        values[column] = bool(params.bool(f"email_preferences[{name}]")
                              or params.bool(f"{name}emails"))
    contact = client_accounts.add_contact(client.id, values, actor=actor)
    return {"contactid": contact.id}


def contact_row(contact: Contact) -> dict:
    return {"id": contact.id, "userid": contact.client_id, "firstname": contact.first_name,
            "lastname": contact.last_name, "companyname": contact.company_name or "",
            "email": contact.email, "address1": contact.address1 or "", "address2": "",
            "city": contact.city or "", "state": contact.state or "",
            "postcode": contact.postcode or "", "country": contact.country or "",
            "phonenumber": contact.phone or "", "subaccount": 0, "permissions": "",
            "generalemails": flag(contact.receives_general),
            "invoiceemails": flag(contact.receives_invoices),
            "productemails": flag(contact.receives_product),
            "domainemails": flag(contact.receives_domain),
            "supportemails": flag(contact.receives_support),
            "created_at": moment(contact.created_at), "updated_at": moment(contact.updated_at)}


CONTACT_FILTERS = {"firstname": Contact.first_name, "lastname": Contact.last_name,
                   "companyname": Contact.company_name, "email": Contact.email,
                   "address1": Contact.address1, "city": Contact.city, "state": Contact.state,
                   "postcode": Contact.postcode, "country": Contact.country,
                   "phonenumber": Contact.phone}


@action("GetContacts", "ContactApi", "can_get")
def get_contacts(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    query = select(Contact)
    client_id = params.id("userid")
    if client_id is not None:
        query = query.where(Contact.client_id == client_id)
    for parameter, column in CONTACT_FILTERS.items():
        value = params.text(parameter)
        if value is not None:
            query = query.where(column == value)
    if params.bool("subaccount"):
        query = query.where(Contact.id.is_(None))  # contacts are never sub-accounts here
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Contact.id).offset(start).limit(limit)).all()
    return listing("contacts", "contact", [contact_row(row) for row in rows], total, start)


@action("AddClientNote", "ClientNoteApi", "can_post")
def add_client_note(params: Params, actor: Actor) -> dict:
    client = find_client(params, id_parameter="userid")
    note = client_accounts.add_client_note(client.id, params.raw("notes") or "",
                                           sticky=bool(params.bool("sticky")), actor=actor)
    return {"noteid": note.id}


@action("GetClientGroups", "ClientGroupApi", "can_get")
def get_client_groups(params: Params, actor: Actor) -> dict:
    groups = db.session.scalars(select(ClientGroup).order_by(ClientGroup.id)).all()
    rows = [{"id": group.id, "groupname": group.name, "groupcolour": group.colour,
             "discountpercent": f"{group.discount_percent:.2f}",
             "susptermexempt": "on" if group.exempt_from_auto_suspend else "",
             "separateinvoices": "on" if group.separate_invoices else ""} for group in groups]
    return listing("groups", "group", rows, len(rows))


PRODUCT_TYPE_NAMES = {ProductType.HOSTING.value: "hostingaccount",
                      ProductType.RESELLER.value: "reselleraccount",
                      ProductType.SERVER.value: "server", ProductType.OTHER.value: "other"}


def service_row(service: Service, custom_values: list | None = None) -> dict:
    product, server = service.product, service.server
    return {
        "id": service.id, "qty": service.quantity, "clientid": service.client_id,
        "orderid": service.order_id or 0,
        "ordernumber": service.order.order_number if service.order else "",
        "pid": service.product_id, "regdate": day(service.registration_date),
        "name": product.name, "translated_name": product.name,
        "groupname": product.group.name if product.group else "",
        "translated_groupname": product.group.name if product.group else "",
        "domain": service.domain or "", "dedicatedip": service.dedicated_ip or "",
        "serverid": service.server_id or 0, "servername": server.name if server else "",
        "serverip": (server.ip_address or "") if server else "",
        "serverhostname": server.hostname if server else "",
        "suspensionreason": service.suspension_reason or "",
        "firstpaymentamount": amount(service.first_payment_amount),
        "recurringamount": amount(service.recurring_amount),
        "paymentmethod": service.payment_method or "",
        "paymentmethodname": service.payment_method or "",
        "billingcycle": service.billing_cycle, "nextduedate": day(service.next_due_date),
        "status": service.status, "username": service.username or "",
        "promoid": service.promotion_id or 0,
        "overideautosuspend": flag(service.override_auto_suspend),
        "overidesuspenduntil": day(service.suspend_until),
        "terminationdate": day(service.termination_date),
        "notes": service.notes or "",
        "customfields": {"customfield": custom_field_rows(custom_fields.PRODUCT, service.id,
                                                          custom_values)},
        "configoptions": {"configoption": [
            {"id": choice.option_id, "option": choice.option.name, "type": choice.option.option_type,
             "value": choice.value.name if choice.value else choice.quantity}
            for choice in service.config_options]},
    }


@action("GetClientsProducts", "ServiceApi", "can_get")
def get_clients_products(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    client_id, service_id, product_id = params.id("clientid"), params.id("serviceid"), params.id("pid")
    domain, username = params.text("domain"), params.text("username2")
    query = select(Service)
    if client_id is not None:
        query = query.where(Service.client_id == client_id)
    if service_id is not None:
        query = query.where(Service.id == service_id)
    if product_id is not None:
        query = query.where(Service.product_id == product_id)
    if domain:
        query = query.where(func.lower(Service.domain) == domain.lower())
    if username:
        query = query.where(Service.username == username)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Service.id).offset(start).limit(limit)).all()
    values = custom_fields.values_for_records(custom_fields.PRODUCT, rows, staff=True)
    return {"clientid": client_id, "serviceid": service_id, "pid": product_id, "domain": domain,
            **listing("products", "product",
                      [service_row(row, values[row.id]) for row in rows], total, start)}


def domain_row(domain: Domain) -> dict:
    return {
        "id": domain.id, "userid": domain.client_id, "orderid": domain.order_id or 0,
        "regtype": domain.type, "domainname": domain.name, "registrar": domain.registrar or "",
        "regperiod": domain.registration_period,
        "firstpaymentamount": amount(domain.first_payment_amount),
        "recurringamount": amount(domain.recurring_amount),
        "paymentmethod": domain.payment_method or "",
        "paymentmethodname": domain.payment_method or "",
        "regdate": day(domain.registration_date), "expirydate": day(domain.expiry_date),
        "nextduedate": day(domain.next_due_date), "status": domain.status,
        "subscriptionid": "", "promoid": domain.promotion_id or 0,
        "dnsmanagement": flag(domain.dns_management),
        "emailforwarding": flag(domain.email_forwarding),
        "idprotection": flag(domain.id_protection), "donotrenew": flag(domain.do_not_renew),
        "notes": domain.notes or "",
        "nameservers": domain.nameserver_list,
    }


@action("GetClientsDomains", "DomainApi", "can_get")
def get_clients_domains(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    client_id, domain_id, name = params.id("clientid"), params.id("domainid"), params.text("domain")
    query = select(Domain)
    if client_id is not None:
        query = query.where(Domain.client_id == client_id)
    if domain_id is not None:
        query = query.where(Domain.id == domain_id)
    if name:
        query = query.where(func.lower(Domain.name) == name.lower())
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Domain.id).offset(start).limit(limit)).all()
    return {"clientid": client_id, "domainid": domain_id,
            **listing("domains", "domain", [domain_row(row) for row in rows], total, start)}



@action("DeleteClient", "ClientApi", "can_delete")
def delete_client(params: Params, actor: Actor) -> dict:
    client = find_client(params)
    client_accounts.delete_client(client.id, actor=actor)
    return {"clientid": client.id}


CONTACT_PARAMETERS = {"firstname": "first_name", "lastname": "last_name",
                      "companyname": "company_name", "email": "email", "address1": "address1",
                      "city": "city", "state": "state", "postcode": "postcode",
                      "country": "country", "phonenumber": "phone"}


@action("UpdateContact", "ContactApi", "can_put")
def update_contact(params: Params, actor: Actor) -> dict:
    contact_id = params.id("contactid", required=True)
    values = {column: params.raw(parameter) for parameter, column in CONTACT_PARAMETERS.items()
              if params.has(parameter)}
    for name, column in EMAIL_PREFERENCES.items():
        for parameter in (f"email_preferences[{name}]", f"{name}emails"):
            if params.has(parameter):
                values[column] = bool(params.bool(parameter))
    contact = client_accounts.update_contact(contact_id, values, actor=actor)
    return {"contactid": contact.id}


@action("ValidateLogin", "ClientUserApi", "can_get")
def validate_login(params: Params, actor: Actor) -> dict:
    """Whether an email and password open a client login (checked as the portal's sign-in
    checks them, failed attempts counted); answers the client it opens, never the hash."""
    from flask import current_app

    from app.auth import twofactor
    from app.portal.access import memberships_of

    email = params.text("email", required=True)
    password = params.raw("password2")
    if not password:
        raise ApiError("Parameter password2 is required")
    user = current_app.appbuilder.sm.authenticate_password(email, password)
    memberships = memberships_of(user.id) if user is not None else []
    if not memberships:
        raise ApiError("Email or Password Invalid")
    return {"userid": memberships[0].client_id, "passwordhash": "",
            "twoFactorEnabled": twofactor.is_enabled(user.id)}
