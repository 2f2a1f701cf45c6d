"""Staff screens of the Billing menu.

Invoices, their items, transactions, the credit ledger and credit notes are read-only
here: they change through billing-engine actions only, so a screen can never bypass
the billing rules (numbering, tax, credit, the activity log)."""
from __future__ import annotations

import json
from decimal import Decimal

from flask import abort, flash
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import SelectField
from wtforms.validators import Optional, StopValidation

from app.activity import current_actor
from app.admin.actions import InvoiceActions, TransactionActions, sentence
from app.admin.quote_actions import QuoteActions
from app.billing import quotes
from app.admin.catalog import (
    NumberBetween, Pattern, ReadOnlyModelView, TallyModelView, UniqueValue, format_amount,
    format_percent, money_in, not_negative, optional_text, secret_field, select_field,
    status_label,
)
from app.admin.clients import when, yes_no
from app.billing.errors import BillingError
from app.billing.numbering_counter import unit_of_work
from app.gateways import methods
from app.gateways.base import GatewayError
from app.models.billing import (
    BillableItem, CreditEntry, CreditNote, Invoice, InvoiceItem, InvoiceStatus, PaymentGateway,
    PayMethod, Quote, QuoteItem, QuoteStage, TaxRule, Transaction,
)
from app.models.gateways import GatewayEvent, PaymentAttempt

CLIENT_LABELS = {"client": "Client", "invoice": "Invoice", "currency": "Currency"}


def status_search(label: str, statuses) -> SelectField:
    """A status filter offered as a list of the statuses instead of free text."""
    return SelectField(label, choices=[(s.value, s.value) for s in statuses],
                       validators=[Optional()])


# ---------------------------------------------------------------------------
# Invoices and what hangs off them (read-only)
# ---------------------------------------------------------------------------


class InvoiceItemView(ReadOnlyModelView):
    datamodel = SQLAInterface(InvoiceItem)
    money_columns = money_in("invoice.currency", "amount")
    list_title = "Invoice Items"
    list_columns = ["invoice", "description", "type", "period_start", "period_end", "amount",
                    "taxed"]
    show_columns = ["invoice", "description", "type", "rel_id", "period_start", "period_end",
                    "due_date", "amount", "taxed"]
    search_columns = ["invoice", "description", "type"]
    base_order = ("id", "asc")
    label_columns = {**CLIENT_LABELS, "type": "Item type", "rel_id": "Related record #",
                     "period_start": "Period from", "period_end": "Period to"}
    formatters_columns = {"taxed": yes_no}


class TransactionView(TransactionActions, ReadOnlyModelView):
    datamodel = SQLAInterface(Transaction)
    money_columns = money_in("currency", "amount_in", "amount_out", "fees")
    list_title = "Transactions"
    list_columns = ["date", "client", "invoice", "gateway", "gateway_transaction_id",
                    "amount_in", "amount_out", "fees"]
    search_columns = ["date", "client", "invoice", "gateway", "gateway_transaction_id",
                      "description"]
    base_order = ("date", "desc")
    label_columns = {**CLIENT_LABELS, "date": "Date", "gateway": "Gateway",
                     "gateway_transaction_id": "Gateway transaction ID", "amount_in": "Amount in",
                     "amount_out": "Amount out", "fees": "Gateway fee",
                     "exchange_rate": "Exchange rate", "refund_of": "Refund of"}
    show_fieldsets = [
        ("Transaction", {"fields": ["date", "client", "invoice", "gateway",
                                    "gateway_transaction_id", "description", "refund_of"]}),
        ("Amounts", {"fields": ["currency", "amount_in", "amount_out", "fees",
                                "exchange_rate"]}),
    ]
    formatters_columns = {"date": when}
    # Refunds are engine actions: TransactionActions (app.admin.actions).


class CreditNoteView(ReadOnlyModelView):
    datamodel = SQLAInterface(CreditNote)
    money_columns = money_in("invoice.currency", "amount", "tax")
    list_title = "Credit Notes"
    list_columns = ["number", "date", "client", "invoice", "amount", "tax", "reason"]
    search_columns = ["number", "date", "client", "invoice", "reason"]
    base_order = ("date", "desc")
    label_columns = {**CLIENT_LABELS, "number": "Number", "amount": "Amount", "tax": "Tax",
                     "reason": "Reason"}
    show_columns = ["number", "date", "client", "invoice", "amount", "tax", "reason"]


