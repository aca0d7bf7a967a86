"""What the inbound buffer holds, read without claiming anything: counts, items, messageIds."""

from __future__ import annotations

import sqlalchemy as sa

from segment_sync.inbound.buffer_connection import BufferConnection
from segment_sync.inbound.buffer_rows import (
    PENDING,
    STATUSES,
    BufferRecord,
    buffer_record,
    inbound_buffer,
)


class BufferQueries(BufferConnection):
    """The read-only questions of `InboundBuffer`."""

    def max_id(self) -> int:
        """Highest item id so far (0 when empty): a cheap question for a sensor."""
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.max(inbound_buffer.c.id))).scalar() or 0

    def pending_count(self) -> int:
        """Number of items waiting to be processed."""
        with self._read() as conn:
            stmt = sa.select(sa.func.count()).where(inbound_buffer.c.status == PENDING)
            return int(conn.execute(stmt).scalar() or 0)

    def pending_summary(self) -> tuple[int, int]:
        """(pending items, their attempts so far): changes whenever a run tried something."""
        t = inbound_buffer.c
        stmt = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.attempts), 0)).where(
            t.status == PENDING
        )
        with self._read() as conn:
            count, attempts = conn.execute(stmt).one()
        return int(count), int(attempts)

    def counts(self) -> dict[str, int]:
        """Item counts by status (every status present, zero when none)."""
        stmt = sa.select(inbound_buffer.c.status, sa.func.count()).group_by(inbound_buffer.c.status)
        with self._read() as conn:
            found = dict(conn.execute(stmt).tuples().all())
        return {status: int(found.get(status, 0)) for status in (*STATUSES, *found)}

    def get(self, item_id: int) -> BufferRecord | None:
        """One item by id, or None."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(inbound_buffer).where(inbound_buffer.c.id == item_id)
            ).first()
        return buffer_record(row) if row is not None else None

    def get_by_message_id(self, message_id: str) -> BufferRecord | None:
        """One item by Segment messageId, or None."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(inbound_buffer).where(inbound_buffer.c.message_id == message_id)
            ).first()
        return buffer_record(row) if row is not None else None

    def message_ids(self) -> set[str]:
        """Every stored messageId (tests and reconciliation)."""
        with self._read() as conn:
            return set(conn.execute(sa.select(inbound_buffer.c.message_id)).scalars())

    def items(
        self, status: str | None = None, limit: int = 1000, after_id: int = 0
    ) -> list[BufferRecord]:
        """Items in id order, optionally of one status, starting after `after_id`."""
        stmt = sa.select(inbound_buffer).where(inbound_buffer.c.id > after_id)
        if status is not None:
            stmt = stmt.where(inbound_buffer.c.status == status)
        stmt = stmt.order_by(inbound_buffer.c.id).limit(limit)
        with self._read() as conn:
            return [buffer_record(row) for row in conn.execute(stmt)]

    def newest(self, limit: int = 500, before_id: int | None = None) -> list[BufferRecord]:
        """Items newest first (ids below `before_id` when given); reads only, claims nothing."""
        stmt = sa.select(inbound_buffer).order_by(inbound_buffer.c.id.desc()).limit(limit)
        if before_id is not None:
            stmt = stmt.where(inbound_buffer.c.id < before_id)
        with self._read() as conn:
            return [buffer_record(row) for row in conn.execute(stmt)]
