"""The outbox's SQL: loading due rows, claiming them, recording each outcome, holding and releasing destinations."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scout.models import (
    Alert,
    Delivery,
    Destination,
    Layout,
    Listing,
    Notice,
    NoticeKind,
    SavedSearch,
    SearchStatus,
    StoredAlert,
)
from storage.bulk import one_of
from storage.convert import chunks, listing_from_row, search_from_row
from storage.deals import facts_from_value
from storage.preferences import quiet_destinations
from storage.tables import DeliveryHoldRow, DestinationSettingsRow, ListingRow, OutboxRow, SearchRow

# Rows that are waiting to go out: not claimed yet, or claimed by a send whose outcome was never recorded.
UNSENT = ("pending", "sending")
# The newest listings a "while paused" summary names.
SUMMARY_LISTINGS = 5

Summarise = Callable[[int, list[Listing]], str]


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    pending: int  # queued or in flight
    dead: int
    sent: int
    oldest_pending_at: datetime | None
    held: int = 0  # waiting for a chat that refuses us to be resumed


async def recent_alert_rows(sessions: async_sessionmaker[AsyncSession], search_id: int, *,
                            limit: int) -> list[Any]:
    """A search's newest (alert row, listing row) pairs, newest first: the (search_id, id) index."""
    stmt = (
        sa.select(OutboxRow, ListingRow)
        .join(ListingRow, ListingRow.id == OutboxRow.listing_id)
        .where(OutboxRow.search_id == search_id)
        .order_by(OutboxRow.id.desc())
        .limit(limit)
    )
    async with sessions() as session:
        return list((await session.execute(stmt)).all())


