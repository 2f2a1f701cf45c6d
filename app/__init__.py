"""The application factory."""
from __future__ import annotations

import logging
import os
import sqlite3

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.extensions import appbuilder, celery, csrf, db, migrate

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
    csrf.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    init_celery(app)

    with app.app_context():
        from app import models  # noqa: F401  (registers every table on the metadata)

        appbuilder.init_app(app, db.session)
        from app.admin import register_admin

        register_admin(appbuilder)
        exempt_token_apis_from_csrf(appbuilder)

    register_csrf_error_page(app)
    from app.cli import register_cli

    register_cli(app)
    from app.portal import register_portal  # the client portal blueprint, /portal

    register_portal(app)
    from app.gateways.routes import register_gateway_routes  # /gateways/<name>/webhook|return

    register_gateway_routes(app)
    from app.registrars import hooks  # noqa: F401  (paid domain renewals go to the registrar)
    from app.billing.vies import install_vies_checker  # EU VAT numbers, when enabled

    install_vies_checker(app)
    return app


def register_csrf_error_page(app: Flask) -> None:
    """A post without a valid CSRF token changes nothing: say so on the page the
    user came from rather than with a bare 400."""
    from flask import flash, redirect, request
    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def csrf_refused(error):
        flash("The page had expired: nothing was changed. Please try again.", "danger")
        return redirect(request.referrer or "/")


def exempt_token_apis_from_csrf(builder) -> None:
    """FAB's REST APIs authenticate each call with a JWT or an API key, not a
    session cookie, so a CSRF token has nothing to protect there."""
    from flask_appbuilder.api import BaseApi

    for view in builder.baseviews:
        if isinstance(view, BaseApi) and getattr(view, "blueprint", None) is not None:
            csrf.exempt(view.blueprint)


def init_celery(app: Flask) -> None:
    """Celery tasks run inside an app context (Flask's FlaskTask pattern)."""

    class FlaskTask(celery.Task):
        def __call__(self, *args, **kwargs):
            # A task run in-process (eager) belongs to the app that called it, in a
            # context of its own (its own database session, as in a worker).
            target = current_app._get_current_object() if has_app_context() else app
            with target.app_context():
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
