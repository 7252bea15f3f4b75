"""SQLAlchemy 2 typed table models. Names follow the operations runbook; no business rules live here."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import Price, TextList, UtcDateTime


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class SearchRow(Base):
    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(128))
    platform: Mapped[str] = mapped_column(sa.String(32))
    target: Mapped[str] = mapped_column(sa.String(128))
    # Where the search belongs: the Discord server, or the Telegram chat (group or private); None for the CLI.
    scope: Mapped[str | None] = mapped_column(sa.String(128))
    query: Mapped[str] = mapped_column(sa.String(200))
    exclude_words: Mapped[list[str]] = mapped_column(TextList, default=list)
    min_price: Mapped[Decimal | None] = mapped_column(Price)
    max_price: Mapped[Decimal | None] = mapped_column(Price)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    marketplaces: Mapped[list[str]] = mapped_column(TextList)
    check_interval_minutes: Mapped[int] = mapped_column(sa.Integer)
    location: Mapped[str | None] = mapped_column(sa.String(500))
    radius_km: Mapped[int | None] = mapped_column(sa.Integer)
    unpriced: Mapped[str] = mapped_column(sa.String(16), default="include")
    sponsored: Mapped[str] = mapped_column(sa.String(16), default="include", server_default="include")
    # Deals only: the weakest deal verdict an alert may carry ('great', 'good', 'fair'); None alerts every match.
    min_deal: Mapped[str | None] = mapped_column(sa.String(16))
    # A drop of at least this share of the price a chat last saw is announced again; None turns drop alerts off.
    # (Searches saved before drop alerts existed got 0.10 from the migration; a new one always names its share.)
    price_drop_share: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 4))
    # Sellers whose listings never match, and the least share of positive feedback a seller must show.
    exclude_sellers: Mapped[list[str] | None] = mapped_column(TextList, default=list)
    min_seller_rating: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 2))
    # Until then the search is scanned, but its matches are not announced.
    snoozed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    paused_reason: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_run_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Held while a scan works on the search, so it never runs twice at once; expires if that scan dies.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A lease taken for worker tasks: its token (a task commits only while it still holds), how many of the
    # search's fetch tasks have yet to commit, and whether one of those that did failed.
    lease_token: Mapped[str | None] = mapped_column(sa.String(32))
    lease_pending: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    lease_failed: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # Marketplaces whose first scan has been recorded as the baseline for this search.
    baselined: Mapped[list[str]] = mapped_column(TextList, default=list)
    # How the last fetch of each of its marketplaces went: {marketplace: {status, at, error, listings}}.
    last_outcomes: Mapped[dict[str, dict[str, object]]] = mapped_column(sa.JSON, default=dict,
                                                                         server_default="{}")

    __table_args__ = (
        sa.CheckConstraint("status IN ('active', 'paused')", name="status"),
        sa.CheckConstraint("check_interval_minutes > 0", name="interval"),
        sa.Index("ix_searches_due", "status", "next_run_at"),
        sa.Index("ix_searches_owner", "platform", "scope", "owner"),
        # An id is never given twice, even after the newest search is removed: an alert's buttons name the search
        # by its id. (PostgreSQL's sequences never reuse one; SQLite needs AUTOINCREMENT for that.)
        {"sqlite_autoincrement": True},
    )


class ScanTaskRow(Base):
    """One fetch group a leader claimed for a worker: `run_search_task` carries only its token.

    A task is sent when due (`sent_at` is None and `due_at` has come), and deleted by the commit of its results,
    which is how a task that arrives twice is told apart: its row is gone. A worker denied a request slot makes
    its task due again later instead of waiting.
    """

    __tablename__ = "scan_tasks"

    token: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    lease_token: Mapped[str] = mapped_column(sa.String(32))
    marketplace: Mapped[str] = mapped_column(sa.String(32))
    query: Mapped[str] = mapped_column(sa.String(200))
    location: Mapped[str | None] = mapped_column(sa.String(500))
    radius_km: Mapped[int | None] = mapped_column(sa.Integer)
    search_ids: Mapped[list[int]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When a worker started it: a second copy of its message (sent twice, or given to another worker) finds it
    # running and leaves it, so no two workers scan one group at once.
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deferrals: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    __table_args__ = (sa.Index("ix_scan_tasks_due", "sent_at", "due_at"),)


class ListingRow(Base):
    __tablename__ = "listings"

    id: Mapped[int] = mapped_column(primary_key=True)
    marketplace: Mapped[str] = mapped_column(sa.String(32))
    external_id: Mapped[str] = mapped_column(sa.String(128))
    title: Mapped[str] = mapped_column(sa.Text)
    url: Mapped[str] = mapped_column(sa.Text)
    price: Mapped[Decimal | None] = mapped_column(Price)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    price_text: Mapped[str | None] = mapped_column(sa.String(200))
    location: Mapped[str | None] = mapped_column(sa.String(200))
    image_url: Mapped[str | None] = mapped_column(sa.Text)
    posted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    condition: Mapped[str | None] = mapped_column(sa.String(100))
    seller: Mapped[str | None] = mapped_column(sa.String(200))
    shipping: Mapped[Decimal | None] = mapped_column(Price)  # in the listing's currency; 0 is free delivery
    seller_rating: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 2))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        sa.UniqueConstraint("marketplace", "external_id", name="uq_listings_marketplace_external_id"),
        # A seller's other listings on a marketplace: a listing put up again under a new id is a relist.
        sa.Index("ix_listings_seller", "marketplace", "seller"),
    )


class ListingWordsRow(Base):
    """Which listings carried all the words of a search: the comparables a deal is judged against.

    One row per (normalised search words, marketplace, listing), its `seen_at` refreshed at most daily while fetches
    keep seeing the listing. Derived data, kept lean for the scan that writes it: no foreign key (a row whose listing
    is gone joins to nothing), and one index besides the primary key.
    """

    __tablename__ = "listing_words"

    words: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    marketplace: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    listing_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime)

    # A fetch group's comparables within the deal window, newest first: the read stops at the window's start however
    # many older rows its words have gathered.
    __table_args__ = (sa.Index("ix_listing_words_recent", "words", "marketplace", "seen_at"),)


class PriceHistoryRow(Base):
    __tablename__ = "price_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(sa.ForeignKey("listings.id", ondelete="CASCADE"), index=True)
    price: Mapped[Decimal | None] = mapped_column(Price)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SearchMatchRow(Base):
    """Which listings a search has already matched, so a listing is new to a search exactly once."""

    __tablename__ = "search_matches"

    search_id: Mapped[int] = mapped_column(sa.ForeignKey("searches.id", ondelete="CASCADE"), primary_key=True)
    listing_id: Mapped[int] = mapped_column(sa.ForeignKey("listings.id", ondelete="CASCADE"), primary_key=True)
    matched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    baseline: Mapped[bool] = mapped_column(sa.Boolean, default=False)


# The outbox rows still to be sent: waiting, or claimed by a send whose outcome is not recorded yet. Written out as
# literals: a partial index serves only queries that repeat its condition word for word.
QUEUED_SQL = "status IN ('pending', 'sending')"


class OutboxRow(Base):
    """Something to send to one destination: an alert about a listing, a notice, or an ops message.

    pending -> sending (claimed, with next_attempt_at as the claim's deadline) -> sent; or back to pending to retry,
    dead after its last attempt, held while its chat refuses us, summarised when a resumed chat gets one summary
    instead of alerts that waited too long.
    """

    __tablename__ = "alert_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), default="alert", server_default="alert")
    platform: Mapped[str] = mapped_column(sa.String(32))
    target: Mapped[str] = mapped_column(sa.String(128))
    listing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("listings.id", ondelete="CASCADE"))
    search_id: Mapped[int | None] = mapped_column(sa.ForeignKey("searches.id", ondelete="SET NULL"))
    body: Mapped[str | None] = mapped_column(sa.Text)  # the text of a notice or ops message
    # Why a listing is announced: '' when it is new to the destination, 'drop:<when>' for a price drop,
    # 'relist:<when>' for a listing back on sale. A destination hears of each occasion once.
    occasion: Mapped[str] = mapped_column(sa.String(40), default="", server_default="")
    # What the scan knew when it queued an alert: the deal score, the price trend, the old price of a drop.
    detail: Mapped[dict[str, object] | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The rows first claimed together (one message or one digest) share the smallest id among them, and are sent
    # together until they are sent: a resend after a crash is then the same message, with the same nonce.
    batch_id: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        sa.UniqueConstraint("platform", "target", "listing_id", "occasion", name="uq_alert_outbox_destination_listing"),
        sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'dead', 'held', 'summarised')", name="status"),
        sa.CheckConstraint("kind IN ('alert', 'notice', 'ops') AND (kind <> 'alert' OR listing_id IS NOT NULL)",
                           name="kind"),
        # Delivery's queue: each destination's unsent rows in order. It holds only unsent rows, so it stays as small
        # as the backlog however many sent rows the table keeps. Migration 0006 makes it partial on PostgreSQL too;
        # a postgresql_where here would load PostgreSQL's dialect in every process, SQLite's included.
        sa.Index("ix_alert_outbox_queue", "platform", "target", "id", "next_attempt_at",
                 sqlite_where=sa.text(QUEUED_SQL)),
        # Sent rows by when they went (alert lag, alerts sent since), and every row not sent (no sent_at) by status
        # and age. No index leads with status: SQLite, without statistics, would take one for the queue's condition
        # and sort the whole backlog to find each destination.
        sa.Index("ix_alert_outbox_sent", "sent_at", "status", "created_at"),
        # A search's alerts, newest first (`search show`); also serves the search's foreign key.
        sa.Index("ix_alert_outbox_search", "search_id", "id"),
        # Who heard of a listing: the destinations a price drop or a relist is announced to.
        sa.Index("ix_alert_outbox_listing", "listing_id"),
    )


class DeliveryHoldRow(Base):
    """A destination that may not be sent to before `until`: it asked us to wait, or its last send failed."""

    __tablename__ = "delivery_holds"

    platform: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    target: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    until: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(sa.Text)


class DestinationSettingsRow(Base):
    """How one chat wants its alerts: a quiet-hours window in its own time zone, and the alert layout."""

    __tablename__ = "destination_settings"

    platform: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    target: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    # Minutes after local midnight; the window may wrap past midnight (22:00-07:00). Both None: no quiet hours.
    quiet_start: Mapped[int | None] = mapped_column(sa.SmallInteger)
    quiet_end: Mapped[int | None] = mapped_column(sa.SmallInteger)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    layout: Mapped[str] = mapped_column(sa.String(16), default="full", server_default="full")

    __table_args__ = (sa.CheckConstraint("layout IN ('full', 'compact')", name="layout"),)


class TaskLogRow(Base):
    __tablename__ = "task_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(64))
    marketplace: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16))
    error: Mapped[str | None] = mapped_column(sa.Text)
    query: Mapped[str | None] = mapped_column(sa.String(200))
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer)
    searches: Mapped[int] = mapped_column(sa.Integer, default=0)
    listings_found: Mapped[int] = mapped_column(sa.Integer, default=0)
    new_listings: Mapped[int] = mapped_column(sa.Integer, default=0)
    alerts_queued: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (sa.Index("ix_task_logs_created", "created_at", "task_name"),)


class MarketplaceStateRow(Base):
    __tablename__ = "marketplace_state"

    marketplace: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    reason: Mapped[str | None] = mapped_column(sa.String(300))
    changed_by: Mapped[str | None] = mapped_column(sa.String(128))
    changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    consecutive_failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    total_successes: Mapped[int] = mapped_column(sa.Integer, default=0)
    total_failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    total_blocked: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_status: Mapped[str | None] = mapped_column(sa.String(16))
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    circuit_state: Mapped[str] = mapped_column(sa.String(16), default="closed", server_default="closed")
    circuit_open_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    circuit_openings: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    __table_args__ = (sa.CheckConstraint("status IN ('active', 'paused')", name="status"),)


class AuditLogRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.String(128))
    detail: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ApiKeyRow(Base):
    """A key of the REST API. Only the SHA-256 of the key is kept: the key itself is shown once, when made.

    `key_id` is the key's public part (it is in the key), so a request's key is found without scanning hashes.
    """

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    owner: Mapped[str] = mapped_column(sa.String(128))
    scope: Mapped[str] = mapped_column(sa.String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (sa.CheckConstraint("scope IN ('read', 'write', 'admin')", name="scope"),)
