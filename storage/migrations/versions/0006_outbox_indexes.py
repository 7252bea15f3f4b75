"""Outbox indexes for delivery's queue, the sent-alerts figures and a search's recent alerts.

- ix_alert_outbox_queue (platform, target, id, next_attempt_at), only over unsent rows: each destination's queue in
  order, so a delivery pass reads the head of each queue instead of ranking every pending row. It takes over
  ix_alert_outbox_destination.
- ix_alert_outbox_sent (sent_at, status, created_at): the alerts sent in the last hour (alert lag) and since a
  moment, and the rows not sent (no sent_at) by status and age. It takes over ix_alert_outbox_due.
- ix_alert_outbox_search (search_id, id): a search's newest alerts. It takes over ix_alert_outbox_search_id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

QUEUED = "status IN ('pending', 'sending')"


def upgrade() -> None:
    op.create_index('ix_alert_outbox_queue', 'alert_outbox', ['platform', 'target', 'id', 'next_attempt_at'],
                    unique=False, sqlite_where=sa.text(QUEUED), postgresql_where=sa.text(QUEUED))
    op.create_index('ix_alert_outbox_sent', 'alert_outbox', ['sent_at', 'status', 'created_at'], unique=False)
    op.create_index('ix_alert_outbox_search', 'alert_outbox', ['search_id', 'id'], unique=False)
    op.drop_index('ix_alert_outbox_due', table_name='alert_outbox')
    op.drop_index('ix_alert_outbox_search_id', table_name='alert_outbox')
    op.drop_index('ix_alert_outbox_destination', table_name='alert_outbox')


def downgrade() -> None:
    op.create_index('ix_alert_outbox_destination', 'alert_outbox', ['platform', 'target', 'status'], unique=False)
    op.create_index('ix_alert_outbox_search_id', 'alert_outbox', ['search_id'], unique=False)
    op.create_index('ix_alert_outbox_due', 'alert_outbox', ['status', 'next_attempt_at'], unique=False)
    op.drop_index('ix_alert_outbox_search', table_name='alert_outbox')
    op.drop_index('ix_alert_outbox_sent', table_name='alert_outbox')
    op.drop_index('ix_alert_outbox_queue', table_name='alert_outbox')
