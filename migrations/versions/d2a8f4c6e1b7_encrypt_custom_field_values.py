"""custom_field_values: values encrypted at rest (a field may hold a password)

The column stays TEXT; each existing value is rewritten as its Fernet token with the
application's ENCRYPTION_KEY (as every encrypted column is), so run it through
`flask db upgrade`, which has the application's configuration.

Revision ID: d2a8f4c6e1b7
Revises: c6f4a2e8d1b9
Create Date: 2026-12-05 18:20:00

"""
from alembic import op
import sqlalchemy as sa

from app.models.base import EncryptedText


revision = 'd2a8f4c6e1b7'
down_revision = 'c6f4a2e8d1b9'
branch_labels = None
depends_on = None

BATCH = 1000


def _rewrite(read_type, write_type):
    """Read every value as read_type and write it back as write_type, in batches."""
    connection = op.get_bind()
    reading = sa.table('custom_field_values', sa.column('id', sa.Integer),
                       sa.column('value', read_type))
    writing = sa.table('custom_field_values', sa.column('id', sa.Integer),
                       sa.column('value', write_type))
    rows = connection.execute(sa.select(reading.c.id, reading.c.value)
                              .where(reading.c.value != '')).all()
    for start in range(0, len(rows), BATCH):
        connection.execute(
            writing.update().where(writing.c.id == sa.bindparam('row_id'))
            .values(value=sa.bindparam('new_value')),
            [{'row_id': row_id, 'new_value': value} for row_id, value in rows[start:start + BATCH]])


def upgrade():
    _rewrite(sa.Text(), EncryptedText())


def downgrade():
    _rewrite(EncryptedText(), sa.Text())