class OutboxQueries:
    """The outbox part of storage.repo.Repository; each public method is one transaction."""

    _sessions: async_sessionmaker[AsyncSession]
    dialect: str

    def _insert(self, table: Any) -> Any:
        raise NotImplementedError

    def _rows(self, outbox_ids: Sequence[int], *statuses: str) -> sa.ColumnElement[bool]:
        """The outbox rows of these ids, as one bound list however many there are (the statement's text, and so its
        prepared plan, is the same for every batch), and, when `statuses` are given, only those still in one of them.

        The status is tested as an expression, not the column, so that neither database can read the rows from the
        partial queue index, whose condition is the same test. After a burst of new alerts, before its statistics
        catch up, PostgreSQL takes that index for nearly empty and reads all of it for each batch (52 ms against
        1.4 ms for 32 rows at 65,000 waiting); the primary key finds rows named by id at any size.
        """
        named = one_of(self.dialect, OutboxRow.id, outbox_ids)
        return sa.and_(named, OutboxRow.status.concat("").in_(statuses)) if statuses else named

    async def load_due_deliveries(self, *, now: datetime, limit: int, platforms: Iterable[str],
                                  per_destination: int | None = None,
                                  skip: Collection[Destination] = ()) -> list[Delivery]:
        """The rows due now of destinations that are neither held nor in `skip`, oldest first, `limit` in all; at most
        `per_destination` for any one chat, so a chat with a long queue cannot fill the batch and keep the others
        waiting behind it.

        Each chat's queue is read from its head in the queue index: the chats whose oldest due row is oldest are
        served first, and the cost follows the number of chats and the rows loaded, not the backlog.
        """
        per = per_destination or limit
        async with self._sessions() as session:
            # Chats in their quiet hours wait: their queues are left whole until the window ends.
            skip = {*skip, *await quiet_destinations(session, now)}
            heads = (await session.execute(_queue_heads(now, list(platforms)))).all()
            waiting = sorted((head, platform, target) for platform, target, head in heads
                             if head is not None and Destination(platform, target) not in skip)
            # Enough queues to fill the batch when each has its share waiting (with no share, each may hold one).
            queues = -(-limit // per) if per_destination else limit
            chosen = [(platform, target) for _, platform, target in waiting[:queues]]
            if not chosen:
                return []
            rows = (await session.execute(_queue_rows(chosen, now=now, per=per, limit=limit))).all()
        return [_delivery(outbox, listing, query, layout) for outbox, listing, query, layout in rows]

    async def claim_deliveries(self, messages: Sequence[Sequence[int]], *, now: datetime,
                               until: datetime) -> set[int]:
        """Claim the rows of these messages until `until`; returns the ids claimed (rows still due).

        Each message's rows get its smallest claimed id as their batch, which they keep until sent.
        """
        wanted = [outbox_id for message in messages for outbox_id in message]
        claimed: set[int] = set()
        async with self._sessions.begin() as session:
            for chunk in chunks(wanted):
                # A row alone in its message is its own batch; only the rows of a digest are given another.
                result = await session.scalars(
                    sa.update(OutboxRow)
                    .where(self._rows(chunk, *UNSENT), OutboxRow.next_attempt_at <= now)
                    .values(status="sending", next_attempt_at=until, batch_id=OutboxRow.id)
                    .returning(OutboxRow.id)
                )
                claimed.update(result.all())
            batches = []
            for message in messages:
                mine = [outbox_id for outbox_id in message if outbox_id in claimed]
                batch = min(mine, default=None)
                batches.extend({"id": outbox_id, "batch_id": batch} for outbox_id in mine if outbox_id != batch)
            if batches:
                await session.execute(sa.update(OutboxRow), batches)
        return claimed

    async def record_sent(self, outbox_ids: Sequence[int], *, now: datetime) -> None:
        """Rows that went out together (one message or one digest) are recorded together."""
        async with self._sessions.begin() as session:
            for chunk in chunks(list(outbox_ids)):
                await session.execute(
                    sa.update(OutboxRow).where(self._rows(chunk, *UNSENT))
                    .values(status="sent", sent_at=now, attempts=OutboxRow.attempts + 1, last_error=None)
                )

    async def record_retry(self, destination: Destination, *, failed: Sequence[int], released: Sequence[int],
                           error: str, counted: bool, until: datetime) -> None:
        """A send that did not go through: its rows wait (counting an attempt when `counted`), the claims behind it
        are handed back, and the whole destination, including rows queued later, is held until `until`."""
        async with self._sessions.begin() as session:
            await session.execute(
                sa.update(OutboxRow).where(self._rows(list(failed), *UNSENT))
                .values(status="pending", next_attempt_at=until, last_error=error[:1000],
                        attempts=OutboxRow.attempts + (1 if counted else 0))
            )
            await self._unclaim(session, released, until)
            await self._hold(session, destination, until, error)

    async def record_dead(self, outbox_ids: Sequence[int], *, reason: str, released: Sequence[int] = ()) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                sa.update(OutboxRow).where(self._rows(list(outbox_ids), *UNSENT))
                .values(status="dead", attempts=OutboxRow.attempts + 1, last_error=reason[:1000])
            )
            await self._unclaim(session, released, None)

    async def release_claims(self, outbox_ids: Sequence[int], *, now: datetime) -> None:
        async with self._sessions.begin() as session:
            await self._unclaim(session, outbox_ids, now)

    async def recover_claims(self, *, now: datetime) -> int:
        """Make every claimed row due now: at start, the claims in the database belong to a process that died."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                sa.update(OutboxRow).where(_queued(OutboxRow.__table__), OutboxRow.status == "sending")
                .values(next_attempt_at=now)
            )
            return int(result.rowcount or 0)

    async def hold_destination(self, destination: Destination, *, reason: str,
                               now: datetime) -> tuple[list[SavedSearch], int]:
        """A chat that refuses us: pause its searches (saying why) and hold its alerts until they are resumed."""
        why = f"alerts cannot reach this chat: {reason}"[:300]
        async with self._sessions.begin() as session:
            rows = (await session.scalars(sa.select(SearchRow).where(
                SearchRow.platform == destination.platform, SearchRow.target == destination.target,
                SearchRow.status == SearchStatus.ACTIVE.value,
            ))).all()
            for row in rows:
                row.status, row.paused_reason, row.updated_at = SearchStatus.PAUSED.value, why, now
            held = await session.execute(
                sa.update(OutboxRow)
                .where(OutboxRow.platform == destination.platform, OutboxRow.target == destination.target,
                       _queued(OutboxRow.__table__), OutboxRow.kind != NoticeKind.OPS.value)
                .values(status="held", last_error=why[:1000])
            )
            await session.flush()
            return [search_from_row(row) for row in rows], int(held.rowcount or 0)

    async def resume_search(self, search_id: int, *, now: datetime, keep_after: datetime,
                            summarise: Summarise) -> SavedSearch | None:
        """Resume a search, and send what it held while paused: alerts queued since `keep_after` as they are,
        older ones as one summary. Returns the search, or None when there is none. An active search is left as it
        is: its next run stays where its interval put it."""
        async with self._sessions.begin() as session:
            # Locked (on PostgreSQL; SQLite writes one at a time anyway) so two resumes cannot both release it.
            row = await session.get(SearchRow, search_id, with_for_update=True)
            if row is None:
                return None
            if row.status == SearchStatus.ACTIVE.value:
                return search_from_row(row)
            row.status, row.paused_reason, row.next_run_at, row.updated_at = SearchStatus.ACTIVE.value, None, now, now
            held = (await session.execute(
                sa.select(OutboxRow.id, OutboxRow.created_at, ListingRow)
                .outerjoin(ListingRow, ListingRow.id == OutboxRow.listing_id)
                .where(OutboxRow.search_id == search_id, OutboxRow.status == "held")
                .order_by(OutboxRow.id)
            )).all()
            fresh = [outbox_id for outbox_id, created, _ in held if created >= keep_after]
            stale = [(outbox_id, listing) for outbox_id, created, listing in held if created < keep_after]
            for chunk in chunks(fresh):
                await session.execute(
                    sa.update(OutboxRow).where(self._rows(chunk))
                    .values(status="pending", next_attempt_at=now, batch_id=None, last_error=None)
                )
            if stale:
                for chunk in chunks([outbox_id for outbox_id, _ in stale]):
                    await session.execute(
                        sa.update(OutboxRow).where(self._rows(chunk)).values(status="summarised")
                    )
                newest = [listing_from_row(listing) for _, listing in reversed(stale) if listing is not None]
                session.add(OutboxRow(
                    kind=NoticeKind.NOTICE.value, platform=row.platform, target=row.target, search_id=search_id,
                    body=summarise(len(stale), newest[:SUMMARY_LISTINGS]), status="pending", attempts=0,
                    next_attempt_at=now, created_at=now,
                ))
            await session.flush()
            return search_from_row(row)

    async def queue_notices(self, destinations: Iterable[Destination], text: str, *, kind: NoticeKind,
                            now: datetime) -> None:
        """Queue one message to each destination; it goes out in order behind what is already queued there."""
        rows = [
            {"kind": kind.value, "platform": d.platform, "target": d.target, "body": text, "status": "pending",
             "attempts": 0, "next_attempt_at": now, "created_at": now}
            for d in destinations
        ]
        if rows:
            async with self._sessions.begin() as session:
                await session.execute(sa.insert(OutboxRow), rows)

    async def move_destination(self, old: Destination, new: Destination) -> None:
        """A chat changed its id: its searches, its preferences and unsent rows follow it (alerts it already has
        stay behind)."""
        async with self._sessions.begin() as session:
            if await session.get(DestinationSettingsRow, (new.platform, new.target)) is None:
                await session.execute(
                    sa.update(DestinationSettingsRow)
                    .where(DestinationSettingsRow.platform == old.platform, DestinationSettingsRow.target == old.target)
                    .values(target=new.target)
                )
            await session.execute(
                sa.update(SearchRow).where(SearchRow.platform == old.platform, SearchRow.target == old.target)
                # A group's searches are scoped to the group: the scope moves with the chat.
                .values(target=new.target,
                        scope=sa.case((SearchRow.scope == old.target, new.target), else_=SearchRow.scope))
            )
            already = sa.select(OutboxRow.listing_id).where(
                OutboxRow.platform == new.platform, OutboxRow.target == new.target, OutboxRow.listing_id.is_not(None)
            ).scalar_subquery()
            await session.execute(
                sa.update(OutboxRow)
                .where(OutboxRow.platform == old.platform, OutboxRow.target == old.target,
                       _queued(OutboxRow.__table__),
                       sa.or_(OutboxRow.listing_id.is_(None), OutboxRow.listing_id.not_in(already)))
                .values(target=new.target, status="pending", batch_id=None)
                .execution_options(synchronize_session=False)
            )

    async def outbox_summary(self, *, count_sent: bool = True) -> OutboxSummary:
        """How many rows wait (queued or in flight), are held or dead, when the oldest waiting row was queued, and
        how many were sent. Everything but the sent count reads only the rows not sent (they have no sent_at);
        the sent count reads every sent row, so a caller that needs only the backlog leaves it out."""
        unsent = sa.select(OutboxRow.status, sa.func.count(), sa.func.min(OutboxRow.created_at)).where(
            OutboxRow.sent_at.is_(None)
        ).group_by(OutboxRow.status)
        sent = sa.select(sa.func.count()).select_from(OutboxRow).where(
            OutboxRow.sent_at.is_not(None), OutboxRow.status == "sent"
        )
        async with self._sessions() as session:
            rows = (await session.execute(unsent)).all()
            sent_count = int((await session.execute(sent)).scalar_one()) if count_sent else 0
        counts = {status: (int(count), oldest) for status, count, oldest in rows}
        waiting = [counts[status] for status in UNSENT if status in counts]
        oldest = min((at for _, at in waiting if at is not None), default=None)
        return OutboxSummary(
            pending=sum(count for count, _ in waiting), dead=counts.get("dead", (0, None))[0],
            sent=sent_count, oldest_pending_at=oldest, held=counts.get("held", (0, None))[0],
        )

    async def load_recent_alerts(self, search_id: int, *, limit: int = 10) -> list[StoredAlert]:
        rows = await recent_alert_rows(self._sessions, search_id, limit=limit)
        return [StoredAlert(o.id, listing_from_row(lst), o.status, o.created_at, o.sent_at) for o, lst in rows]

    async def _unclaim(self, session: AsyncSession, outbox_ids: Sequence[int], due_at: datetime | None) -> None:
        values: dict[str, Any] = {"status": "pending"}
        if due_at is not None:
            values["next_attempt_at"] = due_at
        for chunk in chunks(list(outbox_ids)):
            await session.execute(
                sa.update(OutboxRow).where(self._rows(chunk, "sending")).values(**values)
            )

    async def _hold(self, session: AsyncSession, destination: Destination, until: datetime, reason: str) -> None:
        stmt = self._insert(DeliveryHoldRow.__table__).values(
            platform=destination.platform, target=destination.target, until=until, reason=reason[:1000])
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["platform", "target"], set_={"until": stmt.excluded.until, "reason": stmt.excluded.reason}
        ))


def _delivery(outbox: OutboxRow, listing: ListingRow | None, query: str | None, layout: str | None) -> Delivery:
    destination = Destination(outbox.platform, outbox.target)
    if outbox.kind == "alert" and listing is not None:
        kind, facts = facts_from_value(outbox.detail)
        return Alert(
            outbox_id=outbox.id, destination=destination, listing=listing_from_row(listing),
            search_id=outbox.search_id, search_query=query or "", attempts=outbox.attempts,
            queued_at=outbox.created_at, batch=outbox.batch_id, kind=kind, facts=facts,
            layout=Layout.COMPACT if layout == Layout.COMPACT.value else Layout.FULL,
        )
    return Notice(
        outbox_id=outbox.id, destination=destination, text=outbox.body or "", kind=NoticeKind(outbox.kind),
        attempts=outbox.attempts, queued_at=outbox.created_at, batch=outbox.batch_id,
    )


def _queued(table: sa.TableClause) -> sa.ColumnElement[bool]:
    """The queue index's condition (storage.tables.QUEUED_SQL) as literals: with bound values in its place,
    neither database could prove that the index holds every row the query asks for."""
    return table.c.status.in_([sa.literal_column(f"'{status}'") for status in UNSENT])


def _queue_heads(now: datetime, platforms: list[str]) -> sa.Select[Any]:
    """Each destination with unsent rows, and the id of its oldest row due now (None when none is due yet), for
    destinations of these platforms that are not held.

    The destinations are found by skipping from one to the next along the queue index (a loose index scan: one
    seek per destination, however long its queue), which neither database does on its own for a DISTINCT.
    """
    table = OutboxRow.__table__
    first, same, later, queue, outbox = (table.alias(name) for name in ("first", "same", "later", "queue", "outbox"))

    def lowest(alias: sa.Alias, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
        """A row of the first destination in queue order that meets `where`."""
        return (sa.select(alias.c.id).where(_queued(alias), *where)
                .order_by(alias.c.platform, alias.c.target).limit(1).scalar_subquery())

    walk = sa.select(lowest(first).label("id")).cte("walk", recursive=True)
    # The next destination: a later chat of the same platform, else the first chat of a later platform. (Compared
    # as a pair, SQLite would seek by platform alone and step through the whole platform's queue.)
    following = sa.func.coalesce(
        lowest(same, same.c.platform == outbox.c.platform, same.c.target > outbox.c.target),
        lowest(later, later.c.platform > outbox.c.platform),
    )
    walk = walk.union_all(sa.select(following).select_from(walk.join(outbox, outbox.c.id == walk.c.id)))
    head = (
        sa.select(queue.c.id)
        .where(queue.c.platform == outbox.c.platform, queue.c.target == outbox.c.target, _queued(queue),
               queue.c.next_attempt_at <= now)
        .order_by(queue.c.id).limit(1).scalar_subquery()
    )
    held = sa.select(DeliveryHoldRow.platform).where(
        DeliveryHoldRow.platform == outbox.c.platform, DeliveryHoldRow.target == outbox.c.target,
        DeliveryHoldRow.until > now,
    )
    return (
        sa.select(outbox.c.platform, outbox.c.target, head.label("head"))
        .select_from(walk.join(outbox, outbox.c.id == walk.c.id))
        .where(outbox.c.platform.in_(platforms), ~sa.exists(held))
    )


def _queue_rows(destinations: Sequence[tuple[str, str]], *, now: datetime, per: int, limit: int) -> sa.Select[Any]:
    """The first `per` rows due now of each destination's queue, with their listing and search, oldest first."""
    queue = OutboxRow.__table__.alias("queue")
    shares = [
        sa.select(queue.c.id)
        .where(queue.c.platform == platform, queue.c.target == target, _queued(queue), queue.c.next_attempt_at <= now)
        .order_by(queue.c.id).limit(per).subquery()
        for platform, target in destinations
    ]
    ids = sa.union_all(*[sa.select(share.c.id) for share in shares]) if len(shares) > 1 else sa.select(shares[0].c.id)
    return (
        sa.select(OutboxRow, ListingRow, SearchRow.query, DestinationSettingsRow.layout)
        .outerjoin(ListingRow, ListingRow.id == OutboxRow.listing_id)
        .outerjoin(SearchRow, SearchRow.id == OutboxRow.search_id)
        .outerjoin(DestinationSettingsRow, sa.and_(DestinationSettingsRow.platform == OutboxRow.platform,
                                                   DestinationSettingsRow.target == OutboxRow.target))
        .where(OutboxRow.id.in_(ids))
        .order_by(OutboxRow.id)
        .limit(limit)
    )
