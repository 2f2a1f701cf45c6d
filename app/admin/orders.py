"""Staff screens of the Orders menu.

Orders, services and service addons are read-mostly: their status, amounts and
billing dates belong to the order, billing and provisioning engines, so the forms
here only edit what staff legitimately change by hand (notes, domain, login,
automation overrides and the next due date)."""
from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import select
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from app.admin.actions import ServiceActions
from app.admin.order_actions import OrderActions
from app.billing.due_dates import invoice_date_follows_due_date
from app.admin.clients import (
    AuditedModelView, CommaSeparatedChoicesField, UniqueIgnoringCase,
    WriteOnlyPasswordField, choice_field, money_text, not_negative, required,
    status_label, text_field, when, yes_no,
)
from app.extensions import db
from app.models.catalog import RECURRING_CYCLES, BillingCycle
from app.models.orders import (
    CancellationRequest, Order, OrderItem, OrderStatus, Promotion, PromotionType, Service,
    ServiceAddon, Upgrade,
)

CANCELLATION_TYPES = ("Immediate", "End of Billing Period")

DATE_FORMATTERS = {"created_at": when, "updated_at": when, "accepted_at": when,
                   "processed_at": when, "applied_at": when}


def require_due_date_when_recurring(item) -> None:
    if item.billing_cycle in RECURRING_CYCLES and item.next_due_date is None:
        raise ValueError("A recurring service needs a next due date.")


class OrderItemView(AuditedModelView):
    datamodel = SQLAInterface(OrderItem)
    list_title = "Order items"
    show_title = "Order item"
    label_columns = {"order": "Order", "kind": "Kind", "description": "Description",
                     "service": "Service", "domain": "Domain", "billing_cycle": "Billing cycle",
                     "quantity": "Quantity", "amount": "Amount", "setup_fee": "Setup fee",
                     "discount": "Discount"}
    list_columns = ["description", "kind", "billing_cycle", "quantity", "amount", "setup_fee",
                    "discount"]
    show_columns = ["order", "kind", "description", "service", "domain", "billing_cycle",
                    "quantity", "amount", "setup_fee", "discount"]
    search_columns = ["description", "kind", "billing_cycle"]
    base_order = ("id", "asc")
    money_columns = {"amount": "order.currency", "setup_fee": "order.currency",
                     "discount": "order.currency"}
    client_path = "order.client_id"
    base_permissions = ["can_list", "can_show"]


class OrderView(OrderActions, AuditedModelView):
    datamodel = SQLAInterface(Order)
    list_title = "Orders"
    show_title = "Order"
    edit_title = "Edit order notes"
    label_columns = {"order_number": "Order #", "client": "Client", "client_id": "Client ID",
                     "status": "Status", "currency": "Currency", "amount": "Total",
                     "promotion": "Promotion", "payment_method": "Payment method",
                     "invoice": "Invoice", "ip_address": "IP address",
                     "fraud_score": "Fraud score", "fraud_output": "Fraud check output",
                     "notes": "Notes", "accepted_at": "Accepted",
                     "accepted_by_id": "Accepted by (user ID)", "created_at": "Placed",
                     "updated_at": "Last changed"}
    list_columns = ["order_number", "created_at", "client", "amount", "payment_method",
                    "fraud_score", "status"]
    search_columns = ["order_number", "client_id", "status", "payment_method", "promotion",
                      "ip_address", "fraud_score", "created_at"]
    base_order = ("created_at", "desc")
    money_columns = {"amount": "currency"}
    formatters_columns = {"status": status_label, **DATE_FORMATTERS}
    show_fieldsets = [
        ("Order", {"fields": ["order_number", "client", "status", "created_at", "accepted_at",
                              "accepted_by_id"]}),
        ("Payment", {"fields": ["currency", "amount", "promotion", "payment_method",
                                "invoice"]}),
        ("Fraud check", {"fields": ["ip_address", "fraud_score", "fraud_output"]}),
        ("Notes", {"fields": ["notes"]}),
    ]
    # Orders are placed and accepted by the order engine; staff only annotate them.
    edit_columns = ["notes"]
    base_permissions = ["can_list", "can_show", "can_edit", "can_delete"]
    related_views = [OrderItemView]

    def before_delete(self, item):
        if item.status not in (OrderStatus.CANCELLED, OrderStatus.FRAUD):
            raise ValueError(f"Order {item.order_number} is {item.status}: only cancelled or "
                             "fraud orders can be deleted.")
        has_services = db.session.execute(
            select(Service.id).where(Service.order_id == item.id).limit(1)).first()
        if has_services:
            raise ValueError(f"Order {item.order_number} still has services; "
                             "they must be removed first.")


