"""Precomputed request figures per data file, so daily_summary need not sort every day's rows.

The outbound half of daily_summary counts requests and errors and takes exact p50/p95 response
times per day and type; the quantiles sort every value, which was most of the view's time on 10M
rows (bench/logs.py, query d). Quantiles of two files cannot be combined, so a summary is written
for one data file, `<data file name>.summary` beside it (summary_path), and counts for a day only
while that file is the day's ONLY data file: the view (views.py) checks this when it runs, from
the files it lists, and aggregates every other day from its rows. Data files are never changed
in place, so a summary can never describe other rows than its file's: when a day's files change
(a late row lands, retention trims it, compaction merges it) the day is aggregated live again
until the hourly maintenance summarises its new single file (`summarise_partition`).

Figures are the view's own SQL (`requests_sql`) run over the one file, so they are identical. A
summary's name carries the fingerprint of that SQL (request_figures.py): one made by other code
is not read, and the next maintenance deletes it and summarises its file again.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import duckdb

from segment_sync.logs.damaged import read_problem
from segment_sync.logs.layout import (
    SCHEMA_FILE_NAME,
    SCHEMA_PARTITION,
    SUMMARY_SUFFIX,
    TEMP_SUFFIX,
    data_files,
    fsync,
    stale_summaries,
    summary_files,
    summary_path,
)
from segment_sync.logs.request_figures import requests_sql


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def write_summary(data_file: Path) -> Path:
    """Summarise one outbound_log data file into its summary file (atomically); its path.

    Read with the table's schema file, as the view reads it: a column the file lacks is NULL."""
    schema_file = data_file.parent.parent / SCHEMA_PARTITION / SCHEMA_FILE_NAME
    files = f"[{_literal(data_file.as_posix())}, {_literal(schema_file.as_posix())}]"
    source = f'(SELECT *, NULL AS "date" FROM read_parquet({files}, union_by_name = true, hive_partitioning = false))'
    query = f"SELECT type, requests, errors, response_times FROM ({requests_sql(source)})"
    final = summary_path(data_file)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    try:
        with duckdb.connect() as con:
            con.execute(f"COPY ({query}) TO {_literal(tmp.as_posix())} (FORMAT parquet)")
        fsync(tmp)  # a summary cut short by a power loss would fail daily_summary
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def remove_orphans(directory: Path) -> int:
    """Delete the summaries of data files that are gone (merged, trimmed, quarantined) and the
    summaries other code made (another fingerprint: the view never reads them)."""
    orphans = [
        path
        for path in summary_files(directory)
        if not path.with_name(path.name.removesuffix(SUMMARY_SUFFIX)).exists()
    ]
    removed = 0
    for path in [*orphans, *stale_summaries(directory)]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def summarise_partition(directory: Path) -> bool:
    """Summarise a partition holding one data file without a summary, and drop orphaned
    summaries (hold the maintenance lock); True if a summary was written."""
    remove_orphans(directory)
    files = data_files(directory)
    if len(files) != 1:
        return False
    existing = summary_path(files[0])
    if existing.exists() and read_problem(existing) is None:
        return False
    write_summary(files[0])  # a damaged summary is rewritten: it holds nothing of its own
    return True
