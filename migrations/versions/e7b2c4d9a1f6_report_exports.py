"""reports: exports made in the background, one job per staff member and request

Revision ID: e7b2c4d9a1f6
Revises: d4e9a7c1f2b3
Create Date: 2026-12-05 15:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e7b2c4d9a1f6'
down_revision = 'd4e9a7c1f2b3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=True),
    sa.Column('request_key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=150), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('format', sa.String(length=5), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=255), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('task_id', sa.String(length=155), nullable=True),
    sa.Column('stored_name', sa.String(length=100), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('rows', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("format IN ('csv', 'xlsx', 'pdf')", name='ck_report_exports_format'),
    sa.CheckConstraint('progress >= 0 AND progress <= 100', name='ck_report_exports_progress'),
    sa.ForeignKeyConstraint(['report_id'], ['saved_reports.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id'),
    sa.UniqueConstraint('user_id', 'request_key', name='uq_report_exports_request')
    )
    with op.batch_alter_table('report_exports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_exports_report_id'), ['report_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_exports_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('report_exports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_exports_user_id'))
        batch_op.drop_index(batch_op.f('ix_report_exports_report_id'))
    op.drop_table('report_exports')
