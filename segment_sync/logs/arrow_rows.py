"""Log rows as typed Arrow tables: checked column by column, split into day partitions."""

from __future__ import annotations

from collections.abc import Mapping, Sized
from datetime import date, datetime
from functools import cache
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segment_sync.logs.schema import ALLOWED_VALUES, TIME_COLUMNS, schema_for

Row = Mapping[str, Any]


@cache
def _columns(table: str) -> tuple[frozenset[str], frozenset[str]]:
    """`table`'s column names and its required ones (walking a schema's fields makes an
    object per field: a few µs each time a request's rows were queued)."""
    schema = schema_for(table)
    return frozenset(schema.names), frozenset(f.name for f in schema if not f.nullable)


def check_columns(table: str, rows: list[Row]) -> None:
    """ValueError naming the table, the column and the expected columns for a malformed row."""
    names, required = _columns(table)
    schema = schema_for(table)
    for index, row in enumerate(rows):
        keys = row.keys()
        if keys == names:
            continue
        extra = sorted(keys - names)
        missing = sorted(required - keys)
        if extra or missing:
            problem = f"unknown column {extra[0]!r}" if extra else f"missing column {missing[0]!r}"
            raise ValueError(
                f"{table}: {problem} in row {index}; expected columns: {', '.join(schema.names)}"
                f" (required: {', '.join(sorted(required))})"
            )


Lists = Mapping[str, list[Any]]  # a batch of rows as a list per column (extend_lists)


def check_lists(table: str, columns: Mapping[str, Sized]) -> int:
    """The rows in a batch given as a list (or an array) per column; ValueError for an unknown
    or missing required column, or lists of different lengths."""
    names, required = _columns(table)
    if not (columns.keys() <= names and required <= columns.keys()):
        extra = sorted(columns.keys() - names)
        missing = sorted(required - columns.keys())
        problem = f"unknown column {extra[0]!r}" if extra else f"missing column {missing[0]!r}"
        expected = ", ".join(schema_for(table).names)
        raise ValueError(f"{table}: {problem}; expected columns: {expected}")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"{table}: columns differ in length ({sorted(lengths)})")
    return lengths.pop() if lengths else 0


def lists_to_arrow(table: str, batches: list[Lists]) -> pa.Table:
    """One typed table from batches of lists per column: a column is converted once for
    all of them, with no dict per row."""
    schema = schema_for(table)
    sizes = [len(next(iter(b.values()))) for b in batches]
    arrays = []
    for field in schema:
        values: list[Any] = []
        for batch, size in zip(batches, sizes, strict=True):
            column = batch.get(field.name)
            values += [None] * size if column is None else column
        arrays.append(_column(table, field, values))
    return pa.Table.from_arrays(arrays, schema=schema)


def lists_to_rows(batches: list[Lists]) -> list[dict[str, Any]]:
    """Batches of lists per column as row dicts (a failed write puts them back as rows)."""
    return [
        dict(zip(b.keys(), values, strict=True))
        for b in batches
        for values in zip(*b.values(), strict=True)
    ]


