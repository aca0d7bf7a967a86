"""Compaction: merge each date partition's small Parquet files into one, and clear the temporary
files a crashed writer left (what readers and writers can observe: see `logs/maintenance.py`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from segment_sync.logs.damaged import DamagedFile, keep_readable, quarantine
from segment_sync.logs.layout import (
    SUMMARY_TABLES,
    TEMP_SUFFIX,
    data_files,
    has_raw_bodies,
    holds_bodies,
    new_file_paths,
    partition_dirs,
)
from segment_sync.logs.merge import (
    LOCK_TIMEOUT_S,
    finish_interrupted,
    maintenance_lock,
    merge_files,
    publish,
)
from segment_sync.logs.schema import schema_for
from segment_sync.logs.summaries import summarise_partition

STALE_TEMP_AGE_S = 3600.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactionResult:
    """Files of the table before and after, rows rewritten into merged files, and the damaged
    files moved to quarantine instead of being merged."""

    files_before: int
    files_after: int
    rows: int
    quarantined: tuple[Path, ...] = ()


def compact(
    logs_dir: Path | str,
    table: str,
    min_files: int = 2,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
    moved: list[Path] | None = None,
) -> CompactionResult:
    """Merge each date partition holding at least `min_files` data files into one file (or
    a file whose bodies a flush left uncompressed: they are compressed).

    Every row is kept, in file order, with the current schema's columns first (columns an older
    file lacks become NULL; columns the schema does not know are kept). See the module docstring
    for what a concurrent reader or writer can observe.
    """
    if min_files < 2:
        raise ValueError(f"min_files must be at least 2, got {min_files}")
    schema_for(table)
    before = after = rows = 0
    moved = [] if moved is None else moved  # the caller's list: appended as files move
    # A flush's uncompressed bodies are compressed by a merge, even of a partition's only file.
    bodies = holds_bodies(table)
    first = len(moved)
    with maintenance_lock(logs_dir, table, lock_timeout_s):
        for directory in partition_dirs(logs_dir, table):
            finish_interrupted(directory)
            remove_stale_temps(directory)
            before += len(data_files(directory))
            while True:  # a file found damaged mid-merge is moved aside, the rest merged again
                files = keep_readable(logs_dir, data_files(directory), moved)
                if len(files) < min_files and not (bodies and any(map(has_raw_bodies, files))):
                    after += len(files)
                    break
                try:
                    rows += merge_files(table, files, directory)
                except DamagedFile as damaged:
                    moved.append(quarantine(logs_dir, damaged.path))
                    continue
                after += 1
                break
            if table in SUMMARY_TABLES:
                _summarise(directory)
    return CompactionResult(before, after, rows, tuple(moved[first:]))


def _summarise(directory: Path) -> None:
    """Write the summary of a one-file day (summaries.py); a summary only saves daily_summary
    time, so one that cannot be written leaves the day to the live aggregate."""
    try:
        summarise_partition(directory)
    except (OSError, duckdb.Error) as exc:
        log.warning("could not summarise %s: %s", directory, exc)


def remove_stale_temps(directory: Path, max_age_s: float = STALE_TEMP_AGE_S) -> int:
    """Delete temporary files a crashed writer left behind more than `max_age_s` ago."""
    removed = 0
    cutoff = time.time() - max_age_s
    for path in directory.glob(f".*{TEMP_SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _publish(tables: Iterable[pa.Table], target: pa.Schema, directory: Path) -> int:
    """Stream `tables` into one new file in `directory`, atomically for readers; row count
    (bench/logs.py writes its compacted days with it)."""
    return publish(tables, target, *new_file_paths(directory))
