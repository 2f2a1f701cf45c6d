"""The client portal: a hand-written blueprint under /portal, styled with Bootstrap 5
served from this app (never from a CDN), translated with its own Flask-Babel
domain ("portal", catalogues in app/portal/translations).

register_portal(app) is called at the end of create_app(), after Flask-AppBuilder
(whose security manager, login manager, limiter and Babel the portal uses)."""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import flask_bootstrap
from flask import (
    Blueprint, Flask, Response, abort, current_app, g, render_template, request,
    send_from_directory, url_for,
)
from flask_babel import Domain, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from markupsafe import Markup
from wtforms.validators import ValidationError

from app import settings
from app.portal import access
from app.portal.formatting import date_text, money
from app.portal.html import safe_html
from app.portal.labels import status_badge, status_label

portal = Blueprint("portal", __name__, url_prefix="/portal")

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
translations = Domain(translation_directories=[str(TRANSLATIONS_DIR)], domain="portal")
LANGUAGES = {"en": "English", "de": "Deutsch"}

BOOTSTRAP_DIR = Path(flask_bootstrap.__file__).resolve().parent / "static" / "bootstrap5"
BOOTSTRAP_FILES = ("css/bootstrap.min.css", "js/bootstrap.min.js", "umd/popper.min.js")
BOOTSTRAP_VERSION = flask_bootstrap.Bootstrap5.bootstrap_version
# The icons the templates use (portal_icon(name)), served as one small sprite.
ICONS = (
    "arrow-left", "arrow-repeat", "book", "box-arrow-right", "building", "calendar-event",
    "chat-left-text", "check-circle", "chevron-right", "credit-card", "envelope",
    "exclamation-triangle", "file-earmark-pdf", "globe2", "hdd-stack", "info-circle", "key",
    "life-preserver", "lock", "megaphone", "paperclip", "pencil", "people", "person-circle",
    "plus-lg", "question-circle", "receipt", "search", "shield-lock", "speedometer2",
    "translate", "wallet2", "x-circle",
    # the store
    "cart3", "cart-plus", "tag", "arrow-right", "arrow-left-right", "shield-check", "bag-check",
    # account users, security, email history, service upgrades
    "person-plus", "trash", "arrow-up-circle", "eye", "clock-history", "check2", "phone",
    "envelope-open",
)
# Sign-in and reset forms: rate-limited like FAB's own login (AUTH_RATE_LIMIT).
_RATE_LIMITED_ENDPOINTS = ("portal.login", "portal.login_code", "portal.forgot_password",
                           "portal.reset_password", "portal.change_password",
                           "portal.twofactor_confirm", "portal.twofactor_disable",
                           "portal.twofactor_recovery_codes", "portal.invitation",
                           # the store's forms that make accounts or send email
                           "portal.register", "portal.checkout", "portal.resend_verification",
                           # a visitor's ticket and replies (no account, but they send email)
                           "portal.guest_new_ticket", "portal.guest_ticket_reply")


@portal.before_request
def use_portal_translations() -> None:
    translations.as_default()


