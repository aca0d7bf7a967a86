"""The inbound buffer's table and rows: its schema, the stored event's id, and what a read returns."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from segment_sync.inbound.item_gate import read_event, readable
from segment_sync.inbound.signature import js_stringify

PENDING = "pending"
DONE = "done"
FAILED = "failed"
UNKNOWN = "unknown"  # Antavo's answer did not say: it may be registered; replayed only on request
STATUSES = (PENDING, DONE, FAILED, UNKNOWN)
MAX_ERROR_CHARS = 4000
MAX_MESSAGE_ID_BYTES = 1000
DERIVED_PREFIX = "sha1:"  # ids derived from an event's content (Segment's never start so)

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
# One statement for all of a mark's done items: a JSON object of id -> event ids, joined by
# rowid inside SQLite (which releases the GIL), where an executemany bound a tuple and a JSON
# text per item while holding it. The rows' own rewrite and the commit still cost the most.
_SQLITE_MARK_DONE = (
    "UPDATE inbound_buffer SET status = 'done', attempts = attempts + 1, antavo_event_ids = j.value, "
    "last_error = NULL, updated_at = ? FROM json_each(?) AS j WHERE inbound_buffer.id = j.key"
)
_PG_INSERT = (
    "INSERT INTO inbound_buffer (message_id, received_at, payload, status, attempts, updated_at) "
    "SELECT m, %(now)s, p, 'pending', 0, %(now)s "
    "FROM unnest(%(ids)b::text[], %(payloads)b::text[]) WITH ORDINALITY AS r(m, p, n) ORDER BY n "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)

Row = tuple[str, str]
"""One event ready to store: (message_id, payload JSON text)."""


@dataclass(slots=True)  # per item, not frozen: a frozen __init__ costs five times as much
class BufferItem:
    """One claimed event: its buffer id, Segment messageId, parsed payload, tries so far.

    `fault` says why the stored text cannot be read (then `payload` is empty): see item_gate.
    """

    id: int
    message_id: str
    payload: dict
    attempts: int
    received_at: datetime
    fault: str | None = None
    # Mapping name -> Antavo event id of the events an earlier try registered (the item then
    # failed, or waits for a retry): never sent again, Antavo has no idempotency key.
    registered: dict[str, str] | None = None


def registered_events(stored: str | bytes | None) -> dict[str, str] | None:
    """An unfinished item's registered events, from its `antavo_event_ids` (a JSON object; a
    done item's is the list of its event ids)."""
    if stored is None:
        return None
    value = orjson.loads(stored)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


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
    # A done item's event ids; an unfinished one's events registered so far, by mapping name.
    antavo_event_ids: list[str] | dict[str, str] | None
    fault: str | None = None  # why `payload` (then empty) could not be read


def message_id_of(event: Any) -> str:
    """The event's Segment `messageId`, or a deterministic `sha1:` id derived from its content
    when it has none, or one the buffer cannot store (see `message_id_problem`)."""
    mid = event.get("messageId") if isinstance(event, dict) else None
    if isinstance(mid, str) and mid and message_id_problem(mid) is None:
        return mid
    return derived_message_id(event)


def derived_message_id(event: Any) -> str:
    """`sha1:` + the SHA-1 of the event as JSON.stringify writes it: a resend maps to the same."""
    return DERIVED_PREFIX + hashlib.sha1(js_stringify(event)).hexdigest()


