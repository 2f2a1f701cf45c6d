"""`flask cron run`: the daily automation in this process (the embedded default;
production runs the same steps through Celery beat and workers)."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

cron_cli = AppGroup("cron", help="The daily automation (billing, dunning, suspensions, email).")


def _parse_date(ctx, param, value):
    if value is None:
        return None
    from app.billing.automation import AutomationError, parse_run_date

    try:
        return parse_run_date(value)
    except AutomationError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-03-01")


def _check_step(ctx, param, value):
    if value is None:
        return None
    from app.billing.automation import STEPS

    if value not in STEPS:
        raise click.BadParameter(f"unknown step {value!r}; steps: {', '.join(STEPS)}")
    return value


@cron_cli.command("run")
@click.option("--date", "as_of", callback=_parse_date, metavar="YYYY-MM-DD",
              help="Run for this business date (default: today). Steps done for that date are skipped.")
@click.option("--only", callback=_check_step, metavar="STEP", help="Run only this step.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None,
              help="Clients per chunk (default: AUTOMATION_CHUNK_SIZE or 1000).")
def run_command(as_of, only, chunk_size) -> None:
    """Run the daily automation now and print what it did."""
    from app.billing.automation import business_today, run_daily

    as_of = as_of or business_today()
    bar = None

    def progress(done: int, total: int, step: str, chunk: str) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=f"Daily run {as_of.isoformat()}",
                                    show_pos=True, item_show_func=lambda item: item)
            bar.__enter__()
        bar.update(1, f"{step} [{chunk}]")

    try:
        summary = run_daily(as_of, only=only, progress=progress, size=chunk_size)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(format_summary(summary))
    failed = sum(counts.get("chunks_failed", 0) for counts in summary["steps"].values())
    if failed:
        raise click.ClickException(f"{failed} step chunk(s) failed; run again to retry them")


def _amounts(amounts: dict) -> str:
    return ", ".join(f"{code} {amount}" for code, amount in sorted(amounts.items())) or "nothing"


def format_summary(summary: dict) -> str:
    steps = summary["steps"]

    def count(step: str, key: str) -> int:
        return int(steps.get(step, {}).get(key, 0))

    generation = steps.get("generate_invoices", {})
    reminders = steps.get("send_reminders", {})
    reminder_total = sum(int(reminders.get(kind, 0)) for kind in ("unpaid", "first", "second", "third"))
    email = steps.get("send_email", {})
    lines = [
        f"Daily run for {summary['date']}",
        f"  Invoices created:     {count('generate_invoices', 'invoices')} "
        f"({count('generate_invoices', 'items')} lines; {_amounts(generation.get('amounts', {}))})",
        f"  Reminders sent:       {reminder_total} "
        f"(unpaid {reminders.get('unpaid', 0)}, 1st {reminders.get('first', 0)}, "
        f"2nd {reminders.get('second', 0)}, 3rd {reminders.get('third', 0)})",
        f"  Late fees added:      {count('add_late_fees', 'fees')} "
        f"({_amounts(steps.get('add_late_fees', {}).get('amounts', {}))})",
        f"  Unsuspensions:        {count('unsuspend_paid', 'unsuspended')}",
        f"  Suspensions:          {count('suspend_overdue', 'suspended')}",
        f"  Terminations:         {count('terminate_overdue', 'terminated')}",
        f"  Cancellations:        {count('process_cancellations', 'cancelled')}",
        f"  Tickets closed:       {count('close_inactive_tickets', 'closed')}",
        f"  Emails sent:          {int(email.get('sent', 0)) + int(email.get('outbox', 0))}",
        f"  Errors:               {len(summary['errors'])}",
    ]
    skipped = sum(counts.get("chunks_skipped", 0) for counts in steps.values())
    if skipped:
        lines.append(f"  Already done for this date (skipped): {skipped} step chunk(s)")
    for message in summary["errors"][:20]:
        lines.append(f"    - {message}")
    if len(summary["errors"]) > 20:
        lines.append(f"    ... and {len(summary['errors']) - 20} more (see the automation log)")
    return "\n".join(lines)


def register_cron_cli(app: Flask) -> None:
    app.cli.add_command(cron_cli)