@portal.before_request
def check_csrf() -> None:
    """Every state-changing request of the portal carries the session's CSRF token,
    whether or not its view uses a form class."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
    try:
        validate_csrf(token)
    except ValidationError as error:
        raise CSRFError(str(error)) from None


@portal.before_request
def check_area_permission() -> None:
    """The permission of the portal area the path is in (see access.AREA_PERMISSIONS)."""
    access.enforce_area_permission()


@portal.app_template_global()
def portal_icon(name: str, classes: str = "") -> Markup:
    href = url_for("portal.icons") + "#" + name
    return Markup('<svg class="bi {0}" aria-hidden="true" focusable="false">'
                  '<use href="{1}"></use></svg>').format(classes, href)


@portal.context_processor
def portal_context() -> dict:
    from app.portal.forms import ButtonForm  # forms import engine modules: loaded late

    membership = access.current_membership() if current_user.is_authenticated else None
    return {
        "company_name": settings.get("CompanyName"),
        "membership": membership,
        "memberships": g.get("portal_memberships", []) if membership else [],
        "can": access.can,
        "portal_user": current_user if membership else None,
        "button_form": ButtonForm(),
        "status_badge": status_badge,
        "status_label": status_label,
        "money": money,
        "date_text": date_text,
        "safe_html": safe_html,
        "current_locale": str(get_locale() or "en"),
        "languages": LANGUAGES,
        "bootstrap_version": BOOTSTRAP_VERSION,
    }


@portal.route("/assets/bootstrap/<path:filename>")
def bootstrap_asset(filename: str):
    if filename not in BOOTSTRAP_FILES:
        abort(404)
    return send_from_directory(BOOTSTRAP_DIR, filename, max_age=365 * 24 * 3600)


@cache
def _icon_sprite() -> str:
    """The few Bootstrap Icons the portal uses, cut from the package's 1 MB sprite."""
    source = (BOOTSTRAP_DIR / "icons" / "bootstrap-icons.svg").read_text(encoding="utf-8")
    symbols = []
    for name in ICONS:
        match = re.search(r'<symbol[^>]*\bid="%s".*?</symbol>' % re.escape(name), source, re.S)
        if match is None:
            raise LookupError(f"icon {name!r} is not in Bootstrap Icons")
        symbols.append(match.group(0))
    return '<svg xmlns="http://www.w3.org/2000/svg">' + "".join(symbols) + "</svg>"


@portal.route("/assets/icons.svg")
def icons():
    response = Response(_icon_sprite(), mimetype="image/svg+xml")
    response.cache_control.public = True
    response.cache_control.max_age = 24 * 3600
    return response


def _error_page(code: int, title: str, message: str):
    return render_template("portal/error.html", code=code, title=title, message=message), code


@portal.errorhandler(400)
def bad_request(error):
    if isinstance(error, CSRFError):
        return _error_page(400, _("Form expired"),
                           _("The form was open too long or came from another site. "
                             "Go back, reload the page and try again."))
    return _error_page(400, _("Bad request"), _("The request could not be understood."))


@portal.errorhandler(403)
def forbidden(error):
    return _error_page(403, _("Not allowed"),
                       _("Your login does not have access to this part of the account. "
                         "The account owner can give it to you."))


@portal.errorhandler(404)
def not_found(error):
    return _error_page(404, _("Not found"),
                       _("There is nothing here, or it belongs to another account."))


@portal.errorhandler(413)
def too_large(error):
    return _error_page(413, _("Too large"), _("The files sent were too large altogether."))


@portal.errorhandler(429)
def too_many_requests(error):
    return _error_page(429, _("Too many attempts"),
                       _("Please wait a minute before you try again."))


def _rate_limit_sign_in(app: Flask) -> None:
    if not app.config.get("AUTH_RATE_LIMITED"):
        return
    limit = app.appbuilder.sm.limiter.limit(app.config["AUTH_RATE_LIMIT"], methods=["POST"])
    for endpoint in _RATE_LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = limit(app.view_functions[endpoint])


def register_portal(app: Flask) -> None:
    # The view modules add their routes to the blueprint when imported.
    from app.portal import auth, support, views  # noqa: F401
    from app.portal import checkout, store  # noqa: F401  (the public store)
    from app.portal import payments  # noqa: F401  (paying, mass pay, add funds, pay methods)
    from app.portal import quotes  # noqa: F401  (the client's quotes)
    from app.portal import emails, security, service_actions, user_views  # noqa: F401
    from app.portal import domain_addons  # noqa: F401  (a domain's addons on and off)
    from app.portal import guest_tickets  # noqa: F401  (tickets of visitors without an account)

    app.register_blueprint(portal)
    _rate_limit_sign_in(app)
