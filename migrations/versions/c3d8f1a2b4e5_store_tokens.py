"""store: email verification tokens and the checkout double-submit guard

Revision ID: c3d8f1a2b4e5
Revises: a79a83a0edf1
Create Date: 2026-12-05 14:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c3d8f1a2b4e5'
down_revision = 'a79a83a0edf1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('email_verification_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('email_verification_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_verification_tokens_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_email_verification_tokens_created_at'), ['created_at'], unique=False)

    op.create_table('checkout_submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token')
    )
    with op.batch_alter_table('checkout_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkout_submissions_client_id'), ['client_id'], unique=False)


def downgrade():
    with op.batch_alter_table('checkout_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkout_submissions_client_id'))
    op.drop_table('checkout_submissions')
    with op.batch_alter_table('email_verification_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_verification_tokens_created_at'))
        batch_op.drop_index(batch_op.f('ix_email_verification_tokens_client_id'))
    op.drop_table('email_verification_tokens')
