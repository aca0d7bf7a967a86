"""The log store: runs append Parquet files, analysts query DuckDB views over them.

Layout under `logs_dir`:

    <table>/date=YYYY-MM-DD/<utc-timestamp>-<uuid>.parquet   data files, immutable once published
    <table>/date=1970-01-01/_schema.parquet                  empty file typed with the current schema
    segment_sync.duckdb                                      the analysts' file: views only

Why it never blocks: DuckDB lets one process open a database file read-write, so runs never open
the analysts' file. Each flush writes a new Parquet file under a temporary name that does not end
in `.parquet` (so no glob matches it) and `os.replace`s it into place, so a reader sees a whole
file or none. Published files are never modified in place, only added or (by maintenance) deleted.

Why the views work with no data yet: every table keeps one zero-row `_schema.parquet` typed with
the current schema inside the partition glob. The glob therefore always matches (DuckDB fails on a
glob that matches nothing), every column has its declared type even before the first row, and with
`union_by_name` a column added to the schema later shows as NULL for older files. This uses only
documented `read_parquet` behaviour, so the views work from any DuckDB client the analysts use.
The alternative, a typed empty SELECT unioned with `read_parquet(..., allow_empty = true)`, relies
on an option older clients lack. Maintenance skips files whose name starts with `_`.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segment_sync.logs.schema import ALLOWED_VALUES, TABLES, TIME_COLUMNS, schema_for

ANALYTICS_DB_NAME = "segment_sync.duckdb"
SCHEMA_FILE_NAME = "_schema.parquet"
SCHEMA_PARTITION = "date=1970-01-01"
PARTITION_PREFIX = "date="
TEMP_SUFFIX = ".tmp"
COMPRESSION = "zstd"
# The analysts' file holds only views, so create it in the oldest storage format DuckDB 2 writes:
# analysts can open it with any DuckDB client from 1.0 on.
ANALYTICS_STORAGE_VERSION = "v1.0.0"

Row = Mapping[str, Any]


class LogWriteError(RuntimeError):
    """A log file could not be written (disk full, no permission): names the folder and the fix."""

    def __init__(self, what: str, logs_dir: Path, cause: OSError) -> None:
        self.logs_dir, self.cause = logs_dir, cause
        reason = cause.strerror or type(cause).__name__
        super().__init__(
            f"could not write {what} under logs.dir ({logs_dir}): {reason}; make it a writable "
            "folder with free space (or point logs.dir elsewhere), then rerun: nothing unlogged "
            "counted as done"
        )


# ---------------------------------------------------------------------------------------------
# Files and directories (shared with maintenance)
# ---------------------------------------------------------------------------------------------


def table_dir(logs_dir: Path | str, table: str) -> Path:
    """The directory holding every partition of `table`."""
    schema_for(table)
    return Path(logs_dir) / table


def partition_dir(logs_dir: Path | str, table: str, day: date) -> Path:
    """The directory of one UTC day of `table`."""
    return table_dir(logs_dir, table) / f"{PARTITION_PREFIX}{day.isoformat()}"


def partition_dirs(logs_dir: Path | str, table: str) -> list[Path]:
    """Every `date=` partition directory of `table`, oldest first."""
    root = table_dir(logs_dir, table)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PARTITION_PREFIX))


def partition_day(directory: Path) -> date | None:
    """The UTC day named by a `date=YYYY-MM-DD` directory, or None if it names none."""
    try:
        return date.fromisoformat(directory.name.removeprefix(PARTITION_PREFIX))
    except ValueError:
        return None


def data_files(directory: Path) -> list[Path]:
    """The published data files of one partition, oldest first (`_`-prefixed files excluded)."""
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix == ".parquet" and not p.name.startswith("_")
    )


def new_file_paths(directory: Path) -> tuple[Path, Path]:
    """A fresh (temporary, final) path pair; the temporary name matches no `*.parquet` glob."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = directory / f"{stamp}-{uuid.uuid4().hex}.parquet"
    return directory / f".{final.name}{TEMP_SUFFIX}", final


def write_parquet(table: pa.Table, directory: Path, *, durable: bool = False) -> Path:
    """Write `table` as a new file in `directory`, atomically for readers; return its path."""
    for attempt in range(3):
        directory.mkdir(parents=True, exist_ok=True)
        tmp, final = new_file_paths(directory)
        try:
            pq.write_table(table, tmp, compression=COMPRESSION)
            if durable:
                _fsync(tmp)
            os.replace(tmp, final)
        except FileNotFoundError:
            # Retention removed the (empty) partition directory between mkdir and write.
            tmp.unlink(missing_ok=True)
            if attempt == 2:
                raise
            continue
        if durable:
            _fsync(directory)
        return final
    raise AssertionError("unreachable")


