"""Arrow chunks of the loyalty store -> Segment messages, column-wise in DuckDB.

The hot path builds each message's JSON as text in one query: the stored event JSON goes in
as it is (validated in bulk, not parsed and re-serialised), and timestamps and messageIds are
formatted as columns. A row the query does not vouch for (unreadable JSON or time, no userId,
an echo of an inbound event, a message that could be over 32 KB once Segment re-serialises it
or nested too deep, a profile with no allow-listed field) takes the per-row builder, which says
why it is not sent, or builds it after all: both paths agree on every message (see the
property test), the query is just faster on the common row.
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from segment_sync.loyalty.records import ORIGIN_SEGMENT, Stream
from segment_sync.loyalty.store import parse_row
from segment_sync.outbound.build import EVENT_TYPES, BuiltChunk, build_messages
from segment_sync.segment.message_columns import MessageColumns
from segment_sync.segment.messages import (
    CONTEXT,
    GROWING_NUMBER,
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    SURELY_FITS_BYTES,
    NotSent,
)
from segment_sync.settings import Settings

# DuckDB's json_valid also accepts NaN/Infinity, trailing commas, out-of-range numbers and
# nesting deeper than the strict reader's 1024 levels, which Segment refuses: a row showing any
# of them (or enough brackets to nest that deep) takes the per-row (strict) check instead; a
# false alarm only costs that row the slower path.
PARSE_DEPTH = 1024
_VALUE = r"[:,\[]\s*"  # where a JSON value starts (a match inside a string is a false alarm)
LENIENT_JSON = (
    rf"{_VALUE}[-+]?(?i:nan|inf)|,\s*[\]}}]|{_VALUE}-?[0-9.]+[eE][-+]?\d{{3}}|{_VALUE}-?\d{{20}}"
)
# The text the store holds (SQLAlchemy's SQLite format; PostgreSQL is read into it): naive UTC,
# 1970 to 9999 (earlier rows take the per-row path anyway), hours 00-23, no leap second: DuckDB
# reads 24:00:00 as the next midnight and year 0 as 1 BC, where Python (stored_time.read_time,
# the reader of replay and reconciliation) refuses them. Every other form takes the per-row path.
STORED_TIME = (
    r"(?:19[7-9]\d|[2-9]\d{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r" (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{6}"
)
_CONTROL = r"[\x00-\x1f\x7f]"
_PLAIN_FIELD = re.compile(r"[A-Za-z0-9_]+")


def _nesting(json: str) -> str:
    """SQL: a bound on how deep the row's JSON column nests: its `[` and `{` count, counted only
    where the text is long enough to nest MAX_DEPTH deep (shorter, it nests less than that)."""
    count = f"strlen({json}) - strlen(replace(replace({json}, '[', ''), '{{', ''))"
    return f"CASE WHEN strlen({json}) < {2 * MAX_DEPTH} THEN 0 ELSE {count} END AS nest"


def _readable(json: str) -> str:
    """SQL: the row's JSON column is a strict JSON object and its time was read."""
    # Valid JSON that starts with { is an object: json_type (a second parse) only for the rest.
    return f"""
    CASE WHEN json_valid({json}) AND NOT regexp_matches({json}, '{LENIENT_JSON}')
         THEN CASE WHEN starts_with({json}, '{{') THEN true ELSE json_type({json}) = 'OBJECT' END
         ELSE false END
    AND ts IS NOT NULL AND nest <= {PARSE_DEPTH}"""


def _surely_fits(numbers: str) -> str:
    """SQL: the body (which ends with its comma) if `refusal` would pass it, judged as it judges
    (`numbers`: the text the body's numbers come from). A message it cannot vouch for is left to
    the per-row builder, which measures it as Segment would, so both builders send and refuse the
    same. A message nests one level deeper than its stored JSON (Identify: than the values it
    takes from it), so `nest` below MAX_DEPTH is within orjson's reach."""
    return f"""
    CASE WHEN nest >= {MAX_DEPTH} THEN NULL
         WHEN strlen(body) <= {SURELY_FITS_BYTES + 1} THEN body
         WHEN strlen(body) <= {MAX_MESSAGE_BYTES + 1}
              AND NOT regexp_matches({numbers}, '{GROWING_NUMBER}') THEN body END"""


_TIMES = f"""
    CASE WHEN regexp_full_match(occurred_at, '{STORED_TIME}')
         THEN TRY_CAST(occurred_at AS TIMESTAMP) END AS ts"""
# Python's int(datetime.timestamp() * 1000), in the same float steps, so messageIds match. Past
# 2^53 microseconds (2255-06-05) DuckDB's CAST to DOUBLE rounds once more than Python's
# timestamp(): such rows take the per-row path (see _sendable), or a resync would change the id.
EXACT_DOUBLE_US = 2**53
_EVENT_MS = """
    CAST(trunc(CAST(epoch_us(ts) AS DOUBLE) / CAST(1000000 AS DOUBLE) * CAST(1000 AS DOUBLE))
    AS BIGINT) AS ms"""
