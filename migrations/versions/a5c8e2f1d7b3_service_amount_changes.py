"""services: the history of hand changes of a service's recurring amount and cycle

Revision ID: a5c8e2f1d7b3
Revises: d2a8f4c6e1b7
Create Date: 2026-12-05 18:55:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a5c8e2f1d7b3'
down_revision = 'd2a8f4c6e1b7'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('service_amount_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.Column('old_amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('new_amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('old_cycle', sa.String(length=20), nullable=False),
    sa.Column('new_cycle', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('service_amount_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_amount_changes_service_id'), ['service_id'], unique=False)


def downgrade():
    with op.batch_alter_table('service_amount_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_amount_changes_service_id'))
    op.drop_table('service_amount_changes')
