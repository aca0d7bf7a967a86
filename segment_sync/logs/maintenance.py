"""Log maintenance: merge small Parquet files and drop rows past retention.

Both operations follow the store's rule that a published `.parquet` file is never changed in
place: they publish a new file (temporary name, then `os.replace`) and only then delete the files
it replaces. They work on the list of files taken at their start, so a file a writer publishes
meanwhile is neither merged nor deleted. A per-table lock file keeps two maintenance calls from
working on the same table at once (which could merge the same inputs twice). Merges and
retention's rewrites are journaled (merge.py), so a process killed halfway leaves nothing twice
once the next merge of that partition finishes its work. Runs merge today's small files
themselves (fresh.py).

The remaining window for readers: POSIX has no way to swap several directory entries at once.
Between publishing the merged file and unlinking its inputs (microseconds per file), a query
that lists the partition sees both and counts those rows twice; a query that listed the inputs
just before they were unlinked and opens one just after fails with a "file not found" error and
can simply be rerun (the `logs` commands and the logbook do: vanished.py). Rows are never
missing. Making views de-duplicate (a manifest or per-row source names) would cost every query a
second scan, so merges stay rare: hourly, and at run ends (fresh.py).

A damaged input file (see damaged.py) is moved to `<logs.dir>/quarantine/` and reported; the
other files are maintained as usual, so one bad file neither loses good rows nor stops the job.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from segment_sync.logs.compaction import CompactionResult, _publish, compact
from segment_sync.logs.damaged import DamagedFile, quarantine, read_in_batches, row_count
from segment_sync.logs.incomplete import each_table
from segment_sync.logs.layout import (
    SUMMARY_MARK,
    data_files,
    new_file_paths,
    partition_day,
    partition_dirs,
)
from segment_sync.logs.merge import (
    LOCK_TIMEOUT_S,
    READ_BATCH_BYTES,
    ROW_GROUP_ROWS,
    TableBusy,
    finish_interrupted,
    maintenance_lock,
    merged_schema,
    publish,
    read_conformed,
    unlink_all,
    write_journal,
)
from segment_sync.logs.merge import conform as _conform
from segment_sync.logs.object_store import is_object_store, s3_logs
from segment_sync.logs.schema import TIME_COLUMNS, UTC_TIMESTAMP, schema_for
from segment_sync.logs.store import LogWriteError
from segment_sync.logs.stuck import check_local

__all__ = [
    "LOCK_TIMEOUT_S",
    "ROW_GROUP_ROWS",
    "CompactionResult",
    "TableBusy",
    "_conform",
    "_publish",
    "compact",
    "maintenance_lock",
]


def apply_retention(
    logs_dir: Path | str,
    table: str,
    older_than: datetime,
    moved: list[Path] | None = None,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> int:
    """Remove exactly the rows whose time column is before `older_than`; return how many.

    Partitions of earlier days are deleted whole; the cutoff day's partition has its affected
    files rewritten keeping rows at or after the cutoff (a damaged one is moved to quarantine
    and appended to `moved`). Later partitions cannot hold older rows.
    """
    if older_than.tzinfo is None:
        raise ValueError("older_than must be timezone-aware (UTC), got a naive datetime")
    schema_for(table)
    cutoff_day = older_than.astimezone(UTC).date()
    removed = 0
    with maintenance_lock(logs_dir, table, lock_timeout_s):
        for directory in partition_dirs(logs_dir, table):
            day = partition_day(directory)
            if day is None or day > cutoff_day:
                continue
            finish_interrupted(directory)
            if day < cutoff_day:
                removed += _drop_partition(directory)
            else:
                trimmed = [] if moved is None else moved
                removed += _trim_partition(logs_dir, table, directory, older_than, trimmed)
    return removed


def _drop_partition(directory: Path) -> int:
    """Delete every data file of a partition (and the directory once empty); return rows."""
    files = data_files(directory)
    rows = sum(row_count(path) for path in files)
    unlink_all(files)
    unlink_all([p for p in directory.glob(f"*{SUMMARY_MARK}*") if not p.name.startswith("_")])
    with contextlib.suppress(OSError):  # not empty: the schema file, or a writer's new file
        directory.rmdir()
    return rows


def _trim_partition(
    logs_dir: Path | str, table: str, directory: Path, cutoff: datetime, moved: list[Path]
) -> int:
    """Rewrite the files of a partition that hold rows before `cutoff`; return rows removed.
    A damaged file is moved to quarantine (appended to `moved`) instead. Files are read a
    batch at a time, twice (count, then rewrite): a day of request bodies is never held whole."""
    column = TIME_COLUMNS[table]
    threshold = pa.scalar(cutoff, UTC_TIMESTAMP)

    def keep(batch: pa.RecordBatch) -> pa.Array:
        return pc.fill_null(
            pc.greater_equal(batch.column(column).cast(UTC_TIMESTAMP), threshold), True
        )

    affected: list[Path] = []
    removed = kept = 0
    for path in data_files(directory):
        try:
            counts = [
                (batch.num_rows, pc.sum(keep(batch)).as_py() or 0)
                for batch in read_in_batches(path, READ_BATCH_BYTES)
            ]
        except DamagedFile:
            moved.append(quarantine(logs_dir, path))
            continue
        rows, remaining = sum(n for n, _ in counts), sum(k for _, k in counts)
        if remaining == rows:
            continue
        affected.append(path)
        removed += rows - remaining
        kept += remaining
    if kept:  # journaled as a merge: a kill before the deletions leaves no row twice
        target = merged_schema(table, affected)
        tmp, final = new_file_paths(directory)
        journal = write_journal(directory, final, affected)
        try:
            publish(read_conformed(affected, target, keep), target, tmp, final)
        except BaseException:
            if not final.exists():  # not published: the inputs stay, the journal goes
                journal.unlink(missing_ok=True)
            raise
        unlink_all(affected)
        journal.unlink()
    else:
        unlink_all(affected)
    return removed


@dataclass(frozen=True)
class TableMaintenance:
    """What maintenance did to one log table."""

    table: str
    files_before: int
    files_after: int
    rows_removed: int
    rows_after: int
    quarantined: tuple[Path, ...] = ()  # damaged files moved out of the views, kept there
    busy: bool = False  # another maintainer held it: skipped, the next run maintains it


def table_files(logs_dir: Path | str, table: str) -> list[Path]:
    """The published data files of every partition of `table`."""
    return [path for d in partition_dirs(logs_dir, table) for path in data_files(d)]


# How long the hourly job waits for a table another maintainer holds: not at all. The holder
# is the previous hourly run (still at it) or a run merging its fresh files; waiting a minute
# per lock, twice per table, kept a job whose every table was held for 10 minutes.
BUSY_WAIT_S = 0.0

# What a disk that cannot take a write answers (full, read-only, no permission, failing).
_UNWRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


@contextmanager
def _writing(logs_dir: Path | str, table: str) -> Iterator[None]:
    """Turn a disk that refuses a write into one LogWriteError naming logs.dir; an input file
    is deleted only after its merged file is published, so no row is lost on the way."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        raise LogWriteError(f"{table} maintenance files", Path(logs_dir), exc) from exc


