"""Where the Parquet logs live: table and date folders, atomic file writes, the schema files.

Layout under `logs_dir`:

    <table>/date=YYYY-MM-DD/<utc-timestamp>-<uuid>.parquet   data files, immutable once published
    <table>/date=1970-01-01/_schema.parquet                  empty file typed with the current schema
    outbound_log/date=YYYY-MM-DD/<data file name>.summary-<fingerprint>   its requests per type
    outbound_log/date=1970-01-01/_schema.summary-<fingerprint>            typed like a summary
    segment_sync.duckdb                                      the analysts' file: views only
"""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from segment_sync.logs.request_figures import figures_fingerprint
from segment_sync.logs.schema import REQUEST_SUMMARY, TABLES, schema_for

SCHEMA_FILE_NAME = "_schema.parquet"


SCHEMA_PARTITION = "date=1970-01-01"


PARTITION_PREFIX = "date="


TEMP_SUFFIX = ".tmp"


# A data file's summary is `<data file name>.summary-<fingerprint>`: no `*.parquet` glob
# matches it, and a summary made by other figures' SQL (request_figures.py) has another name.
SUMMARY_MARK = ".summary"
SUMMARY_SUFFIX = f"{SUMMARY_MARK}-{figures_fingerprint(REQUEST_SUMMARY)}"
SUMMARY_TABLES = ("outbound_log",)


COMPRESSION = "zstd"


# What the Parquet writer holds at once is about a page per column, its compressed copy and
# its statistics. A page closes only after a batch of rows is added, so a batch of 1,024
# request bodies (~500 KB each) made one 5 MB page held three times over: batches are cut
# to about a page, and pages kept small.
PAGE_BYTES = 256 * 1024
MAX_BATCH_ROWS = 1024
# A column's dictionary grows to this before the writer falls back to plain values. The
# default (1 MiB) ends the customer_ids dictionary a few pages into a compacted row group
# (128,000 requests, ~1 M ids, 100,000 customers: ~1.1 MiB), and plain strings take 2-4x as
# long to scan as dictionary codes (bench/logs.py, query b). Only a column that repeats reaches
# it, and only in large row groups (merges, compaction): a writer holds at most this per column.
DICTIONARY_PAGE_BYTES = 2 * 2**20


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


def new_file_name() -> str:
    """A fresh data file name: `<utc-timestamp>-<uuid>.parquet` (sorts by time)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{uuid.uuid4().hex}.parquet"


def new_file_paths(directory: Path) -> tuple[Path, Path]:
    """A fresh (temporary, final) path pair; the temporary name matches no `*.parquet` glob."""
    final = directory / new_file_name()
    return directory / f".{final.name}{TEMP_SUFFIX}", final


# One value per row: a dictionary of them is built, outgrows its page and is dropped (20,000
# outbound_messages rows: 7.5 ms and 0.22 MB with it, 6.0 ms and 0.15 MB without).
ROW_UNIQUE_COLUMNS = frozenset({"message_id", "source_id"})


def _is_body(column: str) -> bool:
    """A request or response body: up to 500 KB of JSON each."""
    return column.endswith("_body")


def holds_bodies(table: str) -> bool:
    """Whether `table` has request or response body columns."""
    return any(map(_is_body, schema_for(table).names))


def has_raw_bodies(path: Path) -> bool:
    """Whether a data file holds bodies a flush left uncompressed (a merge compresses all)."""
    meta = pq.ParquetFile(path).metadata
    if not meta.num_row_groups:
        return False
    group = meta.row_group(0)
    return any(
        _is_body(group.column(i).path_in_schema) and group.column(i).compression == "UNCOMPRESSED"
        for i in range(group.num_columns)
    )


def _statistics(table: pa.Table) -> list[str]:
    """Columns with min/max statistics: all but request and response bodies."""
    return [name for name in table.column_names if not _is_body(name)]


def _dictionary(table: pa.Table) -> list[str]:
    """Dictionary-encode the columns that repeat: not bodies, which hardly ever do, nor the
    ids that never do."""
    return [name for name in _statistics(table) if name not in ROW_UNIQUE_COLUMNS]


def _dictionary_leaves(table: pa.Table) -> list[str]:
    """`_dictionary`'s columns as Parquet leaf paths: the writer matches a list column only by
    its values' path (`customer_ids.list.element`), and silently writes plain values otherwise."""
    encoded = set(_dictionary(table))  # once: a test per field made this quadratic (0.18 ms)
    return [
        f"{field.name}.list.element" if pa.types.is_list(field.type) else field.name
        for field in table.schema
        if field.name in encoded
    ]


