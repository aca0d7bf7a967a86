"""Outbound progress: a delivered-up-to watermark, and a lock so one run sends a stream.

Both are keyed by (source, destination, stream): the loyalty store read, the Segment endpoint
and write key sent to, and the stream. Another store, or another Segment source, starts from its
own first row; two deployments sharing a state database (or PostgreSQL server) never share or
block each other's progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from segment_sync.db import (
    Url,
    create_engine,
    create_tables,
    database_identity,
    fingerprint,
    sqlite_path,
)
from segment_sync.locks import file_lock
from segment_sync.loyalty.records import Stream
from segment_sync.outbound.legacy_keys import adopt_legacy_rows
from segment_sync.outbound.shards import Shard
from segment_sync.redaction import SecretUrl

metadata = sa.MetaData()

# Progress before it was keyed by source and destination lived in `outbound_watermarks`
# (stream only); that table is left as it was and no longer read.
progress = sa.Table(
    "outbound_progress",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("destination", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("delivered_upto", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


# How many shards each stream's progress is split into (no row: one, the unsharded stream).
sharding = sa.Table(
    "outbound_sharding",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("destination", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("shards", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


# Who waits for a stream's lock: a holder that would keep it for long (a follow run) lets go
# at its next pass. A waiter refreshes its row every poll; a row not refreshed for
# WAITER_FRESH_S belongs to a waiter that gave up or died, and is ignored.
lock_waits = sa.Table(
    "outbound_lock_waits",
    metadata,
    sa.Column("lock_name", sa.Text, primary_key=True),
    sa.Column("waiter", sa.Text, primary_key=True),
    sa.Column("seen_at", sa.Float, nullable=False),  # unix time
)
WAITER_FRESH_S = 5.0


@dataclass(frozen=True)
class ProgressKey:
    """Whose progress: the loyalty store and the destination (no password, no write key)."""

    source: str  # database_identity of the loyalty store URL
    destination: str  # endpoint without its password + " key:" + fingerprint of the write key
    # The key as versions before issue 24 wrote it, with the endpoint's password (None when the
    # endpoint has none): only to move those rows (legacy_keys.py); never shown.
    legacy_destination: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, store_url: Url, endpoint: Url, write_key: str) -> ProgressKey:
        url, key = SecretUrl(endpoint), f" key:{fingerprint(write_key)}"
        legacy = url.reveal() + key if url.has_password else None
        return cls(database_identity(store_url), url.without_password() + key, legacy)

    @property
    def digest(self) -> str:
        """16 hex naming this pair, for lock names."""
        return fingerprint(f"{self.source}\n{self.destination}")


class StreamBusy(RuntimeError):
    """Another run holds the stream; this one must not send it at the same time."""


class OutboundState:
    """Watermarks live in a small database of the sync's own (SQLite default, PostgreSQL by URL).

    With `outbound.shards` > 1 each shard has its own watermark and lock (see shards.py); a
    state of every shard at once (`Shard(n, None)`) locks them all and reports the lowest
    watermark, for replay and reconciliation.
    """

    def __init__(self, url: Url, key: ProgressKey, shard: Shard | None = None) -> None:
        self.url = url
        self.key = key
        self.shard = shard or Shard()
        self.engine = create_engine(url, durable=True, setting="outbound.state_url")
        create_tables(self.engine, metadata)
        if key.legacy_destination is not None:
            adopt_legacy_rows(
                self.engine, key.source, key.destination, key.legacy_destination, progress, sharding
            )

    def close(self) -> None:
        self.engine.dispose()

    def for_shard(self, shard: Shard) -> OutboundState:
        """The same progress database, seen as `shard` (shares this state's engine)."""
        other = object.__new__(OutboundState)
        other.url, other.key, other.shard, other.engine = self.url, self.key, shard, self.engine
        return other

    def _this(self, stream: Stream, shard: Shard | None = None) -> sa.ColumnElement[bool]:
        return sa.and_(
            progress.c.source == self.key.source,
            progress.c.destination == self.key.destination,
            progress.c.stream == (shard or self.shard).stream_key(stream),
        )

    def watermark(self, stream: Stream) -> int:
        """Every row of `stream` with id <= this has been handled (delivered, failed or skipped)."""
        return min(self._watermark(stream, s) for s in self.shard.members())

    def _watermark(self, stream: Stream, shard: Shard) -> int:
        query = sa.select(progress.c.delivered_upto).where(self._this(stream, shard))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar() or 0

    def advance(self, stream: Stream, upto: int, run_id: str) -> None:
        """Move the watermark forward (never back)."""
        if self.shard.index is None:
            raise ValueError("progress moves per shard, not for every shard at once")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(progress.c.delivered_upto).where(self._this(stream))
            ).scalar()
            if current is None:
                conn.execute(
                    progress.insert().values(
                        source=self.key.source,
                        destination=self.key.destination,
                        stream=self.shard.stream_key(stream),
                        delivered_upto=upto,
                        run_id=run_id,
                        updated_at=now,
                    )
                )
            elif upto > current:
                conn.execute(
                    progress.update()
                    .where(self._this(stream))
                    .values(delivered_upto=upto, run_id=run_id, updated_at=now)
                )

    @contextmanager
    def lock(self, stream: Stream, wait_s: float = 60.0) -> Iterator[None]:
        """Hold the stream for this run; released even when the process is killed.

        SQLite: an flock on a file beside the database (the kernel drops it with the process).
        PostgreSQL: a session advisory lock (the server drops it with the connection).
        """
        if len(members := self.shard.members()) > 1:  # in index order, so no two deadlock
            with contextlib.ExitStack() as held:
                for member in members:
                    held.enter_context(self.for_shard(member).lock(stream, wait_s))
                yield
            return
        name, waiter = self._lock_name(stream), uuid.uuid4().hex
        marked = False  # this run left a waiter row (only when it had to wait)

        def waiting() -> None:
            nonlocal marked
            self._mark_waiting(name, waiter)
            marked = True

        def done_waiting() -> None:
            nonlocal marked
            if marked:
                self._done_waiting(name, waiter)
                marked = False

        try:
            with self._held(stream, wait_s, waiting):
                done_waiting()
                yield
        finally:
            done_waiting()

    def _held(
        self, stream: Stream, wait_s: float, on_wait: Callable[[], None]
    ) -> contextlib.AbstractContextManager[None]:
        path = sqlite_path(self.url)
        if path is not None:
            name = self.shard.stream_key(stream).replace("/", ".")
            lock_file = path.with_name(f"{path.name}.{self.key.digest}.{name}.lock")
            return file_lock(lock_file, wait_s, _busy(stream, wait_s), poll_s=0.2, on_wait=on_wait)
        return _advisory_lock(self.engine, self.advisory_key(stream), stream, wait_s, on_wait)

    def others_waiting(self, stream: Stream) -> bool:
        """Is another run waiting for this stream's lock right now?"""
        query = sa.select(sa.func.count()).where(
            lock_waits.c.lock_name == self._lock_name(stream),
            lock_waits.c.seen_at > time.time() - WAITER_FRESH_S,
        )
        with self.engine.connect() as conn:
            return bool(conn.execute(query).scalar())

    def _lock_name(self, stream: Stream) -> str:
        return f"{self.key.digest}:{self.shard.stream_key(stream)}"

    def _mark_waiting(self, name: str, waiter: str) -> None:
        with self.engine.begin() as conn:
            self._forget(conn, name, waiter)
            conn.execute(
                lock_waits.insert().values(lock_name=name, waiter=waiter, seen_at=time.time())
            )

    def _done_waiting(self, name: str, waiter: str) -> None:
        with self.engine.begin() as conn:
            self._forget(conn, name, waiter)

    @staticmethod
    def _forget(conn: sa.Connection, name: str, waiter: str) -> None:
        conn.execute(
            lock_waits.delete().where(lock_waits.c.lock_name == name, lock_waits.c.waiter == waiter)
        )

    def advisory_key(self, stream: Stream) -> int:
        """The PostgreSQL advisory-lock key of this source, destination and stream."""
        name = f"segment-sync:{self.key.digest}:{self.shard.stream_key(stream)}"
        return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


def _busy(stream: Stream, wait_s: float) -> StreamBusy:
    return StreamBusy(
        f"stream {stream.value!r} is being sent by another run (waited {wait_s:.0f}s); "
        "this run sent nothing. It will be picked up by the next run."
    )


@contextmanager
def _advisory_lock(
    engine: sa.Engine,
    key: int,
    stream: Stream,
    wait_s: float,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    with engine.connect() as conn:
        deadline = time.monotonic() + wait_s
        while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise _busy(stream, wait_s)
            if on_wait is not None:
                on_wait()
            time.sleep(0.2)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
