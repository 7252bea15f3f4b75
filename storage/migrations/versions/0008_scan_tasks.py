"""Worker tasks: searches.lease_token, lease_pending and lease_failed, and the scan_tasks table of fetch groups.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from storage.types import UtcDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite may rebuild the table for these columns: keep the AUTOINCREMENT that 0005 gave it.
    with op.batch_alter_table('searches', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('lease_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('lease_pending', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('lease_failed', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'scan_tasks',
        sa.Column('token', sa.String(length=32), nullable=False),
        sa.Column('lease_token', sa.String(length=32), nullable=False),
        sa.Column('marketplace', sa.String(length=32), nullable=False),
        sa.Column('query', sa.String(length=200), nullable=False),
        sa.Column('location', sa.String(length=500), nullable=True),
        sa.Column('radius_km', sa.Integer(), nullable=True),
        sa.Column('search_ids', sa.JSON(), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('due_at', UtcDateTime(), nullable=False),
        sa.Column('sent_at', UtcDateTime(), nullable=True),
        sa.Column('started_at', UtcDateTime(), nullable=True),
        sa.Column('deferrals', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('token', name=op.f('pk_scan_tasks')),
    )
    op.create_index('ix_scan_tasks_due', 'scan_tasks', ['sent_at', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_scan_tasks_due', table_name='scan_tasks')
    op.drop_table('scan_tasks')
    # Rebuilt on SQLite: keep the AUTOINCREMENT that 0005 gave the table.
    with op.batch_alter_table('searches', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('lease_failed')
        batch_op.drop_column('lease_pending')
        batch_op.drop_column('lease_token')
