"""The signed-in client area: dashboard, services, domains, invoices, the account's
profile and contacts.

Thin on purpose: each page reads the selected client's rows (the client id is in
every query, see access.owned_or_404) and each action calls one engine function
inside a unit of work, so a refused action changes nothing."""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select

from app import custom_fields
from app.activity import current_actor
from app.billing import credit
from app.billing.cancellations import CANCELLABLE_STATUSES, open_request, request_cancellation
from app.billing.client_payments import applicable_credit
from app.billing.errors import BillingError
from app.billing.mass_payment import COMBINED_INVOICE
from app.billing.numbering_counter import unit_of_work
from app.billing.pdf import invoice_context
from app.document_downloads import pdf_download
from app.extensions import db
from app.models.billing import Invoice, InvoiceStatus
from app.models.clients import Contact
from app.models.domains import Domain, DomainStatus
from app.models.orders import Service, ServiceStatus
from app.models.support import Announcement, Ticket, TicketStatus
from app.portal import portal
from app.portal.access import can, client_login_required, current_client, owned_or_404
from app.portal.account import AccountError, change_email, update_profile
from app.portal.custom_field_forms import (
    first_problem, posted_again, posted_values, translated_problems,
)
from app.portal.forms import (
    ButtonForm, CancellationForm, CreditForm, EmailChangeForm, NameserversForm, ProfileForm,
    ToggleForm,
)
from app.portal.landing import landing_page
from app.portal.support import published_announcements
from app.registrars import domains as domain_engine
from app.registrars.domain_settings import (
    MANAGEABLE_STATUSES, DomainSettingsError, set_auto_renew, set_nameservers, set_registrar_lock,
)

EXPIRY_WARNING_DAYS = 30
# Drafts are the business's work in progress: clients see an invoice once issued.
HIDDEN_INVOICE_STATUSES = (InvoiceStatus.DRAFT.value,)
OWED_STATUSES = (InvoiceStatus.UNPAID.value, InvoiceStatus.PAYMENT_PENDING.value,
                 InvoiceStatus.COLLECTIONS.value)


def _client_rows(model, *conditions, order_by=()):
    """The selected client's rows of a model: the client id is always in the query."""
    order_by = order_by if isinstance(order_by, tuple) else (order_by,)
    statement = select(model).where(model.client_id == current_client().id, *conditions)
    return list(db.session.scalars(statement.order_by(*order_by)))


@portal.route("/")
def dashboard():
    """A signed-in client's dashboard; a visitor gets the public landing page."""
    if not current_user.is_authenticated:
        return landing_page()
    return client_dashboard()


@client_login_required
def client_dashboard():
    client = current_client()
    today = date.today()
    latest = published_announcements().order_by(Announcement.published_at.desc()).limit(3)
    context = {"client": client, "announcements": list(db.session.scalars(latest))}
    if can("products"):
        context["services"] = _client_rows(Service, Service.status == ServiceStatus.ACTIVE.value,
                                           order_by=(Service.next_due_date, Service.id))
    if can("domains"):
        context["expiring_domains"] = _client_rows(
            Domain, Domain.status == DomainStatus.ACTIVE.value,
            Domain.expiry_date >= today,
            Domain.expiry_date <= today + timedelta(days=EXPIRY_WARNING_DAYS),
            order_by=Domain.expiry_date)
        context["domain_count"] = len(_client_rows(
            Domain, Domain.status == DomainStatus.ACTIVE.value))
    if can("invoices"):
        context["unpaid_invoices"] = _client_rows(Invoice, Invoice.status.in_(OWED_STATUSES),
                                                  ~COMBINED_INVOICE, order_by=Invoice.due_date)
    if can("tickets"):
        context["open_tickets"] = _client_rows(Ticket, Ticket.status != TicketStatus.CLOSED.value,
                                               order_by=Ticket.last_reply_at.desc())
    return render_template("portal/dashboard.html", today=today, **context)


# Services

@portal.route("/services")
@client_login_required
def services():
    rows = _client_rows(Service, order_by=(Service.status != ServiceStatus.ACTIVE.value,
                                           Service.id.desc()))
    return render_template("portal/services.html", services=rows)


@portal.route("/services/<int:service_id>")
@client_login_required
def service(service_id: int):
    row = owned_or_404(Service, service_id)
    pending = open_request(row.id)
    can_cancel = (can("manageproducts") and pending is None
                  and row.status in CANCELLABLE_STATUSES)
    return render_template("portal/service.html", service=row, pending_cancellation=pending,
                           can_cancel=can_cancel)


