"""The security manager: FAB's, with the app's own login flow (TOTP step)."""
import logging

from flask import current_app
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_babel import lazy_gettext

from app.auth import twofactor
from app.auth.views import TallyAuthDBView, TwoFactorView

log = logging.getLogger(__name__)


class TallySecurityManager(SecurityManager):
    authdbview = TallyAuthDBView

    def authenticate_password(self, username: str, password: str):
        """The password step alone: the caller asks for the second factor next."""
        return super().auth_user_db(username, password)

    def auth_user_db(self, username, password):
        """FAB's password-only entry points (the REST API's JWT login) call this:
        they must not let in a user who has two-factor on, who uses an API key."""
        user = self.authenticate_password(username, password)
        if user is not None and twofactor.is_enabled(user.id):
            log.info("Password-only login refused for %s: two-factor is on", username)
            return None
        return user

    def register_views(self):
        super().register_views()
        if not current_app.config.get("FAB_ADD_SECURITY_VIEWS", True):
            return
        twofactor_view = self.appbuilder.add_view(
            TwoFactorView,
            "Two-Factor Login",
            icon="fa-key",
            label=lazy_gettext("Two-Factor Login"),
            category="Security",
        )
        if self.is_auth_limited:
            # FAB limits the POSTs of the auth view (password and code entry); the
            # other places that take a password or a code get the same limit.
            guarded = [twofactor_view] + [
                view for view in self.appbuilder.baseviews if isinstance(view, SecurityApi)
            ]
            for view in guarded:
                self.limiter.limit(self.auth_rate_limit, methods=["POST"])(view.blueprint)
