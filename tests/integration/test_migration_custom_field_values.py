"""Custom field values are encrypted at rest: new ones by the column type, the ones
already there by migration d2a8f4c6e1b7."""
from __future__ import annotations

from flask_migrate import upgrade
from sqlalchemy import select, text

from tests.integration.test_migrations import database_at


def test_existing_values_are_encrypted_and_read_back(tmp_path):
    from app.models.system import CustomFieldValue

    with database_at(tmp_path, "c6f4a2e8d1b9") as db:
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO custom_fields (id, applies_to, name, field_type, options, "
                "required, show_on_order, show_on_invoice, admin_only, sort_order) VALUES "
                "(1, 'client', 'Panel password', 'password', '', false, false, false, "
                "false, 0)"))
            conn.execute(text("INSERT INTO custom_field_values (field_id, rel_id, value) "
                              "VALUES (1, 7, 'hunter2-secret'), (1, 8, '')"))
        upgrade()
        with db.engine.connect() as conn:
            raw = dict(conn.execute(text("SELECT rel_id, value FROM custom_field_values")).all())
        read = dict(db.session.execute(select(CustomFieldValue.rel_id, CustomFieldValue.value)).all())
    assert "hunter2" not in raw[7] and raw[7].startswith("gAAAA")  # a Fernet token
    assert raw[8] == ""
    assert read == {7: "hunter2-secret", 8: ""}
