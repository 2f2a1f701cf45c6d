"""Extension instances only; create_app() wires them to the Flask app."""
from celery import Celery
from flask_appbuilder import AppBuilder, Model
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate

# FAB's declarative Model is the base of every table, so the ab_* security tables
# and ours share one metadata (what Alembic compares against).
db = SQLA(model_class=Model)
migrate = Migrate()
appbuilder = AppBuilder()
celery = Celery("tallyhost")
