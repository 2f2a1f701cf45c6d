"""Alembic environment: compares against Flask-AppBuilder's Model.metadata, the one
metadata that holds the ab_* security tables and every table of the app."""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from flask_appbuilder import Model
from sqlalchemy import TypeDecorator

config = context.config
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

engine = current_app.extensions["migrate"].db.engine
config.set_main_option(
    "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
)
target_metadata = Model.metadata


def render_item(type_, obj, autogen_context):
    """Custom column types migrate as their plain storage type (EncryptedText is Text)."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def configure_options(**extra):
    options = dict(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=engine.dialect.name == "sqlite",
    )
    options.update(current_app.extensions["migrate"].configure_args)
    options.update(extra)
    return options


def skip_empty_revisions(context_, revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        log.info("No changes in schema detected.")


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      **configure_options())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    with engine.connect() as connection:
        context.configure(connection=connection,
                          **configure_options(process_revision_directives=skip_empty_revisions))
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
