"""Outbound progress: a delivered-up-to watermark per stream, and a lock so one run sends a stream."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa

from segment_sync.db import create_engine, sqlite_path
from segment_sync.locks import file_lock
from segment_sync.loyalty.records import Stream

metadata = sa.MetaData()

watermarks = sa.Table(
    "outbound_watermarks",
    metadata,
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("delivered_upto", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class StreamBusy(RuntimeError):
    """Another run holds the stream; this one must not send it at the same time."""


class OutboundState:
    """Watermarks live in a small database of the sync's own (SQLite default, PostgreSQL by URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url, durable=True)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def watermark(self, stream: Stream) -> int:
        """Every row of `stream` with id <= this has been handled (delivered, failed or skipped)."""
        query = sa.select(watermarks.c.delivered_upto).where(watermarks.c.stream == stream.value)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar() or 0

    def advance(self, stream: Stream, upto: int, run_id: str) -> None:
        """Move the watermark forward (never back)."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(watermarks.c.delivered_upto).where(watermarks.c.stream == stream.value)
            ).scalar()
            if current is None:
                conn.execute(
                    watermarks.insert().values(
                        stream=stream.value, delivered_upto=upto, run_id=run_id, updated_at=now
                    )
                )
            elif upto > current:
                conn.execute(
                    watermarks.update()
                    .where(watermarks.c.stream == stream.value)
                    .values(delivered_upto=upto, run_id=run_id, updated_at=now)
                )

    @contextmanager
    def lock(self, stream: Stream, wait_s: float = 60.0) -> Iterator[None]:
        """Hold the stream for this run; released even when the process is killed.

        SQLite: an flock on a file beside the database (the kernel drops it with the process).
        PostgreSQL: a session advisory lock (the server drops it with the connection).
        """
        path = sqlite_path(self.url)
        if path is not None:
            lock_file = path.with_name(f"{path.name}.{stream.value}.lock")
            with file_lock(lock_file, wait_s, _busy(stream, wait_s), poll_s=0.2):
                yield
        else:
            with _advisory_lock(self.engine, stream, wait_s):
                yield


def _busy(stream: Stream, wait_s: float) -> StreamBusy:
    return StreamBusy(
        f"stream {stream.value!r} is being sent by another run (waited {wait_s:.0f}s); "
        "this run sent nothing. It will be picked up by the next run."
    )


@contextmanager
def _advisory_lock(engine: sa.Engine, stream: Stream, wait_s: float) -> Iterator[None]:
    key = int.from_bytes(
        hashlib.sha1(f"segment-sync:{stream.value}".encode()).digest()[:8], "big", signed=True
    )
    with engine.connect() as conn:
        deadline = time.monotonic() + wait_s
        while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise _busy(stream, wait_s)
            time.sleep(0.2)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
