"""Every text column of a log table through the redactors, once per column, before it is written.

A log row's text comes from the data in many places (customer IDs, event names, messageIds,
errors that quote a value); masking each where it is built missed some. This is the one boundary
every row passes: a column's UTF-8 data buffer is checked whole (a byte search per secret), and
only a column that is not clean is redacted value by value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from segment_sync.redaction import Redactor

# Up to 500 KB per request, redacted where it is built by the sync's own redactor (request_row:
# Redactor.body). Every other body is checked here: the Antavo client's redactor knows only
# the Antavo key and secret, not the settings' other secrets.
REDACTED_AT_SOURCE = frozenset({("outbound_log", "request_body")})


def redacted_table(table: str, data: pa.Table, redactors: Sequence[Redactor]) -> pa.Table:
    """`data` with every known secret and URL password masked in its text columns (also the
    items of list<string> columns); columns already clean are returned untouched."""
    for index, field in enumerate(data.schema):
        if (table, field.name) in REDACTED_AT_SOURCE or not _holds_text(field.type):
            continue
        column = data.column(index)
        if all(_clean(chunk, redactors) for chunk in column.chunks):
            continue
        values = [_redact(v, redactors) for v in column.to_pylist()]
        data = data.set_column(index, field, pa.array(values, type=field.type))
    return data


def _holds_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or (
        pa.types.is_list(kind) and pa.types.is_string(kind.value_type)
    )


def _clean(chunk: pa.Array, redactors: Sequence[Redactor]) -> bool:
    """Whether no value of `chunk` can hold a secret: its text data checked as one buffer (a
    match across two values is a false alarm that costs only the per-value pass)."""
    if chunk.null_count == len(chunk):
        return True
    if isinstance(chunk, pa.ListArray):
        chunk = chunk.flatten()
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)
    start, end = int(offsets[chunk.offset]), int(offsets[chunk.offset + len(chunk)])
    text = chunk.buffers()[2]
    data = b"" if text is None else memoryview(text)[start:end].tobytes()
    return all(r.clean_bytes(data) for r in redactors)


def _redact(value: object, redactors: Sequence[Redactor]) -> object:
    if isinstance(value, list):
        return [_redact(v, redactors) for v in value]
    for redactor in redactors:
        value = redactor.text(value)  # type: ignore[arg-type]
    return value
