"""Longer search locations: a feed search's location is the feed's URL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('searches', schema=None) as batch_op:
        batch_op.alter_column('location', existing_type=sa.String(length=100), type_=sa.String(length=500),
                              existing_nullable=True)


def downgrade() -> None:
    """Keep the wider column: narrowing it would refuse or cut every feed search whose address is longer than 100
    characters, and a wider column serves the older code as well."""
