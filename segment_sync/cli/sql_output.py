"""Any query result printed as the other `logs` commands print: an aligned table, CSV or JSON.

Table: headers, a dashed rule, two spaces between columns, numbers right-aligned, `-` for NULL,
UTC times as `2026-11-28 18:41:25.089Z`, long cells cut with `...`. CSV and JSON keep every
value whole: times in ISO-8601 UTC, lists joined by `;` in CSV (as `logs outbound` does) and
kept as arrays in JSON. Rows are fetched in batches, so CSV and JSON stream any size.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

TABLE_DEFAULT_ROWS = 1000
TABLE_CELL_CHARS = 60
FETCH_ROWS = 10_000
CSV_LIST_SEPARATOR = ";"
NUMERIC_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
     "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE"}
)  # fmt: skip

Echo = Callable[..., None]


@dataclass(frozen=True)
class Printed:
    """How many rows were printed, and whether the limit left more unprinted."""

    rows: int
    more: bool


def print_result(
    cursor: duckdb.DuckDBPyConnection, output_format: str, limit: int | None, echo: Echo
) -> Printed:
    """Print the pending result of `cursor` in `output_format` (table, csv or json).

    `limit`: at most that many rows (0: all); None means TABLE_DEFAULT_ROWS for a table and
    all rows for CSV and JSON. A statement without a result (SET, ...) prints nothing.
    """
    if not cursor.description:
        return Printed(0, False)
    names = [column[0] for column in cursor.description]
    if limit is None:
        limit = TABLE_DEFAULT_ROWS if output_format == "table" else 0
    rows = _rows(cursor, limit)
    if output_format == "json":
        count = _print_json(names, rows, echo)
    elif output_format == "csv":
        count = _print_csv(names, rows, echo)
    else:
        numeric = [_is_numeric(column[1]) for column in cursor.description]
        table_rows = list(rows)
        echo(table(names, numeric, table_rows))
        count = len(table_rows)
    more = bool(limit) and cursor.fetchone() is not None
    return Printed(count, more)


def _rows(cursor: duckdb.DuckDBPyConnection, limit: int) -> Iterator[tuple]:
    """The result's rows, fetched FETCH_ROWS at a time, at most `limit` (0: all)."""
    left = limit or math.inf
    while left > 0:
        batch = cursor.fetchmany(int(min(FETCH_ROWS, left)))
        if not batch:
            return
        left -= len(batch)
        yield from batch


def _is_numeric(duckdb_type: object) -> bool:
    """Whether a column's DuckDB type is a number (right-aligned in a table)."""
    name = str(duckdb_type)
    return name in NUMERIC_TYPES or name.startswith("DECIMAL")


# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------


def table(names: Sequence[str], numeric: Sequence[bool], rows: Sequence[tuple]) -> str:
    """An aligned text table; `(no rows)` under the header when there are none."""
    cells = [[table_cell(value) for value in row] for row in rows]
    widths = [
        max(len(name), *(len(line[i]) for line in cells)) if cells else len(name)
        for i, name in enumerate(names)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(names), line(["-" * width for width in widths])]
    out.extend(line(values) for values in cells)
    if not cells:
        out.append("(no rows)")
    return "\n".join(out)


def table_cell(value: Any) -> str:
    """The display text of one value, on one line and at most TABLE_CELL_CHARS long."""
    if value is None:
        return "-"
    if isinstance(value, datetime) and value.tzinfo is not None:
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(table_cell(item) for item in value) + "]"
    elif isinstance(value, dict):
        text = json.dumps(json_value(value), ensure_ascii=False)
    else:
        text = _scalar_text(value)
    text = " ".join(text.split())
    if len(text) > TABLE_CELL_CHARS:
        text = text[: TABLE_CELL_CHARS - 3] + "..."
    return text


def _scalar_text(value: Any) -> str:
    """Text of a scalar: true/false, shortest float, hex for bytes, str otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


# ---------------------------------------------------------------------------------------------
# CSV and JSON
# ---------------------------------------------------------------------------------------------


def _print_csv(names: Sequence[str], rows: Iterator[tuple], echo: Echo) -> int:
    """A header line, then one line per row; returns the row count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    count = 0
    for count, row in enumerate(rows, start=1):
        writer.writerow([csv_value(value) for value in row])
        if count % FETCH_ROWS == 0:
            echo(buffer.getvalue(), nl=False)
            buffer.seek(0)
            buffer.truncate()
    echo(buffer.getvalue(), nl=False)
    return count


def csv_value(value: Any) -> Any:
    """One CSV cell: empty for NULL, ISO times, `;`-joined lists, JSON for structs."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return CSV_LIST_SEPARATOR.join(str(csv_value(item)) for item in value)
    if isinstance(value, dict):
        return json.dumps(json_value(value), ensure_ascii=False)
    converted = json_value(value)
    return "true" if converted is True else "false" if converted is False else converted


def _print_json(names: Sequence[str], rows: Iterator[tuple], echo: Echo) -> int:
    """A JSON array of objects keyed by column name, as `json.dumps(..., indent=2)` lays it
    out, written row by row; returns the row count."""
    keys = unique_keys(names)
    count = 0
    for count, row in enumerate(rows, start=1):
        record = {key: json_value(value) for key, value in zip(keys, row, strict=True)}
        text = textwrap.indent(json.dumps(record, indent=2, ensure_ascii=False), "  ")
        echo(("[\n" if count == 1 else ",\n") + text, nl=False)
    echo("\n]" if count else "[]")
    return count


def unique_keys(names: Sequence[str]) -> list[str]:
    """Column names as object keys: a repeated name gets `_1`, `_2`, ... (as DuckDB's .df())."""
    seen: set[str] = set()
    keys = []
    for name in names:
        key, n = name, 0
        while key in seen:
            n += 1
            key = f"{name}_{n}"
        seen.add(key)
        keys.append(key)
    return keys


def json_value(value: Any) -> Any:
    """A JSON-ready value: ISO-8601 times (UTC with `Z`), numbers for decimals, strings for
    what JSON has no type for (non-finite floats, UUIDs, intervals), base64 for bytes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    return str(value)
