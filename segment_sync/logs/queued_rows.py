"""The log writer's queue: rows, Arrow batches and lists per column waiting for a flush."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from segment_sync.logs.arrow_rows import (
    Lists,
    Row,
    _column,
    check_columns,
    check_lists,
    lists_to_rows,
)
from segment_sync.logs.schema import schema_for

_Queued = tuple[list[Row], list[pa.Table], list[Lists]]  # a table's rows taken by a flush


class QueuedRows:
    """Rows queued per table until LogWriter writes them; thread-safe."""

    def __init__(self) -> None:
        self._pending: dict[str, list[Row]] = {}
        self._pending_tables: dict[str, list[pa.Table]] = {}
        self._pending_lists: dict[str, list[Lists]] = {}
        self._lock = threading.Lock()

    def append(self, table: str, row: Row) -> None:
        """Queue one row for `table`."""
        self.extend(table, [row])

    def extend(self, table: str, rows: Iterable[Row]) -> None:
        """Queue rows for `table`; ValueError at once for an unknown table or a bad column set."""
        batch = list(rows)
        check_columns(table, batch)
        if batch:
            with self._lock:
                self._pending.setdefault(table, []).extend(batch)

    def extend_columns(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Queue rows given column by column (lists or Arrow arrays), converted to Arrow now:
        no dict per row, for large batches on hot paths. ValueError at once for an unknown or
        missing required column (the check `extend_lists` makes); a value of the wrong type
        fails here too, not at the flush."""
        count = check_lists(table, columns)
        if not count:
            return
        blank = [None] * count
        arrays = [
            _column(table, f, blank if columns.get(f.name) is None else columns[f.name])
            for f in schema_for(table)
        ]
        data = pa.Table.from_arrays(arrays, schema=schema_for(table))
        with self._lock:
            self._pending_tables.setdefault(table, []).append(data)

    def extend_lists(self, table: str, columns: Lists) -> None:
        """Queue rows given as a list per column, converted to Arrow only when written (in the
        flushing thread): the cheapest way to queue rows on a hot path. ValueError at once for
        an unknown or missing required column; a value of the wrong type fails the flush, as
        in `extend`. The lists are kept, not copied: do not change them after."""
        if check_lists(table, columns):
            with self._lock:
                self._pending_lists.setdefault(table, []).append(columns)

    def pending(self, table: str) -> int:
        """How many rows of `table` are queued and not yet written."""
        with self._lock:
            queued = sum(t.num_rows for t in self._pending_tables.get(table, ()))
            lists = sum(len(next(iter(b.values()))) for b in self._pending_lists.get(table, ()))
            return len(self._pending.get(table, ())) + queued + lists

    def _requeue_items(self, items: list[tuple[str, _Queued]]) -> None:
        """Put tables not yet flushed back, rows, Arrow batches and lists alike."""
        self._requeue(
            [
                (n, r + [x for t in ts for x in t.to_pylist()] + lists_to_rows(ls))
                for n, (r, ts, ls) in items
            ]
        )

    def _requeue_tables(self, table: str, tables: list[pa.Table]) -> None:
        with self._lock:
            self._pending_tables[table] = tables + self._pending_tables.get(table, [])

    def _requeue(self, batches: list[tuple[str, list[Row]]]) -> None:
        """Put unwritten rows back at the front of the queue for the next flush."""
        with self._lock:
            for table, rows in batches:
                self._pending[table] = rows + self._pending.get(table, [])
