"""A search can leave out sponsored listings: searches.sponsored is 'include' (as before) or 'exclude'.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('searches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sponsored', sa.String(length=16), server_default='include', nullable=False))


def downgrade() -> None:
    # Rebuilt on SQLite: keep the AUTOINCREMENT that 0005 gave the table.
    with op.batch_alter_table('searches', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('sponsored')
