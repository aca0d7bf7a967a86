"""Claims on the inbound buffer as leases: taken, renewed, released, counted when held elsewhere."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from segment_sync.inbound.buffer_connection import BufferConnection, _now
from segment_sync.inbound.buffer_rows import (
    PENDING,
    BufferItem,
    claim_sqlite,
    claimed_items,
    inbound_buffer,
    registered_events,
    utc,
)
from segment_sync.inbound.item_gate import read_event, readable


class BufferClaims(BufferConnection):
    """The claims and leases of `InboundBuffer`."""

    def claim(
        self,
        run_id: str,
        limit: int,
        max_attempts: int,
        stale_after_s: float = 600,
        up_to_id: int | None = None,
        after_id: int = 0,
        only_claimed: bool = False,
    ) -> list[BufferItem]:
        """Claim up to `limit` pending items (id order, attempts < max_attempts) for `run_id`.

        `after_id` lets a run move forward, so items it sent back to pending wait for the next run.
        `only_claimed` takes over only lapsed leases of other runs (not items waiting for a retry).
        """
        if limit <= 0:
            return []
        t = inbound_buffer.c
        now = _now()
        if self.sqlite:
            extra, params = " AND attempts < ?", [max_attempts]
            if up_to_id is not None:
                extra, params = extra + " AND id <= ?", [*params, up_to_id]
            if after_id:
                extra, params = extra + " AND id > ?", [*params, after_id]
            if only_claimed:
                extra += " AND claimed_by IS NOT NULL AND claimed_by != ?"
                params.append(run_id)
            stale_before = now - timedelta(seconds=stale_after_s)
            with self._write() as conn:
                rows = claim_sqlite(conn, run_id, now, stale_before, (extra, params), limit)
            return claimed_items(rows)
        claimable = sa.and_(
            t.status == PENDING,
            t.attempts < max_attempts,
            sa.or_(t.claimed_by.is_(None), t.claimed_at < now - timedelta(seconds=stale_after_s)),
        )
        if up_to_id is not None:
            claimable = sa.and_(claimable, t.id <= up_to_id)
        if after_id:
            claimable = sa.and_(claimable, t.id > after_id)
        if only_claimed:
            claimable = sa.and_(claimable, t.claimed_by.is_not(None), t.claimed_by != run_id)
        pick = sa.select(t.id).where(claimable).order_by(t.id).limit(limit)
        if not self.sqlite:
            pick = pick.with_for_update(skip_locked=True)
        update = (
            sa.update(inbound_buffer)
            .where(t.id.in_(pick.scalar_subquery()))
            .values(claimed_by=run_id, claimed_at=now, updated_at=now)
            .returning(t.id, t.message_id, t.payload, t.attempts, t.received_at, t.antavo_event_ids)
        )
        with self._write() as conn:
            rows = conn.execute(update).all()
        items = [
            BufferItem(
                id=row.id,
                message_id=readable(row.message_id),
                payload=payload,
                attempts=row.attempts,
                received_at=utc(row.received_at),
                fault=fault,
                registered=registered_events(row.antavo_event_ids),
            )
            for row in rows
            for payload, fault in [read_event(row.payload)]
        ]
        items.sort(key=lambda item: item.id)
        return items

    def renew(self, run_id: str) -> int:
        """Extend the leases of `run_id`'s pending items to now; returns how many."""
        t = inbound_buffer.c
        mine = (t.claimed_by == run_id, t.status == PENDING)
        stmt = sa.update(inbound_buffer).values(claimed_at=_now())
        if self.sqlite:
            stmt = stmt.where(*mine)
        else:
            # Rows this run is marking right now are skipped, not waited for: waiting for them in
            # table order, against a mark locking in id order, deadlocked on PostgreSQL. A
            # skipped row is being marked done or retried; if it stays pending, the next beat
            # renews it, well within the lease (beats are lease_s / 3 apart).
            pick = sa.select(t.id).where(*mine).with_for_update(skip_locked=True)
            stmt = stmt.where(t.id.in_(pick.scalar_subquery()))
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    def release(self, run_id: str) -> int:
        """Give back `run_id`'s unfinished items (pending, attempts unchanged); returns how many."""
        t = inbound_buffer.c
        stmt = (
            sa.update(inbound_buffer)
            .where(t.claimed_by == run_id, t.status == PENDING)
            .values(claimed_by=None, claimed_at=None, updated_at=_now())
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    def held_elsewhere(
        self, run_id: str, up_to_id: int | None = None, max_attempts: int | None = None
    ) -> int:
        """Pending items claimed by other runs (alive, or dead with a lease not yet lapsed)."""
        t = inbound_buffer.c
        where = [t.status == PENDING, t.claimed_by.is_not(None), t.claimed_by != run_id]
        if up_to_id is not None:
            where.append(t.id <= up_to_id)
        if max_attempts is not None:
            where.append(t.attempts < max_attempts)
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(*where)).scalar() or 0)