def _fsync(path: Path) -> None:
    """Flush a file or directory to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_layout(logs_dir: Path | str) -> None:
    """Create each table's `_schema.parquet` (see module docstring), rewriting it if outdated."""
    for table, schema in TABLES.items():
        directory = table_dir(logs_dir, table) / SCHEMA_PARTITION
        path = directory / SCHEMA_FILE_NAME
        if path.exists() and pq.read_schema(path).remove_metadata().equals(schema):
            continue
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{SCHEMA_FILE_NAME}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
        pq.write_table(schema.empty_table(), tmp, compression=COMPRESSION)
        os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def check_columns(table: str, rows: list[Row]) -> None:
    """ValueError naming the table, the column and the expected columns for a malformed row."""
    schema = schema_for(table)
    names = frozenset(schema.names)
    required = frozenset(f.name for f in schema if not f.nullable)
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


def to_arrow(table: str, rows: list[Row]) -> pa.Table:
    """Build a typed Arrow table from row dicts, column by column; ValueError names the column."""
    schema = schema_for(table)
    arrays = [_column(table, field, [row.get(field.name) for row in rows]) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _column(table: str, field: pa.Field, values: list[Any]) -> pa.Array:
    """One validated column: right type, no nulls if required, only allowed values."""
    try:
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


def split_by_day(table: str, data: pa.Table) -> dict[date, pa.Table]:
    """Split rows by the UTC date of the table's time column (its partition)."""
    days = pc.cast(data[TIME_COLUMNS[table]], pa.date32())
    unique = days.unique().to_pylist()
    if len(unique) == 1:
        return {unique[0]: data}
    return {day: data.filter(pc.equal(days, pa.scalar(day, pa.date32()))) for day in unique}


class LogWriter:
    """Buffers log rows and writes them as new Parquet files; thread-safe, never locks DuckDB."""

    def __init__(self, logs_dir: Path | str, *, durable: bool = False) -> None:
        """Prepare `logs_dir`; `durable=True` also fsyncs each file (survives power loss)."""
        self.logs_dir = Path(logs_dir).resolve()
        self.durable = durable
        self._pending: dict[str, list[Row]] = {}
        self._pending_tables: dict[str, list[pa.Table]] = {}
        self._lock = threading.Lock()
        try:
            ensure_layout(self.logs_dir)
        except OSError as exc:
            raise LogWriteError("the log layout", self.logs_dir, exc) from exc

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
        """Queue rows given column by column: no dict per row, for large batches on hot paths."""
        schema = schema_for(table)
        unknown = sorted(set(columns) - set(schema.names))
        if unknown:
            raise ValueError(
                f"{table}: unknown column {unknown[0]!r}; expected columns: {', '.join(schema.names)}"
            )
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"{table}: columns differ in length ({sorted(lengths)})")
        count = lengths.pop() if lengths else 0
        if not count:
            return
        arrays = [_column(table, f, columns.get(f.name) or [None] * count) for f in schema]
        data = pa.Table.from_arrays(arrays, schema=schema)
        with self._lock:
            self._pending_tables.setdefault(table, []).append(data)

    def pending(self, table: str) -> int:
        """How many rows of `table` are queued and not yet written."""
        with self._lock:
            queued = sum(t.num_rows for t in self._pending_tables.get(table, ()))
            return len(self._pending.get(table, ())) + queued

    def flush(self, table: str | None = None) -> list[Path]:
        """Write the queued rows (of `table`, or of every table) and return the new files."""
        with self._lock:
            names = [table] if table is not None else list({*self._pending, *self._pending_tables})
            batches = {
                name: (self._pending.pop(name, []), self._pending_tables.pop(name, []))
                for name in names
                if self._pending.get(name) or self._pending_tables.get(name)
            }
        items = list(batches.items())
        written: list[Path] = []
        for index, (name, (rows, tables)) in enumerate(items):
            try:
                written.extend(self._write_batch(name, rows, tables))
            except OSError as exc:
                self._requeue_items(items[index + 1 :])
                raise LogWriteError(f"{name} rows", self.logs_dir, exc) from exc
            except BaseException:
                self._requeue_items(items[index + 1 :])
                raise
        return written

    def write(self, table: str, rows: Iterable[Row]) -> list[Path]:
        """Queue `rows` and flush `table` now; return the new files."""
        self.extend(table, rows)
        return self.flush(table)

    def _write_batch(self, table: str, rows: list[Row], tables: list[pa.Table] = ()) -> list[Path]:
        """Write one table's rows, one file per UTC day; requeue unwritten days on disk errors."""
        try:
            parts = [to_arrow(table, rows)] if rows else []
        except ValueError as exc:
            if tables:
                self._requeue_tables(table, list(tables))
            raise ValueError(f"{exc}; {len(rows)} queued {table} row(s) dropped") from None
        data = (
            pa.concat_tables([*parts, *tables])
            if len(parts) + len(tables) > 1
            else [*parts, *tables][0]
        )
        parts = list(split_by_day(table, data).items())
        written: list[Path] = []
        for index, (day, part) in enumerate(parts):
            directory = partition_dir(self.logs_dir, table, day)
            try:
                written.append(write_parquet(part, directory, durable=self.durable))
            except OSError:
                self._requeue([(table, [r for _, rest in parts[index:] for r in rest.to_pylist()])])
                raise
        return written

    def _requeue_items(self, items: list[tuple[str, tuple[list[Row], list[pa.Table]]]]) -> None:
        """Put tables not yet flushed back, rows and Arrow batches alike."""
        self._requeue([(n, r + [x for t in ts for x in t.to_pylist()]) for n, (r, ts) in items])

    def _requeue_tables(self, table: str, tables: list[pa.Table]) -> None:
        with self._lock:
            self._pending_tables[table] = tables + self._pending_tables.get(table, [])

    def _requeue(self, batches: list[tuple[str, list[Row]]]) -> None:
        """Put unwritten rows back at the front of the queue for the next flush."""
        with self._lock:
            for table, rows in batches:
                self._pending[table] = rows + self._pending.get(table, [])

    def __enter__(self) -> LogWriter:
        """Use as a context manager that flushes on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Flush whatever is still queued."""
        self.flush()


