"""Durable inbound buffer: Segment events stored before the receiver answers, claimed by ingest runs.

One table, `inbound_buffer`, on SQLite (default, a file under `data/`) or PostgreSQL. Events are
deduplicated on Segment's `messageId`; an event without one gets a deterministic id,
`"sha1:" + sha1(JSON.stringify(event))`, so a resend of the same event is still stored once.
Each item is `pending`, `done`, `failed` or `unknown` (Antavo's answer did not say whether it
registered the event), with its attempt count and last error.

Claiming is safe with several runs at once: PostgreSQL uses `FOR UPDATE SKIP LOCKED`, SQLite takes
the write lock up front (`BEGIN IMMEDIATE`). A claim is a lease: the run renews `claimed_at`
while it lives (`renew`), and a claim older than `stale_after_s` (a killed run's) can be taken
over. A run gives back what it did not finish (`release`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from segment_sync.db import Url, create_engine, is_sqlite, sqlite_path
from segment_sync.inbound.buffer_rows import (
    DONE,
    FAILED,
    MAX_ERROR_CHARS,
    PENDING,
    STATUSES,
    UNKNOWN,
    BufferItem,
    BufferRecord,
    Row,
    buffer_record,
    claim_sqlite,
    inbound_buffer,
    insert_postgresql,
    insert_sqlite,
    mark_done_sqlite,
    metadata,
    rows_for,
    utc,
)
from segment_sync.inbound.item_gate import read_event, readable
from segment_sync.locks import WriterTurns


def _now() -> datetime:
    return datetime.now(UTC)


def _lenient_text(raw: bytes) -> str:
    """SQLite text as str; bytes that are not UTF-8 are kept, surrogate-escaped (item_gate)."""
    return raw.decode("utf-8", "surrogateescape")


def _error_text(error: str) -> str:
    error = str(error)
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 3] + "..."


class InboundBuffer:
    """The inbound buffer table on SQLite or PostgreSQL; creates the table when missing."""

    def __init__(self, url: Url) -> None:
        """Connect to `url` (`sqlite:///path` or `postgresql://...`) and create the table if needed."""
        self.url = url
        self.sqlite = is_sqlite(url)
        self.engine = create_engine(url, durable=True)
        self._turns: WriterTurns | None = None
        # A run's threads (claims, marks, lease renewals) take turns here: SQLite's busy handler
        # would sleep up to 100 ms between tries, a lock hands over at once.
        self._writing: AbstractContextManager = threading.RLock() if self.sqlite else nullcontext()
        if self.sqlite:
            self._use_explicit_sqlite_transactions()
            path = sqlite_path(url)
            if str(path) != ":memory:":  # receiver workers share the file: see WriterTurns
                self._turns = WriterTurns(path.with_name(path.name + ".write-turn"))
        self._create_table()

    def _create_table(self) -> None:
        """Create the table and index if missing (tolerates another process doing it at once)."""
        try:
            with self._write() as conn:
                metadata.create_all(conn)
        except sa.exc.DBAPIError:
            with self._read() as conn:
                if not sa.inspect(conn).has_table(inbound_buffer.name):
                    raise

    def _use_explicit_sqlite_transactions(self) -> None:
        """Let us issue BEGIN IMMEDIATE for writes (pysqlite would otherwise BEGIN lazily)."""

        @sa.event.listens_for(self.engine, "connect")
        def _autocommit_driver(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None
            # SQLite stores whatever bytes a client wrote; one row that is not UTF-8 must fail
            # alone (item_gate), not every read of the rows around it.
            dbapi_conn.text_factory = _lenient_text

        @sa.event.listens_for(self.engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("segment_sync_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction: takes SQLite's write lock before reading anything."""
        with self._writing, self.engine.connect() as conn:
            conn.execution_options(segment_sync_write=True)
            with conn.begin():
                yield conn

    def _turn(self):
        return self._turns.turn() if self._turns is not None else nullcontext()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()
        if self._turns is not None:
            self._turns.close()

    # -- receiving -------------------------------------------------------------------------

    def add_many(
        self, events: Sequence[dict], payloads: Sequence[str] | None = None
    ) -> tuple[int, int]:
        """Store events in one committed transaction; returns (stored, duplicates by messageId)."""
        return self.add_row_groups([rows_for(events, payloads)])[0]

    def add_row_groups(self, groups: Sequence[Sequence[Row]]) -> list[tuple[int, int]]:
        """Store several requests' rows in one transaction (group commit); (stored, dups) each."""
        seen: set[str] = set()
        owned: list[list[Row]] = []
        for rows in groups:
            mine: list[Row] = []
            for row in rows:
                if row[0] not in seen:
                    seen.add(row[0])
                    mine.append(row)
            owned.append(mine)
        if not seen:
            return [(0, len(rows)) for rows in groups]
        now = _now()
        if self.sqlite:
            with self._turn(), self._writing:
                stored = self._insert_sqlite(owned, now)
        else:
            with self._write() as conn:
                stored = insert_postgresql(conn, owned, now)
        return [(n, len(rows) - n) for rows, n in zip(groups, stored, strict=True)]

    def _insert_sqlite(self, owned: list[list[Row]], now: datetime) -> list[int]:
        """`insert_sqlite` on the pooled DBAPI connection: the receiver's hot path, where
        SQLAlchemy's per-execute and per-transaction work cost more CPU than the INSERTs."""
        raw = self.engine.raw_connection()
        try:
            return insert_sqlite(raw.driver_connection, owned, now)
        except sqlite3.Error as exc:  # the same exception types as the SQLAlchemy paths raise
            raise sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error, ismulti=True) from exc
        finally:
            raw.close()  # back to the pool

    # -- inspecting ------------------------------------------------------------------------

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

    # -- processing ------------------------------------------------------------------------

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
                return claim_sqlite(conn, run_id, now, stale_before, (extra, params), limit)
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
            .returning(t.id, t.message_id, t.payload, t.attempts, t.received_at)
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
    ) -> dict[int, str]:
        """Record a chunk's outcomes in one transaction; returns each touched item's new status."""
        done, retry, failed, unknown = list(done), list(retry), list(failed), list(unknown)
        if retry and max_attempts is None:
            raise ValueError("max_attempts is required when retrying items")
        t = inbound_buffer.c
        now = _now()
        statuses: dict[int, str] = {}
        with self._write() as conn:
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
