"""Durable inbound buffer: Segment events stored before the receiver answers, claimed by ingest runs.

One table, `inbound_buffer`, on SQLite (default, a file under `data/`) or PostgreSQL. Events are
deduplicated on Segment's `messageId`; an event without one gets a deterministic id,
`"sha1:" + sha1(JSON.stringify(event))`, so a resend of the same event is still stored once.
Each item is `pending`, `done` or `failed`, with its attempt count and last error.

Claiming is safe with several runs at once: PostgreSQL uses `FOR UPDATE SKIP LOCKED`, SQLite takes
the write lock up front (`BEGIN IMMEDIATE`). A claim is a lease: the run renews `claimed_at`
while it lives (`renew`), and a claim older than `stale_after_s` (a killed run's) can be taken
over. A run gives back what it did not finish (`release`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from segment_sync.db import create_engine, is_sqlite
from segment_sync.inbound.signature import js_stringify

PENDING = "pending"
DONE = "done"
FAILED = "failed"
STATUSES = (PENDING, DONE, FAILED)
MAX_ERROR_CHARS = 4000
MAX_MESSAGE_ID_BYTES = 1000

metadata = sa.MetaData()
inbound_buffer = sa.Table(
    "inbound_buffer",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("message_id", sa.Text, nullable=False, unique=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default=PENDING),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("claimed_by", sa.Text),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("antavo_event_ids", sa.Text),
    sa.Index("ix_inbound_buffer_status_id", "status", "id"),
)

_SQLITE_INSERT = (
    "INSERT INTO inbound_buffer (message_id, received_at, payload, status, attempts, updated_at) "
    "VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT (message_id) DO NOTHING"
)
_PG_INSERT = (
    "INSERT INTO inbound_buffer (message_id, received_at, payload, status, attempts, updated_at) "
    "SELECT m, %(now)s, p, 'pending', 0, %(now)s "
    "FROM unnest(%(ids)b::text[], %(payloads)b::text[]) WITH ORDINALITY AS r(m, p, n) ORDER BY n "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)

Row = tuple[str, str]
"""One event ready to store: (message_id, payload JSON text)."""


@dataclass(frozen=True)
class BufferItem:
    """One claimed event: its buffer id, Segment messageId, parsed payload, tries so far."""

    id: int
    message_id: str
    payload: dict
    attempts: int
    received_at: datetime


@dataclass(frozen=True)
class BufferRecord:
    """A full buffer row, for inspection and tests."""

    id: int
    message_id: str
    received_at: datetime
    payload: dict
    status: str
    attempts: int
    last_error: str | None
    claimed_by: str | None
    claimed_at: datetime | None
    updated_at: datetime
    antavo_event_ids: list[str] | None


def message_id_of(event: dict) -> str:
    """The event's Segment `messageId`, or a deterministic `sha1:` id derived from its content."""
    mid = event.get("messageId")
    if isinstance(mid, str) and mid:
        return mid
    return "sha1:" + hashlib.sha1(js_stringify(event)).hexdigest()


