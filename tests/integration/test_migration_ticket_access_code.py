"""Migration c6f4a2e8d1b9 gives every ticket already there an access code of its own."""
from __future__ import annotations

from flask_migrate import upgrade
from sqlalchemy import text

from tests.integration.test_migrations import database_at


def test_existing_tickets_get_an_access_code_each(tmp_path):
    with database_at(tmp_path, "b5e1d2c8a4f7") as db:
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO support_departments (id, name, email, clients_only, hidden, "
                "auto_respond, sort_order) VALUES (1, 'Sales', 's@x.test', false, false, "
                "true, 0)"))
            for n in range(3):
                conn.execute(text(
                    "INSERT INTO tickets (tid, department_id, name, email, subject, status, "
                    "priority, last_reply_at, created_at, updated_at) VALUES (:tid, 1, 'Ann', "
                    "'ann@x.test', 'Old', 'Open', 'Low', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"), {"tid": f"OLD-{n}"})
        upgrade()
        with db.engine.connect() as conn:
            codes = conn.execute(text("SELECT access_code FROM tickets")).scalars().all()
    assert len(codes) == 3 and len(set(codes)) == 3
    assert all(code and len(code) == 16 for code in codes)
