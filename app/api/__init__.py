"""The APIs: the REST API (app.api.rest, FAB ModelRestApis with OpenAPI, JWT login and
API keys) and the WHMCS-compatible API (app.api.whmcs, POST /includes/api.php).

Every call to either is written to the API call log (app.models.api.ApiCallLog):
the WHMCS API logs its own calls (it knows the credential and the action); the REST
APIs are logged by an after_request hook on their blueprints."""
from __future__ import annotations

import logging

from flask import Flask, current_app, g, request
from flask_appbuilder.api import BaseApi
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db

log = logging.getLogger(__name__)


def register(appbuilder) -> None:
    """Add the REST APIs to FAB, log their calls, and mount the WHMCS-compatible API."""
    from app.api import rest
    from app.api.whmcs import register_whmcs_api

    rest.register(appbuilder)
    app = current_app._get_current_object()
    # FAB's Swagger UI page, less its online validator badge (an outside request).
    app.config.setdefault("FAB_API_SWAGGER_TEMPLATE", "api/swagger.html")
    app.after_request(log_rest_call)
    register_whmcs_api(app)


def _rest_blueprints(app: Flask) -> frozenset[str]:
    names = app.extensions.get("tally_rest_blueprints")
    if names is None:
        names = frozenset(view.blueprint.name for view in app.appbuilder.baseviews
                          if isinstance(view, BaseApi) and getattr(view, "blueprint", None))
        app.extensions["tally_rest_blueprints"] = names
    return names


def log_rest_call(response):
    """One ApiCallLog row per call of any FAB API blueprint (models, security, OpenAPI)."""
    if request.blueprint not in _rest_blueprints(current_app):
        return response
    from app.models.api import ApiCallLog

    user = getattr(g, "user", None)
    user_id = user.id if user is not None and getattr(user, "is_authenticated", False) else None
    status = response.status_code
    outcome = "success" if status < 400 else "denied" if status in (401, 403) else "error"
    message = None
    body = response.get_json(silent=True) if status >= 400 and response.is_json else None
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("msg") or "")[:255] or None
    try:
        # The view has committed its work or failed; what is left in the session is
        # a failed transaction's, which the request's teardown would discard anyway.
        db.session.rollback()
        db.session.add(ApiCallLog(api="rest", user_id=user_id,
                                  endpoint=f"{request.method} {request.path}"[:255],
                                  status_code=status, outcome=outcome, message=message,
                                  ip_address=(request.remote_addr or "")[:45] or None))
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("the API call log could not be written")
    return response
