"""The application factory."""
from __future__ import annotations

import logging
import os
import sqlite3

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.extensions import appbuilder, celery, db, migrate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config: object | str | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "app", "static"),
        instance_path=os.path.join(ROOT, "instance"),
    )
    app.config.from_object(config or "config.Config")
    os.makedirs(app.instance_path, exist_ok=True)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))

    from app.auth.roles import ROLES

    app.config.setdefault("FAB_ROLES", ROLES)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    init_celery(app)

    with app.app_context():
        from app import models  # noqa: F401  (registers every table on the metadata)

        appbuilder.init_app(app, db.session)
        from app.admin import register_admin

        register_admin(appbuilder)

    from app.cli import register_cli

    register_cli(app)
    return app


def init_celery(app: Flask) -> None:
    """Celery tasks run inside an app context (Flask's FlaskTask pattern)."""

    class FlaskTask(celery.Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery.config_from_object(app.config["CELERY"])
    celery.Task = FlaskTask
    celery.set_default()
    app.extensions["celery"] = celery


@event.listens_for(Engine, "connect")
def _sqlite_enforces_foreign_keys(dbapi_connection, connection_record) -> None:
    """SQLite checks foreign keys only when asked, per connection: ask, so the
    embedded default refuses the same broken links PostgreSQL does."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
