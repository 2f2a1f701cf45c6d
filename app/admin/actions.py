"""Engine actions on the staff admin's records: the buttons on the client, invoice,
transaction and service pages that change money or a service's state.

Each action is a POST with a CSRF token (Flask-WTF forms), validated here, carried
out by one engine function (app.billing) inside numbering_counter.unit_of_work, so
the change and its activity-log entry are committed together, or not at all; a
refusal of the engine (BillingError) is shown to staff and changes nothing. No
amount is worked out here: the engine computes, the view only asks and shows.

The actions are methods of the existing ModelViews (mixed in by app.admin.clients,
.billing and .orders), each under its own permission (can_add_payment, ...) on that
view: the roles' patterns over view names give them to Admin and Finance (ANY on
those views) and not to Support or Manager (READ only), with no role change.
This module imports no other app.admin module: they import it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_wtf import FlaskForm
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from wtforms import (
    BooleanField, DateField, FieldList, Form, FormField, RadioField, SelectField, StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, StopValidation

from app.activity import current_actor
from app.billing import client_payments, credit, invoicing, payments, staff_actions, upgrades
from app.billing.automation import business_today
from app.billing.client_summary import client_summary
from app.billing.errors import BillingError
from app.billing.money import parse_amount
from app.billing.numbering_counter import unit_of_work
from app.document_downloads import pdf_download
from app.extensions import db
from app.gateways import processing
from app.gateways.base import GatewayError
from app.models.base import money, utcnow
from app.models.billing import Invoice, InvoiceStatus, PaymentGateway, Transaction
from app.models.catalog import RECURRING_CYCLES, Product, ProductPricing
from app.models.orders import ServiceStatus
from app.provisioning.service_commands import ServiceCommandError

FORM_TEMPLATE = "admin/actions/form.html"
SHOW_TEMPLATE = "admin/actions/show.html"
MANUAL_GATEWAY = ("manual", "Manual payment (no gateway)")


# ---------------------------------------------------------------------------
# Messages and fields
# ---------------------------------------------------------------------------

def sentence(error: Exception | str) -> str:
    """An engine message ("invoice X is Paid: ...") as a sentence for a flash."""
    text = str(error).strip()
    if not text:
        return "The action was refused."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class AmountField(StringField):
    """An amount typed by staff, read by the engine's parser (Decimal, at most two
    decimal places, never a float). Once validated, .amount holds the Decimal."""

    def __init__(self, label: str, *, required: bool = True, allow_zero: bool = False,
                 allow_negative: bool = False, **kwargs):
        super().__init__(label, **kwargs)
        self.required = required
        self.allow_zero = allow_zero
        self.allow_negative = allow_negative
        self.amount: Decimal | None = None

    def pre_validate(self, form) -> None:
        text = (self.data or "").strip()
        self.amount = None
        if not text:
            if self.required:
                raise StopValidation("Enter an amount, e.g. 12.50.")
            return
        if text.startswith("-") and not self.allow_negative:
            raise StopValidation("The amount cannot be negative.")
        try:
            amount = parse_amount(text, allow_negative=self.allow_negative)
        except BillingError as error:
            raise StopValidation(sentence(error)) from None
        if amount == 0 and not self.allow_zero:
            raise StopValidation("The amount must be more than zero.")
        self.amount = amount


def text_box(label: str, required_message: str | None = None, max_length: int = 255,
             description: str = "", textarea: bool = False):
    checks = [DataRequired(required_message)] if required_message else [Optional()]
    field = TextAreaField if textarea else StringField
    return field(label, validators=[*checks, Length(max=max_length)], description=description,
                 filters=[lambda value: value.strip() if isinstance(value, str) else value])


def not_in_future(form, field) -> None:
    if field.data and field.data > business_today():
        raise StopValidation("The date cannot be in the future.")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def money_text(amount: Decimal | None) -> str:
    """An amount for a form field: two places, no grouping (what parse_amount reads)."""
    return f"{amount or Decimal('0'):.2f}"


class ButtonForm(FlaskForm):
    """No field: its CSRF token guards a one-click button."""


class PaymentForm(FlaskForm):
    amount = AmountField("Amount", description="Defaults to the balance due; more than the "
                                               "balance becomes the client's credit.")
    paid_on = DateField("Date", validators=[InputRequired("Enter the date of the payment."),
                                            not_in_future])
    gateway = SelectField("Payment method", validators=[InputRequired("Choose the payment method.")])
    transaction_id = text_box("Transaction ID", description="The gateway's reference. A "
                                                            "reference recorded already is refused.")
    fees = AmountField("Fees", required=False, allow_zero=True,
                       description="What the gateway kept, if known.")


class ApplyCreditForm(FlaskForm):
    amount = AmountField("Credit to apply")


class CancelInvoiceForm(FlaskForm):
    reason = text_box("Reason", "Give the reason: it goes to the activity log.")


class CreditForm(FlaskForm):
    amount = AmountField("Amount")
    description = text_box("Description", "Describe the credit: the client sees it on the "
                                          "credit ledger.")


class RefundForm(FlaskForm):
    amount = AmountField("Amount to refund")
    refund_to = RadioField("Refund to", default="credit", choices=[
        ("credit", "The client's credit balance (no money leaves)"),
        ("gateway", "Back through the gateway (the gateway is asked to send the money back)"),
        ("elsewhere", "Refunded outside this system (only record it here)"),
    ], validators=[InputRequired("Choose where the refund goes.")])
    gateway_refund_id = text_box("Refund reference",
                                 description="For a refund made outside this system: its "
                                             "reference at the gateway or bank.")
    reason = text_box("Reason", "Give the reason: it is printed on the credit note.")


class SuspendForm(FlaskForm):
    reason = text_box("Reason", "Give the reason for the suspension.",
                      description="Shown to staff and in the suspension email.")
    notify = BooleanField("Email the client the suspension notice", default=True)


class UnsuspendForm(FlaskForm):
    notify = BooleanField("Email the client the unsuspension notice", default=True)


class TerminateForm(FlaskForm):
    confirm = BooleanField("I understand the account and its data are removed for good",
                           validators=[DataRequired("Tick the box to confirm the termination.")])


class ChangePlanForm(FlaskForm):
    product = SelectField("New product", coerce=int,
                          validators=[InputRequired("Choose the new product.")])
    cycle = SelectField("Billing cycle", choices=[(c.value, c.value) for c in RECURRING_CYCLES],
                        validators=[InputRequired("Choose the billing cycle.")])


class InvoiceLineForm(Form):
    description = StringField("Description", validators=[Optional(), Length(max=500)],
                              filters=[lambda value: value.strip() if isinstance(value, str) else value])
    amount = AmountField("Amount", required=False, allow_zero=True, allow_negative=True)
    taxed = BooleanField("Taxed")


class CreateInvoiceForm(FlaskForm):
    lines = FieldList(FormField(InvoiceLineForm), min_entries=5, max_entries=20)
    due_date = DateField("Due date", validators=[Optional()],
                         description="Empty: the default number of days after today.")
    draft = BooleanField("Save as a draft (not numbered, not emailed until published)")
    notes = text_box("Notes for the client", max_length=2000, textarea=True)

    def filled_lines(self) -> list[InvoiceLineForm]:
        return [line.form for line in self.lines
                if line.form.description.data or (line.form.amount.data or "").strip()]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        filled = self.filled_lines()
        for line in filled:
            if not line.description.data:
                line.description.errors.append("Describe this line.")
                valid = False
            if line.amount.amount is None and not line.amount.errors:
                line.amount.errors.append("Enter the line's amount.")
                valid = False
        if not filled:
            self.lines.entries[0].form.description.errors.append("Add at least one line.")
            valid = False
        return valid


# ---------------------------------------------------------------------------
# The shared machinery
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Button:
    """One button of a record's button bar."""

    label: str
    url: str
    icon: str = "fa-cog"
    style: str = "default"
    post: bool = False            # a one-click POST (with the CSRF token), else a link
    confirm: str | None = None    # asked before a one-click POST
    download: bool = False


