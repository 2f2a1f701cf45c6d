"""The sign-in screen with its two-factor step, and the user's two-factor page.

TallyAuthDBView replaces FAB's AuthDBView (see TallySecurityManager.authdbview):
a user with two-factor on is not signed in after the password; their id waits in
the session, for a few minutes, until a code is given at /login/code/. Both POST
routes live on this one view, so FAB's login rate limit (applied to the auth
view's blueprint) covers them both."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_appbuilder.baseviews import BaseView, expose
from flask_appbuilder.security.decorators import has_access, no_cache, permission_name
from flask_appbuilder.security.forms import LoginForm_db
from flask_appbuilder.security.views import AuthDBView
from flask_appbuilder.utils.base import get_safe_redirect
from flask_babel import lazy_gettext
from flask_login import login_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app.auth import twofactor
from app.extensions import db

PENDING_LOGIN_KEY = "twofactor_pending"
DEFAULT_PENDING_SECONDS = 300


class TwoFactorCodeForm(FlaskForm):
    code = StringField(
        lazy_gettext("Code"),
        validators=[DataRequired(message="Enter the 6-digit code from your app."), Length(max=40)],
    )


class PlainPostForm(FlaskForm):
    """A form with no field: its CSRF token guards a button."""


# The sign-in waiting for its second factor, kept in the (signed) session cookie.

def begin_pending_login(user_id: int, next_url: str) -> None:
    lifetime = current_app.config.get("TWO_FACTOR_PENDING_SECONDS", DEFAULT_PENDING_SECONDS)
    session[PENDING_LOGIN_KEY] = {
        "user_id": user_id,
        "expires_at": int(twofactor.now_timestamp()) + int(lifetime),
        "next": next_url,
    }


def pending_login() -> dict | None:
    """The sign-in waiting for a code, or None (never started, or expired)."""
    pending = session.get(PENDING_LOGIN_KEY)
    if not isinstance(pending, dict):
        return None
    if pending.get("expires_at", 0) < twofactor.now_timestamp():
        session.pop(PENDING_LOGIN_KEY, None)
        return None
    return pending


def clear_pending_login() -> None:
    session.pop(PENDING_LOGIN_KEY, None)


class TallyAuthDBView(AuthDBView):
    code_template = "auth/twofactor_code.html"
    code_title = lazy_gettext("Two-factor sign-in")

    @expose("/login/", methods=["GET", "POST"])
    @no_cache
    def login(self):
        if g.user is not None and g.user.is_authenticated:
            return redirect(self._get_safe_next_url())
        form = LoginForm_db()
        if form.validate_on_submit():
            next_url = get_safe_redirect(request.args.get("next", ""))
            user = self.appbuilder.sm.authenticate_password(form.username.data, form.password.data)
            if not user:
                flash(str(self.invalid_login_message), "warning")
                return redirect(self.appbuilder.get_url_for_login_with(next_url))
            if twofactor.is_enabled(user.id):
                begin_pending_login(user.id, next_url)
                return redirect(url_for(".login_code"))
            clear_pending_login()
            login_user(user, remember=False)
            return redirect(next_url)
        return self.render_template(
            self.login_template, title=self.title, form=form, appbuilder=self.appbuilder
        )

    @expose("/login/code/", methods=["GET", "POST"])
    @no_cache
    def login_code(self):
        if g.user is not None and g.user.is_authenticated:
            return redirect(self._get_safe_next_url())
        pending = pending_login()
        if pending is None:
            flash("Your sign-in has expired or was not started. Please sign in again.", "warning")
            return redirect(self.appbuilder.get_url_for_login)
        user = self.appbuilder.sm.get_user_by_id(pending["user_id"])
        if user is None or not user.is_active:
            clear_pending_login()
            flash(str(self.invalid_login_message), "warning")
            return redirect(self.appbuilder.get_url_for_login)
        form = TwoFactorCodeForm()
        if form.validate_on_submit():
            try:
                method = twofactor.verify_login(user, form.code.data)
            except twofactor.TwoFactorError as error:
                db.session.rollback()
                form.code.errors = [str(error)]
            else:
                db.session.commit()
                clear_pending_login()
                login_user(user, remember=False)
                if method == "recovery":
                    left = len(twofactor.get_enrolment(user.id).recovery_codes)
                    flash(f"You signed in with a recovery code; {left} left. "
                          "Make new ones on the Two-Factor Login page.", "warning")
                return redirect(get_safe_redirect(pending.get("next", "")))
        return self.render_template(
            self.code_template, title=self.code_title, form=form, appbuilder=self.appbuilder
        )


class TwoFactorView(BaseView):
    """The signed-in user's own two-factor set-up. Permissions: can_manage (see the
    page, turn off, new recovery codes) and can_enrol (set up, confirm)."""

    route_base = "/twofactor"
    default_view = "manage"
    manage_template = "auth/twofactor_manage.html"
    codes_template = "auth/twofactor_recovery_codes.html"

    @expose("/manage/")
    @has_access
    @permission_name("manage")
    def manage(self):
        row = twofactor.get_enrolment(g.user.id)
        setup = None
        if row is not None and row.confirmed_at is None:
            uri = twofactor.provisioning_uri(
                row, g.user.username, current_app.config.get("APP_NAME", "Tallyhost")
            )
            setup = {
                # Drawn locally by the qrcode package: no image fetched from anywhere.
                "qr_svg": Markup(twofactor.qr_code_svg(uri)),
                "secret": " ".join(row.secret[i:i + 4] for i in range(0, len(row.secret), 4)),
            }
        return self.render_template(
            self.manage_template,
            title="Two-factor login",
            enrolment=row,
            setup=setup,
            start_form=PlainPostForm(),
            code_form=TwoFactorCodeForm(),
            appbuilder=self.appbuilder,
        )

    @expose("/enrol/", methods=["POST"])
    @has_access
    @permission_name("enrol")
    def enrol(self):
        if not PlainPostForm().validate_on_submit():
            flash("The form expired; please try again.", "danger")
            return redirect(url_for(".manage"))
        try:
            twofactor.start_enrolment(g.user)
        except twofactor.TwoFactorError as error:
            db.session.rollback()
            flash(str(error), "danger")
        else:
            db.session.commit()
        return redirect(url_for(".manage"))

    @expose("/confirm/", methods=["POST"])
    @has_access
    @permission_name("enrol")
    def confirm(self):
        return self._with_code(
            twofactor.confirm_enrolment,
            "Two-factor login is on. Keep these recovery codes somewhere safe.",
        )

    @expose("/recovery-codes/", methods=["POST"])
    @has_access
    @permission_name("manage")
    def recovery_codes(self):
        return self._with_code(
            twofactor.regenerate_recovery_codes,
            "New recovery codes made; the old ones no longer work.",
        )

    @expose("/disable/", methods=["POST"])
    @has_access
    @permission_name("manage")
    def disable(self):
        def turn_off(user, code):
            twofactor.disable(user, code)

        return self._with_code(turn_off, "Two-factor login is off.")

    def _with_code(self, operation, success_message: str):
        """Run an operation that needs a code; show new recovery codes if it made some."""
        form = TwoFactorCodeForm()
        if not form.validate_on_submit():
            for errors in form.errors.values():
                for message in errors:
                    flash(message, "danger")
            return redirect(url_for(".manage"))
        try:
            codes = operation(g.user, form.code.data)
        except twofactor.TwoFactorError as error:
            db.session.rollback()
            flash(str(error), "danger")
            return redirect(url_for(".manage"))
        db.session.commit()
        flash(success_message, "success")
        if not codes:
            return redirect(url_for(".manage"))
        # Shown in this response only: the codes are not kept anywhere in clear.
        return self.render_template(
            self.codes_template, title="Your recovery codes", codes=codes,
            appbuilder=self.appbuilder,
        )