class ServiceAddonView(AuditedModelView):
    datamodel = SQLAInterface(ServiceAddon)
    list_title = "Service addons"
    show_title = "Service addon"
    edit_title = "Edit service addon"
    label_columns = {"service": "Service", "client": "Client", "client_id": "Client ID",
                     "addon": "Addon", "name": "Name", "status": "Status",
                     "billing_cycle": "Billing cycle", "setup_fee": "Setup fee",
                     "recurring_amount": "Recurring amount",
                     "registration_date": "Registered", "next_due_date": "Next due date",
                     "next_invoice_date": "Next invoice date",
                     "termination_date": "Terminated on", "created_at": "Created",
                     "updated_at": "Last changed"}
    list_columns = ["name", "service", "client", "billing_cycle", "recurring_amount",
                    "next_due_date", "status"]
    search_columns = ["name", "client_id", "addon", "status", "billing_cycle", "next_due_date"]
    base_order = ("next_due_date", "asc")
    money_columns = {"setup_fee": "client.currency", "recurring_amount": "client.currency"}
    formatters_columns = {"status": status_label, **DATE_FORMATTERS}
    show_fieldsets = [
        ("Addon", {"fields": ["name", "addon", "service", "client", "status"]}),
        ("Billing", {"fields": ["billing_cycle", "setup_fee", "recurring_amount",
                                "registration_date", "next_due_date", "next_invoice_date",
                                "termination_date"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "expanded": False}),
    ]
    edit_columns = ["name", "next_due_date"]
    description_columns = {"next_due_date": "Moving it also moves the next invoice date; "
                                            "the change is written to the activity log."}
    validators_columns = {"name": [required("Name is required.")]}
    base_permissions = ["can_list", "can_show", "can_edit"]

    def before_save(self, item, is_created):
        require_due_date_when_recurring(item)
        invoice_date_follows_due_date(item)


def no_open_cancellation(form, field) -> None:
    if field.data is None:
        return
    open_request = db.session.execute(select(CancellationRequest.id).where(
        CancellationRequest.service_id == field.data.id,
        CancellationRequest.processed_at.is_(None)).limit(1)).first()
    if open_request:
        raise ValidationError("This service has an open cancellation request already.")


class CancellationRequestView(AuditedModelView):
    datamodel = SQLAInterface(CancellationRequest)
    list_title = "Cancellation requests"
    show_title = "Cancellation request"
    add_title = "Request a cancellation"
    edit_title = "Edit cancellation request"
    label_columns = {"service": "Service", "type": "When", "reason": "Reason",
                     "processed_at": "Processed", "created_at": "Requested",
                     "updated_at": "Last changed"}
    list_columns = ["created_at", "service", "type", "reason", "processed_at"]
    search_columns = ["type", "reason", "processed_at", "created_at"]
    base_order = ("created_at", "desc")
    show_columns = ["service", "type", "reason", "created_at", "processed_at"]
    add_columns = ["service", "type", "reason"]
    edit_columns = ["type", "reason"]
    formatters_columns = DATE_FORMATTERS
    client_path = "service.client_id"
    validators_columns = {"service": [required("Choose the service to cancel."),
                                      no_open_cancellation]}
    _type = choice_field("When", CANCELLATION_TYPES, required_message="Choose when to cancel.")
    add_form_extra_fields = {"type": _type}
    edit_form_extra_fields = add_form_extra_fields

    def before_save(self, item, is_created):
        if item.processed_at is not None:
            raise ValueError("This request has been processed already and cannot change.")

    def before_delete(self, item):
        if item.processed_at is not None:
            raise ValueError("A processed cancellation request is kept as a record.")


class UpgradeView(AuditedModelView):
    """Upgrades are priced and applied by the upgrade engine: read-only here."""

    datamodel = SQLAInterface(Upgrade)
    list_title = "Upgrades and downgrades"
    show_title = "Upgrade"
    label_columns = {"service": "Service", "order_id": "Order ID", "kind": "What changes",
                     "old_value": "From", "new_value": "To", "amount": "Amount due",
                     "credit_amount": "Credit given",
                     "new_recurring_amount": "New recurring amount", "status": "Status",
                     "applied_at": "Applied", "created_at": "Requested",
                     "updated_at": "Last changed"}
    list_columns = ["created_at", "service", "kind", "old_value", "new_value", "amount",
                    "status"]
    show_columns = ["service", "order_id", "kind", "old_value", "new_value", "amount",
                    "credit_amount", "new_recurring_amount", "status", "created_at",
                    "applied_at"]
    search_columns = ["kind", "status", "created_at"]
    base_order = ("created_at", "desc")
    money_columns = {"amount": "service.client.currency",
                     "credit_amount": "service.client.currency",
                     "new_recurring_amount": "service.client.currency"}
    formatters_columns = {"status": status_label, **DATE_FORMATTERS}
    client_path = "service.client_id"
    base_permissions = ["can_list", "can_show"]


class ServiceView(ServiceActions, AuditedModelView):
    datamodel = SQLAInterface(Service)
    list_title = "Services"
    show_title = "Service"
    edit_title = "Edit service"
    label_columns = {"client": "Client", "client_id": "Client ID", "order": "Order",
                     "product": "Product", "server": "Server", "status": "Status",
                     "domain": "Domain", "username": "Username", "password": "Password",
                     "dedicated_ip": "Dedicated IP", "billing_cycle": "Billing cycle",
                     "quantity": "Quantity", "first_payment_amount": "First payment",
                     "recurring_amount": "Recurring amount", "payment_method": "Payment method",
                     "promotion": "Promotion", "registration_date": "Registered",
                     "next_due_date": "Next due date", "next_invoice_date": "Next invoice date",
                     "termination_date": "Terminated on",
                     "suspension_reason": "Suspension reason",
                     "override_auto_suspend": "Do not auto-suspend",
                     "suspend_until": "No auto-suspension until",
                     "override_auto_terminate": "Do not auto-terminate", "notes": "Admin notes",
                     "created_at": "Created", "updated_at": "Last changed"}
    list_columns = ["product", "domain", "client", "billing_cycle", "recurring_amount",
                    "next_due_date", "status"]
    search_columns = ["domain", "username", "client_id", "product", "server", "status",
                      "billing_cycle", "dedicated_ip", "next_due_date"]
    base_order = ("id", "desc")
    money_columns = {"first_payment_amount": "client.currency",
                     "recurring_amount": "client.currency"}
    secret_columns = ("password",)
    formatters_columns = {"status": status_label, "override_auto_suspend": yes_no,
                          "override_auto_terminate": yes_no, **DATE_FORMATTERS}
    show_fieldsets = [
        ("Service", {"fields": ["client", "product", "order", "status", "domain", "server",
                                "dedicated_ip", "username", "password"]}),
        ("Billing", {"fields": ["billing_cycle", "quantity", "first_payment_amount",
                                "recurring_amount", "payment_method", "promotion",
                                "registration_date", "next_due_date", "next_invoice_date",
                                "termination_date"]}),
        ("Suspension", {"fields": ["suspension_reason", "override_auto_suspend",
                                   "suspend_until", "override_auto_terminate"]}),
        ("Notes", {"fields": ["notes"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "expanded": False}),
    ]
    # Status, amounts and most dates move only through the engines' actions.
    edit_fieldsets = [
        ("Service", {"fields": ["domain", "server", "dedicated_ip", "username", "password"]}),
        ("Billing", {"fields": ["next_due_date"]}),
        ("Automation overrides", {"fields": ["override_auto_suspend", "suspend_until",
                                             "override_auto_terminate"]}),
        ("Notes", {"fields": ["notes"]}),
    ]
    description_columns = {
        "next_due_date": "Moving it also moves the next invoice date; the change is written "
                         "to the activity log.",
        "suspend_until": "Automatic suspension is skipped until this date.",
    }
    add_form_extra_fields = {}
    edit_form_extra_fields = {"password": WriteOnlyPasswordField("Password")}
    base_permissions = ["can_list", "can_show", "can_edit"]
    related_views = [ServiceAddonView, CancellationRequestView]

    def before_save(self, item, is_created):
        require_due_date_when_recurring(item)
        invoice_date_follows_due_date(item)


# -- promotions ------------------------------------------------------------------

def percentage_at_most_100(form, field) -> None:
    if form.type.data == PromotionType.PERCENTAGE.value and field.data is not None \
            and field.data > 100:
        raise ValidationError("A percentage discount cannot be more than 100.")


def not_before_start(form, field) -> None:
    start = form.start_date.data
    if field.data and start and field.data < start:
        raise ValidationError("The expiry date cannot be before the start date.")


def not_both_client_limits(form, field) -> None:
    if field.data and form.new_clients_only.data:
        raise ValidationError("A promotion cannot be for new clients only and for existing "
                              "clients only at once.")


def promotion_value(row) -> str:
    if row.value is None:
        return ""
    if row.type == PromotionType.PERCENTAGE.value:
        return f"{money_text(row.value)}%"
    return money_text(row.value)


def promotion_uses(row) -> str:
    return f"{row.uses} of {row.max_uses}" if row.max_uses else f"{row.uses} (no limit)"


class PromotionView(AuditedModelView):
    datamodel = SQLAInterface(Promotion)
    list_title = "Promotions"
    show_title = "Promotion"
    add_title = "Add promotion"
    edit_title = "Edit promotion"
    label_columns = {"code": "Code", "type": "Type", "value": "Value",
                     "recurring": "Recurring discount", "recur_for": "Recurs for (times)",
                     "cycles": "Billing cycles", "products": "Products",
                     "start_date": "Starts", "expiration_date": "Expires",
                     "max_uses": "Maximum uses", "uses": "Uses",
                     "once_per_client": "Once per client",
                     "new_clients_only": "New clients only",
                     "existing_clients_only": "Existing clients only", "notes": "Notes",
                     "created_at": "Created", "updated_at": "Last changed"}
    list_columns = ["code", "type", "value", "recurring", "uses", "start_date",
                    "expiration_date"]
    search_columns = ["code", "type", "recurring", "start_date", "expiration_date", "notes"]
    base_order = ("created_at", "desc")
    client_path = None
    display_columns = {"value": promotion_value, "uses": promotion_uses}
    formatters_columns = {"recurring": yes_no, "once_per_client": yes_no,
                          "new_clients_only": yes_no, "existing_clients_only": yes_no,
                          **DATE_FORMATTERS}
    _terms = ["code", "type", "value", "recurring", "recur_for", "cycles", "products"]
    _limits = ["start_date", "expiration_date", "max_uses", "once_per_client",
               "new_clients_only", "existing_clients_only"]
    show_fieldsets = [
        ("Discount", {"fields": _terms}),
        ("Limits", {"fields": _limits + ["uses"]}),
        ("Notes", {"fields": ["notes"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "expanded": False}),
    ]
    # uses is counted by the order engine.
    add_fieldsets = [
        ("Discount", {"fields": _terms}),
        ("Limits", {"fields": _limits}),
        ("Notes", {"fields": ["notes"]}),
    ]
    edit_fieldsets = add_fieldsets
    description_columns = {
        "value": "A percentage for percentage promotions, otherwise an amount in the "
                 "client's currency.",
        "recur_for": "How many renewals get the discount; 0 means every renewal.",
        "cycles": "Leave empty for every billing cycle.",
        "products": "Leave empty for every product.",
        "max_uses": "0 means no limit.",
    }
    validators_columns = {
        "value": [required("Give the discount value."), not_negative, percentage_at_most_100],
        "recur_for": [Optional(), NumberRange(min=0, message="This cannot be negative.")],
        "max_uses": [Optional(), NumberRange(min=0, message="This cannot be negative.")],
        "expiration_date": [not_before_start],
        "existing_clients_only": [not_both_client_limits],
    }
    _code = text_field(
        "Code", required("Give the promotion code."), Length(max=50),
        UniqueIgnoringCase(Promotion, "code", "A promotion with this code already exists."),
        filters=[lambda value: value.strip() if isinstance(value, str) else value])
    _type = choice_field("Type", PromotionType, required_message="Choose the type.")
    _cycles = CommaSeparatedChoicesField("Billing cycles", [str(c) for c in BillingCycle],
                                         validators=[Optional()])
    add_form_extra_fields = {"code": _code, "type": _type, "cycles": _cycles}
    edit_form_extra_fields = add_form_extra_fields


def register(appbuilder) -> None:
    category = dict(category="Orders", category_icon="fa-shopping-cart")
    appbuilder.add_view(OrderView, "Orders", icon="fa-shopping-cart", **category)
    appbuilder.add_view_no_menu(OrderItemView)
    appbuilder.add_view(ServiceView, "Services", icon="fa-server", **category)
    appbuilder.add_view(ServiceAddonView, "Service addons", icon="fa-puzzle-piece", **category)
    appbuilder.add_view(CancellationRequestView, "Cancellation requests", icon="fa-ban",
                        **category)
    appbuilder.add_view(UpgradeView, "Upgrades", icon="fa-level-up", **category)
    appbuilder.add_view(PromotionView, "Promotions", icon="fa-gift", **category)