class EngineActions:
    """Base of the mixins: adds the action permissions to the view's, renders the
    action forms and the show page with its button bar, runs engine calls."""

    action_permissions: tuple[str, ...] = ()
    show_template = SHOW_TEMPLATE

    def __init__(self, **kwargs):
        # Views that list their permissions need the actions' added (FAB refuses any other).
        if self.base_permissions is not None:
            names = [f"can_{name}" for name in self.action_permissions]
            self.base_permissions = [*self.base_permissions,
                                     *(name for name in names if name not in self.base_permissions)]
        super().__init__(**kwargs)

    # -- the show page -------------------------------------------------------

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        pk = self._deserialize_pk_if_composite(pk)
        widgets = self._show(pk)  # 404 for an unknown record
        record = self.datamodel.get(pk, self._base_filters)
        return self.render_template(
            self.show_template, pk=pk, title=self.record_title(record), widgets=widgets,
            related_views=self._related_views, record=record,
            buttons=[button for button in self.buttons(record) if button],
            button_form=ButtonForm(), **self.show_context(record))

    def record_title(self, record) -> str:
        return self.show_title

    def buttons(self, record) -> list[Button | None]:
        return []

    def show_context(self, record) -> dict:
        return {}

    # -- helpers for the actions ---------------------------------------------

    def may(self, action: str) -> bool:
        return self.appbuilder.sm.has_access(f"can_{action}", self.class_permission_name)

    def button(self, action: str, label: str, record, **options) -> Button | None:
        """A button to the action, if the user may use it."""
        if not self.may(action):
            return None
        return Button(label, url_for(f"{self.endpoint}.{action}", pk=record.id), **options)

    def record_or_404(self, pk: int):
        record = self.datamodel.get(pk, self._base_filters)
        if record is None:
            abort(404)
        return record

    def back_to(self, record):
        return redirect(url_for(f"{self.endpoint}.show", pk=record.id))

    # The engine's refusals shown to staff, and what a concurrent change is called.
    refusals: tuple[type[Exception], ...] = (BillingError, ServiceCommandError, GatewayError)
    conflict_message = ("Nothing was changed: the change conflicts with another one made at "
                        "the same time. Reload the page and try again.")

    def run(self, work, on_success) -> bool:
        """work() in one transaction; flash on_success(result) or the refusal."""
        try:
            with unit_of_work():
                result = work()
        except self.refusals as error:
            flash(f"Nothing was changed: {sentence(error)}", "danger")
            return False
        except IntegrityError:
            flash(self.conflict_message, "danger")
            return False
        flash(on_success(result), "success")
        return True

    def form_done(self, record, form, work, on_success) -> bool:
        """The action's form was posted valid and work() done (on_success flashed). After
        a refusal the record is read again, for the form page shown instead."""
        if not form.validate_on_submit():
            return False
        if self.run(work, on_success):
            return True
        db.session.refresh(record)
        return False

    def form_page(self, record, form, title: str, submit: str, *, facts=(), intro: str = "",
                  danger: bool = False, template: str = FORM_TEMPLATE, **context):
        return self.render_template(
            template, title=title, form=form, record=record, facts=list(facts), intro=intro,
            submit=submit, danger=danger,
            back_url=url_for(f"{self.endpoint}.show", pk=record.id), **context)

    def one_click(self, pk: int, work, on_success, run=None):
        """A button with no form but its CSRF token: do it (through run, self.run unless
        given) and go back to the record."""
        record = self.record_or_404(pk)
        if not ButtonForm().validate_on_submit():
            flash("The page had expired: nothing was changed. Please try again.", "danger")
            return self.back_to(record)
        (run or self.run)(lambda: work(record), on_success)
        return self.back_to(record)


