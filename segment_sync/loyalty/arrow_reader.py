"""Chunks of the loyalty store as Arrow tables of the stored text, for the columnar builder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import quote

import pyarrow as pa
import sqlalchemy as sa

from segment_sync.redaction import Redactor, password_pieces

_WHO = [("id", pa.int64()), ("customer_id", pa.string()), ("external_customer_id", pa.string())]
_WHEN = [("occurred_at", pa.string()), ("origin", pa.string())]
EVENT_SCHEMA = pa.schema([*_WHO, ("action", pa.string()), ("data", pa.string()), *_WHEN])
PROFILE_SCHEMA = pa.schema([*_WHO, ("attributes", pa.string()), *_WHEN])
SCHEMAS = {"loyalty_events": EVENT_SCHEMA, "profile_changes": PROFILE_SCHEMA}


# Rows per SQLite read: a chunk (outbound.chunk_size, 20,000) is read in slices.
SLICE_ROWS = 4096


class StoreReadError(RuntimeError):
    """The loyalty store could not be read (the message carries no password)."""


Rows = Callable[[str, int, int, int], Sequence[tuple]]


class ArrowReader:
    """Reads `after < id <= upto` of a store table, oldest first, as one Arrow table.

    PostgreSQL: ADBC's libpq driver hands Arrow over directly, the time as the same naive UTC
    text SQLite holds. SQLite: the DB-API rows, text as bytes, made columns. (ADBC's SQLite
    driver links its own copy of SQLite, and two copies in one process break each other's file
    locks: SQLite's documentation warns it can corrupt the database.) A row that is not text
    where text belongs gives None, and the caller takes the row-by-row path, which reports it.
    """

    def __init__(self, engine: sa.Engine, rows: Rows) -> None:
        self._url = engine.url
        self._rows = rows
        self.dialect = engine.dialect.name

    def read(self, table: str, after_id: int, upto_id: int, limit: int) -> pa.Table | None:
        if self.dialect == "postgresql":
            return self._read_postgresql(table, after_id, upto_id, limit)
        schema = SCHEMAS[table]
        batches: list[pa.RecordBatch] = []
        while limit > 0:
            # A slice at a time: the driver's rows are Python objects, ~4x their Arrow size.
            rows = self._rows(table, after_id, upto_id, min(limit, SLICE_ROWS))
            if not rows:
                break
            batch = _batch(rows, schema)
            if batch is None:
                return None
            batches.append(batch)
            if len(rows) < SLICE_ROWS:
                break
            after_id, limit = rows[-1][0], limit - len(rows)
            del rows
        if not batches:
            return schema.empty_table()
        return pa.Table.from_batches(batches, schema).combine_chunks()

    def _read_postgresql(self, table: str, after_id: int, upto_id: int, limit: int) -> pa.Table:
        import adbc_driver_postgresql.dbapi

        schema = SCHEMAS[table]
        columns = ", ".join(
            # infinity has no to_char (NULL), and to_char drops a BC time's era (44 BC would
            # read as AD 44): their own text, which the row builder refuses as replay does
            "CASE WHEN isfinite(occurred_at) AND occurred_at >= '0001-01-01 00:00:00+00' THEN "
            "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
            "ELSE occurred_at::text END AS occurred_at"
            if f.name == "occurred_at"
            else f"{f.name}::text AS {f.name}"
            if f.name != "id"
            else "id"
            for f in schema
        )
        sql = (
            f"SELECT {columns} FROM {table} WHERE id > {int(after_id)} AND id <= {int(upto_id)} "
            f"ORDER BY id LIMIT {int(limit)}"
        )
        uri = libpq_uri(self._url)
        try:
            with (
                adbc_driver_postgresql.dbapi.connect(uri, autocommit=True) as conn,
                conn.cursor() as cursor,
            ):
                cursor.execute(sql)
                data = cursor.fetch_arrow_table()
        except adbc_driver_postgresql.dbapi.Error as exc:
            # The driver's message may quote the URI: never let its password out, in any form.
            password = str(self._url.password or "")
            pieces = password_pieces(password)  # what a parser cutting it may quote
            safe = Redactor([password, quote(password, safe=""), *pieces]).text(str(exc))
            raise StoreReadError(f"could not read {table} from loyalty_store.url: {safe}") from None
        return data.cast(schema)


def _batch(rows: Sequence[tuple], schema: pa.Schema) -> pa.RecordBatch | None:
    """The driver's rows (text as bytes) as Arrow columns; None when a value is not of its
    column's type, or is text that is not UTF-8 (each value is checked on its own)."""
    raw_type, text_type = _struct_types(schema)
    try:
        # One conversion of the row tuples as structs: no transpose (zip(*rows) cost about
        # as much as the conversion). Text arrives as bytes, a BLOB too: both read as the
        # text they are when UTF-8, as the row-by-row path reads them.
        text = pa.array(rows, raw_type).view(text_type)  # binary and string: one layout
        text.validate(full=True)  # UTF-8, value by value (a cast per column costs ~50 us)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return pa.RecordBatch.from_struct_array(text)


def _struct_types(schema: pa.Schema) -> tuple[pa.StructType, pa.StructType]:
    """`schema` as a struct with its text as binary (what the driver's rows hold), and as is."""
    types = _STRUCT_TYPES.get(schema)
    if types is None:
        text = pa.string()
        raw = [f.with_type(pa.binary()) if f.type == text else f for f in schema]
        types = _STRUCT_TYPES[schema] = (pa.struct(raw), pa.struct(list(schema)))
    return types


_STRUCT_TYPES: dict[pa.Schema, tuple[pa.StructType, pa.StructType]] = {}


def libpq_uri(url: sa.URL) -> str:
    """`url` as libpq (ADBC) reads it: user and password %-encoded, as its URI syntax needs
    (SQLAlchemy's rendering leaves spaces and other characters libpq refuses, and quotes)."""
    bare = url._replace(drivername="postgresql", username=None, password=None)  # set() keeps None
    plain = bare.render_as_string()
    if url.username is None:
        return plain
    user = quote(url.username, safe="")
    password = "" if url.password is None else ":" + quote(str(url.password), safe="")
    return plain.replace("postgresql://", f"postgresql://{user}{password}@", 1)
