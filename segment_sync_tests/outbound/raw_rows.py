"""Rows written into a SQLite loyalty store by some other client, exactly as given.

SQLite keeps whatever a client stores: text that is not UTF-8 (`CAST(? AS TEXT)`), a BLOB
where text belongs, a time that is not one. These helpers store such rows beside the package's
own, so tests see what the sync reads from a real store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from segment_sync.loyalty.store import LoyaltyStore


@dataclass(frozen=True)
class Blob:
    """A value stored as a BLOB (any other bytes are stored as TEXT, valid UTF-8 or not)."""

    raw: bytes


def stored_time(value: datetime | None = None) -> str:
    """A time as the store keeps it on SQLite (naive UTC text)."""
    return (value or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S.%f")


DEFAULTS = {
    "customer_id": "c-raw",
    "action": "point_add",
    "data": "{}",
    "attributes": '{"email": "x@example.com"}',
    "origin": "loyalty",
}


def insert_raw(store: LoyaltyStore, table: sa.Table, **columns: object) -> int:
    """Insert one row of `table` with these column values (the rest defaulted); its id."""
    values = {"occurred_at": stored_time(), **DEFAULTS, **columns}
    names = [c.name for c in table.columns if c.name in values]
    marks = ", ".join("CAST(? AS TEXT)" if type(values[n]) is bytes else "?" for n in names)
    params = [values[n].raw if isinstance(values[n], Blob) else values[n] for n in names]
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", params)
        connection.commit()
        return cursor.lastrowid
    finally:
        connection.close()
