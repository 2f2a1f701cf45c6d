"""Command-line entry points: flask setup, flask admin create, flask demo seed."""
import click
from flask import Flask
from flask.cli import AppGroup
from flask_migrate import upgrade

from app.extensions import db

admin_cli = AppGroup("admin", help="Staff accounts.")
demo_cli = AppGroup("demo", help="Demo data.")


@click.command("setup")
def setup_command() -> None:
    """Migrate the database to the newest schema and sync roles and permissions."""
    upgrade()
    from app.auth.bootstrap import sync_roles_and_permissions

    sync_roles_and_permissions()
    from reports.builtin import ensure_builtin_reports

    ensure_builtin_reports()
    db.session.commit()
    click.echo("Database migrated; roles, permissions and built-in reports in place.")


@admin_cli.command("create")
@click.option("--username", prompt=True)
@click.option("--email", prompt=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", default="Admin", show_default=True)
@click.option("--first-name", default="Staff")
@click.option("--last-name", default="Admin")
def create_admin(username, email, password, role, first_name, last_name) -> None:
    """Create a staff user (Admin by default)."""
    from app.auth.bootstrap import create_staff_user

    try:
        create_staff_user(username, email, password, role, first_name, last_name)
    except ValueError as error:
        raise click.ClickException(str(error))
    click.echo(f"Staff user {username} created with role {role}.")


@admin_cli.command("reset-2fa")
@click.option("--username", required=True)
@click.option("--reason", required=True, help="Why (kept in the activity log).")
def reset_two_factor(username: str, reason: str) -> None:
    """Turn off a user's two-factor login (lost device and recovery codes)."""
    from flask import current_app

    from app.activity import Actor
    from app.auth import twofactor
    from app.extensions import db

    user = current_app.appbuilder.sm.find_user(username=username)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    twofactor.reset(user, Actor.system("cli"), reason)
    db.session.commit()
    click.echo(f"Two-factor login turned off for {username}.")


@demo_cli.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing when clients exist already.")
def seed_demo_command(if_empty: bool) -> None:
    """Fill the database with a realistic demo hosting business."""
    from app.demo import seed_demo

    summary = seed_demo(only_if_empty=if_empty)
    click.echo(summary)


def register_cli(app: Flask) -> None:
    from reports.cli import reports_cli

    app.cli.add_command(reports_cli)
    app.cli.add_command(setup_command)
    app.cli.add_command(admin_cli)
    app.cli.add_command(demo_cli)
    from app.cron_cli import register_cron_cli

    register_cron_cli(app)
    from app.api_cli import register_api_cli

    register_api_cli(app)
