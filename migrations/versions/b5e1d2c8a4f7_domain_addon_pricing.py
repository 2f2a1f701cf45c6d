"""domain addon pricing: the yearly price of DNS management, email forwarding and ID
protection per currency

Revision ID: b5e1d2c8a4f7
Revises: a8c3e5f7d9b1
Create Date: 2026-12-05 15:25:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b5e1d2c8a4f7'
down_revision = 'a8c3e5f7d9b1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'domain_addon_pricing',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('currency_id', sa.Integer(), nullable=False),
        sa.Column('addon', sa.String(length=20), nullable=False),
        sa.Column('price', sa.Numeric(precision=18, scale=2), nullable=False),
        sa.CheckConstraint('price >= 0', name='ck_domain_addon_pricing_price'),
        sa.CheckConstraint("addon IN ('dns_management', 'email_forwarding', 'id_protection')",
                           name='ck_domain_addon_pricing_addon'),
        sa.ForeignKeyConstraint(['currency_id'], ['currencies.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('currency_id', 'addon', name='uq_domain_addon_pricing'),
    )
    with op.batch_alter_table('domain_addon_pricing', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domain_addon_pricing_currency_id'), ['currency_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('domain_addon_pricing', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domain_addon_pricing_currency_id'))
    op.drop_table('domain_addon_pricing')
