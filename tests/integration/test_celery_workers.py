"""The daily run through Celery: one task per chunk of clients, steps in order.

With REDIS_URL set (CI, or locally REDIS_URL=redis://127.0.0.1:6379/14 with the
PostgreSQL DATABASE_URL), two real `celery worker` processes are started on a queue
of their own and share the run through the broker. Without it, the same tasks run
in-process (Celery's eager mode), so the fan-out and its result are still checked.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.billing.automation import GLOBAL_STEPS, STEPS, client_chunks
from app.extensions import celery
from app.models.billing import Invoice, InvoiceItem
from app.models.orders import Service
from app.models.system import AutomationRun
from tests import factories
from tests.conftest import PytestConfig

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL")
AS_OF = date(2026, 8, 1)
CLIENTS, SERVICES_PER_CLIENT, CHUNK_SIZE = 60, 5, 6


def build_business(db) -> set[tuple[int, date]]:
    """300 services of 60 clients, due on three different days; returns the
    (client, due date) pairs, one invoice each."""
    product = factories.product(name="Plan")
    expected = set()
    for _ in range(CLIENTS):
        client = factories.client()
        for n in range(SERVICES_PER_CLIENT):
            due = AS_OF + timedelta(days=n % 3)
            factories.service(client, product, next_due=due, amount="12.00")
            expected.add((client.id, due))
    db.session.commit()
    return expected


@contextmanager
def workers(count: int, queue: str, log_dir: Path):
    """`count` real worker processes consuming `queue`, stopped on exit."""
    env = {**os.environ, "DATABASE_URL": PytestConfig.SQLALCHEMY_DATABASE_URI, "REDIS_URL": REDIS_URL,
           "LOG_LEVEL": "WARNING"}
    celery_bin = str(Path(sys.executable).with_name("celery"))
    names = [f"worker{n}-{queue}@localhost" for n in range(1, count + 1)]
    processes = []
    try:
        for name in names:
            log = open(log_dir / f"{name.split('@')[0]}.log", "w")
            processes.append(subprocess.Popen(
                [celery_bin, "-A", "celery_app:celery", "worker", "--pool", "solo", "-Q", queue,
                 "-n", name, "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        _wait_until_ready(names, processes, log_dir)
        yield names
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_ready(names: list[str], processes, log_dir: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                logs = "\n".join(path.read_text()[-2000:] for path in log_dir.glob("*.log"))
                pytest.fail(f"a celery worker exited with {process.returncode}:\n{logs}")
        answered = {name for reply in celery.control.ping(destination=names, timeout=1.0) for name in reply}
        if answered == set(names):
            return
    pytest.fail(f"celery workers {names} did not answer within {timeout} seconds")


def wait_for_the_run(db, units: int, timeout: float = 240) -> list[AutomationRun]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()  # a fresh snapshot of what the workers committed
        rows = db.session.scalars(select(AutomationRun).where(AutomationRun.run_date == AS_OF)).all()
        if len(rows) == units and all(row.status in ("done", "failed") for row in rows):
            return rows
        time.sleep(0.5)
    pytest.fail(f"the daily run did not finish in {timeout} s: {Counter((r.step, r.status) for r in rows)}")


def expected_units(db) -> int:
    chunks = len(client_chunks(CHUNK_SIZE))
    return sum(1 if step in GLOBAL_STEPS else chunks for step in STEPS)


def assert_billed_once(db, expected: set[tuple[int, date]]) -> None:
    per_service = dict(db.session.execute(
        select(InvoiceItem.rel_id, func.count()).where(InvoiceItem.type == "Hosting")
        .group_by(InvoiceItem.rel_id)).all())
    service_ids = db.session.scalars(select(Service.id)).all()
    assert len(service_ids) == CLIENTS * SERVICES_PER_CLIENT
    assert {service_id: per_service.get(service_id, 0) for service_id in service_ids} == {
        service_id: 1 for service_id in service_ids}
    invoices = db.session.execute(select(Invoice.client_id, Invoice.due_date)).all()
    assert sorted(tuple(row) for row in invoices) == sorted(expected)
    numbers = db.session.scalars(select(Invoice.number)).all()
    assert sorted(numbers) == [f"INV-2026-{n:05d}" for n in range(1, len(expected) + 1)]


def test_daily_run_through_celery_bills_each_service_once(db, tmp_path):
    from app import tasks

    expected = build_business(db)
    units = expected_units(db)
    if REDIS_URL:
        queue = f"tallyhost-test-{uuid.uuid4().hex[:10]}"
        eager = celery.conf.task_always_eager
        celery.conf.task_always_eager = False
        try:
            with workers(2, queue, tmp_path) as names:
                tasks.daily_run.apply_async(args=[AS_OF.isoformat(), CHUNK_SIZE], queue=queue)
                rows = wait_for_the_run(db, units)
        finally:
            celery.conf.task_always_eager = eager
        assert {row.counts.get("worker") for row in rows} == set(names)  # the work was shared
    else:
        tasks.daily_run.delay(AS_OF.isoformat(), CHUNK_SIZE)
        db.session.rollback()
        rows = db.session.scalars(select(AutomationRun)).all()

    assert len(rows) == units
    assert Counter(row.status for row in rows) == {"done": units}
    # Each step started only once every chunk of the step before it had finished.
    finished = {step: max(row.finished_at for row in rows if row.step == step) for step in STEPS}
    started = {step: min(row.started_at for row in rows if row.step == step) for step in STEPS}
    for before, after in zip(STEPS, STEPS[1:]):
        assert finished[before] <= started[after], (before, after)
    generated = [row for row in rows if row.step == "generate_invoices"]
    assert sum(row.counts["invoices"] for row in generated) == len(expected)
    assert sum(row.counts["items"] for row in generated) == CLIENTS * SERVICES_PER_CLIENT
    assert_billed_once(db, expected)
