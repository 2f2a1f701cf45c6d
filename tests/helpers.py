"""Helpers that many test modules share (data builders live in tests/factories.py)."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

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


# Rate limits are set up when an app starts, and the tests' app runs without them: these
# scripts run in a separate process that starts an app with them on (3 per minute,
# counters in memory, its own SQLite file), reachable as `app` and its test client `http`.
RATE_LIMITED_APP = """
import sys
from config import TestConfig
from app import create_app
from app.extensions import db

class Limited(TestConfig):
    SQLALCHEMY_DATABASE_URI = "sqlite:///" + sys.argv[1] + "/limits.db"
    UPLOAD_FOLDER = sys.argv[1]
    AUTH_RATE_LIMITED = True
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"
    AUTH_RATE_LIMIT = "3 per minute"

app = create_app(Limited)
with app.app_context():
    db.create_all()
http = app.test_client()
"""


def run_rate_limited(script: str, tmp_path) -> list[str]:
    """Run `script` against a rate-limited app in its own process; returns what it printed,
    line by line."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", RATE_LIMITED_APP + script, str(tmp_path)],
                            cwd=root, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root),
                                 "LOG_LEVEL": "ERROR"})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()


def connect_gateway(app, add_gateway, fake, live_url: str, module: str) -> None:
    """Turn the gateway on with the fake's keys (add_gateway: e.g. add_stripe_gateway) and
    have the fake send its webhooks to the app served at `live_url`."""
    from app.extensions import db

    with app.app_context():
        add_gateway(fake)
        db.session.commit()
    fake.webhook_url = f"{live_url}/gateways/{module}/webhook"


def follow_back(http, location: str, **get_args):
    """The browser comes back to our return URL (whatever host the test client uses)."""
    parts = urlsplit(location)
    return http.get(f"{parts.path}?{parts.query}", **get_args)


def admin_transactions(admin_client) -> str:
    """The staff's transactions list, as HTML text."""
    page = admin_client.get("/transactionview/list/")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def text_values(db) -> list[str]:
    """Every value of every text column of every table (secrets decrypted), to prove that
    something (a card number, say) was stored nowhere."""
    from sqlalchemy import JSON, String

    values = []
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, (String, JSON))
                   or isinstance(getattr(c.type, "impl", None), String)]  # EncryptedText
        if columns:
            for row in db.session.execute(select(*columns)).all():
                values.extend(str(value) for value in row if value is not None)
    return values
