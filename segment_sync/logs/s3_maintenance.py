"""Retention and compaction of the logs on S3, under a lease instead of a lock file.

The same rules as maintenance.py: a published file is never changed, a replacement is published
before the files it replaces are deleted, and only the files listed at the start of a step are
touched, so a file a writer publishes meanwhile is neither merged nor deleted. Every replacement
is announced by a marker first (s3_layout.py), which is what keeps readers from counting a merged
file and its inputs together. A pass starts by finishing what a crashed maintainer left: the
inputs of a merged file that exists are deleted, old markers removed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segment_sync.logs.damaged import QUARANTINE_DIR, is_damage
from segment_sync.logs.layout import new_file_name
from segment_sync.logs.maintenance import (
    LOCK_TIMEOUT_S,
    TableMaintenance,
    _conform,
)
from segment_sync.logs.object_store import S3Logs
from segment_sync.logs.s3_layout import (
    MARKER_GRACE_S,
    LogObject,
    data_objects,
    delete_all,
    markers,
    parquet_bytes,
    partition_path,
    put_whole,
    visible_objects,
    write_marker,
)
from segment_sync.logs.s3_lease import Lease, LeaseLost, lease
from segment_sync.logs.schema import TABLES, TIME_COLUMNS, UTC_TIMESTAMP, schema_for


class _Damaged(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _read(logs: S3Logs, path: str) -> pa.Table:
    """Every row of one object, validated; _Damaged if it cannot be read."""
    try:
        with logs.fs.open_input_file(path) as handle:
            data = pq.ParquetFile(handle).read()
        data.validate(full=True)
    except (pa.ArrowException, OSError) as exc:
        if is_damage(exc) and not isinstance(exc, FileNotFoundError):
            raise _Damaged(path) from exc
        raise
    return data


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
    logs: S3Logs, held: Lease, table: str, day: date, inputs: list[str], tables: list[pa.Table]
) -> None:
    """Publish `tables` as one file replacing `inputs`: marker, file, then deletions."""
    if tables:
        merged = f"{partition_path(logs, table, day)}/{new_file_name()}"
        fields = [f.with_nullable(True) for f in schema_for(table)]
        known = {f.name for f in fields}
        for t in tables:
            fields += [f.with_nullable(True) for f in t.schema if f.name not in known]
            known |= {f.name for f in t.schema}
        target = pa.schema(fields)
        body = parquet_bytes(pa.concat_tables([_conform(t, target) for t in tables]))
        held.renew()
        marker = write_marker(logs, table, merged, inputs)
        put_whole(logs, merged, body)
        try:
            held.renew()
        except LeaseLost:  # the upload outlasted the lease: the new holder merges these inputs
            delete_all(logs, [merged, marker])
            raise
    else:
        held.renew()
    delete_all(logs, inputs)


def finish_interrupted(logs: S3Logs, table: str, now: float | None = None) -> int:
    """Delete the inputs of merged files that exist, and markers past their grace; return how
    many inputs were deleted (left by a maintainer that stopped between its steps)."""
    now = time.time() if now is None else now
    listed = {o.path for o in data_objects(logs, table)}
    deleted = 0
    for marker in markers(logs, table):
        if marker.merged in listed:
            leftover = [p for p in marker.replaces if p in listed]
            delete_all(logs, leftover)
            deleted += len(leftover)
        if now - marker.mtime > MARKER_GRACE_S:
            delete_all(logs, [marker.path])
    return deleted


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
            affected, kept = [], []
            for obj in objects:
                try:
                    data = _read(logs, obj.path)
                except _Damaged:
                    moved.append(_quarantine(logs, obj.path))
                    continue
                keep = pc.fill_null(
                    pc.greater_equal(data[column].cast(UTC_TIMESTAMP), threshold), True
                )
                remaining = data.filter(keep)
                if remaining.num_rows < data.num_rows:
                    affected.append(obj.path)
                    removed += data.num_rows - remaining.num_rows
                    if remaining.num_rows:
                        kept.append(remaining)
            if affected:
                _replace(logs, held, table, day, affected, kept)
    return removed


def compact(logs: S3Logs, held: Lease, table: str, min_files: int, moved: list[Path]) -> int:
    """Merge each day holding at least `min_files` files into one; return the files after."""
    after = 0
    for day, objects in _by_day(visible_objects(logs, table)).items():
        if len(objects) < min_files:
            after += len(objects)
            continue
        tables, inputs = [], []
        for obj in objects:
            try:
                tables.append(_read(logs, obj.path))
                inputs.append(obj.path)
            except _Damaged:
                moved.append(_quarantine(logs, obj.path))
        if len(inputs) >= min_files:
            _replace(logs, held, table, day, inputs, tables)
            after += 1
        else:
            after += len(inputs)
    return after


def maintain_table(
    logs: S3Logs, table: str, cutoff: datetime, min_files: int, timeout_s: float = LOCK_TIMEOUT_S
) -> TableMaintenance:
    """Remove the rows older than `cutoff`, then merge each day's small files."""
    schema_for(table)
    if min_files < 2:
        raise ValueError(f"min_files must be at least 2, got {min_files}")
    moved: list[Path] = []
    with lease(logs, table, timeout_s) as held:
        finish_interrupted(logs, table)
        before = len(visible_objects(logs, table))
        removed = apply_retention(logs, held, table, cutoff, moved)
        after = compact(logs, held, table, min_files, moved)
    rows = sum(row_count(logs, o.path) for o in visible_objects(logs, table))
    return TableMaintenance(table, before, after, removed, rows, tuple(moved))


def maintain_logs(
    logs: S3Logs, retention_days: int, min_files: int, now: datetime | None = None
) -> list[TableMaintenance]:
    """Retention and compaction for every log table on S3."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    return [maintain_table(logs, table, cutoff, min_files) for table in TABLES]
