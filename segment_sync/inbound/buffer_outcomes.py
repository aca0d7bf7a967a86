"""An item's outcome recorded in the inbound buffer (done, retry, failed, unknown); re-queues."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from segment_sync.inbound.buffer_connection import BufferConnection, _now
from segment_sync.inbound.buffer_rows import (
    DONE,
    FAILED,
    MAX_ERROR_CHARS,
    PENDING,
    UNKNOWN,
    inbound_buffer,
    mark_done_sqlite,
)


def _error_text(error: str) -> str:
    error = str(error)
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 3] + "..."


class BufferOutcomes(BufferConnection):
    """The marks and re-queues of `InboundBuffer`."""

    def requeue_failed(
        self,
        text: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_unknown: bool = False,
    ) -> int:
        """Failed items back to pending with attempts reset; returns how many.

        `text` matches a case-insensitive substring of the last error or the payload; `since` and
        `until` bound the time the item failed (`updated_at`). The last error is kept until the
        next try overwrites it. Items of unknown outcome (which Antavo may have registered) are
        re-queued too only with `include_unknown`.
        """
        t = inbound_buffer.c
        where = [t.status.in_([FAILED, UNKNOWN]) if include_unknown else t.status == FAILED]
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(
                sa.or_(
                    t.last_error.ilike(pattern, escape="\\"), t.payload.ilike(pattern, escape="\\")
                )
            )
        if since is not None:
            where.append(t.updated_at >= since.astimezone(UTC))
        if until is not None:
            where.append(t.updated_at < until.astimezone(UTC))
        stmt = (
            sa.update(inbound_buffer)
            .where(*where)
            .values(status=PENDING, attempts=0, claimed_by=None, claimed_at=None, updated_at=_now())
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    def mark_done(self, item_id: int, antavo_event_ids: list[str]) -> None:
        """Mark an item delivered, with the event ids Antavo registered (counts as an attempt)."""
        self.mark_many(done=[(item_id, antavo_event_ids)])

    def mark_retry(self, item_id: int, error: str, max_attempts: int) -> str:
        """Count a failed try; back to pending, or 'failed' once attempts reach max_attempts."""
        return self.mark_many(retry=[(item_id, error)], max_attempts=max_attempts)[item_id]

    def mark_failed(self, item_id: int, error: str) -> None:
        """Mark an item permanently failed (counts as an attempt)."""
        self.mark_many(failed=[(item_id, error)])

    def mark_many_done(self, done: Iterable[tuple[int, list[str]]]) -> None:
        """Bulk `mark_done` in one transaction."""
        self.mark_many(done=done)

    def mark_many(
        self,
        done: Iterable[tuple[int, list[str]]] = (),
        retry: Iterable[tuple[int, str]] = (),
        failed: Iterable[tuple[int, str]] = (),
        max_attempts: int | None = None,
        unknown: Iterable[tuple[int, str]] = (),
        registered: Iterable[tuple[int, dict[str, str]]] = (),
    ) -> dict[int, str]:
        """Record a chunk's outcomes in one transaction; returns each touched item's new status.

        `registered`: the events (mapping name -> Antavo event id) registered so far of items
        that are not done (retry, failed, unknown), so no later try sends them again."""
        done, retry, failed, unknown = list(done), list(retry), list(failed), list(unknown)
        registered = list(registered)
        if retry and max_attempts is None:
            raise ValueError("max_attempts is required when retrying items")
        t = inbound_buffer.c
        now = _now()
        statuses: dict[int, str] = {}
        with self._write() as conn:
            if registered:
                conn.execute(
                    sa.update(inbound_buffer)
                    .where(t.id == sa.bindparam("b_id"), t.status == PENDING)
                    .values(antavo_event_ids=sa.bindparam("b_ids")),
                    [{"b_id": i, "b_ids": orjson.dumps(ids).decode()} for i, ids in registered],
                )
            if done and self.sqlite:
                mark_done_sqlite(conn, done, now)
                statuses.update((item_id, DONE) for item_id, _ in done)
            elif done:
                params = [{"b_id": i, "b_ids": orjson.dumps(list(ids)).decode()} for i, ids in done]
                _count_attempts(
                    conn,
                    params,
                    status=DONE,
                    antavo_event_ids=sa.bindparam("b_ids"),
                    last_error=None,
                    updated_at=now,
                )
                statuses.update((item_id, DONE) for item_id, _ in done)
            # `status == PENDING` below: a slow run whose lease another run took over never
            # overwrites what that run recorded (done stays done).
            for status, marked in ((FAILED, failed), (UNKNOWN, unknown)):
                if not marked:
                    continue
                params = [{"b_id": i, "b_error": _error_text(err)} for i, err in marked]
                _count_attempts(
                    conn,
                    params,
                    t.status == PENDING,
                    status=status,
                    last_error=sa.bindparam("b_error"),
                    updated_at=now,
                )
                statuses.update((item_id, status) for item_id, _ in marked)
            if retry:
                params = [{"b_id": i, "b_error": _error_text(err)} for i, err in retry]
                _count_attempts(
                    conn,
                    params,
                    t.status == PENDING,
                    status=sa.case((t.attempts + 1 >= max_attempts, FAILED), else_=PENDING),
                    last_error=sa.bindparam("b_error"),
                    claimed_by=None,
                    claimed_at=None,
                    updated_at=now,
                )
                ids = [item_id for item_id, _ in retry]
                for start in range(0, len(ids), 10000):
                    stmt = sa.select(t.id, t.status).where(t.id.in_(ids[start : start + 10000]))
                    statuses.update(conn.execute(stmt).tuples().all())
        return statuses


def _count_attempts(conn: Connection, params: list[dict], *where: Any, **values: Any) -> None:
    """One more attempt for each item of `params` (its `b_id`), setting `values`; one executemany."""
    t = inbound_buffer.c
    stmt = (
        sa.update(inbound_buffer)
        .where(t.id == sa.bindparam("b_id"), *where)
        .values(attempts=t.attempts + 1, **values)
    )
    conn.execute(stmt, params)