def message_id_problem(message_id: str) -> str | None:
    """Why `message_id` cannot be stored (PostgreSQL text has no NUL; index rows are bounded)."""
    if "\x00" in message_id:
        return "contains a NUL character (\\u0000)"
    if message_id.startswith(DERIVED_PREFIX):  # a sender could take another event's derived id
        return f"starts with {DERIVED_PREFIX!r}, which is kept for ids derived from content"
    try:
        size = len(message_id.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode text (a lone surrogate)"
    if size > MAX_MESSAGE_ID_BYTES:
        return f"is longer than {MAX_MESSAGE_ID_BYTES} bytes"
    return None


def rows_for(events: Sequence[Any], payloads: Sequence[str] | None = None) -> list[Row]:
    """(message_id, payload text) per event; `payloads` are the received texts when known."""
    if payloads is None:
        payloads = [orjson.dumps(e).decode() for e in events]
    elif len(payloads) != len(events):
        raise ValueError("payloads must have one text per event")
    return [(message_id_of(e), p) for e, p in zip(events, payloads, strict=True)]


def unstorable_ids(events: Sequence[Any]) -> list[tuple[int, str]]:
    """(index, why) of each event whose own messageId the buffer cannot store (it is stored
    under its derived id instead)."""
    out = []
    for index, event in enumerate(events):
        mid = event.get("messageId") if isinstance(event, dict) else None
        if isinstance(mid, str) and mid and (problem := message_id_problem(mid)) is not None:
            out.append((index, problem))
    return out


def utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def buffer_record(row: sa.Row) -> BufferRecord:
    m = row._mapping
    ids = m["antavo_event_ids"]
    payload, fault = read_event(m["payload"])
    return BufferRecord(
        id=m["id"],
        message_id=readable(m["message_id"]),
        received_at=utc(m["received_at"]),
        payload=payload,
        status=m["status"],
        attempts=m["attempts"],
        last_error=m["last_error"],
        claimed_by=m["claimed_by"],
        claimed_at=utc(m["claimed_at"]),
        updated_at=utc(m["updated_at"]),
        antavo_event_ids=orjson.loads(ids) if ids is not None else None,
        fault=fault,
    )


def sqlite_stamp(now: datetime) -> str:
    """A UTC time as SQLAlchemy's SQLite DATETIME stores it (so it compares with stored ones)."""
    return now.strftime("%Y-%m-%d %H:%M:%S.%f")


def mark_done_sqlite(conn: Connection, done: list[tuple[int, list[str]]], now: datetime) -> None:
    """`mark_many`'s done items on SQLite in one UPDATE ... FROM json_each, the hot path of an
    ingest (an id marked twice in one call counts one attempt)."""
    by_id = orjson.dumps({item_id: ids for item_id, ids in done}, option=orjson.OPT_NON_STR_KEYS)
    conn.exec_driver_sql(_SQLITE_MARK_DONE, (sqlite_stamp(now), by_id.decode()))


ClaimedRow = tuple[int, bytes, bytes, int, bytes, bytes | None]
"""A claimed row as SQLite stores it: id, message_id, payload, attempts, received_at, event ids
(text as its bytes)."""


def claim_sqlite(
    conn: Connection,
    run_id: str,
    now: datetime,
    stale_before: datetime,
    picked: tuple[str, list[Any]],
    limit: int,
) -> list[ClaimedRow]:
    """`InboundBuffer.claim` on SQLite in plain statements: SQLAlchemy's typed rows cost about
    twice SQLite's own work per claimed item. `picked` is the extra WHERE text (with its
    parameters) the claim adds to status, attempts and the lease. The rows are read into
    items by `claimed_items`, after the commit: the write lock is not held while they are
    parsed (the run's marks wait for it).

    A SELECT of the first `limit` claimable rows, then an UPDATE of the claimable rows up to the
    last id read: the same rows, as the write transaction holds the lock (an UPDATE ... RETURNING
    copied every row once more). Text comes back as its bytes (the driver's cursor): the payload
    goes to the JSON parser as it is stored, never decoded to str and encoded back."""
    stamp = sqlite_stamp(now)
    extra, params = picked
    claimable = f"status = 'pending' AND (claimed_by IS NULL OR claimed_at < ?){extra}"
    where = (sqlite_stamp(stale_before), *params)
    driver = conn.connection.driver_connection
    factory = driver.text_factory
    driver.text_factory = bytes
    try:
        rows = driver.execute(
            "SELECT id, message_id, payload, attempts, received_at, antavo_event_ids "
            f"FROM inbound_buffer WHERE {claimable} ORDER BY id LIMIT ?",
            (*where, limit),
        ).fetchall()
    finally:
        driver.text_factory = factory
    if rows:
        driver.execute(
            "UPDATE inbound_buffer SET claimed_by = ?, claimed_at = ?, updated_at = ? "
            f"WHERE {claimable} AND id <= ?",
            (run_id, stamp, stamp, *where, rows[-1][0]),
        )
    return rows


def claimed_items(rows: list[ClaimedRow]) -> list[BufferItem]:
    """The items of `claim_sqlite`'s rows (in id order, as it reads them); an unreadable payload
    is the item's fault (item_gate), never an error."""
    times: dict[Any, datetime | None] = {}  # a receiver's commit stores many rows at one time
    items = []
    for item_id, message_id, raw, attempts, received_at, registered in rows:
        when = times.get(received_at)
        if when is None:
            when = times[received_at] = utc(received_at.decode("utf-8", "replace"))
        payload, fault = read_event(raw)
        items.append(
            BufferItem(  # positional: id, message_id, payload, attempts, received_at, fault, ...
                item_id,
                # readable() of the text the buffer's reader would have made of these bytes
                message_id.decode("utf-8", "replace"),
                payload,
                attempts,
                when,
                fault,
                registered_events(registered),
            )
        )
    return items


def insert_sqlite(conn: sqlite3.Connection, owned: list[list[Row]], now: datetime) -> list[int]:
    """One committed transaction (BEGIN IMMEDIATE), an executemany per request; rows stored each.

    pysqlite sums an executemany's rowcounts, and skipped conflicts count 0.
    """
    stamp = sqlite_stamp(now)
    conn.execute("BEGIN IMMEDIATE")
    try:
        stored = [
            conn.executemany(
                _SQLITE_INSERT, [(mid, stamp, payload, stamp) for mid, payload in rows]
            ).rowcount
            if rows
            else 0
            for rows in owned
        ]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return stored


def insert_postgresql(conn: Connection, owned: list[list[Row]], now: datetime) -> list[int]:
    """One INSERT ... SELECT FROM unnest(...) RETURNING for every request at once."""
    ids = [mid for rows in owned for mid, _ in rows]
    payloads = [payload for rows in owned for _, payload in rows]
    inserted = set(
        conn.exec_driver_sql(_PG_INSERT, {"ids": ids, "payloads": payloads, "now": now})
        .scalars()
        .all()
    )
    return [sum(1 for mid, _ in rows if mid in inserted) for rows in owned]
