"""Retention and compaction of the logs on S3, under a lease instead of a lock file.

The same rules as maintenance.py: a published file is never changed, a replacement is published
before the files it replaces are deleted, and only the files listed at the start of a step are
touched, so a file a writer publishes meanwhile is neither merged nor deleted. Every replacement
is announced by a marker first (s3_layout.py), which is what keeps readers from counting a merged
file and its inputs together. A pass starts by finishing what a crashed maintainer left: the
inputs of a merged file that exists are deleted, old markers removed.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segment_sync.logs.damaged import QUARANTINE_DIR, DamagedFile, is_damage, read_in_batches
from segment_sync.logs.layout import TEMP_SUFFIX, new_file_name
from segment_sync.logs.maintenance import LOCK_TIMEOUT_S, TableBusy, TableMaintenance
from segment_sync.logs.merge import READ_BATCH_BYTES, merged_schema, publish, read_conformed
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.s3_layout import (
    MARKER_GRACE_S,
    LogObject,
    data_objects,
    delete_all,
    markers,
    partition_path,
    put_file,
    visible_objects,
    write_marker,
)
from segment_sync.logs.s3_lease import LEASE_DIR, Lease, held_by, lease
from segment_sync.logs.schema import TIME_COLUMNS, UTC_TIMESTAMP, schema_for
from segment_sync.logs.stuck import check_s3

SCRATCH_PREFIX = "segment-sync-s3-merge-"  # a local folder per merge, under TMPDIR
STALE_SCRATCH_AGE_S = 6 * 3600.0  # older than any merge: its maintainer was killed


def row_count(logs: S3Logs, path: str) -> int:
    """Rows of one object by its footer; 0 when the footer cannot be read."""
    try:
        with logs.fs.open_input_file(path) as handle:
            return pq.ParquetFile(handle).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        if is_damage(exc) and not isinstance(exc, FileNotFoundError):
            return 0
        raise


def _quarantine(logs: S3Logs, path: str) -> Path:
    """Move a damaged object under `<prefix>/quarantine/`, out of every view; its `bucket/key`."""
    target = logs.path(QUARANTINE_DIR, logs.key_of(path).removeprefix(logs.key()).lstrip("/"))
    logs.fs.move(path, target)
    return Path(target)


def _replace(
    logs: S3Logs,
    held: Lease,
    table: str,
    day: date,
    inputs: list[str],
    tables: Iterable[pa.Table],
    target: pa.Schema,
) -> int:
    """Publish `tables` (streamed) as one file replacing `inputs`: marker, file, deletions;
    the rows published.

    The merged file is written to a local temporary file a row group at a time, then uploaded:
    a day of request bodies is never held in memory. With no rows, the inputs just go."""
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as scratch:
        local = Path(scratch) / "merged.parquet"
        rows = publish(tables, target, Path(scratch) / f"merged{TEMP_SUFFIX}", local)
        held.renew()
        if rows:
            merged = f"{partition_path(logs, table, day)}/{new_file_name()}"
            marker = write_marker(logs, table, merged, inputs)
            try:
                put_file(logs, merged, local)
                held.renew()
            except BaseException:  # a failed upload, or the upload outlasted the lease (the
                # new holder merges these inputs): withdraw both, the inputs stay
                delete_all(logs, [merged, marker])
                raise
    delete_all(logs, inputs)
    return rows


def finish_interrupted(logs: S3Logs, table: str, now: float | None = None) -> int:
    """Delete the inputs of merged files that exist, and markers past their grace; return how
    many inputs were deleted (left by a maintainer that stopped between its steps)."""
    now = time.time() if now is None else now
    listed = {o.path for o in data_objects(logs, table)}
    deleted = 0
    for marker in markers(logs, table):
        if marker.merged in listed:
            leftover = [p for p in marker.replaces if p in listed]
            if leftover and not _whole(logs, marker.merged):
                # Published cut short (not by us: we upload whole or withdraw) while its inputs
                # still hold the rows: the merged file and its marker go, the next merge redoes
                # it. (With no input left, a bad merged file is the only copy: quarantine's.)
                delete_all(logs, [marker.merged, marker.path])
                continue
            delete_all(logs, leftover)
            deleted += len(leftover)
        if now - marker.mtime > MARKER_GRACE_S:
            delete_all(logs, [marker.path])
    return deleted


def _whole(logs: S3Logs, path: str) -> bool:
    """Does the object end in its Parquet footer (an upload cut short does not)? An S3 error
    (not damage) propagates."""
    try:
        pq.read_metadata(path, filesystem=logs.fs)
    except (pa.ArrowException, OSError) as exc:
        if is_damage(exc) and not isinstance(exc, FileNotFoundError):
            return False
        raise
    return True


def remove_stale_scratch(max_age_s: float = STALE_SCRATCH_AGE_S) -> int:
    """Delete the local scratch folders of S3 merges a killed maintainer left; how many."""
    removed = 0
    cutoff = time.time() - max_age_s
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        with contextlib.suppress(OSError):
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
                removed += 1
    return removed


def _by_day(objects: list[LogObject]) -> dict[date, list[LogObject]]:
    days: dict[date, list[LogObject]] = defaultdict(list)
    for obj in objects:
        days[obj.day].append(obj)
    return dict(sorted(days.items()))


def apply_retention(
    logs: S3Logs, held: Lease, table: str, older_than: datetime, moved: list[Path]
) -> int:
    """Remove exactly the rows before `older_than`; return how many (see maintenance.py)."""
    cutoff_day = older_than.astimezone(UTC).date()
    threshold = pa.scalar(older_than, UTC_TIMESTAMP)
    column = TIME_COLUMNS[table]
    removed = 0
    for day, objects in _by_day(visible_objects(logs, table)).items():
        if day < cutoff_day:
            removed += sum(row_count(logs, o.path) for o in objects)
            held.renew()
            delete_all(logs, [o.path for o in objects])
        elif day == cutoff_day:

            def keep(batch: pa.RecordBatch) -> pa.Array:
                times = batch.column(column).cast(UTC_TIMESTAMP)
                return pc.fill_null(pc.greater_equal(times, threshold), True)

            affected = []
            for obj in objects:
                try:
                    counts = [
                        (batch.num_rows, pc.sum(keep(batch)).as_py() or 0)
                        for batch in read_in_batches(obj.path, READ_BATCH_BYTES, logs.fs)
                    ]
                except DamagedFile:
                    moved.append(_quarantine(logs, obj.path))
                    continue
                rows, kept = sum(n for n, _ in counts), sum(k for _, k in counts)
                if kept < rows:
                    affected.append(obj.path)
                    removed += rows - kept
            if affected:
                target = merged_schema(table, affected, logs.fs)
                kept_rows = read_conformed(affected, target, keep, logs.fs)
                _replace(logs, held, table, day, affected, kept_rows, target)
    return removed


def compact(logs: S3Logs, held: Lease, table: str, min_files: int, moved: list[Path]) -> int:
    """Merge each day holding at least `min_files` files into one; return the files after."""
    after = 0
    for day, objects in _by_day(visible_objects(logs, table)).items():
        if len(objects) < min_files:
            after += len(objects)
            continue
        after += _merge_day(logs, held, table, day, [o.path for o in objects], min_files, moved)
    return after


def _merge_day(
    logs: S3Logs,
    held: Lease,
    table: str,
    day: date,
    inputs: list[str],
    min_files: int,
    moved: list[Path],
) -> int:
    """Merge one day's `inputs` into one file, streamed; a damaged input is quarantined and the
    merge starts again without it (nothing is published before every input was read). Returns
    the files the day has after."""
    while len(inputs) >= min_files:
        try:
            target = merged_schema(table, inputs, logs.fs)
            rows = read_conformed(inputs, target, None, logs.fs)
            return 1 if _replace(logs, held, table, day, inputs, rows, target) else 0
        except DamagedFile as damaged:
            moved.append(_quarantine(logs, str(damaged.path)))
            inputs = [path for path in inputs if path != str(damaged.path)]
    return len(inputs)


def maintain_table(
    logs: S3Logs,
    table: str,
    cutoff: datetime,
    min_files: int,
    timeout_s: float = LOCK_TIMEOUT_S,
    moved: list[Path] | None = None,
) -> TableMaintenance:
    """Remove the rows older than `cutoff`, then merge each day's small files; the damaged
    objects moved aside are appended to `moved` as they go (kept if a later step fails)."""
    schema_for(table)
    if min_files < 2:
        raise ValueError(f"min_files must be at least 2, got {min_files}")
    moved = [] if moved is None else moved
    try:
        with lease(logs, table, timeout_s) as held:
            remove_stale_scratch()
            finish_interrupted(logs, table)
            before = len(visible_objects(logs, table))
            removed = apply_retention(logs, held, table, cutoff, moved)
            after = compact(logs, held, table, min_files, moved)
    except TableBusy:  # only the lease raises it: another maintainer has the table
        objects = visible_objects(logs, table)
        days = {o.day for o in objects}
        check_s3(table, days, cutoff, logs.path(LEASE_DIR, f"{table}.lease"), held_by(logs, table))
        before = len(objects)
        return TableMaintenance(table, before, before, 0, 0, tuple(moved), busy=True)
    rows = sum(row_count(logs, o.path) for o in visible_objects(logs, table))
    return TableMaintenance(table, before, after, removed, rows, tuple(moved))