_MESSAGE_ID = """'ss-{kind}-' || CAST(id AS VARCHAR) || '-' || lower(hex(ms))"""
# One concat() per body: a chain of || copied the growing string once per piece. Every piece is
# set where a body is built (its CASE asks for valid JSON, a userId and a messageId, so a time),
# so concat() skipping NULLs never shows.
_TAIL = """
    ',"timestamp":"', strftime(ts, '%Y-%m-%dT%H:%M:%S.%g'), 'Z","messageId":"', mid,
    '","context":', context_json, '},'"""


def _sendable(uid: str, *texts: str) -> str:
    """SQL: a message may be built here (DuckDB escapes control characters as \\u001F where
    orjson writes \\u001f: the same JSON, other bytes, so those rows take the per-row path)."""
    # One regexp call over the texts joined: each call cost more than the bytes it read.
    plain = f"NOT regexp_matches({' || '.join((uid, *texts))}, '{_CONTROL}')"
    return (
        f"origin IS DISTINCT FROM '{ORIGIN_SEGMENT}' AND coalesce({uid}, '') <> '' "
        f"AND epoch_us(ts) >= 0 AND epoch_us(ts) < {EXACT_DOUBLE_US} AND {plain}"
    )


def _events_sql(uid: str) -> str:
    return f"""
    WITH t AS (SELECT *, {_TIMES} FROM chunk),
    r AS (SELECT *, {_EVENT_MS}, {_nesting("data")} FROM t),
    m AS (
        SELECT id, {uid} AS uid, action, data, ts, nest,
            {_readable("data")} AS readable,
            list_contains(allow_list, action) AS allowed,
            {_sendable(uid, "action")} AS sendable,
            {_MESSAGE_ID.format(kind="evt")} AS mid, ms
        FROM r
    ),
    b AS (
        SELECT id, uid, action, data, mid, ms, nest, readable AND NOT allowed AS not_allowed,
            CASE WHEN readable AND allowed AND sendable AND mid IS NOT NULL THEN
                concat('{{"type":"track","event":', to_json(action), ',"userId":', to_json(uid),
                ',"properties":', data, {_TAIL})
            END AS body
        FROM m
    )
    SELECT mid, ms, not_allowed,
        {_surely_fits("data")} AS body
    FROM b"""


def _profiles_sql(uid: str, fields: list[str]) -> str:
    paths = [f"'$.\"{f}\"'" for f in fields]
    present = " OR ".join(f"json_exists(attributes, {p})" for p in paths) or "false"
    traits = ", ".join(
        f"CASE WHEN json_exists(attributes, {p}) THEN '\"{f}\":' || json_extract(attributes, {p}) END"
        for f, p in zip(fields, paths, strict=True)
    )
    return f"""
    WITH t AS (SELECT *, {_TIMES} FROM chunk),
    r AS (SELECT *, {_EVENT_MS}, {_nesting("attributes")} FROM t),
    m AS (
        SELECT id, {uid} AS uid, attributes, ts, nest,
            {_readable("attributes")} AS readable,
            {_sendable(uid)} AS sendable,
            {_MESSAGE_ID.format(kind="prf")} AS mid, ms
        FROM r
    ),
    k AS (
        -- Once, for readable rows only: written twice, DuckDB computed it for every row.
        SELECT *, CASE WHEN readable AND sendable THEN json_keys(attributes) END AS keys FROM m
    ),
    b AS (
        SELECT id, uid, mid, ms, nest,
            -- A key written twice: json_extract takes the first, a parser the last.
            CASE WHEN readable AND sendable AND mid IS NOT NULL AND ({present})
                AND len(keys) = len(list_distinct(keys)) THEN
                concat('{{"type":"identify","userId":', to_json(uid),
                ',"traits":{{', concat_ws(',', {traits or "NULL"}), '}}', {_TAIL})
            END AS body
        FROM k
    )
    SELECT mid, ms, false AS not_allowed,
        {_surely_fits("body")} AS body
    FROM b"""


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array; a single chunk as it is (combining copies even one chunk)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