@portal.route("/services/<int:service_id>/cancel", methods=["GET", "POST"])
@client_login_required
def cancel_service(service_id: int):
    row = owned_or_404(Service, service_id)
    form = CancellationForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                request_cancellation(row.id, form.type.data, form.reason.data, current_actor())
        except BillingError as error:
            flash(_("The cancellation was not requested: %(reason)s", reason=str(error)), "danger")
        else:
            flash(_("Your cancellation request has been received."), "success")
            return redirect(url_for("portal.service", service_id=row.id))
    return render_template("portal/cancel_service.html", service=row, form=form)


# Domains

@portal.route("/domains")
@client_login_required
def domains():
    rows = _client_rows(Domain, order_by=(Domain.status != DomainStatus.ACTIVE.value,
                                          Domain.expiry_date, Domain.name))
    return render_template("portal/domains.html", domains=rows, today=date.today())


@portal.route("/domains/<int:domain_id>")
@client_login_required
def domain(domain_id: int):
    row = owned_or_404(Domain, domain_id)
    nameservers = NameserversForm(data={f"ns{n}": name
                                        for n, name in enumerate(row.nameserver_list, start=1)})
    managing = can("managedomains")
    from app.portal.domain_addons import addon_rows

    return render_template("portal/domain.html", domain=row, nameservers_form=nameservers,
                           toggle_form=ToggleForm(), addons=addon_rows(row),
                           manageable=managing and row.status in MANAGEABLE_STATUSES,
                           can_request_epp=managing and domain_engine.epp_refusal(row) is None,
                           can_renew=(managing and can("invoices")
                                      and domain_engine.renewal_refusal(row) is None))


def _domain_change(domain_id: int, change):
    row = owned_or_404(Domain, domain_id)
    try:
        with unit_of_work():
            change(row)
    except DomainSettingsError as error:
        flash(_("Nothing was changed: %(reason)s", reason=str(error)), "danger")
    else:
        flash(_("The domain's settings have been saved."), "success")
    return redirect(url_for("portal.domain", domain_id=row.id))


def _wanted_state() -> bool:
    form = ToggleForm()
    if not form.validate_on_submit():
        abort(400)
    return form.value.data == "on"


@portal.route("/domains/<int:domain_id>/auto-renew", methods=["POST"])
@client_login_required
def domain_auto_renew(domain_id: int):
    wanted = _wanted_state()
    return _domain_change(domain_id, lambda row: set_auto_renew(row.id, wanted, current_actor()))


@portal.route("/domains/<int:domain_id>/lock", methods=["POST"])
@client_login_required
def domain_lock(domain_id: int):
    wanted = _wanted_state()
    return _domain_change(domain_id,
                          lambda row: set_registrar_lock(row.id, wanted, current_actor()))


@portal.route("/domains/<int:domain_id>/nameservers", methods=["POST"])
@client_login_required
def domain_nameservers(domain_id: int):
    form = NameserversForm()
    if not form.validate_on_submit():
        abort(400)
    return _domain_change(domain_id,
                          lambda row: set_nameservers(row.id, form.values(), current_actor()))


def _checked_button() -> None:
    if not ButtonForm().validate_on_submit():
        abort(400)


@portal.route("/domains/<int:domain_id>/epp-code", methods=["POST"])
@client_login_required
def domain_epp_code(domain_id: int):
    """Ask the registrar for the transfer code; it goes to the client by email only."""
    row = owned_or_404(Domain, domain_id)
    _checked_button()
    try:
        with unit_of_work():
            result = domain_engine.request_epp_code(row.id, current_actor())
    except domain_engine.DomainActionError as error:
        flash(_("Nothing was changed: %(reason)s", reason=str(error)), "danger")
    else:
        if not result.success:
            flash(_("The registrar did not give the EPP code. Please try again later or "
                    "contact us."), "danger")
        elif result.changed:
            flash(_("We have emailed the EPP code to %(email)s.", email=row.client.email),
                  "success")
        else:
            flash(_("The registrar sends the EPP code to the domain owner's email address."),
                  "info")
    return redirect(url_for("portal.domain", domain_id=row.id))


@portal.route("/domains/<int:domain_id>/renew", methods=["POST"])
@client_login_required
def domain_renew(domain_id: int):
    """Invoice the renewal now (or show the open renewal invoice); paying it renews."""
    row = owned_or_404(Domain, domain_id)
    if not can("invoices"):
        abort(403)
    _checked_button()
    try:
        with unit_of_work():
            invoice = domain_engine.create_renewal_invoice(row.id, current_actor())
    except domain_engine.DomainActionError as error:
        flash(_("Nothing was changed: %(reason)s", reason=str(error)), "danger")
        return redirect(url_for("portal.domain", domain_id=row.id))
    flash(_("Pay this invoice to renew %(domain)s.", domain=row.name), "info")
    return redirect(url_for("portal.invoice", invoice_id=invoice.id))


# Invoices

def _owned_invoice(invoice_id: int) -> Invoice:
    invoice = owned_or_404(Invoice, invoice_id)
    if invoice.status in HIDDEN_INVOICE_STATUSES:
        abort(404)
    return invoice


