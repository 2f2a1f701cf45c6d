"""Extension instances only; create_app() wires them to the Flask app."""
from celery import Celery
from flask_appbuilder import AppBuilder, Model
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

# FAB's declarative Model is the base of every table, so the ab_* security tables
# and ours share one metadata (what Alembic compares against).
db = SQLA(model_class=Model)
migrate = Migrate()
appbuilder = AppBuilder()
celery = Celery("tallyhost")
# CSRF on every form post; machine-to-machine endpoints (REST API with tokens,
# WHMCS API, gateway webhooks) are exempted where they are registered.
csrf = CSRFProtect()