def _label_of(status) -> str:
    from app.admin.catalog import status_label  # imported late: that module imports this one

    return status_label(status)


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------

class ClientActions(EngineActions):
    action_permissions = ("generate_invoices", "add_credit", "remove_credit", "create_invoice")
    show_template = "admin/client_show.html"

    def record_title(self, client) -> str:
        return client.full_name

    def buttons(self, client):
        return [
            self.button("generate_invoices", "Generate due invoices now", client,
                        icon="fa-refresh", post=True,
                        confirm="Invoice everything due for this client now?"),
            self.button("create_invoice", "Create invoice", client, icon="fa-file-text-o"),
            self.button("add_credit", "Add credit", client, icon="fa-plus-circle"),
            self.button("remove_credit", "Remove credit", client, icon="fa-minus-circle")
            if client.credit_balance > 0 else None,
        ]

    def show_context(self, client) -> dict:
        return {"summary": client_summary(client.id, business_today()),
                "status_label": _label_of(client.status)}

    @expose("/generate_invoices/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("generate_invoices")
    def generate_invoices(self, pk):
        client = self.record_or_404(pk)
        if not ButtonForm().validate_on_submit():
            flash("The page had expired: nothing was changed. Please try again.", "danger")
            return self.back_to(client)
        try:
            counts = staff_actions.generate_for_client(client.id, business_today(),
                                                       actor=current_actor())
        except BillingError as error:
            flash(f"No invoice was generated: {sentence(error)}", "danger")
            return self.back_to(client)
        for message in counts.get("errors", []):
            flash(f"Invoice generation failed: {message}", "danger")
        created = counts.get("invoices", 0)
        if created:
            totals = ", ".join(f"{money(amount):,.2f} {code}"
                               for code, amount in sorted(counts.get("amounts", {}).items()))
            flash(f"{plural(created, 'invoice')} generated "
                  f"({plural(counts.get('items', 0), 'line')}, {totals}).", "success")
        elif not counts.get("errors"):
            flash("Nothing is due for this client today: no invoice was generated.", "info")
        return self.back_to(client)

    def _credit_page(self, pk: int, adding: bool):
        client = self.record_or_404(pk)
        form = CreditForm()
        change = credit.add_credit if adding else credit.remove_credit
        if self.form_done(
                client, form,
                lambda: change(client.id, form.amount.amount, form.description.data,
                               actor=current_actor()),
                lambda entry: f"{client.currency.format(abs(entry.amount))} credit "
                              f"{'added' if adding else 'removed'}: the balance is now "
                              f"{client.currency.format(entry.balance_after)}."):
            return self.back_to(client)
        return self.form_page(
            client, form, f"{'Add' if adding else 'Remove'} credit: {client.full_name}",
            "Add credit" if adding else "Remove credit",
            facts=[("Credit balance", client.currency.format(client.credit_balance))],
            intro=f"Amounts are in the client's currency, {client.currency.code}.")

    @expose("/add_credit/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("add_credit")
    def add_credit(self, pk):
        return self._credit_page(pk, adding=True)

    @expose("/remove_credit/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("remove_credit")
    def remove_credit(self, pk):
        return self._credit_page(pk, adding=False)

    @expose("/create_invoice/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("create_invoice")
    def create_invoice(self, pk):
        client = self.record_or_404(pk)
        form = CreateInvoiceForm()
        if form.validate_on_submit():
            lines = [invoicing.InvoiceLine(type="", rel_id=None, description=line.description.data,
                                           amount=line.amount.amount, taxed=line.taxed.data)
                     for line in form.filled_lines()]
            status = InvoiceStatus.DRAFT if form.draft.data else InvoiceStatus.UNPAID
            invoice_id = None

            def create():
                nonlocal invoice_id
                invoice = invoicing.create_invoice(
                    client.id, lines, issue_date=business_today(), due_date=form.due_date.data,
                    status=status, notes=form.notes.data or None, actor=current_actor())
                invoice_id = invoice.id
                return invoice

            if self.run(create, lambda invoice: f"Invoice {invoicing.invoice_label(invoice)} "
                                                f"created ({invoice.status}) for "
                                                f"{invoice.currency.format(invoice.total)}."):
                return redirect(url_for("InvoiceView.show", pk=invoice_id))
        return self.form_page(
            client, form, f"Create invoice: {client.full_name}", "Create invoice",
            template="admin/actions/create_invoice.html",
            intro=f"Lines in {client.currency.code}; a negative amount is a discount. Taxes "
                  "are worked out from the client's country and the ticked lines.")


# ---------------------------------------------------------------------------
# Invoice
# ---------------------------------------------------------------------------

def gateway_choices(invoice: Invoice) -> list[tuple[str, str]]:
    rows = db.session.execute(select(PaymentGateway.module, PaymentGateway.display_name)
                              .where(PaymentGateway.enabled.is_(True))
                              .order_by(PaymentGateway.sort_order, PaymentGateway.display_name))
    choices = [(module, name) for module, name in rows]
    known = {module for module, _ in choices}
    if invoice.payment_method and invoice.payment_method not in known:
        choices.append((invoice.payment_method, invoice.payment_method))
    return choices or [MANUAL_GATEWAY]


def invoice_figures(invoice: Invoice) -> list[tuple[str, str]]:
    fmt = invoice.currency.format
    return [("Invoice", invoicing.invoice_label(invoice)), ("Status", invoice.status),
            ("Total", fmt(invoice.total)), ("Paid", fmt(invoice.amount_paid)),
            ("Balance due", fmt(invoice.balance))]


def payment_outcome(result: payments.PaymentResult) -> str:
    invoice = result.invoice
    fmt = invoice.currency.format
    text = (f"Payment of {fmt(result.transaction.amount_in)} recorded on invoice "
            f"{invoicing.invoice_label(invoice)}: balance {fmt(invoice.balance)}, {invoice.status}.")
    if result.credited > 0:
        text += f" {fmt(result.credited)} over the balance went to the client's credit."
    return text


class InvoiceActions(EngineActions):
    action_permissions = ("add_payment", "apply_credit", "cancel_invoice", "mark_unpaid",
                          "add_late_fee")

    def record_title(self, invoice) -> str:
        return f"Invoice {invoicing.invoice_label(invoice)}"

    def buttons(self, invoice):
        status = invoice.status
        overdue = status == InvoiceStatus.UNPAID and invoice.due_date < business_today()
        return [
            self.button("add_payment", "Add payment", invoice, icon="fa-money", style="success")
            if status in payments.PAYABLE_STATUSES else None,
            self.button("apply_credit", "Apply credit", invoice, icon="fa-credit-card")
            if status == InvoiceStatus.UNPAID and invoice.client.credit_balance > 0 else None,
            self.button("add_late_fee", "Add late fee", invoice, icon="fa-clock-o", post=True,
                        confirm="Add the late fee to this invoice?") if overdue else None,
            self.button("mark_unpaid", "Mark unpaid", invoice, icon="fa-undo", post=True,
                        confirm="Reopen this invoice as Unpaid?")
            if status in (InvoiceStatus.CANCELLED, InvoiceStatus.PAYMENT_PENDING,
                          InvoiceStatus.COLLECTIONS) else None,
            self.button("cancel_invoice", "Cancel invoice", invoice, icon="fa-ban", style="danger")
            if status in (InvoiceStatus.DRAFT, InvoiceStatus.UNPAID) else None,
            Button("Download PDF", url_for(f"{self.endpoint}.pdf", pk=invoice.id),
                   icon="fa-file-pdf-o", download=True),
        ]

    def show_context(self, invoice) -> dict:
        # Payments that can be refunded, for the "Refund" menu of the button bar.
        if not self.appbuilder.sm.has_access("can_refund", "TransactionView"):
            return {"refundable_payments": []}
        payments_made = db.session.scalars(
            select(Transaction).where(Transaction.invoice_id == invoice.id,
                                      Transaction.amount_in > 0,
                                      Transaction.refund_of_id.is_(None))
            .order_by(Transaction.date))
        return {"refundable_payments": list(payments_made)}

    @expose("/add_payment/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("add_payment")
    def add_payment(self, pk):
        invoice = self.record_or_404(pk)
        form = PaymentForm()
        form.gateway.choices = gateway_choices(invoice)
        if request.method == "GET":
            form.amount.data = money_text(invoice.balance)
            form.paid_on.data = business_today()
            form.gateway.data = invoice.payment_method or form.gateway.choices[0][0]
            form.fees.data = "0.00"
        if form.validate_on_submit():
            paid_on = form.paid_on.data
            paid_at = utcnow() if paid_on == business_today() else datetime.combine(paid_on, time(12))
            try:
                with unit_of_work():
                    result = payments.apply_payment(
                        invoice.id, form.amount.amount, invoice.currency.code, form.gateway.data,
                        form.transaction_id.data or None, fees=form.fees.amount or Decimal("0.00"),
                        paid_at=paid_at, actor=current_actor())
            except payments.DuplicatePaymentError as error:
                message = (f"Transaction ID {error.gateway_transaction_id} of {error.gateway} is "
                           "recorded already: this payment was applied before.")
                form.transaction_id.errors.append(message)
                flash(f"Nothing was recorded: {message}", "danger")
            except BillingError as error:
                flash(f"Nothing was recorded: {sentence(error)}", "danger")
            else:
                flash(payment_outcome(result), "success")
                return self.back_to(invoice)
            db.session.refresh(invoice)
        return self.form_page(invoice, form, f"Add payment: invoice {invoicing.invoice_label(invoice)}",
                              "Record payment", facts=invoice_figures(invoice),
                              intro=f"Amounts in {invoice.currency.code}, the invoice's currency.")

    @expose("/apply_credit/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("apply_credit")
    def apply_credit(self, pk):
        invoice = self.record_or_404(pk)
        form = ApplyCreditForm()
        if request.method == "GET":
            form.amount.data = money_text(client_payments.applicable_credit(invoice))
        if self.form_done(invoice, form,
                          lambda: credit.apply_credit_to_invoice(invoice.id, form.amount.amount,
                                                                 actor=current_actor()),
                          lambda entry: f"{invoice.currency.format(-entry.amount)} credit applied "
                                        f"to invoice {invoicing.invoice_label(invoice)}: balance "
                                        f"{invoice.currency.format(invoice.balance)}, "
                                        f"{invoice.status}; credit left "
                                        f"{invoice.currency.format(entry.balance_after)}."
                          if entry is not None else
                          f"Invoice {invoicing.invoice_label(invoice)} is {invoice.status}: "
                          "only its payment surcharge was left, and credit owes none."):
            return self.back_to(invoice)
        client = invoice.client
        return self.form_page(
            invoice, form, f"Apply credit: invoice {invoicing.invoice_label(invoice)}",
            "Apply credit", facts=[*invoice_figures(invoice),
                                   ("Client's credit", client.currency.format(client.credit_balance))])

    @expose("/cancel_invoice/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("cancel_invoice")
    def cancel_invoice(self, pk):
        invoice = self.record_or_404(pk)
        form = CancelInvoiceForm()
        if self.form_done(invoice, form,
                          lambda: invoicing.cancel_invoice(invoice.id, actor=current_actor(),
                                                           reason=form.reason.data),
                          lambda cancelled: f"Invoice {invoicing.invoice_label(cancelled)} cancelled."):
            return self.back_to(invoice)
        return self.form_page(
            invoice, form, f"Cancel invoice {invoicing.invoice_label(invoice)}", "Cancel invoice",
            facts=invoice_figures(invoice), danger=True,
            intro="A cancelled invoice keeps its number; credit applied to it goes back to "
                  "the client. It can be reopened with Mark unpaid.")

    @expose("/mark_unpaid/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("mark_unpaid")
    def mark_unpaid(self, pk):
        return self.one_click(
            pk, lambda invoice: invoicing.mark_unpaid(invoice.id, actor=current_actor(),
                                                      reason="reopened by staff"),
            lambda invoice: f"Invoice {invoicing.invoice_label(invoice)} is Unpaid again.")

    @expose("/add_late_fee/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("add_late_fee")
    def add_late_fee(self, pk):
        return self.one_click(
            pk, lambda invoice: staff_actions.add_late_fee(invoice.id, business_today(),
                                                           actor=current_actor()),
            lambda item: f"Late fee of {item.invoice.currency.format(item.amount)} added: the "
                         f"invoice total is now {item.invoice.currency.format(item.invoice.total)}.")

    # Anyone who may see the invoice may download it (made in a worker, kept by digest).
    @expose("/pdf/<int:pk>", methods=["GET"])
    @has_access
    @permission_name("show")
    def pdf(self, pk):
        return pdf_download("invoice", self.record_or_404(pk).id, self.render_template)


# ---------------------------------------------------------------------------
# Transaction
# ---------------------------------------------------------------------------

def refund_outcome(result: payments.RefundResult, where: str) -> str:
    invoice = result.invoice
    return (f"Refund of {invoice.currency.format(result.transaction.amount_out)} recorded {where}, "
            f"credit note {result.credit_note.number}; invoice {invoicing.invoice_label(invoice)} "
            f"is {invoice.status}.")


REFUND_WHERE = {"credit": "to the client's credit", "gateway": "through {gateway}",
                "elsewhere": "as refunded outside this system"}


class TransactionActions(EngineActions):
    action_permissions = ("refund",)

    @staticmethod
    def _refund(payment, form) -> payments.RefundResult:
        """Through the gateway: the gateway module sends the money back (processing);
        else the refund is recorded, to credit or as made elsewhere."""
        if form.refund_to.data == "gateway":
            return processing.refund_transaction(payment.id, form.amount.amount, form.reason.data,
                                                 actor=current_actor())
        to_credit = form.refund_to.data == "credit"
        return payments.refund_payment(
            payment.id, form.amount.amount, to_credit=to_credit, reason=form.reason.data,
            actor=current_actor(), on_date=business_today(),
            gateway_refund_id=None if to_credit else form.gateway_refund_id.data,
            already_refunded=not to_credit)  # made outside: the money has left already

    def record_title(self, transaction) -> str:
        return f"Transaction {transaction!r}"

    def buttons(self, transaction):
        refundable = staff_actions.refundable_amount(transaction.id) > 0
        return [self.button("refund", "Refund", transaction, icon="fa-undo", style="warning")
                if refundable else None]

    @expose("/refund/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("refund")
    def refund(self, pk):
        payment = self.record_or_404(pk)
        form = RefundForm()
        if request.method == "GET":
            form.amount.data = money_text(staff_actions.refundable_amount(payment.id))
        if self.form_done(payment, form, lambda: self._refund(payment, form),
                          lambda result: refund_outcome(result, REFUND_WHERE[form.refund_to.data]
                                                        .format(gateway=payment.gateway))):
            return self.back_to(payment)
        fmt = payment.currency.format
        return self.form_page(
            payment, form, f"Refund: {payment!r}", "Record refund", facts=[
                ("Payment", f"{fmt(payment.amount_in)} via {payment.gateway} on "
                            f"{payment.date:%Y-%m-%d}"),
                ("Invoice", invoicing.invoice_label(payment.invoice) if payment.invoice else "-"),
                ("Left to refund", fmt(staff_actions.refundable_amount(payment.id))),
            ], intro="A numbered credit note records the refund.")


# ---------------------------------------------------------------------------
# Service
# ---------------------------------------------------------------------------

def plan_choices(service) -> list[tuple[int, str]]:
    """Products on sale with a price in the client's currency."""
    priced = exists().where(ProductPricing.product_id == Product.id,
                            ProductPricing.currency_id == service.client.currency_id)
    rows = db.session.execute(select(Product.id, Product.name)
                              .where(Product.retired.is_(False), priced)
                              .order_by(Product.name))
    return [(product_id, name) for product_id, name in rows]


def service_label(service) -> str:
    return f"Service #{service.id} ({service.domain or service.product.name})"


class ServiceActions(EngineActions):
    action_permissions = ("suspend", "unsuspend", "terminate", "change_plan")

    def record_title(self, service) -> str:
        return service_label(service)

    def buttons(self, service):
        status = service.status
        live = status in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED)
        return [
            self.button("suspend", "Suspend", service, icon="fa-pause", style="warning")
            if status == ServiceStatus.ACTIVE else None,
            self.button("unsuspend", "Unsuspend", service, icon="fa-play", style="success")
            if status == ServiceStatus.SUSPENDED else None,
            self.button("change_plan", "Upgrade / downgrade", service, icon="fa-level-up")
            if status == ServiceStatus.ACTIVE else None,
            self.button("terminate", "Terminate", service, icon="fa-times", style="danger")
            if live else None,
        ]

    def _status_page(self, pk: int, form_class, verb: str, work, *, submit: str, danger=False,
                     intro: str = ""):
        service = self.record_or_404(pk)
        form = form_class()
        if self.form_done(service, form, lambda: work(service, form),
                          lambda result: f"{service_label(service)} {verb}: {result.message}"):
            return self.back_to(service)
        return self.form_page(service, form, f"{submit}: {service_label(service)}", submit,
                              danger=danger, intro=intro,
                              facts=[("Client", service.client.full_name),
                                     ("Product", service.product.name),
                                     ("Status", service.status)])

    @expose("/suspend/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("suspend")
    def suspend(self, pk):
        return self._status_page(
            pk, SuspendForm, "suspended",
            lambda service, form: staff_actions.suspend_service(
                service.id, form.reason.data, as_of=business_today(), notify=form.notify.data,
                actor=current_actor()),
            submit="Suspend", intro="The provisioning module suspends the account; only "
                                    "suspensions for \"Overdue on Payment\" lift by themselves "
                                    "when the client pays.")

    @expose("/unsuspend/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("unsuspend")
    def unsuspend(self, pk):
        return self._status_page(
            pk, UnsuspendForm, "unsuspended",
            lambda service, form: staff_actions.unsuspend_service(
                service.id, as_of=business_today(), notify=form.notify.data,
                actor=current_actor()),
            submit="Unsuspend")

    @expose("/terminate/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("terminate")
    def terminate(self, pk):
        return self._status_page(
            pk, TerminateForm, "terminated",
            lambda service, form: staff_actions.terminate_service(
                service.id, as_of=business_today(), actor=current_actor()),
            submit="Terminate", danger=True,
            intro="The provisioning module removes the account and its data, and the "
                  "service's addons end with it. This cannot be undone.")

    @expose("/change_plan/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("change_plan")
    def change_plan(self, pk):
        service = self.record_or_404(pk)
        form = ChangePlanForm()
        form.product.choices = plan_choices(service)
        if request.method == "GET":
            form.product.data = service.product_id
            form.cycle.data = service.billing_cycle
        quote = None
        if form.validate_on_submit():
            today = business_today()
            previewed = (request.form.get("previewed_product"), request.form.get("previewed_cycle"))
            chosen = (str(form.product.data), form.cycle.data)
            if request.form.get("step") == "apply" and previewed != chosen:
                flash("The plan chosen changed since the price was shown: check the new price, "
                      "then apply.", "warning")
            if request.form.get("step") == "apply" and previewed == chosen:
                if self.run(lambda: upgrades.apply_upgrade(service.id, form.product.data,
                                                           form.cycle.data, today,
                                                           actor=current_actor()),
                            lambda upgrade: f"{service_label(service)}: "
                                            + ("upgrade ordered, the invoice for "
                                               f"{service.client.currency.format(upgrade.amount)} "
                                               "carries it out once paid."
                                               if upgrade.status == upgrades.PENDING else
                                               "the new plan applies now.")):
                    return self.back_to(service)
                db.session.refresh(service)
            else:
                try:  # nothing is written: the price staff see before applying
                    quote = upgrades.quote_upgrade(service.id, form.product.data, form.cycle.data,
                                                   today)
                except BillingError as error:
                    flash(f"No price: {sentence(error)}", "danger")
        fmt = service.client.currency.format
        return self.form_page(
            service, form, f"Upgrade / downgrade: {service_label(service)}", "Apply the change",
            template="admin/actions/change_plan.html", quote=quote, format_money=fmt,
            facts=[("Client", service.client.full_name),
                   ("Current plan", f"{service.product.name} ({service.billing_cycle})"),
                   ("Recurring amount", fmt(service.recurring_amount)),
                   ("Next due date", service.next_due_date.isoformat()
                    if service.next_due_date else "-")])