class PaymentAttemptView(ReadOnlyModelView):
    """Payments asked of gateways (payment pages and stored-method charges), read-only."""

    datamodel = SQLAInterface(PaymentAttempt)
    money_columns = money_in(None, "amount")
    list_title = "Payment Attempts"
    list_columns = ["created_at", "gateway", "kind", "client", "invoice", "remote_id", "amount",
                    "currency", "status", "error"]
    show_columns = ["created_at", "updated_at", "gateway", "kind", "client", "invoice",
                    "pay_method", "run_date", "remote_id", "idempotency_key", "amount",
                    "currency", "status", "error", "action_url"]
    search_columns = ["gateway", "kind", "client", "invoice", "status", "remote_id", "created_at"]
    base_order = ("created_at", "desc")
    label_columns = {**CLIENT_LABELS, "created_at": "Started", "updated_at": "Last change",
                     "kind": "Kind", "pay_method": "Stored method", "run_date": "Run date",
                     "remote_id": "Gateway reference", "idempotency_key": "Idempotency key",
                     "action_url": "Action link", "error": "Why not finished"}
    formatters_columns = {"created_at": when, "updated_at": when}


class InvoiceView(InvoiceActions, ReadOnlyModelView):
    datamodel = SQLAInterface(Invoice)
    money_columns = money_in("currency", "subtotal", "tax1", "tax2", "credit_applied", "total",
                             "amount_paid", "balance")
    display_columns = {"number": repr}  # a draft has no number yet: "Draft #12"
    list_title = "Invoices"
    list_columns = ["number", "client", "date", "due_date", "total", "balance", "status"]
    search_columns = ["number", "client", "status", "date", "due_date", "paid_at",
                      "payment_method"]
    search_form_extra_fields = {"status": status_search("Status", InvoiceStatus)}
    base_order = ("date", "desc")
    # Read-only lists under the invoice: its items, payments (with the gateway's fee and
    # transaction id), credit notes, and every payment asked of a gateway for it.
    related_views = [InvoiceItemView, TransactionView, CreditNoteView, PaymentAttemptView]
    label_columns = {
        **CLIENT_LABELS, "number": "Invoice #", "date": "Invoice date", "due_date": "Due date",
        "paid_at": "Paid on", "cancelled_at": "Cancelled on", "subtotal": "Subtotal",
        "tax1_name": "Tax 1", "tax1_rate": "Tax 1 rate", "tax1": "Tax 1 amount",
        "tax2_name": "Tax 2", "tax2_rate": "Tax 2 rate", "tax2": "Tax 2 amount",
        "credit_applied": "Credit applied", "total": "Total", "amount_paid": "Paid",
        "balance": "Balance due", "reverse_charge": "Reverse charge (EU VAT)",
        "payment_method": "Payment method", "notes": "Notes for the client",
        "admin_notes": "Staff notes", "status": "Status",
    }
    show_fieldsets = [
        ("Invoice", {"fields": ["number", "client", "status", "date", "due_date", "paid_at",
                                "cancelled_at", "payment_method"]}),
        ("Amounts", {"fields": ["currency", "subtotal", "tax1_name", "tax1_rate", "tax1",
                                "tax2_name", "tax2_rate", "tax2", "reverse_charge",
                                "credit_applied", "total", "amount_paid", "balance"]}),
        ("Notes", {"fields": ["notes", "admin_notes"], "expanded": False}),
    ]
    formatters_columns = {"status": status_label, "tax1_rate": format_percent,
                          "tax2_rate": format_percent, "reverse_charge": yes_no,
                          "paid_at": when, "cancelled_at": when}
    # State changes (payment, credit, cancel, reopen, late fee) and the PDF are engine
    # actions: InvoiceActions (app.admin.actions), on the same rules as the portal,
    # the API and the daily run.


class CreditEntryView(ReadOnlyModelView):
    datamodel = SQLAInterface(CreditEntry)
    money_columns = money_in("client.currency", "amount", "balance_after")
    list_title = "Credit Ledger"
    list_columns = ["date", "client", "description", "amount", "balance_after", "invoice"]
    search_columns = ["date", "client", "description", "invoice"]
    base_order = ("date", "desc")
    label_columns = {**CLIENT_LABELS, "date": "Date", "description": "Description",
                     "amount": "Amount (+ added, - used)", "balance_after": "Balance after"}
    show_columns = ["date", "client", "description", "amount", "balance_after", "invoice"]
    formatters_columns = {"date": when}


