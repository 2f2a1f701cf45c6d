"""clients: invitations of users to manage a client account

Revision ID: f3a1c7e9b2d4
Revises: e7b2c4d9a1f6
Create Date: 2026-12-05 15:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f3a1c7e9b2d4'
down_revision = 'e7b2c4d9a1f6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('client_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('permissions', sa.String(length=500), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('accepted_user_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['accepted_user_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ),
    sa.ForeignKeyConstraint(['invited_by_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('client_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_invitations_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_client_invitations_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_client_invitations_email'), ['email'], unique=False)


def downgrade():
    with op.batch_alter_table('client_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_invitations_email'))
        batch_op.drop_index(batch_op.f('ix_client_invitations_created_at'))
        batch_op.drop_index(batch_op.f('ix_client_invitations_client_id'))
    op.drop_table('client_invitations')
