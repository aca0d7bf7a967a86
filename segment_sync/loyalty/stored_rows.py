"""The loyalty store's edge: every stored row becomes a record or a BadRow, never an exception.

Every read of loyalty events and profile changes goes through `fetch` and `records`. Whatever
a row holds (text that is not UTF-8 or a BLOB where text belongs, JSON that does not parse or
is not an object, a time that is not one), it is read as its record or as one BadRow naming
the row, the column and the problem, and the rows beside it are read as if it were not there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import orjson
import sqlalchemy as sa

from segment_sync.loyalty.records import BadRow, LoyaltyEvent, ProfileChange
from segment_sync.loyalty.stored_time import read_time

Record = LoyaltyEvent | ProfileChange | BadRow


def fetch(
    engine: sa.Engine, sql: str, params: Sequence, *, text_as_bytes: bool = False
) -> list[tuple]:
    """The rows of one SELECT as the driver returns them (the DB-API cursor: SQLAlchemy's row
    wrapping costs ~1 us a row on the hot loop).

    SQLite lets any client store text that is not UTF-8, and its driver then stops the whole
    read; the rows are read again with every text value as bytes, which `records` decodes
    one by one. (PostgreSQL refuses such text when it is written.) PostgreSQL holds times
    Python has no datetime for (`infinity`, years past 9999), and psycopg then stops the whole
    read: the rows are read again with times as their text, which `read_time` reads or refuses.
    `text_as_bytes` (SQLite only): every text value as its bytes from the start, for a reader
    that checks UTF-8 itself (Arrow checks each value, in bulk; no str is made).
    """
    connection = engine.raw_connection()
    try:
        if text_as_bytes:
            rows = _execute_text_as_bytes(connection, sql, params)
        else:
            rows = _execute_any_text(connection, sql, params)
        connection.commit()  # ends the read transaction (PostgreSQL would hold a snapshot)
        return rows
    finally:
        connection.close()


def _execute_any_text(connection, sql: str, params: Sequence) -> list[tuple]:
    """`_execute`, read again as `fetch` says when a stored value stops the driver."""
    try:
        return _execute(connection, sql, params)
    except sqlite3.OperationalError as exc:
        if "UTF-8" not in str(exc):
            raise
        return _execute_text_as_bytes(connection, sql, params)
    except Exception as exc:
        if not _time_psycopg_cannot_load(exc):
            raise
        connection.rollback()
        return _execute_times_as_text(connection, sql, params)


def _execute_text_as_bytes(connection, sql: str, params: Sequence) -> list[tuple]:
    """`_execute` on SQLite with every text value as its bytes (the pooled connection is
    given back reading str)."""
    driver = connection.driver_connection
    driver.text_factory = bytes
    try:
        return _execute(connection, sql, params)
    finally:
        driver.text_factory = str


def _time_psycopg_cannot_load(exc: Exception) -> bool:
    """psycopg's DataError for a time it cannot make a datetime ("timestamp too large")."""
    if not type(exc).__module__.startswith("psycopg"):
        return False
    import psycopg

    return isinstance(exc, psycopg.DataError) and "timestamp" in str(exc)


def _execute_times_as_text(connection, sql: str, params: Sequence) -> list[tuple]:
    """`_execute` on PostgreSQL with every timestamp read as its ISO text in UTC."""
    from psycopg.types.string import TextLoader

    cursor = connection.driver_connection.cursor()  # its loaders are its own, not the pool's
    try:
        for name in ("timestamptz", "timestamp"):
            cursor.adapters.register_loader(name, TextLoader)
        cursor.execute("SET LOCAL TimeZone = 'UTC'")  # until the commit that ends the read
        cursor.execute("SET LOCAL DateStyle = 'ISO'")
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _execute(connection, sql: str, params: Sequence) -> list[tuple]:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def records(table: sa.Table, rows: Sequence[Sequence]) -> list[Record]:
    """Rows (in the table's column order) as records; a row that does not read is a BadRow."""
    parse = _PARSERS[table.name]
    try:
        return [parse(row) for row in rows]  # the common case: no per-row try
    except Exception:
        return [record(table, row) for row in rows]


def record(table: sa.Table, row: Sequence) -> Record:
    """One row as its record, or as the BadRow saying which column is at fault and how."""
    try:
        return _PARSERS[table.name](tuple(_decoded(v) for v in row))
    except Exception:
        return _bad_row(table, row)


def _decoded(value: object) -> object:
    """Text read as bytes (see `fetch`), or a BLOB, as the str it is; raises if not UTF-8."""
    return value.decode() if value.__class__ is bytes else value


def _object(text: str) -> dict:
    value = orjson.loads(text)
    if type(value) is not dict:
        raise TypeError(f"is JSON {type(value).__name__}, not an object")
    return value


def _text(value: object) -> str:
    if value.__class__ is not str:
        raise TypeError(f"is {type(value).__name__}, not text")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _event(row: Sequence) -> LoyaltyEvent:
    id_, customer_id, external_id, action, data, occurred_at, origin = row
    value = orjson.loads(data)
    # Inline checks, not _text() and _object(): this runs once per row.
    if not (
        customer_id.__class__ is str
        and action.__class__ is str
        and origin.__class__ is str
        and (external_id is None or external_id.__class__ is str)
        and value.__class__ is dict
    ):
        raise TypeError("a column does not read")
    when = read_time(occurred_at)
    return LoyaltyEvent(id_, customer_id, external_id, action, value, when, origin, data)


def _profile_change(row: Sequence) -> ProfileChange:
    id_, customer_id, external_id, attributes, occurred_at, origin = row
    attributes = orjson.loads(attributes)
    if not (
        customer_id.__class__ is str
        and origin.__class__ is str
        and (external_id is None or external_id.__class__ is str)
        and attributes.__class__ is dict
    ):
        raise TypeError("a column does not read")
    return ProfileChange(id_, customer_id, external_id, attributes, read_time(occurred_at), origin)


_PARSERS: dict[str, Callable[[Sequence], LoyaltyEvent | ProfileChange]] = {
    "loyalty_events": _event,
    "profile_changes": _profile_change,
}
_CHECKS: dict[str, Callable[[object], object]] = {
    "customer_id": _text,
    "external_customer_id": _optional_text,
    "action": _text,
    "data": _object,
    "attributes": _object,
    "occurred_at": read_time,
    "origin": _text,
}


def _bad_row(table: sa.Table, row: Sequence) -> BadRow:
    """Which column of a row that did not read is at fault, and how."""
    customer_id = _readable_text(row[1])
    for column, value in zip((c.name for c in table.columns), row, strict=True):
        check = _CHECKS.get(column)
        if check is None:
            continue
        try:
            check(_decoded(value))
        except UnicodeDecodeError as exc:
            problem = f"is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at {exc.start})"
            return BadRow(row[0], table.name, column, problem, customer_id)
        except orjson.JSONDecodeError as exc:
            return BadRow(row[0], table.name, column, f"is not valid JSON ({exc})", customer_id)
        except Exception as exc:
            return BadRow(row[0], table.name, column, f"cannot be read ({exc})", customer_id)
    return BadRow(row[0], table.name, "(unknown)", "could not be read", customer_id)


def _readable_text(value: object) -> str | None:
    """The customer ID of a bad row for its log row, when it reads."""
    try:
        return _text(_decoded(value))
    except Exception:
        return None