def maintain_table(
    logs_dir: Path | str,
    table: str,
    cutoff: datetime,
    min_files: int,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
    moved: list[Path] | None = None,
) -> TableMaintenance:
    """Remove the rows older than `cutoff`, then merge each partition's small files; the
    damaged files moved aside are appended to `moved` as they go (kept if a later step fails)."""
    before = len(table_files(logs_dir, table))
    moved = [] if moved is None else moved
    removed = 0
    try:
        with _writing(logs_dir, table):
            removed = apply_retention(logs_dir, table, cutoff, moved, lock_timeout_s)
            compaction = compact(logs_dir, table, min_files, lock_timeout_s, moved)
    except TableBusy:  # its holder is changing the files: they are not counted now
        check_local(logs_dir, table, cutoff)  # held for over a day: TableStuck fails the run
        return TableMaintenance(table, before, before, removed, 0, tuple(moved), busy=True)
    rows = sum(row_count(path) for path in table_files(logs_dir, table))
    return TableMaintenance(table, before, compaction.files_after, removed, rows, tuple(moved))


def maintain_logs(
    logs_dir: Path | str,
    retention_days: int,
    min_files: int,
    now: datetime | None = None,
    lock_timeout_s: float | None = None,
) -> list[TableMaintenance]:
    """Retention and compaction for every log table; rows at or after the cutoff all stay.

    A table whose lock another maintainer holds past `lock_timeout_s` (BUSY_WAIT_S: none) is
    skipped and reported `busy`: the next run maintains it (unless it has been held for over a
    day: TableStuck, stuck.py). MaintenanceIncomplete after the last
    table if any table could not be maintained: the others were, and their reports travel with
    the error."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    lock_timeout_s = BUSY_WAIT_S if lock_timeout_s is None else lock_timeout_s
    if is_object_store(logs_dir):  # a lease instead of flock: see s3_maintenance.py
        from segment_sync.logs import s3_maintenance

        logs = s3_logs(logs_dir)
        return each_table(
            lambda t, moved: s3_maintenance.maintain_table(
                logs, t, cutoff, min_files, lock_timeout_s, moved
            )
        )
    return each_table(
        lambda t, moved: maintain_table(logs_dir, t, cutoff, min_files, lock_timeout_s, moved)
    )
