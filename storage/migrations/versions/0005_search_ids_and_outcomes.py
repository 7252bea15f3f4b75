"""Search ids are never reused on SQLite, and each search keeps how the last fetch of each marketplace went.

- searches is rebuilt with AUTOINCREMENT on SQLite (PostgreSQL's sequence already never reuses an id), its
  sequence starting past every id still referenced anywhere, so an old alert's buttons can never reach a new search.
- searches.last_outcomes: {marketplace: {status, at, error, listings}}, shown by `search show` and the bots.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None



def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('searches', schema=None, recreate='always' if sqlite else 'auto',
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('last_outcomes', sa.JSON(), server_default='{}', nullable=False))
    if sqlite:
        highest = op.get_bind().execute(sa.text(
            "SELECT max(id) FROM (SELECT max(id) AS id FROM searches "
            "UNION ALL SELECT max(search_id) FROM alert_outbox)")).scalar()
        if highest:
            op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'searches'"))
            op.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('searches', :seq)")
                       .bindparams(seq=int(highest)))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('searches', schema=None, recreate='always' if sqlite else 'auto',
                              table_kwargs={'sqlite_autoincrement': False}) as batch_op:
        batch_op.drop_column('last_outcomes')
