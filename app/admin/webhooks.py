"""Staff screens of outgoing webhooks (menu System): the endpoints, whose signing
secret is write-only and shown masked, and the read-only log of deliveries, where
a delivery can be sent again."""
from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_appbuilder import expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from wtforms.validators import URL, ValidationError

from app import webhooks
from app.activity import current_actor
from app.admin.catalog import secret_field
from app.admin.clients import AuditedModelView, required, when, yes_no
from app.events import EVENT_NAMES
from app.extensions import db
from app.models.api import WebhookDelivery, WebhookEndpoint


def known_events(form, field) -> None:
    try:
        field.data = webhooks.check_events(field.data)
    except webhooks.WebhookError as error:
        raise ValidationError(str(error))


class WebhookEndpointView(AuditedModelView):
    datamodel = SQLAInterface(WebhookEndpoint)
    list_title = "Webhook endpoints"
    show_title = "Webhook endpoint"
    add_title = "Add webhook endpoint"
    edit_title = "Edit webhook endpoint"
    label_columns = {"url": "URL", "events": "Events", "secret": "Signing secret",
                     "enabled": "Enabled", "description": "Description",
                     "created_at": "Created"}
    list_columns = ["url", "events", "enabled", "description"]
    search_columns = ["url", "events", "enabled", "description"]
    show_columns = ["url", "events", "secret", "enabled", "description", "created_at"]
    add_columns = edit_columns = ["url", "events", "secret", "enabled", "description"]
    base_order = ("id", "asc")
    secret_columns = ("secret",)
    client_path = None
    formatters_columns = {"enabled": yes_no, "created_at": when}
    validators_columns = {
        "url": [required("Give the URL to post to."),
                URL(require_tld=False, message="Enter a full URL such as "
                                               "https://example.com/hooks.")],
        "events": [required("Give at least one event, or * for all of them."), known_events],
    }
    description_columns = {
        "events": "Comma separated, or * for every event. Events: " + ", ".join(EVENT_NAMES),
        "secret": "Signs every body (X-Tallyhost-Signature, HMAC-SHA256).",
    }
    add_form_extra_fields = {"secret": secret_field("Signing secret", required=True)}
    edit_form_extra_fields = {"secret": secret_field("Signing secret")}


def resend_button(delivery_id) -> Markup:
    return Markup(
        '<form method="post" action="{}" style="display:inline">'
        '<input type="hidden" name="csrf_token" value="{}">'
        '<button type="submit" class="btn btn-xs btn-default">Resend</button></form>'
    ).format(url_for("WebhookDeliveryView.resend", pk=delivery_id), generate_csrf())


class WebhookDeliveryView(AuditedModelView):
    """Every event sent to an endpoint: written by the app, never edited."""

    datamodel = SQLAInterface(WebhookDelivery)
    list_title = "Webhook deliveries"
    show_title = "Webhook delivery"
    label_columns = {"id": "Delivery", "endpoint": "Endpoint", "event": "Event",
                     "payload": "Data", "status": "Status", "attempts": "Attempts",
                     "next_attempt_at": "Next try", "last_status_code": "Last HTTP status",
                     "last_error": "Last response or error", "delivered_at": "Delivered",
                     "created_at": "Created"}
    list_columns = ["created_at", "event", "endpoint", "status", "attempts",
                    "last_status_code", "id"]
    search_columns = ["event", "status", "endpoint", "created_at"]
    show_columns = ["id", "created_at", "event", "endpoint", "payload", "status", "attempts",
                    "next_attempt_at", "last_status_code", "last_error", "delivered_at"]
    base_order = ("id", "desc")
    base_permissions = ["can_list", "can_show", "can_resend"]
    client_path = None
    formatters_columns = {"created_at": when, "next_attempt_at": when,
                          "delivered_at": when, "id": resend_button}

    @expose("/resend/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("resend")
    def resend(self, pk):
        if db.session.get(WebhookDelivery, pk) is None:
            abort(404)
        delivery = webhooks.resend(pk, actor=current_actor())
        flash(f"Delivery #{pk} sent again: {delivery.status}"
              + (f" (HTTP {delivery.last_status_code})" if delivery.last_status_code else "")
              + ".", "success" if delivery.status == webhooks.DELIVERED else "warning")
        return redirect(url_for("WebhookDeliveryView.list"))


def register(appbuilder) -> None:
    category = dict(category="System", category_icon="fa-cogs")
    appbuilder.add_view(WebhookEndpointView, "Webhook endpoints", icon="fa-plug", **category)
    appbuilder.add_view(WebhookDeliveryView, "Webhook deliveries", icon="fa-paper-plane",
                        **category)