def _batch_rows(table: pa.Table) -> int:
    """Rows per write batch: about a page's worth (one row when a row is a request body)."""
    per_row = table.nbytes // max(table.num_rows, 1)
    return max(1, min(MAX_BATCH_ROWS, PAGE_BYTES // max(per_row, 1)))


# The ingest's tables are flushed at every group commit (a few hundred rows): a flush of at
# most PLAIN_FILE_ROWS rows of them is written without dictionary pages, which cost about a
# third of encoding such a file (0.3-0.45 ms of a 160-row inbound_log file's 0.8-1.3) and save
# little in so few rows. Merges and compaction rewrite small files with dictionaries (their
# options are `parquet_options`' default). The outbound log keeps them (its customer_ids).
PLAIN_TABLES = frozenset({"inbound_log", "inbound_items"})
PLAIN_FILE_ROWS = 1024
# Such a file is also compressed with LZ4, not zstd: zstd took a third of writing it (0.4 of
# 1.15 ms for 160 rows) for files that live minutes: merges rewrite them with COMPRESSION.
PLAIN_COMPRESSION = "lz4"
# A flush writes request and response bodies uncompressed, and the merge at a run's end or the
# hourly compaction compresses them, once: zstd cost more than gzip-ing and sending a body
# (issue 26: its log row must not cost more), and a merge compressed each body a second time.
# The price: today's unmerged bodies take about 5x the disk until a merge.
RAW_BODIES = "none"
# Only a flush under this size: the run-end merge takes it (fresh.FRESH_FILE_BYTES), and a merge
# reads a column chunk whole, so a bigger uncompressed one would raise what a merge holds.
RAW_BODIES_MAX_BYTES = 16 * 2**20


def parquet_options(
    table: pa.Table,
    *,
    dictionary: bool = True,
    compression: str = COMPRESSION,
    raw_bodies: bool = False,
) -> dict:
    """pq.write_table's options: bounded pages and batches; no min/max statistics of bodies
    (each would copy two bodies, and no query filters bodies by range); `dictionary=False`
    writes plain values only; `raw_bodies` leaves the bodies of a table under
    RAW_BODIES_MAX_BYTES uncompressed (RAW_BODIES)."""
    codecs: str | dict[str, str] = compression
    if raw_bodies and table.nbytes < RAW_BODIES_MAX_BYTES:
        codecs = {n: RAW_BODIES if _is_body(n) else compression for n in table.column_names}
    return {
        "compression": codecs,
        "use_dictionary": _dictionary_leaves(table) if dictionary else False,
        "dictionary_pagesize_limit": DICTIONARY_PAGE_BYTES,
        "write_statistics": _statistics(table),
        "data_page_size": PAGE_BYTES,
        "write_batch_size": _batch_rows(table),
    }


# A table up to this size is encoded in memory and written with one write: pq.write_table
# given a path resolves an Arrow filesystem and opens a stream each time (a fifth of a small
# file's cost). Larger ones (request bodies) are streamed to the file, holding a page at a time.
IN_MEMORY_BYTES = 4 * 2**20


def write_parquet(
    table: pa.Table,
    directory: Path,
    *,
    durable: bool = False,
    dictionary: bool = True,
    compression: str = COMPRESSION,
    raw_bodies: bool = False,
) -> Path:
    """Write `table` as a new file in `directory`, atomically for readers; return its path."""
    options = parquet_options(
        table, dictionary=dictionary, compression=compression, raw_bodies=raw_bodies
    )
    encoded = None
    if table.nbytes <= IN_MEMORY_BYTES:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **options)
        encoded = memoryview(sink.getvalue())
    for attempt in range(3):
        directory.mkdir(parents=True, exist_ok=True)
        tmp, final = new_file_paths(directory)
        try:
            if encoded is None:
                pq.write_table(table, tmp, **options)
                if durable:
                    fsync(tmp)
            else:
                _write_file(tmp, encoded, durable=durable)
            os.replace(tmp, final)
        except FileNotFoundError:
            # Retention removed the (empty) partition directory between mkdir and write.
            _discard(tmp)
            if attempt == 2:
                raise
            continue
        except BaseException:
            _discard(tmp)  # e.g. fsync failed after every byte was written
            raise
        if durable:
            fsync(directory)
        return final
    raise AssertionError("unreachable")


def _discard(tmp: Path) -> None:
    """Remove a temporary file after a failed write; a failure here (EROFS) must not replace
    the write's own error, and the hourly maintenance removes what is left."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def _write_file(path: Path, data: memoryview, *, durable: bool) -> None:
    """Create `path` holding `data` (fsynced if `durable`); a failed write leaves no file.
    Its mode is 0o666 less the umask, as Arrow's writer (and `open`) create files."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        while data:  # a write may take only part (a disk filling up): the rest raises ENOSPC
            data = data[os.write(fd, data) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _discard(path)
        raise
    os.close(fd)


def fsync(path: Path) -> None:
    """Flush a file or directory to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def summary_files(directory: Path) -> list[Path]:
    """The data files' summaries in one partition (`_`-prefixed files excluded)."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.name.endswith(SUMMARY_SUFFIX) and not p.name.startswith(("_", "."))
    )


def stale_summaries(directory: Path) -> list[Path]:
    """Data files' summaries in one partition that other code made (another fingerprint, or
    none): this code's views never read them, so deleting them is safe while they run."""
    if not directory.is_dir():
        return []
    # Other code's typed empty summary (`_schema.summary...`) stays: its views (an analyst's
    # session on the analysts' file made before an upgrade, a process not yet upgraded) need
    # it to keep their summaries' glob matching once their data files' summaries are gone.
    return sorted(
        p
        for p in directory.iterdir()
        if SUMMARY_MARK in p.name
        and not p.name.endswith(SUMMARY_SUFFIX)
        and not p.name.startswith(("_", "."))  # typed empty; a writer's temporary file
    )


def summary_path(data_file: Path) -> Path:
    """Where the summary of one data file lives (beside it)."""
    return data_file.with_name(data_file.name + SUMMARY_SUFFIX)


def _holds_schema(path: Path, schema: pa.Schema) -> bool:
    """Whether the typed empty file at `path` exists, reads, and has `schema`. A damaged one
    holds no rows and is made again (logs check does not list `_` files)."""
    try:
        return pq.read_schema(path).remove_metadata().equals(schema)
    except (OSError, pa.ArrowException):  # missing, or damaged
        return False


def ensure_layout(logs_dir: Path | str) -> None:
    """Create each table's `_schema.parquet` (see module docstring), rewriting it if outdated,
    and the typed empty summary that keeps the summaries' glob matching (other code's, named
    by another fingerprint, is left for that code's views: zero rows, never read by these)."""
    files = [(table, SCHEMA_FILE_NAME, schema) for table, schema in TABLES.items()]
    files += [(table, "_schema" + SUMMARY_SUFFIX, REQUEST_SUMMARY) for table in SUMMARY_TABLES]
    for table, name, schema in files:
        directory = table_dir(logs_dir, table) / SCHEMA_PARTITION
        path = directory / name
        if _holds_schema(path, schema):
            continue
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
        pq.write_table(schema.empty_table(), tmp, compression=COMPRESSION)
        os.replace(tmp, path)