class ColumnarBuilder:
    """Builds the messages of a stream's Arrow chunks (one at a time: it owns a DuckDB connection)."""

    def __init__(self, settings: Settings, stream: Stream) -> None:
        self.settings, self.stream = settings, stream
        mapping = settings.general.customer_id_mapping
        # The query's parameters (names no column of the query takes).
        self._params: dict[str, object] = {"context_json": orjson.dumps(CONTEXT).decode()}
        if stream is Stream.EVENTS:
            self._sql = _events_sql(mapping)
            self._params["allow_list"] = list(settings.outbound.event_sync)
        else:
            fields = sorted(set(settings.outbound.customer_fields_sync))
            # A field name the query would have to escape: leave those rows to the row builder.
            plain = all(_PLAIN_FIELD.fullmatch(f) for f in fields)
            self._sql = _profiles_sql(mapping, fields if plain else [])
        self._db: duckdb.DuckDBPyConnection | None = None  # opened on the first chunk
        self._call: duckdb.Statement | None = None
        self.rows_built_per_row = 0  # how many rows the query left to the per-row builder

    def _define(self, db: duckdb.DuckDBPyConnection) -> duckdb.Statement:
        """The query as a table macro over `chunk`, and the parsed statement that calls it."""
        # Parsed once: the long query's text parsed again for every chunk cost ~0.03 µs a row.
        db.execute(
            f"CREATE OR REPLACE TEMP MACRO build_chunk({', '.join(self._params)}) AS TABLE {self._sql}"
        )
        markers = ", ".join(f"${name}" for name in self._params)
        return db.extract_statements(f"SELECT * FROM build_chunk({markers})")[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def build(self, chunk: pa.Table) -> BuiltChunk:
        if self._db is None:  # not at start-up: a run with nothing to send never pays for it
            self._db = duckdb.connect()
            self._db.execute("SET arrow_large_buffer_size = true")
            # One thread: the run already builds a chunk while the last one is sent, and handing
            # a 20,000-row query to DuckDB's workers cost more CPU than it saved (~0.03 µs a row).
            self._db.execute("SET threads = 1")
        self._db.register("chunk", chunk)
        try:
            if self._call is None:  # the macro is checked against a registered chunk
                self._call = self._define(self._db)
            out = self._db.sql(self._call, params=self._params).to_arrow_table()
        finally:
            self._db.unregister("chunk")
        column = {name: _one_array(out[name]) for name in out.column_names}
        column.update(self._passed_through(chunk))
        column["body"] = column["body"].cast(pa.large_binary())
        not_allowed = int(pc.sum(column["not_allowed"]).as_py() or 0)
        left = pc.and_(pc.is_null(column["body"]), pc.invert(column["not_allowed"]))
        leftover = np.flatnonzero(left.to_numpy(zero_copy_only=False))
        not_sent: list[NotSent] = []
        if leftover.size:
            self.rows_built_per_row += int(leftover.size)
            not_sent, slow_not_allowed = self._per_row(chunk, leftover, column)
            not_allowed += slow_not_allowed
        names = ("mid", "id", "uid", "event_name", "body", "ms")
        if column["body"].null_count:  # filtering copies every column: only when rows drop out
            keep = pc.is_valid(column["body"])
            column.update((k, column[k].filter(keep)) for k in names)
        messages = MessageColumns(EVENT_TYPES[self.stream], *(column[k] for k in names))
        return BuiltChunk(messages, not_sent, len(chunk), not_allowed)

    def _passed_through(self, chunk: pa.Table) -> dict[str, pa.Array]:
        """The columns a message takes from its row as they are: DuckDB copying them out cost more."""
        uid = _one_array(chunk[self.settings.general.customer_id_mapping])
        if self.stream is Stream.EVENTS:
            event_name = _one_array(chunk["action"]).cast(pa.large_string())
        else:
            event_name = pa.nulls(len(chunk), pa.large_string())
        return {
            "id": _one_array(chunk["id"]),
            "uid": uid.cast(pa.large_string()),
            "event_name": event_name,
        }

    def _per_row(
        self, chunk: pa.Table, positions: np.ndarray, column: dict[str, pa.Array]
    ) -> tuple[list[NotSent], int]:
        """The per-row builder on the rows the query left; its messages go in their places."""
        names = chunk.column_names
        rows = chunk.take(pa.array(positions)).to_pylist()
        records = [parse_row(self.stream, tuple(row[n] for n in names)) for row in rows]
        messages, not_sent, not_allowed = build_messages(records, self.settings, self.stream)
        where = {row["id"]: int(p) for row, p in zip(rows, positions, strict=True)}
        n = len(chunk)
        fill: dict[str, list] = {k: [None] * n for k in ("mid", "uid", "event_name", "body", "ms")}
        for m in messages:
            at = where[m.source_id]
            fill["mid"][at], fill["uid"][at], fill["event_name"][at] = (
                m.message_id, m.customer_id, m.event_name,
            )  # fmt: skip
            fill["body"][at], fill["ms"][at] = m.body + b",", m.occurred_ms
        for name, values in fill.items():
            # The per-row values first: where the row builder decided, its answer stands.
            column[name] = pc.coalesce(pa.array(values, column[name].type), column[name])
        return not_sent, not_allowed
