"""The REST API's keys: api_keys, holding each key's public id and the SHA-256 of the key, never the key.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from storage.types import UtcDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('key_id', sa.String(length=16), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('owner', sa.String(length=128), nullable=False),
        sa.Column('scope', sa.String(length=8), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('last_used_at', UtcDateTime(), nullable=True),
        sa.Column('revoked_at', UtcDateTime(), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write', 'admin')", name=op.f('ck_api_keys_scope')),
        sa.PrimaryKeyConstraint('key_id', name=op.f('pk_api_keys')),
    )


def downgrade() -> None:
    op.drop_table('api_keys')
