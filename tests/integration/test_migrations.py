"""`flask db upgrade` from an empty database gives exactly the models' schema."""
import os
import uuid
from contextlib import contextmanager

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from tests.conftest import PytestConfig, on_postgres


def fresh_database_url(tmp_path) -> str:
    if not on_postgres():
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    name = f"tallyhost_migrate_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PytestConfig.SQLALCHEMY_DATABASE_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PytestConfig.SQLALCHEMY_DATABASE_URI.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    base, name = url.rsplit("/", 1)
    admin = create_engine(PytestConfig.SQLALCHEMY_DATABASE_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def migration_app(url: str) -> Flask:
    """A bare app with only the database and Alembic: a second full create_app would
    re-initialise the one shared AppBuilder under the test session's app."""
    import flask_appbuilder.security.sqla.models  # noqa: F401  (the ab_* tables, which ours reference)

    from app import ROOT, models  # noqa: F401  (every table on the metadata)
    from app.extensions import db, migrate

    bare = Flask("migrations")
    bare.config.update(SQLALCHEMY_DATABASE_URI=url, SECRET_KEY="migrations")
    db.init_app(bare)
    migrate.init_app(bare, db, directory=os.path.join(ROOT, "migrations"))
    return bare


@contextmanager
def database_at(tmp_path, revision: str):
    """A fresh database upgraded to `revision`, in the app context of a bare app; yields
    the db extension (a data migration's test inserts old rows, then calls upgrade()).
    The database is dropped afterwards."""
    from app.extensions import db

    url = fresh_database_url(tmp_path)
    app = migration_app(url)
    try:
        with app.app_context():
            upgrade(revision=revision)
            try:
                yield db
            finally:
                db.session.remove()
                db.engine.dispose()
    finally:
        drop_database(url)


def test_upgrade_from_empty_gives_the_models_schema(tmp_path):
    with database_at(tmp_path, "head") as db:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Model.metadata)
            tables = set(inspect(conn).get_table_names())
        assert differences == []
        assert {"ab_user", "ab_role", "clients", "invoices", "invoice_items"} <= tables
        # The history also goes back down to nothing.
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
