"""The signed-in user's own security: two-factor login (set up with a QR code drawn
here, confirmed with a first code, recovery codes shown once; turned off with a
code), the login password, and how long a portal session lasts.

Sessions: a portal session ends after PORTAL_IDLE_TIMEOUT_SECONDS without a
request, after PERMANENT_SESSION_LIFETIME from sign-in whatever the activity, and
when the user's password changes (each session keeps a mark of the password hash it
signed in with, so changing the password signs every other device out)."""
from __future__ import annotations

import hashlib
import hmac
import time

from flask import (
    current_app, flash, make_response, redirect, render_template, request, session, url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from app import settings
from app.activity import current_actor
from app.auth import twofactor
from app.extensions import db
from app.portal import portal
from app.portal.access import SELECTED_CLIENT_KEY, client_login_required, is_client_user
from app.portal.forms import ButtonForm, CodeForm
from app.portal.passwords import (
    MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, PasswordChangeError, change_login_password,
)

SIGNED_IN_AT_KEY = "portal_signed_in_at"
SEEN_AT_KEY = "portal_seen_at"
PASSWORD_MARK_KEY = "portal_password_mark"
DEFAULT_IDLE_TIMEOUT = 3600
# The last-seen time is written at most this often, not on every asset request.
SEEN_AT_RESOLUTION = 30


def now() -> float:
    """The clock sessions are timed with (tests replace it)."""
    return time.time()


def password_mark(user) -> str:
    """A short keyed digest of the password hash: changes whenever the password does."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, (user.password or "").encode(), hashlib.sha256).hexdigest()[:20]


def start_session_clock(user) -> None:
    moment = int(now())
    session[SIGNED_IN_AT_KEY] = moment
    session[SEEN_AT_KEY] = moment
    session[PASSWORD_MARK_KEY] = password_mark(user)


def _expiry_reason(user) -> str | None:
    moment = int(now())
    idle_limit = int(current_app.config.get("PORTAL_IDLE_TIMEOUT_SECONDS", DEFAULT_IDLE_TIMEOUT))
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    if moment - int(session.get(SEEN_AT_KEY, 0)) > idle_limit:
        return "idle"
    if moment - int(session.get(SIGNED_IN_AT_KEY, 0)) > lifetime:
        return "lifetime"
    if not hmac.compare_digest(str(session.get(PASSWORD_MARK_KEY, "")), password_mark(user)):
        return "password"
    return None


def expire_portal_session():
    if not current_user.is_authenticated or not is_client_user(current_user):
        return None
    if SIGNED_IN_AT_KEY not in session:
        # Signed in elsewhere (e.g. the staff login form): the clock starts now.
        start_session_clock(current_user)
        return None
    reason = _expiry_reason(current_user)
    if reason is None:
        if int(now()) - int(session.get(SEEN_AT_KEY, 0)) >= SEEN_AT_RESOLUTION:
            session[SEEN_AT_KEY] = int(now())
        return None
    logout_user()
    for key in (SELECTED_CLIENT_KEY, SIGNED_IN_AT_KEY, SEEN_AT_KEY, PASSWORD_MARK_KEY):
        session.pop(key, None)
    if reason == "password":
        flash(_("Your password was changed. Please sign in again."), "warning")
    else:
        flash(_("Your session has expired. Please sign in again."), "warning")
    wanted = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("portal.login", next=wanted))


def _run_first_after_translations(function) -> None:
    """Place a check before the portal's other checks (CSRF, area permissions), right
    after the one that switches to the portal's translations (its messages flash)."""
    functions = portal.before_request_funcs.setdefault(None, [])
    names = [f.__name__ for f in functions]
    position = names.index("use_portal_translations") + 1 if "use_portal_translations" in names else 0
    functions.insert(position, function)


# An ended session is sent to sign in before its permissions or form token are checked.
_run_first_after_translations(expire_portal_session)


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[
        DataRequired(message=_l("This field is required.")), Length(max=MAX_PASSWORD_LENGTH)])
    new_password = PasswordField(_l("New password"), validators=[
        DataRequired(message=_l("This field is required.")),
        Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH,
               message=_l("Use %(min)d to %(max)d characters.",
                          min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH))])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(message=_l("This field is required.")),
        EqualTo("new_password", message=_l("The two passwords differ."))])


