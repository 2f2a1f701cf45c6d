"""orders: index on invoice_id (a paid invoice finds its order)

Revision ID: a8c3e5f7d9b1
Revises: f3a1c7e9b2d4
Create Date: 2026-12-05 14:55:00

"""
from alembic import op


revision = 'a8c3e5f7d9b1'
down_revision = 'f3a1c7e9b2d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_invoice_id'), ['invoice_id'], unique=False)


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_invoice_id'))
