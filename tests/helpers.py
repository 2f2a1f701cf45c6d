"""Helpers that many test modules share (data builders live in tests/factories.py)."""
from __future__ import annotations

import logging
import threading

from sqlalchemy import func, select


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def post_at_once(app, url: str, body: bytes, headers: dict, times: int = 10) -> tuple[list, list]:
    """POST one request `times` times at the same moment, each from its own thread with its
    own app context and test client, as a vendor's concurrent webhook deliveries arrive.
    Returns the sorted (status, outcomes) answers and what any thread raised."""
    start = threading.Barrier(times)
    answers, failures = [], []

    def post():
        try:
            with app.app_context():
                web = app.test_client()
                start.wait()
                answer = web.post(url, data=body, headers=headers)
                answers.append((answer.status_code, answer.get_json()["outcomes"]))
        except Exception as error:  # the caller asserts there were none
            failures.append(repr(error))

    threads = [threading.Thread(target=post) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sorted(answers), failures


def assert_rejection_logged(caplog, expected: str) -> None:
    """A warning says the webhook was rejected, and why."""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("rejected" in message and expected in message for message in warnings), warnings