def _enrolment_setup(row) -> dict | None:
    """What the set-up card shows while an enrolment waits for its first code."""
    if row is None or row.confirmed_at is not None:
        return None
    issuer = settings.get("CompanyName") or current_app.config.get("APP_NAME", "Tallyhost")
    uri = twofactor.provisioning_uri(row, current_user.email or current_user.username, issuer)
    return {
        # Drawn here by the qrcode package: the secret never goes to an image service.
        "qr_svg": Markup(twofactor.qr_code_svg(uri)),
        "secret": " ".join(row.secret[i:i + 4] for i in range(0, len(row.secret), 4)),
    }


def _security_page(password_form=None, code_form=None, status: int = 200):
    row = twofactor.get_enrolment(current_user.id)
    response = make_response(render_template(
        "portal/security.html", enrolment=row, setup=_enrolment_setup(row),
        enabled=row is not None and row.confirmed_at is not None,
        recovery_left=len(row.recovery_codes or []) if row is not None else 0,
        password_form=password_form or ChangePasswordForm(), code_form=code_form or CodeForm(),
        start_form=ButtonForm(),
        idle_minutes=int(current_app.config.get("PORTAL_IDLE_TIMEOUT_SECONDS",
                                                DEFAULT_IDLE_TIMEOUT)) // 60), status)
    # The set-up secret is on this page: never kept by a browser or proxy cache.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@portal.route("/security")
@client_login_required
def security():
    return _security_page()


@portal.route("/security/password", methods=["POST"])
@client_login_required
def change_password():
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _security_page(password_form=form, status=400)
    try:
        change_login_password(current_user, form.current_password.data, form.new_password.data,
                              current_actor())
    except PasswordChangeError as error:
        db.session.rollback()
        flash(_("Your password was not changed: %(reason)s", reason=str(error)), "danger")
        return _security_page(password_form=form, status=400)
    db.session.commit()
    # This session carries on; every other one ends at its next request.
    session[PASSWORD_MARK_KEY] = password_mark(current_user)
    flash(_("Your password has been changed. Other devices have been signed out."), "success")
    return redirect(url_for("portal.security"))


@portal.route("/security/two-factor/start", methods=["POST"])
@client_login_required
def twofactor_start():
    if not ButtonForm().validate_on_submit():
        return redirect(url_for("portal.security"))
    try:
        twofactor.start_enrolment(current_user)
    except twofactor.TwoFactorError:
        db.session.rollback()
        flash(_("Two-factor login is already on. Turn it off first to set up a new device."),
              "danger")
    else:
        db.session.commit()
    return _two_factor_section()


def _two_factor_section():
    return redirect(url_for("portal.security") + "#two-factor")


def _with_code(action, done: str):
    """Checks the posted two-factor code and runs action(user, code), committing and
    saying `done` when it works. (result, None), or (None, the response to send): the
    page with the form's error, or back to the section after a wrong code."""
    form = CodeForm()
    if not form.validate_on_submit():
        return None, _security_page(code_form=form, status=400)
    try:
        result = action(current_user, form.code.data)
    except twofactor.TwoFactorError:
        db.session.rollback()
        flash(_("That code is not valid (or was used already). Wait for the next code and try "
                "again."), "danger")
        return None, _two_factor_section()
    db.session.commit()
    flash(done, "success")
    return result, None


@portal.route("/security/two-factor/confirm", methods=["POST"])
@client_login_required
def twofactor_confirm():
    codes, response = _with_code(twofactor.confirm_enrolment, _("Two-factor login is on."))
    return response or _recovery_codes_page(codes)


@portal.route("/security/two-factor/recovery-codes", methods=["POST"])
@client_login_required
def twofactor_recovery_codes():
    codes, response = _with_code(twofactor.regenerate_recovery_codes,
                                 _("New recovery codes made; the old ones no longer work."))
    return response or _recovery_codes_page(codes)


@portal.route("/security/two-factor/disable", methods=["POST"])
@client_login_required
def twofactor_disable():
    response = _with_code(twofactor.disable, _("Two-factor login is off."))[1]
    return response or _two_factor_section()


def _recovery_codes_page(codes: list[str]):
    # Shown in this response only: the codes are kept nowhere in clear.
    response = make_response(render_template("portal/recovery_codes.html", codes=codes))
    response.headers["Cache-Control"] = "private, no-store"
    return response