# ---------------------------------------------------------------------------
# Billable items and quotes (edited by staff; the engine invoices them)
# ---------------------------------------------------------------------------

INVOICE_ACTIONS = [("none", "Don't invoice"), ("next_cron", "Invoice on the next daily run"),
                   ("next_invoice", "Add to the client's next invoice"),
                   ("due_date", "Invoice on the due date"), ("recurring", "Invoice recurring")]
RECUR_UNITS = [("", "-"), ("days", "Days"), ("weeks", "Weeks"), ("months", "Months"),
               ("years", "Years")]


class BillableItemView(TallyModelView):
    datamodel = SQLAInterface(BillableItem)
    money_columns = money_in("client.currency", "amount")
    list_title = "Billable Items"
    list_columns = ["client", "description", "amount", "hours", "invoice_action", "due_date",
                    "invoiced"]
    search_columns = ["client", "description", "invoice_action", "due_date", "invoiced"]
    base_order = ("id", "desc")
    label_columns = {**CLIENT_LABELS, "invoice_action": "Invoice action",
                     "due_date": "Due date", "recur_every": "Repeat every",
                     "recur_unit": "Repeat unit", "recur_for": "Repeat times (0 = for ever)",
                     "invoice_count": "Times invoiced", "invoiced": "Invoiced",
                     "created_at": "Created"}
    add_columns = edit_columns = [
        "client", "description", "amount", "hours", "invoice_action", "due_date",
        "recur_every", "recur_unit", "recur_for"]
    show_columns = [*add_columns, "invoice_count", "invoiced", "created_at"]
    formatters_columns = {"invoiced": yes_no, "created_at": when}
    validators_columns = {
        "amount": [not_negative("The amount")],
        "hours": [not_negative("Hours")],
        "recur_every": [NumberBetween(0, message="Cannot be negative.")],
        "recur_for": [NumberBetween(0, message="Cannot be negative.")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "invoice_action": select_field("Invoice action", INVOICE_ACTIONS, default="next_cron"),
        "recur_unit": select_field("Repeat unit", RECUR_UNITS, required=False),
    }


class QuoteItemView(TallyModelView):
    """Lines of a quote; the quote's totals are worked out again by the quotes engine
    on every change, and an accepted quote's lines no longer change."""

    datamodel = SQLAInterface(QuoteItem)
    money_columns = money_in("quote.currency", "unit_price")
    list_title = "Quote Items"
    list_columns = ["quote", "description", "quantity", "unit_price", "discount_percent",
                    "taxed"]
    base_order = ("id", "asc")
    add_columns = edit_columns = show_columns = [
        "quote", "description", "quantity", "unit_price", "discount_percent", "taxed"]
    label_columns = {"unit_price": "Unit price", "discount_percent": "Discount"}
    formatters_columns = {"discount_percent": format_percent, "taxed": yes_no}
    validators_columns = {
        "quantity": [NumberBetween(1, message="The quantity is at least 1.")],
        "unit_price": [not_negative("The unit price")],
        "discount_percent": [NumberBetween(Decimal("0"), Decimal("100"),
                                           "The discount is 0 to 100 percent.")],
    }

    def before_save(self, item, is_created):
        quotes.refresh_totals(item.quote, adding=item)

    def before_delete(self, item):
        quotes.refresh_totals(item.quote, without=item)


class QuoteView(QuoteActions, TallyModelView):
    datamodel = SQLAInterface(Quote)
    money_columns = money_in("currency", "subtotal", "tax1", "tax2", "total")
    list_title = "Quotes"
    list_columns = ["id", "subject", "client", "valid_until", "total", "stage"]
    search_columns = ["subject", "client", "stage", "valid_until"]
    search_form_extra_fields = {"stage": status_search("Stage", QuoteStage)}
    base_order = ("id", "desc")
    related_views = [QuoteItemView]
    label_columns = {**CLIENT_LABELS, "id": "Quote #", "valid_until": "Valid until",
                     "customer_notes": "Notes for the client", "admin_notes": "Staff notes",
                     "accepted_at": "Accepted on", "invoice_id": "Invoice #",
                     "tax1": "Tax 1", "tax2": "Tax 2"}
    # Totals are worked out by the engine from the items: never typed in here.
    add_columns = edit_columns = [
        "subject", "client", "stage", "currency", "valid_until", "proposal", "customer_notes",
        "admin_notes"]
    show_fieldsets = [
        ("Quote", {"fields": ["id", "subject", "client", "stage", "valid_until", "accepted_at",
                              "invoice_id"]}),
        ("Amounts", {"fields": ["currency", "subtotal", "tax1", "tax2", "total"]}),
        ("Text", {"fields": ["proposal", "customer_notes", "admin_notes"], "expanded": False}),
    ]
    formatters_columns = {"stage": status_label, "accepted_at": when}
    # Accepted is reached with the Accept button only (it makes the invoice).
    add_form_extra_fields = edit_form_extra_fields = {
        "stage": select_field("Stage", [(s.value, s.value) for s in QuoteStage
                                        if s != QuoteStage.ACCEPTED],
                              default=QuoteStage.DRAFT.value),
    }

    def before_save(self, item, is_created):
        if item.client is not None:
            # Quotes are in the client's currency, like its invoices.
            item.currency = item.client.currency
        quotes.refresh_totals(item)


# ---------------------------------------------------------------------------
# Settings of billing: taxes, gateways, stored payment methods
# ---------------------------------------------------------------------------


class TaxRuleView(TallyModelView):
    datamodel = SQLAInterface(TaxRule)
    list_title = "Tax Rules"
    list_columns = ["level", "name", "country", "state", "rate"]
    search_columns = ["level", "name", "country", "state"]
    base_order = ("level", "asc")
    add_columns = edit_columns = show_columns = ["level", "name", "country", "state", "rate"]
    label_columns = {"level": "Level", "rate": "Rate"}
    description_columns = {
        "country": "Two-letter country code (e.g. GB); empty for every country.",
        "state": "Empty for every state.",
        "rate": "Percent, e.g. 20 for 20%.",
    }
    formatters_columns = {"rate": format_percent}
    validators_columns = {
        "country": [Pattern(r"[A-Z]{2}", "A country is a two-letter code such as US or GB.",
                            case="upper")],
        "rate": [NumberBetween(Decimal("0"), Decimal("100"),
                               "A tax rate is at least 0 and below 100 percent.",
                               maximum_inclusive=False)],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "level": select_field("Level", [(1, "Level 1"), (2, "Level 2 (compound or second tax)")],
                              coerce=int, default=1),
    }


def json_object(form, field):
    if not field.data or not field.data.strip():
        return
    try:
        parsed = json.loads(field.data)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise StopValidation('Credentials are a JSON object, e.g. {"api_key": "..."}.')


class PaymentGatewayView(TallyModelView):
    datamodel = SQLAInterface(PaymentGateway)
    list_title = "Payment Gateways"
    list_columns = ["display_name", "module", "enabled", "test_mode", "currencies",
                    "sort_order"]
    search_columns = ["display_name", "module", "enabled"]
    base_order = ("sort_order", "asc")
    secret_columns = ("credentials",)
    label_columns = {"display_name": "Name", "test_mode": "Test mode",
                     "currencies": "Currencies", "credentials": "Credentials",
                     "surcharge_percent": "Surcharge (%)", "surcharge_fixed": "Surcharge (fixed)",
                     "sort_order": "Sort order"}
    add_fieldsets = edit_fieldsets = show_fieldsets = [
        ("Gateway", {"fields": ["display_name", "module", "enabled", "test_mode", "currencies",
                                "sort_order", "instructions"]}),
        ("Credentials", {"fields": ["credentials"]}),
        ("Surcharge", {"fields": ["surcharge_percent", "surcharge_fixed"]}),
    ]
    formatters_columns = {"enabled": yes_no, "test_mode": yes_no,
                          "surcharge_percent": format_percent, "surcharge_fixed": format_amount}
    validators_columns = {
        "module": [Pattern(r"[a-z][a-z0-9_]{1,49}", "A module name is lowercase letters, "
                           "digits and underscores, e.g. stripe.", case="lower"),
                   UniqueValue(PaymentGateway, "module", "The gateway {value} is set up already.")],
        "surcharge_percent": [NumberBetween(Decimal("0"), Decimal("100"),
                                            "The surcharge is 0 to 100 percent.")],
        "surcharge_fixed": [not_negative("The surcharge")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "currencies": optional_text(
            "Currencies", "Codes separated by commas, e.g. USD,EUR; empty for all.",
            max_length=255, validators=[Pattern(
                r"[A-Z]{3}(?:,[A-Z]{3})*",
                "List 3-letter currency codes separated by commas, e.g. USD,EUR.",
                case="upper")]),
        "credentials": secret_field("Credentials (JSON)", textarea=True,
                                    validators=[json_object]),
    }


class PayMethodView(ReadOnlyModelView):
    """Saved at the gateway, kept here as its token: read-only, and a delete removes
    the method at the gateway first (app.gateways.methods.delete_method)."""

    datamodel = SQLAInterface(PayMethod)
    base_permissions = ["can_list", "can_show", "can_delete"]
    list_title = "Stored Pay Methods"
    list_columns = ["client", "gateway", "kind", "brand", "last4", "expiry_month",
                    "expiry_year", "is_default"]
    search_columns = ["client", "gateway", "kind", "is_default"]
    base_order = ("id", "desc")
    secret_columns = ("token",)
    label_columns = {**CLIENT_LABELS, "kind": "Type", "last4": "Last 4 digits",
                     "expiry_month": "Expiry month", "expiry_year": "Expiry year",
                     "is_default": "Default", "token": "Gateway token"}
    show_columns = ["client", "gateway", "kind", "token", "brand", "last4", "expiry_month",
                    "expiry_year", "description", "is_default", "created_at"]
    description_columns = {"token": "The gateway's token for the card or account; a card "
                                    "number is never stored."}
    formatters_columns = {"is_default": yes_no}

    def _delete(self, pk):
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        label = f"{item.brand or item.kind} ending {item.last4 or '????'}"
        try:
            with unit_of_work():
                methods.delete_method(item.id, actor=current_actor())
        except (BillingError, GatewayError) as error:
            flash(f"Nothing was removed: {sentence(error)}", "danger")
        else:
            flash(f"{label} removed at the gateway and here.", "success")
        self.update_redirect()


class GatewayEventView(ReadOnlyModelView):
    """Webhook events received from gateways, each applied once (read-only)."""

    datamodel = SQLAInterface(GatewayEvent)
    list_title = "Gateway Events"
    list_columns = ["received_at", "gateway", "type", "object_id", "invoice", "outcome"]
    show_columns = ["received_at", "gateway", "event_id", "type", "object_id", "invoice",
                    "outcome", "summary"]
    search_columns = ["gateway", "type", "event_id", "object_id", "outcome", "received_at"]
    base_order = ("received_at", "desc")
    client_path = None
    label_columns = {**CLIENT_LABELS, "received_at": "Received", "event_id": "Event ID",
                     "object_id": "Vendor object", "type": "Event type"}
    formatters_columns = {"received_at": when}


def register(appbuilder) -> None:
    menu = dict(category="Billing", category_icon="fa-file-text-o")
    appbuilder.add_view(InvoiceView, "Invoices", icon="fa-file-text-o", **menu)
    appbuilder.add_view_no_menu(InvoiceItemView)
    appbuilder.add_view(TransactionView, "Transactions", icon="fa-exchange", **menu)
    appbuilder.add_view(CreditEntryView, "Credit Ledger", icon="fa-book", **menu)
    appbuilder.add_view(CreditNoteView, "Credit Notes", icon="fa-undo", **menu)
    appbuilder.add_view(BillableItemView, "Billable Items", icon="fa-clock-o", **menu)
    appbuilder.add_view(QuoteView, "Quotes", icon="fa-file-o", **menu)
    appbuilder.add_view_no_menu(QuoteItemView)
    appbuilder.add_view(TaxRuleView, "Tax Rules", icon="fa-percent", **menu)
    appbuilder.add_view(PaymentGatewayView, "Payment Gateways", icon="fa-credit-card", **menu)
    appbuilder.add_view(PayMethodView, "Stored Pay Methods", icon="fa-lock", **menu)
    appbuilder.add_view(PaymentAttemptView, "Payment Attempts", icon="fa-hourglass-half", **menu)
    appbuilder.add_view(GatewayEventView, "Gateway Events", icon="fa-bell-o", **menu)
