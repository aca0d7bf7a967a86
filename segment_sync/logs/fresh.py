"""Fresh merges: when a run ends (and every 5 minutes of a long run), today's small log files
are merged into one.

Why: a run writes one file per flush (its rows are logged before its progress is saved), and a
query pays for every file it lists, so a day of runs left today's partition with thousands of
small files and every query over it took seconds until the hourly compaction. Each run's end
(`runs.recorded_run`) therefore merges the small files of today's and yesterday's partitions of
every table once there are at least FRESH_MERGE_FILES (merge.py: journaled, crash-safe). A run
that follows the store for long does the same every `store.FRESH_MERGE_EVERY_S` of flushing.

Not on every flush: a merge deletes its inputs, and a DuckDB query that listed one of them
before and opens it after fails ("Cannot open file"); writers flushing many times a second
would make that frequent. Merging every few minutes, as the hourly maintenance does every hour,
keeps it as rare as that (and the `logs` commands rerun such a query: vanished.py).

Only files under FRESH_FILE_BYTES count as small: a merged file that grew past it is left alone,
so a busy day is not rewritten again and again (the hourly compaction still makes it one file).
The maintenance lock is taken without waiting: if the hourly maintenance or another run's end
holds it, this run skips the merge and a later one does it. A merge that fails (a damaged file,
a full disk) never fails the run; the hourly maintenance reports it.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from segment_sync.logs.damaged import DamagedFile
from segment_sync.logs.layout import partition_dir
from segment_sync.logs.merge import (
    finish_interrupted,
    has_journal,
    maintenance_lock,
    merge_files,
)
from segment_sync.logs.schema import TABLES

FRESH_MERGE_FILES = 16
FRESH_FILE_BYTES = 16 * 2**20

log = logging.getLogger(__name__)


def small_files(directory: Path) -> list[Path]:
    """The published data files of a partition under FRESH_FILE_BYTES, oldest first."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        if not entry.name.endswith(".parquet") or entry.name.startswith(("_", ".")):
            continue
        try:
            if entry.stat().st_size < FRESH_FILE_BYTES:
                found.append(Path(entry.path))
        except FileNotFoundError:  # merged away meanwhile
            continue
    return sorted(found)


def merge_fresh(
    logs_dir: Path | str,
    table: str,
    day: date,
    *,
    min_files: int = FRESH_MERGE_FILES,
    durable: bool = False,
) -> int:
    """Merge the small files of `table`'s `day` if at least `min_files`; return how many were
    merged (0: too few, or the maintenance lock is busy)."""
    directory = partition_dir(logs_dir, table, day)
    # A merge killed after publishing left its rows twice: finish it even with few files.
    if len(small_files(directory)) < min_files and not has_journal(directory):
        return 0
    try:
        with maintenance_lock(logs_dir, table, timeout_s=0):
            finish_interrupted(directory)
            files = small_files(directory)  # again: another run may have merged them
            if len(files) < min_files:
                return 0
            merge_files(table, files, directory, durable=durable)
            return len(files)
    except TimeoutError:
        return 0


def merge_fresh_logs(
    logs_dir: Path | str,
    *,
    now: datetime | None = None,
    min_files: int | None = None,
    durable: bool = False,
) -> int:
    """`merge_fresh` for today and yesterday (UTC) of every table; files merged. Never raises
    for a disk or a damaged file: it logs a warning instead."""
    today = (now or datetime.now(UTC)).date()
    min_files = min_files or FRESH_MERGE_FILES
    merged = 0
    for table in TABLES:
        for day in (today - timedelta(days=1), today):
            try:
                merged += merge_fresh(logs_dir, table, day, min_files=min_files, durable=durable)
            except (OSError, pa.ArrowException, DamagedFile) as exc:
                log.warning("could not merge the small %s files of %s: %s", table, day, exc)
            except Exception as exc:  # noqa: BLE001 - a merge is an optimisation: never fail a run
                kind = type(exc).__name__
                log.warning(
                    "could not merge the small %s files of %s: %s: %s", table, day, kind, exc
                )
    return merged
