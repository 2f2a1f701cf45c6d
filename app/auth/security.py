"""The security manager: FAB's, with the app's own login flow (TOTP step)."""
from flask_appbuilder.security.sqla.manager import SecurityManager


class TallySecurityManager(SecurityManager):
    pass
