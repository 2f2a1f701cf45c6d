"""Client accounts: create, update and close a client; add contacts and notes.

Transactions: these functions flush and never commit; the caller (API, view, CLI)
commits the whole operation or rolls it back (numbering_counter.unit_of_work).
Every change is written to the activity log in the same transaction.

A refused change raises ClientError (a ValueError) before anything is written.
"""
from __future__ import annotations

import re
from datetime import date

from babel import Locale
from flask import current_app
from sqlalchemy import func, select

from app.activity import Actor, change_and_log, changes, log
from app.events import emit
from app.billing import invoicing, payments
from app.billing.errors import BillingError
from app.extensions import db
from app.models.billing import Invoice, InvoiceStatus
from app.models.catalog import Currency
from app.models.clients import Client, ClientGroup, ClientNote, ClientStatus, ClientUser, Contact
from app.models.domains import Domain, DomainStatus
from app.models.orders import Service, ServiceAddon, ServiceStatus
from app.notifications.queue import EmailTemplateMissing, queue_email

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# ISO 3166-1 alpha-2 codes (Babel's two-letter territories less reserved codes).
_NOT_COUNTRIES = {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN",
                  "XA", "XB", "ZZ"}
COUNTRY_CODES = frozenset(code for code in Locale("en").territories
                          if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES)
# WHMCS names languages in full; the model keeps a short code.
LANGUAGES = {"english": "en", "german": "de", "french": "fr", "spanish": "es", "dutch": "nl",
             "italian": "it", "portuguese-pt": "pt", "portuguese-br": "pt-BR",
             "swedish": "sv", "danish": "da", "norwegian": "nb", "turkish": "tr",
             "russian": "ru", "ukrainian": "uk", "chinese": "zh", "japanese": "ja"}
MIN_PASSWORD_LENGTH = 8
CLIENT_ROLE = "Client"
SIGNUP_TEMPLATE = "Client Signup Email"
# The fields a client's own record offers to change, and their limits.
TEXT_LIMITS = {"first_name": 100, "last_name": 100, "company_name": 200, "email": 255,
               "phone": 50, "address1": 255, "address2": 255, "city": 100, "state": 100,
               "postcode": 20, "tax_id": 50, "default_gateway": 50, "signup_ip": 45}
ADDRESS_FIELDS = {"address1": "address line 1", "city": "city", "state": "state",
                  "postcode": "postcode", "phone": "phone number"}
FLAG_FIELDS = ("marketing_opt_in", "tax_exempt", "late_fee_exempt", "overdue_notices_disabled",
               "separate_invoices", "auto_charge_disabled")
LIVE_DOMAIN_STATUSES = (DomainStatus.PENDING, DomainStatus.PENDING_REGISTRATION,
                        DomainStatus.PENDING_TRANSFER, DomainStatus.ACTIVE, DomainStatus.GRACE,
                        DomainStatus.REDEMPTION)


class ClientError(ValueError):
    """Bad input for a client account change."""


# Checks

def _text(values: dict, name: str, required_message: str | None = None) -> str | None:
    value = values.get(name)
    value = value.strip() if isinstance(value, str) else value
    if value in (None, ""):
        if required_message:
            raise ClientError(required_message)
        return None
    if not isinstance(value, str):
        raise ClientError(f"{name} must be text")
    limit = TEXT_LIMITS.get(name)
    if limit and len(value) > limit:
        raise ClientError(f"{name.replace('_', ' ')} is at most {limit} characters")
    return value


def check_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL_PATTERN.match(email):
        raise ClientError("The email address you entered was not valid")
    return email


def check_country(country: str) -> str:
    country = country.strip().upper()
    if country not in COUNTRY_CODES:
        raise ClientError(f"{country!r} is not a two-letter ISO country code")
    return country


def check_language(language: str) -> str:
    value = language.strip()
    code = LANGUAGES.get(value.lower())
    if code:
        return code
    if re.fullmatch(r"[a-z]{2}(-[A-Z]{2})?", value):
        return value
    raise ClientError(f"unknown language {language!r}")


