"""`flask reports ...`: create the built-in reports, send the scheduled ones."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup

reports_cli = AppGroup("reports", help="Built-in and scheduled reports.")


def business_now() -> datetime:
    """Now on the business's wall clock (schedules name an hour of that clock)."""
    zone = current_app.config.get("BUSINESS_TIMEZONE") or "UTC"
    return datetime.now(ZoneInfo(zone)).replace(tzinfo=None)


@reports_cli.command("builtins")
def builtins_command() -> None:
    """Create the built-in reports that are missing (safe to run again)."""
    from reports.builtin import ensure_builtin_reports

    click.echo(f"{ensure_builtin_reports()} built-in report(s) created or updated.")


@reports_cli.command("send-due")
@click.option("--at", "at", default=None, help="Run as if it were this moment: YYYY-MM-DD HH:MM.")
def send_due_command(at: str | None) -> None:
    """Email every scheduled report whose moment has come (once per period)."""
    from reports.schedules import send_due

    try:
        now = datetime.strptime(at, "%Y-%m-%d %H:%M") if at else business_now()
    except ValueError:
        raise click.BadParameter(f"{at!r} is not YYYY-MM-DD HH:MM", param_hint="--at") from None
    outcomes = send_due(now)
    for outcome in outcomes:
        line = f"schedule {outcome.schedule_id} {outcome.period}: {outcome.status}"
        if outcome.messages:
            line += f" ({outcome.messages} email(s) queued)"
        if outcome.error:
            line += f" - {outcome.error}"
        click.echo(line)
    click.echo(f"{len(outcomes)} schedule(s) due.")
    if any(outcome.status == "failed" for outcome in outcomes):
        raise SystemExit(1)
