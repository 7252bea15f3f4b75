"""The outbox carries notices as well as alerts, claims rows before sending them, and holds unreachable chats.

- kind/body: ops messages and notices ("N alerts while paused") go through the outbox like alerts.
- batch_id: the grouping a row was first claimed in, kept until it is sent, so a resend after a crash is the same
  message with the same nonce.
- status 'sending' (claimed), 'held' (its chat refused us; kept until the search resumes), 'summarised'.
- delivery_holds: when a destination may be tried again, for every row queued to it, old or new.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

from storage.types import UtcDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('pending', 'sent', 'dead')"
NEW_STATUSES = "status IN ('pending', 'sending', 'sent', 'dead', 'held', 'summarised')"


def upgrade() -> None:
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='alert', nullable=False))
        batch_op.add_column(sa.Column('body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
        batch_op.alter_column('listing_id', existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(op.f('ck_alert_outbox_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_alert_outbox_status'), NEW_STATUSES)
        batch_op.create_check_constraint(op.f('ck_alert_outbox_kind'),
                                         "kind IN ('alert', 'notice', 'ops') "
                                         "AND (kind <> 'alert' OR listing_id IS NOT NULL)")
        batch_op.create_index('ix_alert_outbox_destination', ['platform', 'target', 'status'], unique=False)

    op.create_table('delivery_holds',
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('until', UtcDateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('platform', 'target', name=op.f('pk_delivery_holds'))
    )


def downgrade() -> None:
    op.drop_table('delivery_holds')
    op.execute("DELETE FROM alert_outbox WHERE kind <> 'alert'")
    op.execute("UPDATE alert_outbox SET status = 'pending' WHERE status IN ('sending', 'held')")
    op.execute("UPDATE alert_outbox SET status = 'dead' WHERE status = 'summarised'")
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_outbox_destination')
        batch_op.drop_constraint(op.f('ck_alert_outbox_kind'), type_='check')
        batch_op.drop_constraint(op.f('ck_alert_outbox_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_alert_outbox_status'), OLD_STATUSES)
        batch_op.alter_column('listing_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('batch_id')
        batch_op.drop_column('body')
        batch_op.drop_column('kind')
