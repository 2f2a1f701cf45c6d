"""Celery tasks: thin, each calls one engine function. Arguments are ids, dates as
ISO text and numbers, never objects (JSON carries them between machines).

daily_run fans the daily automation out: for each step, in order, one
run_step_chunk task per chunk of clients (a chord), whose completion starts the next
step. Any number of workers on any number of machines share the chunks. Every
chunk task goes to the queue daily_run itself came from, so a dedicated queue
(`daily_run.apply_async(queue="billing")`) keeps the whole run on its workers.
"""
from __future__ import annotations

from datetime import date

from celery import chord, group

from app.billing import automation
from app.extensions import celery


def _queue_of(task) -> str | None:
    """The queue this task was delivered from (None when it runs in-process)."""
    info = getattr(task.request, "delivery_info", None) or {}
    return info.get("routing_key") or None


def _on_queue(signature, queue: str | None):
    return signature.set(queue=queue) if queue else signature


def _start_step(index: int, as_of_iso: str, chunk_size: int | None, queue: str | None) -> None:
    if index >= len(automation.STEPS):
        return
    step = automation.STEPS[index]
    units = automation.units_of(step, chunk_size)
    if not units:  # no client at all: nothing to wait for
        _start_step(index + 1, as_of_iso, chunk_size, queue)
        return
    header = group(_on_queue(run_step_chunk.si(step, as_of_iso, *(unit or (None, None))), queue)
                   for unit in units)
    chord(header)(_on_queue(continue_daily_run.si(index + 1, as_of_iso, chunk_size), queue))


@celery.task(name="app.tasks.daily_run", bind=True)
def daily_run(self, as_of_iso: str | None = None, chunk_size: int | None = None) -> dict:
    """Start the daily automation for as_of_iso (YYYY-MM-DD; default: today in the
    business's timezone). Returns at once; the steps follow one another."""
    as_of = automation.parse_run_date(as_of_iso) if as_of_iso else automation.business_today()
    _start_step(0, as_of.isoformat(), chunk_size, _queue_of(self))
    return {"date": as_of.isoformat(), "steps": list(automation.STEPS)}


@celery.task(name="app.tasks.continue_daily_run", bind=True)
def continue_daily_run(self, index: int, as_of_iso: str, chunk_size: int | None = None) -> None:
    """The previous step finished on every chunk: start step number `index`."""
    _start_step(index, as_of_iso, chunk_size, _queue_of(self))


@celery.task(name="app.tasks.run_step_chunk", bind=True)
def run_step_chunk(self, step: str, as_of_iso: str, low: int | None = None,
                   high: int | None = None) -> dict:
    """One step for client ids low..high (None, None: all / a global step), recorded
    as an AutomationRun row. A failure is recorded, not raised, so the run goes on."""
    client_range = None if low is None else (int(low), int(high))
    return automation.run_step(step, date.fromisoformat(as_of_iso), client_range,
                               worker=self.request.hostname)


@celery.task(name="app.tasks.send_queued_email")
def send_queued_email(batch_size: int = 100) -> dict:
    from app.notifications.sender import send_queued

    return send_queued(batch_size)


@celery.task(name="app.tasks.renew_paid_domains")
def renew_paid_domains(invoice_id: int) -> list[dict]:
    """Renew at their registrars the domains a paid invoice renews (each once)."""
    from app.extensions import db
    from app.registrars.domains import renew_paid_domains as renew

    results = renew(invoice_id)
    db.session.commit()
    return [{"domain_id": r.domain_id, "success": r.success, "message": r.message}
            for r in results]


@celery.task(name="app.tasks.sweep_pending_payments")
def sweep_pending_payments() -> dict:
    """Hourly: payment-page payments whose webhook never came, looked up and applied."""
    from app.gateways.sweep import sweep_pending_payments as sweep

    return automation.jsonable(sweep())
