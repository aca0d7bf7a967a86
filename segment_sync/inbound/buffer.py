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
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from segment_sync.inbound.buffer_claims import BufferClaims
from segment_sync.inbound.buffer_connection import _now
from segment_sync.inbound.buffer_outcomes import BufferOutcomes
from segment_sync.inbound.buffer_queries import BufferQueries
from segment_sync.inbound.buffer_rows import (
    BufferItem,
    BufferRecord,
    Row,
    insert_postgresql,
    insert_sqlite,
    rows_for,
)

__all__ = ["BufferItem", "BufferRecord", "InboundBuffer"]


class InboundBuffer(BufferQueries, BufferClaims, BufferOutcomes):
    """The inbound buffer table on SQLite or PostgreSQL; creates the table when missing."""

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