# ---------------------------------------------------------------------------------------------
# Reading: views
# ---------------------------------------------------------------------------------------------


def _quote_literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _quote_ident(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _table_view(root: Path, table: str) -> str:
    """CREATE OR REPLACE VIEW for one log table over its Parquet files."""
    glob = (root / table / f"{PARTITION_PREFIX}*" / "*.parquet").as_posix()
    columns = ", ".join(_quote_ident(name) for name in [*TABLES[table].names, "date"])
    return (
        f"CREATE OR REPLACE VIEW {_quote_ident(table)} AS SELECT {columns} FROM read_parquet("
        f"{_quote_literal(glob)}, hive_partitioning = true, union_by_name = true, "
        "hive_types = {'date': DATE})"
    )


_REQUEST_FAILED = "error IS NOT NULL OR status_code IS NULL OR status_code >= 400"

DAILY_SUMMARY_SQL = f"""CREATE OR REPLACE VIEW daily_summary AS
SELECT "date" AS day, 'outbound' AS direction, event_type AS type,
    count(*) AS requests,
    coalesce(sum(message_count), 0) AS messages,
    count(*) FILTER (WHERE {_REQUEST_FAILED}) AS errors,
    quantile_cont(response_time_s, 0.5) AS p50_response_time_s,
    quantile_cont(response_time_s, 0.95) AS p95_response_time_s
FROM outbound_log
GROUP BY ALL
UNION ALL
SELECT "date" AS day, 'inbound' AS direction, action AS type,
    count(DISTINCT identifier) AS requests,
    count(*) AS messages,
    count(*) FILTER (WHERE status = 'error' OR {_REQUEST_FAILED}) AS errors,
    quantile_cont(response_time_s, 0.5) AS p50_response_time_s,
    quantile_cont(response_time_s, 0.95) AS p95_response_time_s
FROM inbound_log
GROUP BY ALL
ORDER BY day, direction, type"""


def view_sql(logs_dir: Path | str) -> list[str]:
    """The CREATE OR REPLACE VIEW statements, with absolute paths, in dependency order."""
    root = Path(logs_dir).resolve()
    return [*(_table_view(root, table) for table in TABLES), DAILY_SUMMARY_SQL]


def connect(logs_dir: Path | str, database: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (in-memory unless `database` is given) with the log views defined."""
    ensure_layout(logs_dir)
    con = duckdb.connect(database or ":memory:")
    try:
        for statement in view_sql(logs_dir):
            con.execute(statement)
    except Exception:
        con.close()
        raise
    return con


def ensure_analytics_db(logs_dir: Path | str) -> Path:
    """Create or refresh `<logs_dir>/segment_sync.duckdb` with the views, never touching readers.

    DuckDB locks a file for the process that opens it read-write, and even a read-only reader
    blocks a writer, so the views are written into a new file beside it and renamed over it.
    A session that opened the old file keeps it (POSIX keeps an open file alive); the views read
    the Parquet files, so that session still sees every new row, and a new session gets the new
    views. The rename is atomic: a reader never sees a half-written file.
    """
    root = Path(logs_dir).resolve()
    ensure_layout(root)
    path = root / ANALYTICS_DB_NAME
    fresh = root / f".{ANALYTICS_DB_NAME}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
    try:
        con = duckdb.connect(
            str(fresh), config={"storage_compatibility_version": ANALYTICS_STORAGE_VERSION}
        )
        try:
            for statement in view_sql(root):
                con.execute(statement)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(fresh, path)
    finally:
        fresh.unlink(missing_ok=True)
        Path(f"{fresh}.wal").unlink(missing_ok=True)
    return path
