"""The gateways' public endpoints: vendors' webhooks and the return from payment pages.

Thin: each hands the request's raw data to app.gateways.processing. Webhooks are
authenticated by the vendor's signature, not by a session or a CSRF token."""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify, render_template_string, request

from app.billing.errors import BillingError
from app.gateways import processing
from app.gateways.base import GatewayError, PaymentStatus

blueprint = Blueprint("gateways", __name__, url_prefix="/gateways")

# Until the client portal has its invoice page, the return lands on this note.
_RETURN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><main><h1>{{ title }}</h1><p>{{ message }}</p></main></body></html>"""

_MESSAGES = {
    PaymentStatus.SUCCEEDED: ("Payment received", "Thank you: your payment has been applied."),
    PaymentStatus.PENDING: ("Payment processing", "Your payment is being processed; the invoice "
                            "is updated as soon as it completes."),
    PaymentStatus.REQUIRES_ACTION: ("Action needed", "Your bank asks you to confirm this payment."),
    PaymentStatus.FAILED: ("Payment not completed", "The payment did not go through: {error}"),
}


@blueprint.post("/<name>/webhook")
def webhook(name: str):
    # The signature covers the exact bytes received: read them unparsed.
    outcome = processing.process_webhook(name, request.headers, request.get_data(cache=False),
                                         remote_addr=request.remote_addr)
    return jsonify({"message": outcome.message, "outcomes": outcome.outcomes}), outcome.status_code


@blueprint.get("/<name>/return")
def payment_return(name: str):
    try:
        response = processing.process_return(name, request.args.to_dict())
    except (GatewayError, BillingError) as error:
        return render_template_string(_RETURN_PAGE, title="Payment not confirmed",
                                      message=str(error)), 400
    title, message = _MESSAGES[PaymentStatus(response.status)]
    return render_template_string(_RETURN_PAGE, title=title,
                                  message=message.format(error=response.error or "declined"))


def register_gateway_routes(app: Flask) -> None:
    app.register_blueprint(blueprint)
    csrf = app.extensions.get("csrf")
    if csrf is not None:  # a vendor cannot send a CSRF token; its signature stands instead
        csrf.exempt(blueprint)
