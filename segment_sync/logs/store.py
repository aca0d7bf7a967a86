"""The log writer: runs append Parquet files under `logs.dir` (see layout.py and views.py).

Why it never blocks: DuckDB lets one process open a database file read-write, so runs never open
the analysts' file. Each flush writes a new Parquet file under a temporary name that does not end
in `.parquet` (so no glob matches it) and `os.replace`s it into place, so a reader sees a whole
file or none. Published files are never modified in place, only added or (by maintenance) deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from itertools import chain
from pathlib import Path

import pyarrow as pa

from segment_sync.logs.arrow_rows import (
    Lists,
    Row,
    check_columns,
    lists_to_arrow,
    split_by_day,
    to_arrow,
)
from segment_sync.logs.flush_order import FlushesInFlight
from segment_sync.logs.layout import (
    COMPRESSION,
    PLAIN_COMPRESSION,
    PLAIN_FILE_ROWS,
    PLAIN_TABLES,
    ensure_layout,
    partition_dir,
    write_parquet,
)
from segment_sync.logs.object_store import is_object_store, s3_logs
from segment_sync.logs.queued_rows import QueuedRows, _Queued
from segment_sync.logs.redacted_columns import redacted_table
from segment_sync.redaction import Redactor
from segment_sync.signals import stops_deferred

__all__ = ["LogWriteError", "LogWriter", "Row", "check_columns", "split_by_day", "to_arrow"]
FRESH_MERGE_EVERY_S = 300.0  # a long (following) run merges its small log files this often


class LogWriteError(RuntimeError):
    """A log file could not be written (disk full, no permission): names the folder and the fix."""

    def __init__(self, what: str, logs_dir: Path | str, cause: OSError | pa.ArrowException) -> None:
        self.logs_dir, self.cause = logs_dir, cause
        strerror = getattr(cause, "strerror", None)  # an Arrow error has none
        reason = strerror or (str(cause).splitlines() or [type(cause).__name__])[0]
        super().__init__(
            f"could not write {what} under logs.dir ({logs_dir}): {reason}; make it a writable "
            "folder with free space (or point logs.dir elsewhere), then rerun: nothing unlogged "
            "counted as done"
        )


_writers: ThreadPoolExecutor | None = None
_writers_lock = threading.Lock()


def _durable_writers() -> ThreadPoolExecutor:
    """The threads durable flushes write their tables in (shared by every LogWriter)."""
    global _writers
    with _writers_lock:
        if _writers is None:
            _writers = ThreadPoolExecutor(4, thread_name_prefix="log-writer")
        return _writers


class LogWriter(QueuedRows):
    """Buffers log rows and writes them as new Parquet files; thread-safe, never locks DuckDB."""

    def __init__(
        self, logs_dir: Path | str, *, durable: bool = False, redactor: Redactor | None = None
    ) -> None:
        """Prepare `logs_dir` (a folder, or `s3://bucket/prefix`: see object_store.py);
        `durable=True` also fsyncs each local file (survives power loss). Every text column
        written is masked by `redactor` (URL passwords at least) and by those `redact_with` adds."""
        self.durable = durable
        self._redactors: tuple[Redactor, ...] = (redactor or Redactor(),)
        self.merge_every_s = FRESH_MERGE_EVERY_S
        self._merged_at = time.monotonic()
        QueuedRows.__init__(self)
        self._flushes = FlushesInFlight(self._lock)
        if is_object_store(logs_dir):  # S3 needs no schema files: its views are typed in code
            from segment_sync.logs.s3_layout import publish

            logs = s3_logs(logs_dir)
            self.logs_dir: Path | str = str(logs_dir)
            self._publish = lambda table, day, part: publish(logs, table, day, part)
            self._local = False  # on S3 the hourly maintenance merges small files
            return
        self.logs_dir = Path(logs_dir).resolve()
        self._publish = self._publish_file
        self._local = True
        try:
            ensure_layout(self.logs_dir)
        except OSError as exc:
            raise LogWriteError("the log layout", self.logs_dir, exc) from exc

    def _publish_file(self, table: str, day: date, part: pa.Table) -> Path:
        """Write one day's rows as a new file in the local layout."""
        plain = table in PLAIN_TABLES and part.num_rows <= PLAIN_FILE_ROWS
        return write_parquet(
            part,
            partition_dir(self.logs_dir, table, day),
            durable=self.durable,
            dictionary=not plain,
            compression=PLAIN_COMPRESSION if plain else COMPRESSION,
            raw_bodies=not plain,
        )

    def redact_with(self, redactor: Redactor) -> None:
        """Also mask `redactor`'s secrets in every row written from now on (a run's own)."""
        with self._lock:
            if all(r is not redactor for r in self._redactors):
                self._redactors = (*self._redactors, redactor)

    def flush(self, table: str | None = None) -> list[Path]:
        """Write the queued rows (of `table`, or of every table) and return the new files.

        Returns once every row queued before the call is written, also rows that a flush in
        another thread took first (see flush_order.py); raises if they could not be. A stop
        signal arriving meanwhile acts once the rows are written (rows taken off the queue
        for a file not yet published were lost when Ctrl-C interrupted the write); the third
        acts at once, for a write that hangs."""
        with stops_deferred():
            written = self._write_queued(table)
        if written and self._merge_due():
            from segment_sync.logs.fresh import merge_fresh_logs

            merge_fresh_logs(self.logs_dir, durable=self.durable)
        return written

    def _write_queued(self, table: str | None) -> list[Path]:
        """`flush` but for the merge: write the queued rows, return the new files."""
        me: int | None = None
        ok, dropped = False, None
        try:
            with self._lock:
                queues = (self._pending, self._pending_tables, self._pending_lists)
                names = [table] if table is not None else list(dict.fromkeys(chain(*queues)))
                batches = {
                    name: (
                        self._pending.pop(name, []),
                        self._pending_tables.pop(name, []),
                        self._pending_lists.pop(name, []),
                    )
                    for name in names
                    if any(queue.get(name) for queue in queues)
                }
                me, earlier = self._flushes.begin()
            items = list(batches.items())
            if self.durable and len(items) > 1 and self._publish == self._publish_file:
                written = self._flush_at_once(items)
            else:
                written = self._flush_in_turn(items)
            ok = True
        except ValueError as exc:  # rows that cannot be a table are dropped (_write_batch)
            dropped = str(exc)
            raise
        finally:
            if me is not None:
                self._flushes.end(me, ok=ok, dropped=dropped)
        if earlier and not self._flushes.wait(earlier):
            written += self._write_queued(table)  # an earlier flush put our rows back
        return written

    def _flush_in_turn(self, items: list[tuple[str, _Queued]]) -> list[Path]:
        """Each table's files written one table after the other; a failure requeues the rest."""
        written: list[Path] = []
        for index, (name, (rows, tables, lists)) in enumerate(items):
            try:
                written.extend(self._write_batch(name, rows, tables, lists))
            except (OSError, pa.ArrowException) as exc:  # e.g. S3 refusing a key: ArrowInvalid
                self._requeue_items(items[index + 1 :])
                raise LogWriteError(f"{name} rows", self.logs_dir, exc) from exc
            except BaseException:
                self._requeue_items(items[index + 1 :])
                raise
        return written

    def _flush_at_once(self, items: list[tuple[str, _Queued]]) -> list[Path]:
        """Each table's files written in its own thread, so their fsyncs wait together: a durable
        flush of two tables waits for two fsync rounds, not four. A table that fails requeues
        its unwritten rows (as `_write_batch` does); the others are still written."""
        pool = _durable_writers()
        futures = [pool.submit(self._write_batch, name, *batch) for name, batch in items]
        written: list[Path] = []
        errors: list[BaseException] = []
        for (name, _), future in zip(items, futures, strict=True):
            try:
                written.extend(future.result())
            except (OSError, pa.ArrowException) as exc:
                error = LogWriteError(f"{name} rows", self.logs_dir, exc)
                error.__cause__ = exc
                errors.append(error)
            except BaseException as exc:  # noqa: BLE001 - raised below, after every table
                errors.append(exc)
        if errors:
            raise errors[0]
        return written

    def _merge_due(self) -> bool:
        """Is it time to merge the small files a long run left (fresh.py)? Once per
        `merge_every_s`, as often as sensor runs end, not at every flush."""
        now = time.monotonic()
        with self._lock:
            if not self._local or now - self._merged_at < self.merge_every_s:
                return False
            self._merged_at = now
            return True

    def write(self, table: str, rows: Iterable[Row]) -> list[Path]:
        """Queue `rows` and flush `table` now; return the new files."""
        self.extend(table, rows)
        return self.flush(table)

    def _write_batch(
        self,
        table: str,
        rows: list[Row],
        tables: list[pa.Table] = (),
        lists: list[Lists] = (),
    ) -> list[Path]:
        """Write one table's rows, one file per UTC day; requeue unwritten days on disk errors."""
        try:
            parts = [to_arrow(table, rows)] if rows else []
            parts += [lists_to_arrow(table, list(lists))] if lists else []
        except ValueError as exc:
            if tables:
                self._requeue_tables(table, list(tables))
            dropped = len(rows) + sum(len(next(iter(b.values()))) for b in lists)
            raise ValueError(f"{exc}; {dropped} queued {table} row(s) dropped") from None
        data = (
            pa.concat_tables([*parts, *tables])
            if len(parts) + len(tables) > 1
            else [*parts, *tables][0]
        )
        # The one place every log row passes: no text taken from the data skips the redactor.
        data = redacted_table(table, data, self._redactors)
        parts = list(split_by_day(table, data).items())
        written: list[Path] = []
        for index, (day, part) in enumerate(parts):
            try:
                written.append(self._publish(table, day, part))
            except (OSError, pa.ArrowException):
                self._requeue([(table, [r for _, rest in parts[index:] for r in rest.to_pylist()])])
                raise
        return written

    def __enter__(self) -> LogWriter:
        """Use as a context manager that flushes on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Flush whatever is still queued."""
        self.flush()