class InvalidMessageId(ValueError):
    """An event's `messageId` that the buffer cannot store (both SQLite and PostgreSQL refuse)."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(f"event at index {index}: messageId {problem}")
        self.index = index
        self.problem = problem


def message_id_problem(message_id: str) -> str | None:
    """Why `message_id` cannot be stored (PostgreSQL text has no NUL; index rows are bounded)."""
    if "\x00" in message_id:
        return "contains a NUL character (\\u0000)"
    try:
        size = len(message_id.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode text (a lone surrogate)"
    if size > MAX_MESSAGE_ID_BYTES:
        return f"is longer than {MAX_MESSAGE_ID_BYTES} bytes"
    return None


def rows_for(events: Sequence[dict], payloads: Sequence[str] | None = None) -> list[Row]:
    """(message_id, payload text) per event; `payloads` are the received texts when known.

    Raises `InvalidMessageId` for a messageId the buffer cannot store, before anything is stored.
    """
    if payloads is None:
        payloads = [orjson.dumps(e).decode() for e in events]
    elif len(payloads) != len(events):
        raise ValueError("payloads must have one text per event")
    rows = [(message_id_of(e), p) for e, p in zip(events, payloads, strict=True)]
    for index, (mid, _) in enumerate(rows):
        problem = message_id_problem(mid)
        if problem is not None:
            raise InvalidMessageId(index, problem)
    return rows


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _error_text(error: str) -> str:
    error = str(error)
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 3] + "..."


class InboundBuffer:
    """The inbound buffer table on SQLite or PostgreSQL; creates the table when missing."""

    def __init__(self, url: str) -> None:
        """Connect to `url` (`sqlite:///path` or `postgresql://...`) and create the table if needed."""
        self.url = url
        self.sqlite = is_sqlite(url)
        self.engine = create_engine(url, durable=True)
        if self.sqlite:
            self._use_explicit_sqlite_transactions()
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

        @sa.event.listens_for(self.engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("segment_sync_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction: takes SQLite's write lock before reading anything."""
        with self.engine.connect() as conn:
            conn.execution_options(segment_sync_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()

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
        with self._write() as conn:
            if self.sqlite:
                stored = self._insert_sqlite(conn, owned, now)
            else:
                stored = self._insert_postgresql(conn, owned, now)
        return [(n, len(rows) - n) for rows, n in zip(groups, stored, strict=True)]

    @staticmethod
    def _insert_sqlite(conn: Connection, owned: list[list[Row]], now: datetime) -> list[int]:
        """executemany per request; pysqlite sums rowcounts, skipped conflicts count 0."""
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format
        stored = []
        for rows in owned:
            if not rows:
                stored.append(0)
                continue
            result = conn.exec_driver_sql(
                _SQLITE_INSERT, [(mid, stamp, payload, stamp) for mid, payload in rows]
            )
            stored.append(result.rowcount)
        return stored

    @staticmethod
    def _insert_postgresql(conn: Connection, owned: list[list[Row]], now: datetime) -> list[int]:
        """One INSERT ... SELECT FROM unnest(...) RETURNING for every request at once."""
        ids = [mid for rows in owned for mid, _ in rows]
        payloads = [payload for rows in owned for _, payload in rows]
        inserted = set(
            conn.exec_driver_sql(_PG_INSERT, {"ids": ids, "payloads": payloads, "now": now})
            .scalars()
            .all()
        )
        return [sum(1 for mid, _ in rows if mid in inserted) for rows in owned]

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
        return _record(row) if row is not None else None

    def get_by_message_id(self, message_id: str) -> BufferRecord | None:
        """One item by Segment messageId, or None."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(inbound_buffer).where(inbound_buffer.c.message_id == message_id)
            ).first()
        return _record(row) if row is not None else None

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
            return [_record(row) for row in conn.execute(stmt)]

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
                message_id=row.message_id,
                payload=orjson.loads(row.payload),
                attempts=row.attempts,
                received_at=_utc(row.received_at),
            )
            for row in rows
        ]
        items.sort(key=lambda item: item.id)
        return items

    def renew(self, run_id: str) -> int:
        """Extend the leases of `run_id`'s pending items to now; returns how many."""
        t = inbound_buffer.c
        stmt = (
            sa.update(inbound_buffer)
            .where(t.claimed_by == run_id, t.status == PENDING)
            .values(claimed_at=_now())
        )
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
    ) -> int:
        """Failed items back to pending with attempts reset; returns how many.

        `text` matches a case-insensitive substring of the last error or the payload; `since` and
        `until` bound the time the item failed (`updated_at`). The last error is kept until the
        next try overwrites it.
        """
        t = inbound_buffer.c
        where = [t.status == FAILED]
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
    ) -> dict[int, str]:
        """Record a chunk's outcomes in one transaction; returns each touched item's new status."""
        done, retry, failed = list(done), list(retry), list(failed)
        if retry and max_attempts is None:
            raise ValueError("max_attempts is required when retrying items")
        t = inbound_buffer.c
        now = _now()
        statuses: dict[int, str] = {}
        with self._write() as conn:
            if done:
                conn.execute(
                    sa.update(inbound_buffer)
                    .where(t.id == sa.bindparam("b_id"))
                    .values(
                        status=DONE,
                        attempts=t.attempts + 1,
                        antavo_event_ids=sa.bindparam("b_ids"),
                        last_error=None,
                        updated_at=now,
                    ),
                    [
                        {"b_id": item_id, "b_ids": orjson.dumps(list(ids)).decode()}
                        for item_id, ids in done
                    ],
                )
                statuses.update((item_id, DONE) for item_id, _ in done)
            if failed:
                # `status == PENDING`: a slow run whose lease another run took over never
                # overwrites what that run recorded (done stays done).
                conn.execute(
                    sa.update(inbound_buffer)
                    .where(t.id == sa.bindparam("b_id"), t.status == PENDING)
                    .values(
                        status=FAILED,
                        attempts=t.attempts + 1,
                        last_error=sa.bindparam("b_error"),
                        updated_at=now,
                    ),
                    [{"b_id": item_id, "b_error": _error_text(err)} for item_id, err in failed],
                )
                statuses.update((item_id, FAILED) for item_id, _ in failed)
            if retry:
                conn.execute(
                    sa.update(inbound_buffer)
                    .where(t.id == sa.bindparam("b_id"), t.status == PENDING)
                    .values(
                        status=sa.case((t.attempts + 1 >= max_attempts, FAILED), else_=PENDING),
                        attempts=t.attempts + 1,
                        last_error=sa.bindparam("b_error"),
                        claimed_by=None,
                        claimed_at=None,
                        updated_at=now,
                    ),
                    [{"b_id": item_id, "b_error": _error_text(err)} for item_id, err in retry],
                )
                ids = [item_id for item_id, _ in retry]
                for start in range(0, len(ids), 10000):
                    stmt = sa.select(t.id, t.status).where(t.id.in_(ids[start : start + 10000]))
                    statuses.update(conn.execute(stmt).tuples().all())
        return statuses


def _record(row: sa.Row) -> BufferRecord:
    m = row._mapping
    ids = m["antavo_event_ids"]
    return BufferRecord(
        id=m["id"],
        message_id=m["message_id"],
        received_at=_utc(m["received_at"]),
        payload=orjson.loads(m["payload"]),
        status=m["status"],
        attempts=m["attempts"],
        last_error=m["last_error"],
        claimed_by=m["claimed_by"],
        claimed_at=_utc(m["claimed_at"]),
        updated_at=_utc(m["updated_at"]),
        antavo_event_ids=orjson.loads(ids) if ids is not None else None,
    )
