"""tickets: the access code that opens a ticket's guest page (WHMCS's "c")

Existing tickets get a random code each, then the column becomes required.

Revision ID: c6f4a2e8d1b9
Revises: b5e1d2c8a4f7
Create Date: 2026-12-05 17:30:00

"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = 'c6f4a2e8d1b9'
down_revision = 'b5e1d2c8a4f7'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_code', sa.String(length=16), nullable=True))
    tickets = sa.table('tickets', sa.column('id', sa.Integer),
                       sa.column('access_code', sa.String))
    connection = op.get_bind()
    ids = connection.execute(sa.select(tickets.c.id)).scalars().all()
    # One executemany per batch: a random code for every existing ticket.
    for start in range(0, len(ids), BATCH):
        connection.execute(
            tickets.update().where(tickets.c.id == sa.bindparam('ticket_id'))
            .values(access_code=sa.bindparam('code')),
            [{'ticket_id': ticket_id, 'code': secrets.token_urlsafe(12)}
             for ticket_id in ids[start:start + BATCH]])
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('access_code', existing_type=sa.String(length=16), nullable=False)


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('access_code')
