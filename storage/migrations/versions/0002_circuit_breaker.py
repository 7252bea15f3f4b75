"""Circuit breaker state per marketplace.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa

from storage.types import UtcDateTime

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('marketplace_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('circuit_state', sa.String(length=16), server_default='closed', nullable=False))
        batch_op.add_column(sa.Column('circuit_open_until', UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('circuit_openings', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('marketplace_state', schema=None) as batch_op:
        batch_op.drop_column('circuit_openings')
        batch_op.drop_column('circuit_open_until')
        batch_op.drop_column('circuit_state')
