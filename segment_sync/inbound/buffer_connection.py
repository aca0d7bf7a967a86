"""The inbound buffer's connection: the table created, SQLite write transactions, writer turns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from segment_sync.db import Url, create_engine, is_sqlite, sqlite_path
from segment_sync.inbound.buffer_rows import inbound_buffer, metadata
from segment_sync.locks import WriterTurns


def _now() -> datetime:
    return datetime.now(UTC)


def _lenient_text(raw: bytes) -> str:
    """SQLite text as str; bytes that are not UTF-8 are kept, surrogate-escaped (item_gate)."""
    return raw.decode("utf-8", "surrogateescape")


class BufferConnection:
    """The engine and transactions the parts of `InboundBuffer` share."""

    def __init__(self, url: Url) -> None:
        """Connect to `url` (`sqlite:///path` or `postgresql://...`) and create the table if needed."""
        self.url = url
        self.sqlite = is_sqlite(url)
        self.engine = create_engine(url, durable=True, setting="inbound.buffer_url")
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