def to_arrow(table: str, rows: list[Row]) -> pa.Table:
    """Build a typed Arrow table from row dicts, column by column; ValueError names the column."""
    schema = schema_for(table)
    plain = set(map(type, rows)) <= {dict}  # no mapping whose [] differs from .get (defaultdict)
    arrays = [_column(table, field, _values(rows, field.name, plain)) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _values(rows: list[Row], name: str, plain: bool) -> list[Any]:
    """Column `name` of `rows`, None where a row lacks it; gathered in C when every row is a
    plain dict holding it (a loop of `.get` in Python cost half of building the table)."""
    if plain:
        try:
            return list(map(itemgetter(name), rows))
        except KeyError:
            pass
    return [row.get(name) for row in rows]


def _column(table: str, field: pa.Field, values: list[Any]) -> pa.Array:
    """One validated column: right type, no nulls if required, only allowed values."""
    try:
        if isinstance(values, pa.Array):
            array = values.cast(field.type)
        elif field.type == pa.string() and _holds(values, bytes):
            array = _wrapped_text(values)
        elif pa.types.is_list(field.type) and _holds(values, pa.Array):
            array = _joined_lists(values, field.type)
        elif pa.types.is_timestamp(field.type):
            array = _timestamps(values, field.type)
        else:
            array = pa.array(values, type=field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
        raise ValueError(f"{table}.{field.name}: expected {field.type}: {exc}") from None
    if not field.nullable and array.null_count:
        raise ValueError(f"{table}.{field.name}: required, but null in {array.null_count} row(s)")
    allowed = ALLOWED_VALUES.get(table, {}).get(field.name)
    if allowed:
        bad = sorted(v for v in array.unique().to_pylist() if v is not None and v not in allowed)
        if bad:
            raise ValueError(f"{table}.{field.name}: {bad[0]!r} is not one of {list(allowed)}")
    return array


def _timestamps(values: list[Any], kind: pa.DataType) -> pa.Array:
    """A timestamp column whose rows share a few times (a request's rows, its start): each
    distinct datetime converted once (pyarrow asks each aware one its UTC offset, in Python)."""
    if len(values) < 16 or not set(map(type, values)) <= {datetime, type(None)}:
        return pa.array(values, type=kind)
    distinct = list(set(values))
    if len(distinct) * 4 > len(values):
        return pa.array(values, type=kind)
    position = {value: index for index, value in enumerate(distinct)}
    indices = pa.array(list(map(position.__getitem__, values)), type=pa.int32())
    return pa.array(distinct, type=kind).take(indices)


def _holds(values: list[Any], kind: type) -> bool:
    """Whether any value is a `kind` (bytes, an Arrow array): the types are gathered in C (a
    scan in Python per value cost as much as building the column)."""
    return any(issubclass(found, kind) for found in set(map(type, values)))


def _joined_lists(values: list[Any], kind: pa.ListType) -> pa.ListArray:
    """A list column from cells given as Arrow arrays (a request's customer IDs, thousands
    each), Python lists or None: the arrays are joined as they are, no Python object per item."""
    cells = [
        v if v is None or isinstance(v, pa.Array) else pa.array(v, kind.value_type) for v in values
    ]
    present = [c.cast(kind.value_type) for c in cells if c is not None]
    offsets = np.zeros(len(cells) + 1, dtype=np.int32)
    np.cumsum([0 if c is None else len(c) for c in cells], out=offsets[1:])
    items = pa.concat_arrays(present) if present else pa.array([], kind.value_type)
    missing = [c is None for c in cells]
    nulls = pa.array(missing) if any(missing) else None
    return pa.ListArray.from_arrays(pa.array(offsets), items, type=kind, mask=nulls)


def _wrapped_text(values: list[Any]) -> pa.ChunkedArray:
    """A string column from UTF-8 bytes (request bodies), each value wrapped where it lies.

    Copying a ~500 KB body into a new Arrow buffer costs as much as its Parquet encoding: large
    blocks are freshly mapped (native_memory.py), so every copy faults its pages in again.
    Each value is checked to be UTF-8, as a copy would be.
    """
    chunks = []
    for value in values:
        if isinstance(value, bytes):
            offsets = pa.py_buffer(np.array([0, len(value)], dtype=np.int32))
            chunk = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(value)])
            chunk.validate(full=True)
        else:
            chunk = pa.array([value], type=pa.string())
        chunks.append(chunk)
    return pa.chunked_array(chunks, type=pa.string())


def split_by_day(table: str, data: pa.Table) -> dict[date, pa.Table]:
    """Split rows by the UTC date of the table's time column (its partition)."""
    days = pc.cast(data[TIME_COLUMNS[table]], pa.date32())
    unique = days.unique().to_pylist()
    if len(unique) == 1:
        return {unique[0]: data}
    return {day: data.filter(pc.equal(days, pa.scalar(day, pa.date32()))) for day in unique}