def _email_taken(email: str, except_client_id: int | None = None) -> bool:
    query = select(Client.id).where(func.lower(Client.email) == email)
    if except_client_id is not None:
        query = query.where(Client.id != except_client_id)
    return db.session.scalar(query.limit(1)) is not None


def _currency(currency_id: int | None) -> Currency:
    if currency_id is not None:
        currency = db.session.get(Currency, currency_id)
        if currency is None:
            raise ClientError(f"Currency ID {currency_id} Not Found")
        return currency
    currency = db.session.scalar(select(Currency).where(Currency.is_default.is_(True)).limit(1))
    if currency is None:
        currency = db.session.scalar(select(Currency).order_by(Currency.id).limit(1))
    if currency is None:
        raise ClientError("no currency is set up: add one before adding clients")
    return currency


def _group(group_id: int | None) -> ClientGroup | None:
    if not group_id:
        return None
    group = db.session.get(ClientGroup, group_id)
    if group is None:
        raise ClientError(f"Client Group ID {group_id} Not Found")
    return group


def get_client(client_id: int) -> Client:
    client = db.session.get(Client, client_id) if isinstance(client_id, int) else None
    if client is None:
        raise ClientError("Client ID Not Found")
    return client


# Logins

def _new_login(client: Client, password: str):
    """A portal login (FAB user with the Client role) owning the client's account."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ClientError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters")
    sm = current_app.appbuilder.sm
    if sm.find_user(username=client.email) or sm.find_user(email=client.email):
        raise ClientError("A user already exists with that email address")
    role = sm.find_role(CLIENT_ROLE)
    if role is None:
        raise ClientError("the Client role is missing: run `flask setup`")
    user = sm.add_user(client.email, client.first_name, client.last_name, client.email, role,
                       password, commit=False)
    if not user:
        raise ClientError("the login could not be created")
    db.session.add(ClientUser(user_id=user.id, client_id=client.id, is_owner=True, permissions=""))
    db.session.flush()
    return user


def _owner_login(client: Client):
    membership = db.session.scalar(select(ClientUser).where(
        ClientUser.client_id == client.id, ClientUser.is_owner.is_(True)).limit(1))
    return membership.user if membership is not None else None


# Commands

def create_client(values: dict, *, password: str | None = None, require_address: bool = True,
                  notes: str | None = None, send_welcome: bool = True,
                  actor: Actor | None = None) -> Client:
    """A new client from `values` (Client column names: first_name, last_name, email,
    company_name, address1, address2, city, state, postcode, country, phone, tax_id,
    currency_id, group_id, language, marketing_opt_in, signup_ip).

    With a password the client also gets a portal login (its owner). Without
    require_address (WHMCS's skipvalidation) the address and phone may be missing.
    """
    actor = actor or Actor.system()
    first_name = _text(values, "first_name", "You did not enter your first name")
    last_name = _text(values, "last_name", "You did not enter your last name")
    email = check_email(_text(values, "email", "You did not enter your email address"))
    if _email_taken(email):
        raise ClientError("A client already exists with that email address")
    fields = {name: _text(values, name) for name in
              ("company_name", "address1", "address2", "city", "state", "postcode", "phone",
               "tax_id", "signup_ip")}
    if require_address:
        for name, label in ADDRESS_FIELDS.items():
            if not fields[name]:
                raise ClientError(f"You did not enter your {label}")
    country = _text(values, "country", "You did not enter your country" if require_address else None)
    currency = _currency(values.get("currency_id"))
    group = _group(values.get("group_id"))
    language = check_language(values["language"]) if values.get("language") else "en"
    client = Client(first_name=first_name, last_name=last_name, email=email,
                    country=check_country(country) if country else "US",
                    currency_id=currency.id, group_id=group.id if group else None,
                    language=language, marketing_opt_in=bool(values.get("marketing_opt_in")),
                    status=ClientStatus.ACTIVE.value, **fields)
    db.session.add(client)
    db.session.flush()
    if password is not None:
        _new_login(client, password)
    log("client_created", f"Client #{client.id} {client.full_name} <{email}> created", client,
        after=changes(client, ["first_name", "last_name", "email", "country", "currency_id"]),
        actor=actor)
    emit("ClientAdd", {"client_id": client.id})
    if notes and notes.strip():
        add_client_note(client.id, notes, actor=actor)
    if send_welcome:
        try:
            queue_email(SIGNUP_TEMPLATE, client.id, {}, related=("client", client.id),
                        dedupe_key=f"client-signup:{client.id}")
        except EmailTemplateMissing:
            pass  # no template, no email
    return client


def update_client(client_id: int, values: dict, *, password: str | None = None,
                  actor: Actor | None = None) -> Client:
    """Change the given fields of a client (only those present in values)."""
    actor = actor or Actor.system()
    client = get_client(client_id)
    updates: dict = {}
    for name in TEXT_LIMITS:
        if name in values:
            value = _text(values, name)
            if name in ("first_name", "last_name", "email") and value is None:
                raise ClientError(f"{name.replace('_', ' ')} cannot be empty")
            updates[name] = value
    if "email" in updates:
        updates["email"] = check_email(updates["email"])
        if _email_taken(updates["email"], except_client_id=client.id):
            raise ClientError("Duplicate Email Address")
    if values.get("country") is not None:
        updates["country"] = check_country(values["country"])
    if values.get("language") is not None:
        updates["language"] = check_language(values["language"])
    if "group_id" in values:
        group = _group(values["group_id"])
        updates["group_id"] = group.id if group else None
    if values.get("currency_id") is not None and values["currency_id"] != client.currency_id:
        currency = _currency(values["currency_id"])
        has_money = client.credit_balance != 0 or db.session.scalar(
            select(Invoice.id).where(Invoice.client_id == client.id).limit(1)) is not None
        if has_money:
            raise ClientError("The currency cannot be changed: the client has invoices or credit")
        updates["currency_id"] = currency.id
    if values.get("status") is not None:
        status = values["status"]
        if status == ClientStatus.CLOSED:
            raise ClientError("Use CloseClient to close a client (it also cancels what is open)")
        if status not in (ClientStatus.ACTIVE, ClientStatus.INACTIVE):
            raise ClientError(f"Invalid status {status}")
        updates["status"] = status
    for name in FLAG_FIELDS:
        if values.get(name) is not None:
            updates[name] = bool(values[name])
    before = changes(client, list(updates))
    for name, value in updates.items():
        setattr(client, name, value)
    changed = {name: value for name, value in updates.items() if before[name] != value}
    if password is not None:
        _change_password(client, password)
    db.session.flush()
    if changed or password is not None:
        what = ", ".join(sorted(changed)) + (" and the password" if password is not None else "")
        log("client_updated", f"Client #{client.id}: {what.strip(', ')} changed", client,
            before={name: before[name] for name in changed}, after=changed, actor=actor)
        emit("ClientEdit", {"client_id": client.id})
    return client


def _change_password(client: Client, password: str) -> None:
    user = _owner_login(client)
    if user is None:
        _new_login(client, password)
        return
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ClientError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters")
    from werkzeug.security import generate_password_hash

    user.password = generate_password_hash(
        password, method=current_app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"),
        salt_length=current_app.config.get("FAB_PASSWORD_HASH_SALT_LENGTH", 16))


def close_client(client_id: int, actor: Actor | None = None, today: date | None = None) -> Client:
    """Close a client as WHMCS does: its Draft and Unpaid invoices are cancelled,
    its live services terminated through their module (pending ones cancelled),
    its addons and domains cancelled, and the client marked Closed.

    Refused, nothing changed: an unpaid invoice with payments on it (refund first),
    or a module that fails to terminate a service."""
    actor = actor or Actor.system()
    today = today or date.today()
    client = get_client(client_id)
    if client.status == ClientStatus.CLOSED:
        raise ClientError(f"Client #{client.id} is closed already")
    invoice_ids = db.session.scalars(select(Invoice.id).where(
        Invoice.client_id == client.id,
        Invoice.status.in_((InvoiceStatus.DRAFT.value, InvoiceStatus.UNPAID.value)))
        .order_by(Invoice.id)).all()
    for invoice_id in invoice_ids:
        try:
            invoicing.cancel_invoice(invoice_id, actor=actor, reason="client closed")
        except BillingError as error:
            raise ClientError(f"The client cannot be closed: {error}") from None
    services = db.session.scalars(select(Service).where(
        Service.client_id == client.id,
        Service.status.in_((ServiceStatus.PENDING.value, ServiceStatus.ACTIVE.value,
                            ServiceStatus.SUSPENDED.value))).order_by(Service.id)).all()
    for service in services:
        before = {"status": service.status}
        if service.status == ServiceStatus.PENDING:
            service.status = ServiceStatus.CANCELLED.value
        else:
            result = payments.run_module_action(lambda module: module.terminate_account(service),
                                                service)
            if not result.success:
                raise ClientError(f"The client cannot be closed: service #{service.id} "
                                  f"could not be terminated ({result.message})")
            service.status = ServiceStatus.TERMINATED.value
        service.termination_date = today
        log("service_closed_with_client", f"Service #{service.id} {service.status.lower()}: "
            f"client #{client.id} closed", service, before=before,
            after={"status": service.status}, actor=actor)
    for addon in db.session.scalars(select(ServiceAddon).where(
            ServiceAddon.client_id == client.id,
            ServiceAddon.status.in_((ServiceStatus.PENDING.value, ServiceStatus.ACTIVE.value,
                                     ServiceStatus.SUSPENDED.value)))):
        before = {"status": addon.status}
        addon.status = ServiceStatus.CANCELLED.value
        addon.termination_date = today
        log("addon_closed_with_client", f"Addon #{addon.id} cancelled: client #{client.id} closed",
            addon, before=before, after={"status": addon.status}, actor=actor)
    for domain in db.session.scalars(select(Domain).where(
            Domain.client_id == client.id,
            Domain.status.in_([status.value for status in LIVE_DOMAIN_STATUSES]))):
        before = {"status": domain.status}
        domain.status = DomainStatus.CANCELLED.value
        log("domain_closed_with_client", f"Domain {domain.name} cancelled: client #{client.id} "
            "closed", domain, before=before, after={"status": domain.status}, actor=actor)
    before = {"status": client.status}
    client.status = ClientStatus.CLOSED.value
    db.session.flush()
    log("client_closed", f"Client #{client.id} closed ({len(invoice_ids)} invoices cancelled, "
        f"{len(services)} services ended)", client, before=before,
        after={"status": client.status}, actor=actor)
    return client


def add_contact(client_id: int, values: dict, actor: Actor | None = None) -> Contact:
    """A contact of a client (Contact column names in values, receives_* flags)."""
    actor = actor or Actor.system()
    client = get_client(client_id)
    first_name = _text(values, "first_name", "You did not enter the contact's first name")
    last_name = _text(values, "last_name", "You did not enter the contact's last name")
    email = check_email(_text(values, "email", "You did not enter the contact's email address"))
    taken = email == client.email.lower() or db.session.scalar(select(Contact.id).where(
        Contact.client_id == client.id, func.lower(Contact.email) == email).limit(1)) is not None
    if taken:
        raise ClientError("Duplicate Email Address")
    country = values.get("country")
    contact = Contact(
        client_id=client.id, first_name=first_name, last_name=last_name, email=email,
        company_name=_text(values, "company_name"), phone=_text(values, "phone"),
        address1=_text(values, "address1"), city=_text(values, "city"),
        state=_text(values, "state"), postcode=_text(values, "postcode"),
        country=check_country(country) if country else None,
        **{name: bool(values.get(name)) for name in
           ("receives_general", "receives_invoices", "receives_support", "receives_product",
            "receives_domain")},
    )
    db.session.add(contact)
    db.session.flush()
    log("contact_added", f"Contact #{contact.id} {first_name} {last_name} <{email}> added to "
        f"client #{client.id}", contact, after={"email": email}, actor=actor)
    return contact


def add_client_note(client_id: int, body: str, sticky: bool = False,
                    actor: Actor | None = None) -> ClientNote:
    actor = actor or Actor.system()
    client = get_client(client_id)
    body = body.strip() if isinstance(body, str) else ""
    if not body:
        raise ClientError("Notes can not be empty")
    note = ClientNote(client_id=client.id, body=body, sticky=bool(sticky),
                      author_id=actor.user_id if actor.type == "staff" else None)
    db.session.add(note)
    db.session.flush()
    log("client_note_added", f"Note #{note.id} added to client #{client.id}", note,
        after={"sticky": note.sticky}, actor=actor)
    return note


CONTACT_COLUMNS = ("first_name", "last_name", "company_name", "email", "phone", "address1",
                   "city", "state", "postcode", "country")
CONTACT_FLAGS = ("receives_general", "receives_invoices", "receives_support",
                 "receives_product", "receives_domain")


def update_contact(contact_id: int, values: dict, actor: Actor | None = None) -> Contact:
    """Change the given Contact columns (a missing key keeps its value)."""
    actor = actor or Actor.system()
    contact = db.session.get(Contact, contact_id) if isinstance(contact_id, int) else None
    if contact is None:
        raise ClientError("Contact ID Not Found")
    wanted: dict = {}
    for name in CONTACT_COLUMNS:
        if name in values:
            wanted[name] = _text(values, name)
    for name in ("first_name", "last_name", "email"):
        if name in wanted and not wanted[name]:
            raise ClientError(f"The contact's {name.replace('_', ' ')} cannot be empty")
    if wanted.get("email"):
        email = check_email(wanted["email"])
        taken = db.session.scalar(select(Contact.id).where(
            Contact.client_id == contact.client_id, Contact.id != contact.id,
            func.lower(Contact.email) == email).limit(1)) is not None
        if taken or email == contact.client.email.lower():
            raise ClientError("Duplicate Email Address")
        wanted["email"] = email
    if wanted.get("country"):
        wanted["country"] = check_country(wanted["country"])
    for name in CONTACT_FLAGS:
        if name in values:
            wanted[name] = bool(values[name])
    change_and_log(contact, wanted, "contact_updated", f"Contact #{contact.id}", actor,
                   description=f"Contact #{contact.id} of client #{contact.client_id} updated")
    return contact


def delete_client(client_id: int, actor: Actor | None = None) -> None:
    """Delete a client that never did business: its contacts, notes and memberships go
    with it. A client with invoices, transactions, services, domains, orders, quotes or
    tickets is refused (its records must stay: close it instead). The log keeps the
    deletion; its older entries stay, no longer linked to the gone client."""
    from app.models.billing import CreditEntry, Quote, Transaction
    from app.models.orders import Order
    from app.models.support import Ticket
    from app.models.system import ActivityLog

    actor = actor or Actor.system()
    client = get_client(client_id)
    for model, what in ((Invoice, "invoices"), (Transaction, "transactions"),
                        (CreditEntry, "credit entries"), (Service, "services"),
                        (Domain, "domains"), (Order, "orders"), (Quote, "quotes"),
                        (Ticket, "tickets")):
        if db.session.scalar(select(model.id).where(model.client_id == client.id).limit(1)):
            raise ClientError(f"Client #{client.id} has {what}: close the client instead of "
                              "deleting it")
    label = f"Client #{client.id} {client.full_name} <{client.email}> deleted"
    db.session.query(ActivityLog).filter(ActivityLog.client_id == client.id).update(
        {ActivityLog.client_id: None}, synchronize_session=False)
    for model in (Contact, ClientNote, ClientUser):
        db.session.query(model).filter(model.client_id == client.id).delete(
            synchronize_session=False)
    db.session.delete(client)
    db.session.flush()
    log("client_deleted", label, None, before={"client_id": client_id}, actor=actor)