@portal.route("/invoices")
@client_login_required
def invoices():
    shown = request.args.get("status", "")
    # A mass payment's combined invoice is listed once paid (the receipt); until then
    # the invoices it covers are what the client owes (WHMCS hides it too).
    conditions = [Invoice.status.notin_(HIDDEN_INVOICE_STATUSES),
                  or_(~COMBINED_INVOICE, Invoice.status == InvoiceStatus.PAID.value)]
    if shown == "unpaid":
        conditions.append(Invoice.status.in_(OWED_STATUSES))
    elif shown == "paid":
        conditions.append(Invoice.status == InvoiceStatus.PAID.value)
    rows = _client_rows(Invoice, *conditions, order_by=(Invoice.date.desc(), Invoice.id.desc()))
    return render_template("portal/invoices.html", invoices=rows, shown=shown)


@portal.route("/invoices/<int:invoice_id>")
@client_login_required
def invoice(invoice_id: int):
    row = _owned_invoice(invoice_id)
    offer = applicable_credit(row)
    credit_form = CreditForm(data={"amount": str(offer)}) if offer else None
    return render_template("portal/invoice.html", doc=invoice_context(row), invoice=row,
                           credit_offer=offer, credit_form=credit_form,
                           owed=row.status in OWED_STATUSES)


@portal.route("/invoices/<int:invoice_id>/pdf")
@client_login_required
def invoice_pdf(invoice_id: int):
    return pdf_download("invoice", _owned_invoice(invoice_id).id, render_template)


@portal.route("/invoices/<int:invoice_id>/credit", methods=["POST"])
@client_login_required
def invoice_pay_with_credit(invoice_id: int):
    row = _owned_invoice(invoice_id)
    form = CreditForm()
    if not form.validate_on_submit():
        flash(_("Enter the amount of credit to apply."), "danger")
        return redirect(url_for("portal.invoice", invoice_id=row.id))
    try:
        with unit_of_work():
            credit.apply_credit_to_invoice(row.id, form.amount.data.strip(), current_actor())
    except BillingError as error:
        flash(_("No credit was applied: %(reason)s", reason=str(error)), "danger")
    else:
        flash(_("Credit applied to the invoice."), "success")
    return redirect(url_for("portal.invoice", invoice_id=row.id))


# The account

@portal.route("/account", methods=["GET", "POST"])
@client_login_required
def account():
    client = current_client()
    form = ProfileForm(obj=client)
    fields = custom_fields.visible(custom_fields.client_fields(), staff=False)
    problems: dict[int, str] = {}
    if form.validate_on_submit():
        values = {name: form[name].data for name in form.data if name != "csrf_token"}
        answers = posted_values(fields, request.form, keep_blank_passwords=True)
        try:
            with unit_of_work():
                changed = update_profile(client.id, values, current_actor())
                changed += list(custom_fields.save_values(custom_fields.CLIENT, client.id, answers,
                                                          current_actor(), fields=fields))
        except AccountError as error:
            flash(_("Nothing was saved: %(reason)s", reason=str(error)), "danger")
        except custom_fields.CustomFieldError as error:
            problems = translated_problems(error, fields)
            flash(_("Nothing was saved: %(reason)s", reason=first_problem(error, fields)), "danger")
        else:
            flash(_("Your details have been saved.") if changed else _("Nothing to change."),
                  "success")
            return redirect(url_for("portal.account"))
    shown = custom_fields.values_for(custom_fields.CLIENT, client.id, fields=fields)
    stored = {item.id: item.value for item in shown if item.field_type != "password"}
    if request.method == "POST":
        stored = posted_again(fields, request.form)
    return render_template("portal/account.html", form=form, email_form=EmailChangeForm(),
                           client=client, custom_fields=fields, custom_values=stored,
                           custom_problems=problems,
                           stored_passwords={item.id for item in shown
                                             if item.field_type == "password" and item.value})


@portal.route("/account/email", methods=["POST"])
@client_login_required
def account_email():
    client = current_client()
    form = EmailChangeForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                change_email(client.id, current_user, form.email.data, form.password.data,
                             current_actor())
        except AccountError as error:
            flash(_("The email address was not changed: %(reason)s", reason=str(error)),
                  "danger")
        else:
            flash(_("The account's email address is now %(email)s.", email=client.email),
                  "success")
            return redirect(url_for("portal.account"))
    else:
        for errors in form.errors.values():
            for message in errors:
                flash(message, "danger")
    return redirect(url_for("portal.account"))


@portal.route("/contacts")
@client_login_required
def contacts():
    rows = _client_rows(Contact, order_by=(Contact.last_name, Contact.first_name))
    return render_template("portal/contacts.html", contacts=rows)
