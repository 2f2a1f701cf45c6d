"""domains: the EPP code of an incoming transfer, encrypted at rest

Revision ID: d4e9a7c1f2b3
Revises: c3d8f1a2b4e5
Create Date: 2026-12-05 15:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd4e9a7c1f2b3'
down_revision = 'c3d8f1a2b4e5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.add_column(sa.Column('epp_code', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_column('epp_code')
