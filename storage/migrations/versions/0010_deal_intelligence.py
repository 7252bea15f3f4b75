"""Deal intelligence: comparables, deal scores, price drops and relists, seller filters, snoozes and quiet hours.

- listing_words: which listings carried all the words of a search, per marketplace, and when last seen: the
  comparables a new listing's price is judged against, one range of ix_listing_words_recent per fetch group.
  Derived data written by every fetch: no foreign key and no second index, so the scan pays little for it.
- listings.shipping and .seller_rating where a result page shows them; ix_listings_seller finds a seller's other
  listings (a listing put up again under a new id).
- alert_outbox.occasion: a destination hears of a listing once per occasion ('' new, 'drop:...', 'relist:...');
  the unique key gains the column. alert_outbox.detail: what the scan knew (deal score, trend, old price).
  ix_alert_outbox_listing: the destinations that heard of a listing.
- searches.min_deal, .price_drop_share, .exclude_sellers, .min_seller_rating, .snoozed_until.
- destination_settings: quiet hours and the alert layout of each chat.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from storage.types import Price, TextList, UtcDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

QUEUED = "status IN ('pending', 'sending')"
STATUSES = "status IN ('pending', 'sending', 'sent', 'dead', 'held', 'summarised')"
KINDS = "kind IN ('alert', 'notice', 'ops') AND (kind <> 'alert' OR listing_id IS NOT NULL)"


def _outbox_constraints(batch_op: object, *, sqlite: bool) -> None:
    """SQLite's table copy keeps no CHECK constraint: they are made again on the new table."""
    if sqlite:
        batch_op.create_check_constraint(op.f('ck_alert_outbox_status'), STATUSES)
        batch_op.create_check_constraint(op.f('ck_alert_outbox_kind'), KINDS)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.create_table(
        'listing_words',
        sa.Column('words', sa.String(length=200), nullable=False),
        sa.Column('marketplace', sa.String(length=32), nullable=False),
        sa.Column('listing_id', sa.Integer(), nullable=False),
        sa.Column('seen_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('words', 'marketplace', 'listing_id', name=op.f('pk_listing_words')),
    )
    op.create_index('ix_listing_words_recent', 'listing_words', ['words', 'marketplace', 'seen_at'], unique=False)
    op.create_table(
        'destination_settings',
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('target', sa.String(length=128), nullable=False),
        sa.Column('quiet_start', sa.SmallInteger(), nullable=True),
        sa.Column('quiet_end', sa.SmallInteger(), nullable=True),
        sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
        sa.Column('layout', sa.String(length=16), server_default='full', nullable=False),
        sa.CheckConstraint("layout IN ('full', 'compact')", name=op.f('ck_destination_settings_layout')),
        sa.PrimaryKeyConstraint('platform', 'target', name=op.f('pk_destination_settings')),
    )
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shipping', Price, nullable=True))
        batch_op.add_column(sa.Column('seller_rating', sa.Numeric(5, 2), nullable=True))
    op.create_index('ix_listings_seller', 'listings', ['marketplace', 'seller'], unique=False)
    with op.batch_alter_table('searches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_deal', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('price_drop_share', sa.Numeric(5, 4), server_default='0.10', nullable=True))
        batch_op.add_column(sa.Column('exclude_sellers', TextList, nullable=True))
        batch_op.add_column(sa.Column('min_seller_rating', sa.Numeric(5, 2), nullable=True))
        batch_op.add_column(sa.Column('snoozed_until', UtcDateTime(), nullable=True))

    # The outbox's unique key gains a column: SQLite copies the table for it, and its partial index and CHECK
    # constraints are made again on the copy.
    op.drop_index('ix_alert_outbox_queue', table_name='alert_outbox')
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('occasion', sa.String(length=40), server_default='', nullable=False))
        batch_op.add_column(sa.Column('detail', sa.JSON(), nullable=True))
        batch_op.drop_constraint('uq_alert_outbox_destination_listing', type_='unique')
        batch_op.create_unique_constraint('uq_alert_outbox_destination_listing',
                                          ['platform', 'target', 'listing_id', 'occasion'])
        _outbox_constraints(batch_op, sqlite=sqlite)
    op.create_index('ix_alert_outbox_listing', 'alert_outbox', ['listing_id'], unique=False)
    op.create_index('ix_alert_outbox_queue', 'alert_outbox', ['platform', 'target', 'id', 'next_attempt_at'],
                    unique=False, sqlite_where=sa.text(QUEUED), postgresql_where=sa.text(QUEUED))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.execute("DELETE FROM alert_outbox WHERE occasion <> ''")
    op.drop_index('ix_alert_outbox_queue', table_name='alert_outbox')
    op.drop_index('ix_alert_outbox_listing', table_name='alert_outbox')
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.drop_constraint('uq_alert_outbox_destination_listing', type_='unique')
        batch_op.create_unique_constraint('uq_alert_outbox_destination_listing', ['platform', 'target', 'listing_id'])
        batch_op.drop_column('detail')
        batch_op.drop_column('occasion')
        _outbox_constraints(batch_op, sqlite=sqlite)
    op.create_index('ix_alert_outbox_queue', 'alert_outbox', ['platform', 'target', 'id', 'next_attempt_at'],
                    unique=False, sqlite_where=sa.text(QUEUED), postgresql_where=sa.text(QUEUED))
    with op.batch_alter_table('searches', schema=None) as batch_op:
        for column in ('snoozed_until', 'min_seller_rating', 'exclude_sellers', 'price_drop_share', 'min_deal'):
            batch_op.drop_column(column)
    op.drop_index('ix_listings_seller', table_name='listings')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_column('seller_rating')
        batch_op.drop_column('shipping')
    op.drop_table('destination_settings')
    op.drop_index('ix_listing_words_recent', table_name='listing_words')
    op.drop_table('listing_words')
