"""Portal sign-in (password, then the two-factor code when the user has it on),
sign-out, password reset by emailed link, the account switcher and the language.

Client users are Flask-AppBuilder users with the Client role: the one login
manager (FAB's) signs them in; the password is checked by the security manager's
authenticate_password and the code by app.auth.twofactor, with the staff login's
pending-session helpers. Staff are refused here, with a pointer to their login."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app.activity import Actor, log
from app.auth import twofactor
from app.auth.views import begin_pending_login, clear_pending_login, pending_login
from app.extensions import db
from app.models.base import utcnow
from app.portal import LANGUAGES, portal
from app.portal.access import (
    SELECTED_CLIENT_KEY, client_login_required, is_client_user, memberships_of, select_client,
)
from app.portal.forms import (
    CodeForm, ForgotPasswordForm, LanguageForm, LoginForm, NewPasswordForm, SwitchClientForm,
)
from app.portal.passwords import PasswordResetError, request_reset, user_for_token
from app.portal.passwords import reset_password as reset_with_token

LOCALE_CHOSEN_KEY = "portal_locale_chosen"
# The store's cart and currency survive signing in (see app.portal.store).
STORE_SESSION_KEYS = ("store_cart", "store_currency")


def safe_next(value: str | None) -> str:
    """Only a path inside the portal: never another site, never a staff screen."""
    if value and (value == "/portal" or value.startswith("/portal/")) \
            and ".." not in value and "\\" not in value:
        return value
    return url_for("portal.dashboard")


def _staff_refusal() -> str:
    return _("This sign-in is for clients. Staff members sign in at the staff login.")


def _complete_login(user, next_url: str | None):
    """Sign the user in with a fresh session (no value from before sign-in is kept
    but the chosen language) that expires after PERMANENT_SESSION_LIFETIME."""
    memberships = memberships_of(user.id)
    if not memberships:
        flash(_("Your login is not linked to any open client account. Please contact us."),
              "danger")
        return redirect(url_for("portal.login"))
    kept = {key: session[key] for key in ("locale", LOCALE_CHOSEN_KEY, *STORE_SESSION_KEYS)
            if key in session}
    session.clear()
    session.update(kept)
    login_user(user, remember=False)
    session.permanent = True
    from app.portal.security import start_session_clock  # the session rules live there

    start_session_clock(user)
    membership = memberships[0]
    select_client(membership)
    client = membership.client
    if not session.get(LOCALE_CHOSEN_KEY) and client.language in LANGUAGES:
        session["locale"] = client.language
    client.last_login_at = utcnow()
    log("client_login", f"{user.username} signed in to the client area", client,
        actor=Actor("client", user.username, user.id))
    db.session.commit()
    return redirect(safe_next(next_url))


@portal.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        if is_client_user(current_user):
            return redirect(url_for("portal.dashboard"))
        return redirect(url_for("portal.staff_refused"))
    form = LoginForm()
    next_url = request.args.get("next")
    if request.args.get("reason") == "no-account":
        flash(_("Your login is not linked to any open client account. Please contact us."),
              "danger")
    if form.validate_on_submit():
        user = current_app.appbuilder.sm.authenticate_password(form.email.data.strip(),
                                                               form.password.data)
        if user is None:
            flash(_("Wrong email address or password."), "danger")
        elif not is_client_user(user):
            return render_template("portal/login.html", form=form, staff_refused=True,
                                   staff_login_url=current_app.appbuilder.get_url_for_login), 403
        elif twofactor.is_enabled(user.id):
            clear_pending_login()
            begin_pending_login(user.id, safe_next(next_url))
            return redirect(url_for("portal.login_code"))
        else:
            return _complete_login(user, next_url)
    return render_template("portal/login.html", form=form)


@portal.route("/login/code", methods=["GET", "POST"])
def login_code():
    pending = pending_login()
    if pending is None:
        flash(_("Your sign-in has expired or was not started. Please sign in again."), "warning")
        return redirect(url_for("portal.login"))
    user = current_app.appbuilder.sm.get_user_by_id(pending["user_id"])
    if user is None or not user.active or not is_client_user(user):
        clear_pending_login()
        return redirect(url_for("portal.login"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            method = twofactor.verify_login(user, form.code.data)
        except twofactor.TwoFactorError:
            db.session.rollback()
            form.code.errors = [_("That code is not valid (or was used already). "
                                  "Wait for the next code and try again.")]
        else:
            db.session.commit()
            if method == "recovery":
                left = len(twofactor.get_enrolment(user.id).recovery_codes)
                flash(_("You signed in with a recovery code; %(left)d left.", left=left),
                      "warning")
            return _complete_login(user, pending.get("next"))
    return render_template("portal/login_code.html", form=form)


@portal.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        logout_user()
    session.pop(SELECTED_CLIENT_KEY, None)
    clear_pending_login()
    flash(_("You have signed out."), "success")
    return redirect(url_for("portal.login"))


@portal.route("/staff")
def staff_refused():
    """Where a signed-in staff member opening the portal is told why not."""
    if not current_user.is_authenticated or is_client_user(current_user):
        return redirect(url_for("portal.login"))
    return render_template("portal/staff_refused.html", message=_staff_refusal()), 403


@portal.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        request_reset(form.email.data,
                      lambda token: url_for("portal.reset_password", token=token, _external=True),
                      ip_address=request.remote_addr)
        db.session.commit()
        # The same answer whether or not the address is known.
        flash(_("If an account uses that address, we have emailed it a link to choose a new "
                "password. The link works once, for one hour."), "info")
        return redirect(url_for("portal.login"))
    return render_template("portal/forgot_password.html", form=form)


@portal.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        user_for_token(token)
    except PasswordResetError:
        return render_template("portal/reset_invalid.html"), 404
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            reset_with_token(token, form.password.data)
        except PasswordResetError:
            db.session.rollback()
            return render_template("portal/reset_invalid.html"), 404
        db.session.commit()
        flash(_("Your password has been changed. Sign in with the new one."), "success")
        return redirect(url_for("portal.login"))
    return render_template("portal/reset_password.html", form=form, token=token)


@portal.route("/switch", methods=["POST"])
@client_login_required
def switch_client():
    form = SwitchClientForm()
    if not form.validate_on_submit():
        abort(400)
    membership = next((m for m in memberships_of(current_user.id)
                       if m.client_id == form.client_id.data), None)
    if membership is None:
        abort(404)
    select_client(membership)
    flash(_("You are now managing %(name)s.", name=membership.client.display_name), "success")
    return redirect(url_for("portal.dashboard"))


@portal.route("/language", methods=["POST"])
def set_language():
    form = LanguageForm()
    if not form.validate_on_submit() or form.language.data not in LANGUAGES:
        abort(400)
    session["locale"] = form.language.data
    session[LOCALE_CHOSEN_KEY] = True
    return redirect(safe_next(form.next.data))
