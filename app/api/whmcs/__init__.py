"""The WHMCS-compatible API: POST /includes/api.php, form-encoded, as WHMCS's API
reference describes it.

Each call: the response type (json, the default, or xml); the credential
(identifier + secret, or the same pair in username + password) and where the call
comes from (the credential's allowed IPs, or its access key); the action; whether
the credential's role may run it; then the action itself, in one transaction that
is committed only if it succeeded. A refused or failed call changes nothing, and
every call is written to the API call log.
"""
from __future__ import annotations

import logging

from flask import Blueprint, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.activity import Actor
from app.api.credentials import ApiAuthError, authenticate, mark_used, role_allows
from app.api.whmcs import billing, clients, orders, support, system  # noqa: F401  (registers actions)
from app.api.whmcs import catalog, quotes, services  # noqa: F401  (registers actions)
from app.api.whmcs import domains  # noqa: F401  (registers the domain actions)
from app.api.whmcs.registry import ACTIONS, ApiError, Params
from app.api.whmcs.responses import RESPONSE_TYPES, render
from app.extensions import db
from app.models.api import ApiCallLog
from app.provisioning.base import ProvisioningError

log = logging.getLogger(__name__)

whmcs_api = Blueprint("whmcs_api", __name__)


class ApiDenied(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def api_actor(credential) -> Actor:
    return Actor("api", f"API: {credential.name}"[:100])


@whmcs_api.route("/includes/api.php", methods=["POST"])
def api_php():
    form = request.form
    response_type = (form.get("responsetype") or "json").strip().lower()
    action_name = (form.get("action") or "").strip()
    credential = None
    status, outcome = 200, "success"
    try:
        if response_type not in RESPONSE_TYPES:
            response_type = "json"
            raise ApiError("Invalid response type: use json or xml")
        credential = authenticate(form.get("identifier") or form.get("username"),
                                  form.get("secret") or form.get("password"),
                                  request.remote_addr, form.get("accesskey"))
        if not action_name:
            raise ApiError("Parameter action is required")
        found = ACTIONS.get(action_name.lower())
        if found is None:
            raise ApiError("Command Not Found")
        if not role_allows(credential.role, found.view, found.permission):
            raise ApiDenied(f'Invalid Permissions: API action "{action_name.lower()}" is not allowed')
        payload = found.handler(Params(form), api_actor(credential))
        db.session.commit()
        body = {"result": "success", **payload}
    except ApiAuthError as error:
        credential = error.credential
        status, outcome, body = 403, "denied", _error(error.message)
    except ApiDenied as error:
        status, outcome, body = 403, "denied", _error(error.message)
    except (ApiError, ValueError, ProvisioningError) as error:
        outcome, body = "error", _error(getattr(error, "message", None) or str(error))
    except IntegrityError:
        outcome, body = "error", _error("The change conflicts with existing records "
                                        "(a duplicate value, or a record still in use)")
    _record(credential, action_name, status, outcome, body)
    return render(body, response_type, action_name, status)


def _error(message: str) -> dict:
    db.session.rollback()
    return {"result": "error", "message": message}


def _record(credential, action_name: str, status: int, outcome: str, body: dict) -> None:
    """The call log entry (and the credential's last use), in its own transaction."""
    try:
        credential_id = credential.id if credential is not None else None
        if credential is not None and outcome != "denied":
            mark_used(credential, request.remote_addr)
        db.session.add(ApiCallLog(
            api="whmcs", credential_id=credential_id, endpoint=(action_name or "(none)")[:255],
            status_code=status, outcome=outcome,
            message=(body.get("message") or "")[:255] or None,
            ip_address=(request.remote_addr or "")[:45] or None))
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("the API call log could not be written")


def register_whmcs_api(app) -> None:
    app.register_blueprint(whmcs_api)
    # Machine-to-machine calls carry no CSRF token: the credential is their proof.
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(whmcs_api)
